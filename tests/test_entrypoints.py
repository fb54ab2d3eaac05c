"""Script entry points end the process with ``os._exit`` (no interpreter tear-down) without changing exit
codes or outputs, and light commands do not import the heavy libraries.

References: the exit codes and one-line error format stated in README.md ("Exit codes"); each script's
output is compared with the same command run through ``bayes_rescue.cli.main`` followed by a normal
interpreter exit (``sys.exit``), in a separate process, so both sides are computed independently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT

HEAVY = ("pymc", "pytensor", "nutpie", "matplotlib", "arviz", "numba")


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT, env=env
    )


def _normal_exit(command: list[str]) -> subprocess.CompletedProcess:
    """The command through ``bayes_rescue.cli.main`` and a normal ``sys.exit`` (interpreter tear-down)."""
    return _run(["-c", f"import sys; from bayes_rescue.cli import main; sys.exit(main({command!r}))"])


def test_check_script_same_exit_code_stdout_and_file(tmp_path):
    """scripts/check.py (fast exit) prints and writes exactly what main() + sys.exit gives; the piped,
    block-buffered stdout arrives whole, so it was flushed before os._exit."""
    fast = _run(["scripts/check.py", "--out", str(tmp_path / "fast.csv")])
    slow = _normal_exit(["check", "--out", str(tmp_path / "slow.csv")])
    assert fast.returncode == slow.returncode == 0
    assert fast.stdout.replace("fast.csv", "X") == slow.stdout.replace("slow.csv", "X")
    assert "reported P=0.031 DOES NOT match" in fast.stdout
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "slow.csv").read_bytes()


def test_bad_input_exit_2_one_line_through_the_script(tmp_path):
    """Exit code 2 and the same one-line message naming the file, with the fast exit."""
    missing = str(tmp_path / "missing.csv")
    fast = _run(["scripts/check.py", "--data", missing])
    slow = _normal_exit(["check", "--data", missing])
    assert fast.returncode == slow.returncode == 2
    assert fast.stderr == slow.stderr and len(fast.stderr.strip().splitlines()) == 1
    assert "missing.csv" in fast.stderr


def test_console_main_and_python_m(tmp_path):
    """``console_main`` (the bayes-rescue console script) and ``python -m bayes_rescue.cli`` give the
    exit code and output of main()."""
    slow = _normal_exit(["check"])
    via_console = _run(
        ["-c", "import sys; sys.argv = ['bayes-rescue', 'check']; import bayes_rescue.cli as c; c.console_main()"]
    )
    via_m = _run(["-m", "bayes_rescue.cli", "check"])
    assert via_console.returncode == via_m.returncode == slow.returncode == 0
    assert via_console.stdout == via_m.stdout == slow.stdout


def test_exit_fast_flushes_and_skips_atexit():
    """exit_fast returns the given code, flushes buffered stdout/stderr and runs no atexit handler."""
    code = (
        "import atexit, sys; atexit.register(print, 'ATEXIT RAN');"
        "from bayes_rescue.cli import exit_fast; print('to stdout', end=''); sys.stderr.write('to stderr');"
        "exit_fast(5)"
    )
    res = _run(["-c", code])
    assert res.returncode == 5 and res.stdout == "to stdout" and res.stderr == "to stderr"


def test_main_returns_normally(capsys):
    """The library entry point returns its exit code (tests and notebooks call it)."""
    from bayes_rescue.cli import main

    assert main(["check"]) == 0
    capsys.readouterr()


def test_console_script_points_at_console_main():
    """pyproject's [project.scripts] uses console_main (the fast exit), not main."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    assert scripts["bayes-rescue"] == "bayes_rescue.cli:console_main"


def test_parser_and_check_do_not_import_heavy_libraries():
    """Building the parser, ``fit --help`` and the whole ``check`` command import none of PyMC, PyTensor,
    nutpie, numba, ArviZ or matplotlib."""
    code = (
        "import sys, io, contextlib\n"
        "from bayes_rescue.cli import build_parser, main\n"
        "p = build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        p.parse_args(['fit', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    assert main(['check']) == 0\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    res = _run(["-c", code])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("script", ["check", "fit", "priors", "sensitivity", "validate"])
def test_help_of_every_script_is_light(script):
    """``scripts/<command>.py --help`` exits 0 without importing the heavy libraries (-X importtime)."""
    res = _run(["-X", "importtime", f"scripts/{script}.py", "--help"])
    assert res.returncode == 0 and "--quiet" in res.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time")}
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_fit_through_the_script_writes_complete_files(tmp_path):
    """A real fit through scripts/fit.py (fast exit): exit code 0 and every file complete (manifest
    hashes match, posterior.nc opens, PNGs decode); a --no-figures fit never imports the figures module."""
    from PIL import Image

    from bayes_rescue.outputs.rundir import sha256_file
    from bayes_rescue.outputs.trees import load_tree

    tiny = ["--draws", "100", "--tune", "100", "--chains", "2", "--prior-draws", "100", "--keep-going", "--quiet"]
    out = tmp_path / "run"
    code = (
        "import sys\n"
        "from bayes_rescue.cli import main, exit_fast\n"
        f"assert main(['fit', '--out', {str(tmp_path / 'nofig')!r}, '--no-figures', *{tiny!r}]) == 0\n"
        "print('FIGURES MODULE', 'bayes_rescue.outputs.figures' in sys.modules)\n"
        "sys.argv = ['fit.py', '--out', " + repr(str(out)) + f", *{tiny!r}]\n"
        "sys.path.insert(0, 'scripts')\n"
        "import fit\n"
        "exit_fast(fit.main())\n"
    )
    res = _run(["-c", code], timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "FIGURES MODULE False" in res.stdout and f"results written to {out}" in res.stdout
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    for rel, digest in manifest["files"].items():
        assert sha256_file(out / rel) == digest, rel
    tree = load_tree(out / "posterior.nc")
    assert "posterior" in tree.children
    for png in (out / "figures").glob("*.png"):
        Image.open(png).verify()
    assert len(list((out / "figures").glob("*.png"))) == 5
