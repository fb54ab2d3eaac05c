"""Nothing lost, nothing misleading (issue 13): run folders, single output files, interrupts, hostile
input and ``--rerun``.

These tests check behaviour, not numbers: every expectation is a file-system state (a folder present,
absent or byte-identical to before), an exit code of the documented contract (0, 2, 3, 4, 130, 143) or a
one-line message. Where a fit is not the point, sampling is replaced by a stub that raises
:class:`_Reached`, which proves that the command got as far as sampling (or, where the test expects exit
2, that it stopped before).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import xarray as xr
from conftest import GOOD_CSV, ROOT
from test_workers import _gone

import bayes_rescue.api  # noqa: F401  (imported here, not first inside a patched block that would bind the stub)
from bayes_rescue.cli import main
from bayes_rescue.errors import InputError, Terminated
from bayes_rescue.outputs import rundir
from bayes_rescue.outputs.rundir import sha256_file

TINY = ["--draws", "200", "--tune", "200", "--chains", "2", "--prior-draws", "100", "--keep-going", "--no-figures"]
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


class _Reached(Exception):
    """Raised by the stubbed sampler: the command got as far as sampling."""


def _stop(*args, **kwargs):
    raise _Reached


def _run(argv, capsys):
    """``bayes-rescue argv`` in this process with sampling stubbed; (exit code or 'reached', stderr)."""
    with (
        mock.patch("bayes_rescue.inference.sampling.fit_many", _stop),
        mock.patch("bayes_rescue.api.fit_many", _stop),
        mock.patch("bayes_rescue.analyses.sensitivity.sensitivity_grid", _stop),
        mock.patch("bayes_rescue.analyses.validation.sbc", _stop),
        mock.patch("bayes_rescue.analyses.validation.sbc_map", _stop),
    ):
        try:
            rc = main(argv)
        except _Reached:
            rc = "reached"
    return rc, capsys.readouterr().err


def _one_line_exit_2(rc, err):
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err


def _fake_run(folder: Path, text: str = "old") -> dict[str, str]:
    """A folder that is a run of this tool (its manifest says so); returns its files' hashes."""
    folder.mkdir(parents=True)
    (folder / "summary.csv").write_text(text)
    (folder / "manifest.json").write_text(json.dumps({"tool": "bayes_rescue", "files": {}}))
    return {p.name: sha256_file(p) for p in folder.iterdir()}


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in folder.iterdir() if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# -- the run lock ------------------------------------------------------------------------------------------

