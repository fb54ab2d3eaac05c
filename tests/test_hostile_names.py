"""Issue 20, items 1-3 and 7: names that reach the file system or a spreadsheet, ``--rerun`` through
symlinks, and formula injection into CSV cells.

Each test reproduces an audit case: the path-traversal and symlink cases run the real command line in a
subprocess and check that a file outside the run folder is byte-identical afterwards. The seeded fuzzing
at the end generates hostile names (``..``, ``/``, control characters, formula prefixes, very long) for
every name field and checks that the command refuses them (exit 2) and that nothing outside the run folder
changes. No number here is a statistical result: the expectations are exit codes, file contents and CSV
cells as written by the code under test.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from conftest import GOOD_CSV, ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_rescue.cli import main
from bayes_rescue.data.names import MAX_NAME, check_name, is_valid_name, quote, safe_name
from bayes_rescue.errors import InputError
from bayes_rescue.outputs import manifest as mf
from bayes_rescue.outputs import rundir

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PRIOR = """name = "{name}"
description = "test prior"
[effect.default]
[[effect.default.components]]
name = "c"
mean = 0.0
sd = 1.0
source = "test"
"""


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bayes_rescue.cli", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300
    )


def _tree(root: Path) -> dict[str, str]:
    """``relative path -> sha256`` (or ``<dir>``/``<link>``) of everything under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "<link>"
        elif p.is_dir():
            out[rel] = "<dir>"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# -- 1. a prior's or bias model's name becomes a path ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "prior_arg"),
    [("../../../user/victim", "{p}"), ("..", "skeptical,{p}"), ("victim/posterior", "{p}"), (".", "{p}")],
)
def test_a_prior_name_that_is_a_path_is_refused_and_nothing_outside_changes(tmp_path, name, prior_arg):
    """The audit's case: ``name = "../../../user/victim"`` with ``--bias mild`` overwrote
    ``victim/posterior.nc`` outside the run folder, and ``name = ".."`` wrote ``posterior.nc`` beside the
    run. Now the name rule refuses the name where the file is read: exit 2, the field named, and every
    file under the temporary folder (the victim's, the prior's) byte-identical afterwards."""
    home = tmp_path / "home"
    victim = home / "user" / "victim"
    victim.mkdir(parents=True)
    (victim / "posterior.nc").write_bytes(b"the user's own file")
    work = home / "a" / "b" / "c"
    work.mkdir(parents=True)
    p = work / "p.toml"
    p.write_text(PRIOR.format(name=name))
    before = _tree(tmp_path)
    r = _cli(["fit", "--prior", prior_arg.format(p=p), "--bias", "mild", "--out", str(work / "run"), "--quiet"], work)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "field 'name'" in r.stderr and "not a valid name" in r.stderr, r.stderr
    assert _tree(tmp_path) == before


def test_a_bias_model_name_that_is_a_path_is_refused(tmp_path):
    """The bias model's ``name`` builds ``<prior>+bias-<name>/``: a name with ``/`` is refused at reading."""
    src = (ROOT / "bayes_rescue" / "priors" / "bias" / "mild.toml").read_text()
    bad = tmp_path / "b.toml"
    bad.write_text(src.replace('name = "mild"', 'name = "../../x"', 1))
    from bayes_rescue.priors.bias import load_bias

    with pytest.raises(InputError, match=r"b\.toml: field 'name': '../../x' is not a valid name"):
        load_bias(bad)


def test_the_name_rule():
    """The alphabet of :mod:`bayes_rescue.data.names`: ASCII letters, digits, ``_ . -``, a letter or digit
    first, at most MAX_NAME (80) characters; the bundled names follow it."""
    for ok in ("skeptical", "map_early", "mrs_0_2", "a.b-c", "A" * MAX_NAME, "9lives"):
        assert is_valid_name(ok), ok
    too_long = "A" * (MAX_NAME + 1)
    for bad in ("", "..", ".", "a/b", "a\\b", "-x", "=SUM(1)", "@x", "+1", "a\x01b", "a\nb", "a\tb", "é", too_long,
                "\u0663", "a b", None, 3):  # fmt: skip
        assert not is_valid_name(bad), bad
        with pytest.raises(InputError, match="field 'f'"):
            check_name(bad, field="f")
    assert safe_name("my data\x01-x+y") == "my_data_-x+y" and safe_name(".hidden") == "r.hidden"
    assert quote("root:x:0:0:root:/root:/bin/bash" * 2) == "a value of 62 characters"
    assert quote("a\x1b[31m") == "a value of 6 characters with control or non-ASCII characters"