HOLD = """
import sys, time
from pathlib import Path
from bayes_rescue.outputs import rundir
with rundir.claim_run_dir(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_run_into_a_locked_folder_fails_at_once(tmp_path, capsys):
    """Another process holds the run folder (its lock): a fit into it exits 2 at once, naming that
    process's pid, before any sampling, and leaves no lock or partial folder of its own."""
    target = tmp_path / "run"
    holder = subprocess.Popen([PY, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, err = _run(["fit", "--out", str(target), *TINY], capsys)
        _one_line_exit_2(rc, err)
        assert "in progress" in err and f"pid {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()
    assert not target.exists()


def test_two_real_fits_of_one_name_one_fails(tmp_path):
    """Two real ``fit`` processes with the same --out: the one started second exits 2 naming the first
    one's pid, while the first completes (exit 0) and writes the folder."""
    target = tmp_path / "run"
    args = [PY, str(ROOT / "scripts" / "fit.py"), "--out", str(target), *TINY]
    # the first run samples long enough (about 5 s) that it still holds the lock when the second one, started
    # after it prints "fitting", has imported and checks its target: with the compiled model cached, a TINY fit
    # can finish before that and the second would then (correctly) find an existing folder instead
    long_first = [*args, "--draws", "40000"]  # the later --draws wins
    first = subprocess.Popen(
        long_first, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    line = ""
    deadline = time.time() + 120
    while time.time() < deadline and "fitting" not in line:
        line = first.stdout.readline()
    assert "fitting" in line
    second = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert second.returncode == 2 and f"pid {first.pid}" in second.stderr, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert (target / "summary.csv").is_file() and _leftovers(tmp_path) == []
    # --no-figures: the message does not claim a figures/ folder, and there is none
    assert "figures/" not in out and not (target / "figures").exists()


# -- --overwrite replaces only runs of this tool -------------------------------------------------------------


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    """``--out`` naming a folder of the user's own files with --overwrite: exit 2, every file untouched,
    nothing sampled; a folder with a manifest of this tool is accepted."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("irreplaceable")
    (mine / "manifest.json").write_text('{"name": "some other tool"}')
    before = _hashes(mine)
    for cmd in (["fit"], ["sensitivity"], ["validate"]):
        rc, err = _run([*cmd, "--out", str(mine), "--overwrite"], capsys)
        _one_line_exit_2(rc, err)
        assert "not a bayes_rescue run" in err and _hashes(mine) == before
    run = tmp_path / "run"
    _fake_run(run)
    assert _run(["fit", "--out", str(run), "--overwrite", *TINY], capsys)[0] == "reached"


def test_validate_does_not_replace_an_existing_folder_without_overwrite(tmp_path, capsys):
    """``validate --out`` used to replace whatever folder it named: now exit 2 without --overwrite."""
    run = tmp_path / "v"
    before = _fake_run(run)
    rc, err = _run(["validate", "--out", str(run), "--sims", "10"], capsys)
    _one_line_exit_2(rc, err)
    assert _hashes(run) == before


# -- the overwrite swap is recoverable ----------------------------------------------------------------------

KILL_BETWEEN_RENAMES = """
import os, sys
from pathlib import Path
from bayes_rescue.outputs import rundir
real = os.rename
def rename(src, dst):
    if ".partial-" in str(src):  # the second rename: die before it, as a SIGKILL would
        os._exit(137)
    return real(src, dst)
rundir.os.rename = rename
with rundir.atomic_run_dir(Path(sys.argv[1]), overwrite=True) as tmp:
    (tmp / "summary.csv").write_text("new")
    (tmp / "manifest.json").write_text('{"tool": "bayes_rescue"}')
"""


def test_kill_between_the_renames_of_overwrite_is_recovered(tmp_path, capsys):
    """A process dies between the two renames of --overwrite (the old run moved aside, the new one not
    yet in place): the next run into the same parent folder, of any name, puts the old run back intact."""
    target = tmp_path / "run"
    before = _fake_run(target)
    res = subprocess.run([PY, "-c", KILL_BETWEEN_RENAMES, str(target)], env=ENV, capture_output=True, check=False)
    assert res.returncode == 137, res.stderr
    assert not target.exists() and any(".run.old-" in n for n in _leftovers(tmp_path))
    rc, err = _run(["fit", "--out", str(tmp_path / "another"), *TINY], capsys)
    assert rc == "reached" and "restored run" in err
    assert _hashes(target) == before and not any(".old-" in n for n in _leftovers(tmp_path))


def test_orphan_whose_name_exists_again_is_reported_not_moved(tmp_path, capsys):
    """An orphaned ``.run.old-*`` beside an existing ``run`` is left alone and reported."""
    _fake_run(tmp_path / ".run.old-1-abcd", "older")
    now = _fake_run(tmp_path / "run", "newer")
    msgs = rundir.recover_orphans(tmp_path, report=lambda m: None)
    assert len(msgs) == 1 and "older copy" in msgs[0]
    assert _hashes(tmp_path / "run") == now and (tmp_path / ".run.old-1-abcd" / "summary.csv").read_text() == "older"


# -- single output files --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "option", "name"),
    [
        (["check"], "--out", "t.csv"),
        (["priors", "--prior", "skeptical"], "--out", "t.csv"),
        (["priors"], "--plot", "p.png"),
    ],
)
def test_output_file_is_not_replaced_without_overwrite(tmp_path, capsys, cmd, option, name):
    """An existing --out/--plot file is refused (exit 2, untouched) and replaced with --overwrite."""
    path = tmp_path / name
    path.write_text("precious")
    rc, err = _run([*cmd, option, str(path)], capsys)
    _one_line_exit_2(rc, err)
    assert path.read_text() == "precious"
    assert main([*cmd, option, str(path), "--overwrite"]) == 0
    assert path.read_bytes() != b"precious" and path.stat().st_size > 100
    assert _leftovers(tmp_path) == []


def test_full_disk_leaves_no_file_and_no_temporary(tmp_path, capsys):
    """The final rename (or link) fails with ENOSPC: one-line exit 2, no 0-byte or partial file, and an
    existing file untouched."""

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "check.csv"
    with mock.patch("os.link", full), mock.patch("os.replace", full):
        rc, err = _run(["check", "--out", str(out)], capsys)
    _one_line_exit_2(rc, err)
    assert "No space left" in err and not out.exists() and _leftovers(tmp_path) == []
    out.write_text("old")
    with mock.patch("os.replace", full):
        rc, err = _run(["check", "--out", str(out), "--overwrite"], capsys)
    _one_line_exit_2(rc, err)
    assert out.read_text() == "old" and _leftovers(tmp_path) == []


def test_full_disk_while_writing_a_run_folder(tmp_path):
    """ENOSPC while the run folder is written: an InputError (one line), no partial folder, the
    previous run intact, no lock file left."""
    target = tmp_path / "run"
    before = _fake_run(target)
    with pytest.raises(InputError, match="No space left") as exc, rundir.atomic_run_dir(target, overwrite=True) as tmp:
        (tmp / "summary.csv").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert "\n" not in str(exc.value)
    assert _hashes(target) == before and _leftovers(tmp_path) == []


def test_priors_plot_reports_the_file_it_wrote(tmp_path, capsys):
    """``--plot`` without a figure suffix is refused (matplotlib would have written ``<name>.png`` and the
    command reported ``<name>``); with one, the path printed is the file that exists."""
    rc, err = _run(["priors", "--plot", str(tmp_path / "figure")], capsys)
    _one_line_exit_2(rc, err)
    assert not list(tmp_path.iterdir())
    png = tmp_path / "figure.png"
    assert main(["priors", "--prior", "skeptical", "--plot", str(png)]) == 0
    assert f"figure written to {png}" in capsys.readouterr().out and png.stat().st_size > 1000


# -- the target is checked before any work ----------------------------------------------------------------------


def test_unwritable_or_impossible_targets_fail_before_sampling(tmp_path, capsys):
    """A 300-byte --name, a path whose parent is a file, a folder under /proc (not writable even for
    root) and a path longer than PATH_MAX: exit 2, one line, nothing sampled, nothing left."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        ["--name", "n" * 300],
        ["--out", str(afile / "run")],
        ["--out", "/proc/bayes_rescue_run"],
        ["--out", str(tmp_path / (("d" * 200 + "/") * 25) / "run")],
    ]
    for extra in cases:
        rc, err = _run(["fit", *extra, *TINY], capsys)
        _one_line_exit_2(rc, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert not Path("models").exists() or not list(Path("models").glob("n" * 50 + "*"))


# -- interrupts -------------------------------------------------------------------------------------------------


def _signal_run(tmp_path: Path, sig: int, moment: str) -> subprocess.CompletedProcess:
    """Start a fit that overwrites an existing run, signal it at ``moment``, return the finished process."""
    target = tmp_path / "run"
    args = ["--prior", "skeptical,neutral", "--out", str(target), "--overwrite", *TINY]
    if moment == "writing":
        args.remove("--no-figures")  # figures make the writing phase seconds long
    if moment == "sampling":  # long enough that the signal lands in sampling, however fast the compile
        args[args.index("--draws") + 1] = args[args.index("--tune") + 1] = "50000"
    proc = subprocess.Popen(
        [PY, str(ROOT / "scripts" / "fit.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.time() + 180
    if moment == "writing":  # timing-free: wait until the partial folder exists
        while time.time() < deadline and not list(tmp_path.glob(".run.partial-*")) and proc.poll() is None:
            time.sleep(0.01)
        assert list(tmp_path.glob(".run.partial-*")), "the run never started writing"
    else:
        line = ""
        while time.time() < deadline and "fitting" not in line:
            line = proc.stdout.readline()
        assert "fitting" in line
        time.sleep({"compile": 0.0, "sampling": 3.0}[moment])
    helpers = _helper_pids(proc.pid)
    t0 = time.time()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert time.time() - t0 < 20, "the run took too long to stop"
    assert [p for p in helpers if not _gone(p)] == [], "a helper process outlived the run"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _helper_pids(parent: int) -> list[int]:
    """The helper processes (:mod:`bayes_rescue.workers`) that ``parent`` has started, from /proc."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"bayes_rescue.workers" in cmd:
            pids.append(int(d.name))
    return pids


@pytest.mark.parametrize(
    ("sig", "code", "moment"),
    [
        pytest.param(signal.SIGTERM, 143, "compile", marks=pytest.mark.slow),
        (signal.SIGTERM, 143, "sampling"),
        pytest.param(signal.SIGTERM, 143, "writing", marks=pytest.mark.slow),
        (signal.SIGINT, 130, "compile"),
        (signal.SIGINT, 130, "writing"),
    ],
)
def test_signals_end_the_run_cleanly(tmp_path, sig, code, moment):
    """SIGTERM / SIGINT at several moments of a real fit: exit 143 / 130 within seconds, no traceback,
    no partial folder or lock left, and the previous run of that name byte-identical."""
    before = _fake_run(tmp_path / "run")
    res = _signal_run(tmp_path, sig, moment)
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr and "no partial output left" in res.stderr
    assert _hashes(tmp_path / "run") == before and _leftovers(tmp_path) == []


def test_nan_padded_trace_is_an_interruption():
    """nutpie pads the shorter chains of an interrupted run with NaN to the longest one: such a trace
    (full size, NaN inside) is raised as an interruption, never passed on as a result; after SIGTERM as
    :class:`Terminated`."""
    from bayes_rescue import errors
    from bayes_rescue.inference.engine import check_complete
    from bayes_rescue.inference.settings import SamplerSettings

    s = SamplerSettings(draws=5, chains=2)
    x = np.zeros((2, 5))
    check_complete(2, 5, s, xr.Dataset({"a": (("chain", "draw"), x)}))  # complete: no error
    x[1, 3:] = np.nan
    with pytest.raises(KeyboardInterrupt, match="NaN"):
        check_complete(2, 5, s, xr.Dataset({"a": (("chain", "draw"), x)}))
    errors._RECEIVED[:] = [signal.SIGTERM]
    try:
        with pytest.raises(Terminated):
            check_complete(2, 5, s, xr.Dataset({"a": (("chain", "draw"), np.zeros((2, 5)))}))
    finally:
        errors._RECEIVED.clear()


# -- hostile input ------------------------------------------------------------------------------------------------

LOAD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))
from bayes_rescue.errors import InputError
from bayes_rescue.data.counts import load_counts
from bayes_rescue.priors.spec import load_prior
try:
    (load_counts if sys.argv[1] == "data" else load_prior)(sys.argv[2])
except InputError as e:
    print(e)
    sys.exit(2)
"""


def test_devices_fifos_and_huge_files_are_refused(tmp_path):
    """/dev/zero (endless), a FIFO with no writer (blocks open) and a file over 10 MB, as counts and as a
    prior: exit 2 within seconds under a 2 GB memory limit, naming the file."""
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (10 * 1024 * 1024 + 1))
    for kind in ("data", "prior"):
        for path in ("/dev/zero", str(fifo), str(big)):
            res = subprocess.run([PY, "-c", LOAD, kind, path], env=ENV, capture_output=True, text=True, timeout=60)
            assert res.returncode == 2 and path in res.stdout, (kind, path, res.stdout, res.stderr[-500:])


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["fit", "--draws", "1000000000"], "<= 100000"),
        (["fit", "--tune", "100001"], "<= 100000"),
        (["fit", "--chains", "65"], "<= 64"),
        (["fit", "--prior-draws", "1000000"], "<= 100000"),
        (["fit", "--chains", "64", "--draws", "100000"], "2000000 draws in all"),
        (["fit", "--draws", "1", "--keep-going"], ">= 4"),
        (["sensitivity", "--draws", "3"], ">= 4"),
        (["sensitivity", "--chains", "100"], "<= 64"),
        (["validate", "--sims", "1000000"], "<= 100000"),
        (["validate", "--scheduler", "no address"], "--scheduler must be"),
    ],
)
def test_sampling_sizes_are_capped(tmp_path, capsys, argv, words):
    """Sizes nobody could mean are refused up front with the cap in the message (exit 2, one line)."""
    rc, err = _run([*argv, "--out", str(tmp_path / "o")], capsys)
    _one_line_exit_2(rc, err)
    assert words in err and not (tmp_path / "o").exists()


PRIOR = """name = "p"
description = "d"
{hyper}
[effect.default]
[[effect.default.components]]
mean = {mean}
sd = {sd}
source = "test"
"""


@pytest.mark.parametrize(
    ("mean", "sd", "hyper", "field"),
    [
        ("0", "1e-300", "", "sd"),
        ("1e300", "1", "", "mean"),
        ("0", "1e6", "", "sd"),
        ("0", "1", '[hyper]\nbaseline_mean = 1e300\nsource = "s"', "hyper.baseline_mean"),
        ("0", "1", '[hyper]\neffect_tau_sd = 1e-9\nsource = "s"', "hyper.effect_tau_sd"),
    ],
)
def test_prior_numbers_out_of_range_are_refused(tmp_path, mean, sd, hyper, field):
    """Prior numbers outside the sane logit-scale ranges (PRIOR_BOUNDS) are refused, naming file and field,
    both from a file and when made in code (the model's domain check)."""
    from dataclasses import replace

    from bayes_rescue.data.counts import parse_counts
    from bayes_rescue.model.spec import ModelSpec
    from bayes_rescue.priors.spec import load_prior

    p = tmp_path / "p.toml"
    p.write_text(PRIOR.format(mean=mean, sd=sd, hyper=hyper))
    with pytest.raises(InputError, match="must be in") as exc:
        load_prior(p)
    assert str(p) in str(exc.value) and field in str(exc.value)
    ok = load_prior("skeptical")
    data = parse_counts(GOOD_CSV, source="c.csv")
    if field.startswith("hyper."):
        bad = replace(ok, hyper={**ok.hyper, field.removeprefix("hyper."): float(hyper.split("= ")[1].split()[0])})
    else:
        eff = ok.effect_for("mrs_0_2")
        comp = replace(eff.components[0], **{field: float(mean if field == "mean" else sd)})
        bad = replace(ok, effects={**ok.effects, "mrs_0_2": replace(eff, components=(comp,))})
    with pytest.raises(InputError, match="in \\["):
        ModelSpec(data, bad)


def test_deeply_nested_toml_and_manifest_are_input_errors(tmp_path, capsys):
    """A prior nested 5000 deep (RecursionError in tomllib) and a manifest nested 100000 deep: exit 2."""
    from bayes_rescue.priors.spec import load_prior

    p = tmp_path / "deep.toml"
    p.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(InputError, match="nested too deeply"):
        load_prior(p)
    m = tmp_path / "manifest.json"
    m.write_text("[" * 100000 + "]" * 100000)
    rc, err = _run(["fit", "--rerun", str(m)], capsys)
    _one_line_exit_2(rc, err)


def test_multi_line_and_unterminated_csv_fields_are_refused_with_true_lines():
    """A quoted field with a line break, and an unterminated quote that would swallow the later rows:
    refused, naming the line where the field starts (counted by hand in the text below)."""
    from bayes_rescue.data.counts import parse_counts

    head = "outcome,subgroup,arm,events,total,note\n\n"  # a blank line 2
    multi = head + 'm,all,treatment,3,10,"two\nlines"\nm,all,control,2,10,\n'
    with pytest.raises(InputError, match="line 3: a field runs over more than one line"):
        parse_counts(multi, source="f.csv")
    open_quote = head + 'm,all,treatment,3,10,"open\nm,all,control,2,10,\nm,all,control,9,10,\n'
    with pytest.raises(InputError, match="line 3"):
        parse_counts(open_quote, source="f.csv")
    later = head + "m,all,treatment,3,10,ok\nm,all,control,x,10,\n"
    with pytest.raises(InputError, match="line 4, field 'events'"):
        parse_counts(later, source="f.csv")


def test_priors_ess_is_finite_when_no_control_events(tmp_path, capsys):
    """0/10 control events: the prior table's ESS and implied RD are finite (continuity-corrected control
    risk 0.5/11), never printed as inf or nan."""
    data = tmp_path / "zero.csv"
    data.write_text("outcome,subgroup,arm,events,total\nmortality,all,treatment,0,10\nmortality,all,control,0,10\n")
    assert main(["priors", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert " inf" not in out and "nan" not in out and "@0.05" in out


# -- --rerun reproduces from the folder alone ------------------------------------------------------------------------


def test_rerun_uses_the_kept_inputs_and_refuses_tampering(tmp_path, capsys):
    """A real fit keeps inputs/ (data and prior bytes, hashes in the manifest) and typed settings; the
    rerun honours --out, notes changed versions, reproduces bit for bit (exit 0), refuses other options,
    and refuses a manifest whose settings name a path, have the wrong type, or whose inputs changed."""
    data = tmp_path / "mine.csv"
    data.write_text(GOOD_CSV)
    run = tmp_path / "run"
    assert main(["fit", "--data", str(data), "--prior", "skeptical", "--out", str(run), *TINY]) == 0
    assert "figures/" not in capsys.readouterr().out
    assert (run / "inputs" / "data.csv").read_bytes() == data.read_bytes()
    data.write_text("gone")  # the rerun must not need the original file
    manifest = json.loads((run / "manifest.json").read_text())
    assert "argv" not in manifest and manifest["rerun"]["draws"] == 200
    manifest["versions"]["pymc"] = "0.0.1"
    (run / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "again"
    assert main(["fit", "--rerun", str(run / "manifest.json"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "versions differ" in text and "pymc" in text and "reproduced" in text and (out / "summary.csv").exists()

    rc, err = _run(["fit", "--rerun", str(run / "manifest.json"), "--seed", "7"], capsys)
    _one_line_exit_2(rc, err)
    for change in (
        {"rerun": {**manifest["rerun"], "model": "/etc/shadow"}},
        {"rerun": {**manifest["rerun"], "data": "/etc/shadow"}},
        {"rerun": {**manifest["rerun"], "draws": "200"}},
        {"argv": ["--data", "/etc/shadow"], "manifest_version": 1},
    ):
        (run / "manifest.json").write_text(json.dumps({**manifest, **change}))
        rc, err = _run(["fit", "--rerun", str(run / "manifest.json"), "--out", str(tmp_path / "x")], capsys)
        _one_line_exit_2(rc, err)
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "inputs" / "prior-1.toml").write_text((run / "inputs" / "prior-1.toml").read_text() + "\n# edited\n")
    rc, err = _run(["fit", "--rerun", str(run / "manifest.json"), "--out", str(tmp_path / "x")], capsys)
    _one_line_exit_2(rc, err)
    assert "sha256" in err and not (tmp_path / "x").exists()


def test_a_signal_inside_a_c_extension_import_is_an_interruption(monkeypatch, capsys):
    """A SIGINT that lands while a C extension initialises (seen in CI: matplotlib's _backend_agg) surfaces as
    ``ImportError: initialization failed`` raised from the KeyboardInterrupt: exit 130 with the one-line
    message, no traceback. The same ImportError without an interrupt behind it stays an error."""
    import bayes_rescue.cli.check as check_cmd
    from bayes_rescue import cli

    def interrupted_import(args, argv):
        try:
            raise KeyboardInterrupt("interrupted (SIGINT)")
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(check_cmd, "run", interrupted_import)
    assert cli.main(["check"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: no partial output left" in err and "Traceback" not in err

    def failed_import(args, argv):
        raise ImportError("initialization failed")

    monkeypatch.setattr(check_cmd, "run", failed_import)
    with pytest.raises(ImportError):
        cli.main(["check"])