@pytest.mark.parametrize("name", ["a\x01b", "a\nb", "a\tb", "../x", "x" * (MAX_NAME + 1), "=cmd"])
def test_run_name_with_a_control_character_is_refused(tmp_path, name, capsys):
    """``--name`` with a control character (``a\\x01b``, a newline, a tab) created such a folder; now exit
    2 naming ``--name``, and no folder is made."""
    os.chdir(tmp_path)
    assert main(["fit", "--name", name, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "field '--name'" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# -- 2. --rerun follows symlinks ---------------------------------------------------------------------------------------


def _fake_run(run: Path, data: bytes, prior: bytes) -> None:
    """A run folder as ``fit`` writes it, as far as ``--rerun`` reads it before sampling: ``inputs/``, the
    manifest with the inputs' hashes, typed settings and the output hashes."""
    run.mkdir()
    table = mf.write_inputs(run, data, [prior])
    settings_ = {
        "model": "hierarchical", "draws": 4, "tune": 4, "chains": 1, "seed": 1, "target_accept": 0.95,
        "prior_draws": 10, "mcid": [0.05], "rope": 0.02, "robust": 0.0, "discount": 1.0, "keep_going": True,
        "no_figures": True,
    }  # fmt: skip
    doc = {"tool": "bayes_rescue", "manifest_version": mf.MANIFEST_VERSION, "inputs": table, "rerun": settings_}
    doc["files"] = {"summary.csv": "0" * 64, "draws.csv": "0" * 64}
    (run / "manifest.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("what", ["data.csv", "inputs", "manifest.json"])
def test_rerun_refuses_a_symlink_inside_the_run_folder(tmp_path, what):
    """The audit replaced ``inputs/data.csv`` (or ``inputs/`` itself) by a symlink to an identical copy
    outside the folder: the rerun read the outside file (its hash matched) and exited 0. Now: exit 2
    naming the symlink, no rerun folder, and the outside copy byte-identical (a real subprocess run)."""
    data = GOOD_CSV.encode()
    prior = (ROOT / "bayes_rescue" / "priors" / "skeptical.toml").read_bytes()
    run = tmp_path / "run"
    _fake_run(run, data, prior)
    outside = tmp_path / "outside"
    if what == "data.csv":
        outside.mkdir()
        (outside / "data.csv").write_bytes(data)
        (run / "inputs" / "data.csv").unlink()
        (run / "inputs" / "data.csv").symlink_to(outside / "data.csv")
    elif what == "inputs":
        (run / "inputs").rename(outside)
        (run / "inputs").symlink_to(outside)
    else:
        outside.mkdir()
        (run / "manifest.json").rename(outside / "manifest.json")
        (run / "manifest.json").symlink_to(outside / "manifest.json")
    before = _tree(outside)
    r = _cli(["fit", "--rerun", str(run / "manifest.json"), "--out", str(tmp_path / "again"), "--quiet"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "symbolic link" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "again").exists() and _tree(outside) == before


def test_rerun_refuses_a_fifo_among_the_inputs(tmp_path, capsys):
    """Anything not a regular file in ``inputs/`` is refused without opening it for reading (a FIFO would
    block)."""
    run = tmp_path / "run"
    _fake_run(run, GOOD_CSV.encode(), (ROOT / "bayes_rescue" / "priors" / "skeptical.toml").read_bytes())
    (run / "inputs" / "data.csv").unlink()
    os.mkfifo(run / "inputs" / "data.csv")
    assert main(["fit", "--rerun", str(run / "manifest.json"), "--quiet"]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_rerun_accepts_quiet(tmp_path, capsys):
    """``--rerun`` refused ``--quiet`` although every command takes it; now it gets past the option check
    (and here stops at the fake run's missing sampler output, as sampling is stubbed)."""
    run = tmp_path / "run"
    _fake_run(run, GOOD_CSV.encode(), (ROOT / "bayes_rescue" / "priors" / "skeptical.toml").read_bytes())

    class Reached(Exception):
        pass

    def stop(*a, **k):
        raise Reached

    with mock.patch("bayes_rescue.cli.fit.fit_checked", stop), pytest.raises(Reached):
        main(["fit", "--rerun", str(run / "manifest.json"), "--quiet"])
    assert main(["fit", "--rerun", str(run / "manifest.json"), "--seed", "3"]) == 2
    assert "no other option than --out and --quiet" in capsys.readouterr().err


# -- 3. spreadsheet formula injection ----------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "@SUM(1+1)", "+1+1", "-1+cmd", "\tx", "\rx"]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    """Every text cell beginning with ``= + - @``, a tab or CR gets a leading ``'`` (OWASP, CSV
    injection); numbers written as text (``-0.5``, ``+3``) and floats are left alone. Read back with
    :mod:`csv`, no cell begins with a formula prefix."""
    frame = pd.DataFrame(
        {"prior": [*FORMULAS, "-0.5", "+3", "ok"], "rd": [-0.5] * 10, "cat": pd.Categorical([*FORMULAS, "a", "b", "c"])}
    )
    path = rundir.write_csv(frame, tmp_path / "x.csv")
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["prior", "rd", "cat"]
    cells = [c for r in rows[1:] for c in (r[0], r[2])]
    assert [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r")) or (c.startswith("-") and c != "-0.5")] == [
        "+3"
    ]
    assert [r[0] for r in rows[1:8]] == ["'" + f for f in FORMULAS]
    assert {r[1] for r in rows[1:]} == {"-0.5"}


@pytest.mark.parametrize("formula", FORMULAS[:3])
def test_a_formula_as_a_prior_name_is_refused_at_input(tmp_path, formula, capsys):
    """The audit's prior names ``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``, ``@SUM(1+1)`` went verbatim
    into the first cell of summary.csv, draws.csv, evalues.csv and the exported draws; the name rule now
    refuses them where the prior is read (exit 2), so no CSV is written at all."""
    p = tmp_path / "p.toml"
    p.write_text(PRIOR.format(name=formula.replace('"', '\\"')))
    assert main(["fit", "--prior", str(p), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "field 'name'" in capsys.readouterr().err and not (tmp_path / "run").exists()


# -- the seeded fuzzing: hostile names in every name field ---------------------------------------------------------

hostile = st.one_of(
    st.sampled_from(
        [
            "..",
            ".",
            "/",
            "../x",
            "a/../../b",
            "/etc/passwd",
            "a\\b",
            "=1+1",
            "+x",
            "-x",
            "@x",
            "\tx",
            "a\x00b",
            "a\x01b",
            "a\nb",
            "x" * (MAX_NAME + 1),
            "x" * 300,
            "\u0663",
            "é",
            " a",
            "a b",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12).filter(
        lambda s: not is_valid_name(s)
    ),
)
FIELDS = ["outcome", "subgroup", "prior", "prior_outcome", "bias", "bias_outcome", "run"]


def _inputs(tmp: Path, field: str, name: str) -> list[str]:
    """Files and arguments of a fit with ``name`` in ``field``."""
    csv_text = GOOD_CSV
    if field in ("outcome", "subgroup"):
        col = 0 if field == "outcome" else 1
        q = '"' + name.replace('"', '""') + '"'
        lines = csv_text.splitlines()
        lines[1:] = [
            ",".join(q if k == col and ("mrs" in ln) else c for k, c in enumerate(ln.split(","))) for ln in lines[1:]
        ]
        csv_text = "\n".join(lines) + "\n"
    (tmp / "d.csv").write_text(csv_text, encoding="utf-8")
    esc = json.dumps(name)  # a TOML basic string takes JSON's escapes
    prior = PRIOR.replace('"{name}"', esc if field == "prior" else '"p"')
    if field == "prior_outcome":
        prior = prior.replace("effect.default", f"effect.{esc}")
    (tmp / "p.toml").write_text(prior, encoding="utf-8")
    argv = ["fit", "--data", str(tmp / "d.csv"), "--prior", str(tmp / "p.toml"), "--quiet"]
    if field in ("bias", "bias_outcome"):
        src = (ROOT / "bayes_rescue" / "priors" / "bias" / "mild.toml").read_text()
        src = src.replace('name = "mild"', f"name = {esc}" if field == "bias" else 'name = "b"', 1)
        if field == "bias_outcome":
            src = src.replace("[bias.mrs_0_2]", f"[bias.{esc}]", 1)
        (tmp / "b.toml").write_text(src, encoding="utf-8")
        argv += ["--bias", str(tmp / "b.toml")]
    if field == "run":
        return [*argv, "--name", name]
    return [*argv, "--out", str(tmp / "out" / "run")]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.sampled_from(FIELDS), hostile)
def test_hostile_names_in_every_field_are_refused_and_nothing_outside_changes(tmp_path_factory, field, name):
    """For every name field, a hostile name is refused with exit 2 and a one-line message before any
    sampling (sampling is stubbed: reaching it fails the test), and the temporary folder holds exactly
    what it held before (no file, no folder made anywhere)."""
    tmp = tmp_path_factory.mktemp("hostile")
    argv = _inputs(tmp, field, name)
    before = _tree(tmp)

    def stop(*a, **k):
        raise AssertionError("reached sampling with a hostile name")

    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        with mock.patch("bayes_rescue.cli.fit._fit_and_write", stop):
            import io
            from contextlib import redirect_stderr, redirect_stdout

            err = io.StringIO()
            with redirect_stderr(err), redirect_stdout(io.StringIO()):
                rc = main(argv)
    finally:
        os.chdir(cwd)
    assert rc == 2, (field, name, err.getvalue())
    assert err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()
    assert _tree(tmp) == before


def test_path_inside_is_the_second_line_of_defence(tmp_path):
    """Every path built inside a run folder from a name is checked, once resolved, to stay inside it: the
    audit's ``../../../user/victim`` and ``..`` (had they passed the name rule), an absolute part, and a
    symlink inside the folder that leads out are refused; plain paths are returned as built."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "out").symlink_to(tmp_path)
    assert rundir.path_inside(run, "skeptical+bias-mild/posterior.nc") == run / "skeptical+bias-mild/posterior.nc"
    for bad in ("../../../user/victim/posterior.nc", "../posterior.nc", "..", "/etc/passwd", "out/x", "."):
        with pytest.raises(InputError, match="outside the run folder"):
            rundir.path_inside(run, bad)


@pytest.mark.parametrize("name", ["a\x01b", "a\nb", "a\tb"])
def test_out_with_a_control_character_is_refused(tmp_path, name, capsys):
    """``--out`` whose last part has a control character is refused like ``--name`` (exit 2), nothing made."""
    assert main(["fit", "--out", str(tmp_path / name), "--quiet"]) == 2
    assert "control character" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
