"""Helper processes (bayes_rescue.workers): results identical to running in this process, whatever happens to
the helpers; nothing left running; the figures and fits they produce are the files made without them.

References: each task's expected value is computed here by calling the same function in this process; the
figure files are compared byte for byte with those drawn in this process; process liveness is read from
/proc (Linux)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from bayes_rescue import workers
from bayes_rescue.workers import NO_POOL, Workers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _helpers_import_this_module(monkeypatch):
    """Helpers unpickle tasks by module name: let them import this test module's functions too."""
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))


def _gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (absent, or a zombie awaiting its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _pids(pool: Workers) -> list[int]:
    return pool.pids(60)


def _warns(x: float) -> tuple[float, int]:
    warnings.warn(f"careful with {x}", UserWarning, stacklevel=1)
    return x, os.getpid()


def _sleep_unless_in(pid: int) -> int:
    """Hang (30 s) in a helper; return at once in process ``pid``."""
    if os.getpid() != pid:
        time.sleep(30)
    return os.getpid()


def test_results_in_order_with_exceptions_and_warnings():
    """Many tasks over two helpers: every value equals the local call (math.comb, np.linalg.det), in order;
    an exception arrives with its type and message; a task's warning is re-issued here."""
    rng = np.random.default_rng(1)
    mats = [rng.normal(size=(4, 4)) for _ in range(6)]
    with Workers(2, share=False) as pool:
        assert len(pool) == 2 or os.cpu_count() == 1
        combs = [pool.submit(math.comb, 40 + i, 7) for i in range(10)]
        dets = [pool.submit(np.linalg.det, m) for m in mats]
        bad = pool.submit(math.comb, -1, 2)
        warned = pool.submit(_warns, 2.5)
        assert [t.result() for t in combs] == [math.comb(40 + i, 7) for i in range(10)]
        assert [t.result() for t in dets] == [np.linalg.det(m) for m in mats]
        with pytest.raises(ValueError, match="must be a non-negative integer"):
            bad.result()
        with pytest.warns(UserWarning, match="careful with 2.5"):
            value, pid = warned.result()
        assert value == 2.5
        assert pid != os.getpid() or len(pool) == 0  # it ran in a helper, and the warning came back


def _payload(n_bytes: int) -> tuple[bytes, int]:
    """``n_bytes`` pseudo-random bytes (incompressible, so no pipe or pickle shortcut) and this process's id."""
    return np.random.default_rng(n_bytes).bytes(n_bytes), os.getpid()


@pytest.mark.parametrize("n_bytes", [10, 70_000, 1 << 20, 24 << 20])
def test_answers_of_any_size_come_from_the_helper(n_bytes):
    """An answer of 10 B, 70 kB (over a pipe's 64 KiB), 1 MiB or 24 MiB comes back from the helper, not from
    a fallback to this process: the bytes equal the local call (same seed), the process id is the helper's,
    and the pool counts no fallback. (The old pipe protocol truncated any answer over ~64 KiB.)"""
    if workers.default_count(1) == 0:
        pytest.skip("one core or BAYES_RESCUE_WORKERS=0: no helper")
    with Workers(1, share=False) as pool:
        (helper,) = pool.pids()
        task = pool.submit(_payload, n_bytes)
        data, pid = task.result()
        assert data == _payload(n_bytes)[0]
        assert pid == helper == task.pid != os.getpid()
        assert pool.fallbacks == 0 and pool.answered == 1 and len(pool) == 1


def test_an_unpicklable_task_runs_here_and_the_helper_stays():
    """A task whose argument cannot be pickled (a lambda) runs here, counted as a fallback; the helper stays
    and answers the next task."""
    if workers.default_count(1) == 0:
        pytest.skip("one core or BAYES_RESCUE_WORKERS=0: no helper")
    with Workers(1, share=False) as pool:
        (helper,) = pool.pids()
        bad = pool.submit(_apply, lambda: os.getpid())
        assert bad.result() == os.getpid() and pool.fallbacks == 1
        good = pool.submit(_payload, 10)
        assert good.result()[1] == helper and len(pool) == 1 and pool.answered == 1


def _apply(fn):
    return fn()


def test_a_dead_helper_falls_back_to_this_process():
    """Kill the helpers while tasks are queued: every result is still right (computed here instead)."""
    with Workers(2, share=False) as pool:
        pids = _pids(pool)
        tasks = [pool.submit(math.comb, 60 + i, 9) for i in range(8)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert [t.result() for t in tasks] == [math.comb(60 + i, 9) for i in range(8)]
        assert 1 <= pool.fallbacks <= len(tasks)  # each task that ran here is counted
        late = pool.submit(math.comb, 10, 3)  # no helper left: runs here
        assert late.result() == 120


def test_failed_preload_and_zero_helpers_run_locally(monkeypatch):
    """A preload that cannot be imported makes the helper exit and its tasks run here; with
    BAYES_RESCUE_WORKERS=0 no process is started at all."""
    with Workers(1, preload=["bayes_rescue.no_such_module"]) as pool:
        task = pool.submit(math.comb, 12, 5)
        assert task.result() == 792
        assert len(pool) == 0
    monkeypatch.setenv(workers.ENV_WORKERS, "0")
    with Workers(2) as pool:
        assert pool.pids() == [] and len(pool) == 0
        assert pool.submit(math.comb, 5, 2).result() == 10
    assert NO_POOL.submit(math.comb, 6, 3).result() == 20


def test_close_and_kill_leave_no_process():
    """After the context manager ends (normally or by an exception), every helper process is gone."""
    with Workers(2, share=False) as pool:
        pids = _pids(pool)
        pool.submit(math.comb, 30, 4).result()
    assert pids and all(_gone(p) for p in pids)
    with pytest.raises(RuntimeError), Workers(2, share=False) as pool:
        pids = _pids(pool)
        pool.submit(time.sleep, 30)  # still running when the exception arrives
        raise RuntimeError("stop")
    assert pids and all(_gone(p) for p in pids)


def test_helpers_ignore_a_terminal_ctrl_c():
    """Helpers run in their own session: a SIGINT to the main process's group does not reach them."""
    with Workers(1, share=False) as pool:
        (pid,) = _pids(pool)
        assert os.getsid(pid) != os.getsid(0)
        assert os.getpgid(pid) != os.getpgid(0)


def test_figures_drawn_by_helpers_are_the_same_files(tmp_path):
    """The standard figures drawn by two helpers are byte-identical (PNG and SVG) to those drawn here."""
    from test_figures import LABELS, fake_summary
    from test_plots import _fake_result

    from bayes_rescue.outputs.figures import make_figures

    res = [_fake_result("neutral", 1), _fake_result("skeptical", 2, shift=-0.5)]
    summary = fake_summary(res)
    here = make_figures(res, summary, tmp_path / "here", labels=LABELS)
    with Workers(2, preload=["bayes_rescue.outputs.figures:warm_up"], share=False) as pool:
        there = make_figures(res, summary, tmp_path / "there", labels=LABELS)  # drawn by the current helpers
        assert pool.fallbacks == 0 and pool.answered == len(there) // 2  # each figure as PNG and SVG
    assert [p.name for p in here] == [p.name for p in there]
    for a, b in zip(here, there, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_stacked_fit_completed_by_helpers_is_identical():
    """A stacked fit of two priors completed by helpers (the current pool of the ``with`` block, no pool
    argument; both trees answered by a helper, none fell back) has the same draws, effects and diagnostics as
    the same fit completed in this process (same seed)."""
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.inference.sampling import fit_many
    from bayes_rescue.inference.settings import SamplerSettings
    from bayes_rescue.model.spec import ModelSpec
    from bayes_rescue.priors.spec import resolve_priors

    data = load_counts("bundled:chen2025")
    specs = [ModelSpec(data, p, "hierarchical") for p in resolve_priors("skeptical,neutral")]
    settings = SamplerSettings(prior_draws=500)  # enough draws to pass the gate: the joint run's trees are kept
    here = fit_many(specs, settings)
    with Workers(2, preload=["bayes_rescue.inference.derived"], share=False) as pool:
        there = fit_many(specs, settings)  # the current pool completes the trees
        assert pool.fallbacks == 0 and pool.answered == (2 if len(pool) else 0)  # both trees came from helpers
    for a, b in zip(here, there, strict=True):
        assert "bayes_rescue_sampled_with" in b.tree.attrs  # completed from the joint run
        assert a.tree.equals(b.tree)  # every group's values and coordinates (attrs hold sampling times)
        assert a.effects.identical(b.effects)
        assert a.diagnostics.to_dict() == b.diagnostics.to_dict()


def test_script_entry_points_do_not_import_dask():
    """A script run without --scheduler makes dask unimportable (xarray then skips it); with --scheduler, or
    from main() in a Python session, dask stays importable."""
    code = (
        "import sys; from bayes_rescue.cli import without_dask; without_dask(sys.argv[1:]);"
        "import numpy as np, xarray as xr; xr.DataArray(np.zeros(2));"
        "print(sys.modules.get('dask', 'absent'))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "None"
    out = subprocess.run(
        [sys.executable, "-c", code, "--scheduler", "local"], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() != "None"


def test_sharing_takes_turns_with_this_process():
    """With ``share`` (the default), tasks alternate between the helper and this process; the values equal
    the local calls whichever runs them."""
    with Workers(1) as pool:
        tasks = [pool.submit(math.comb, 50 + i, 5) for i in range(6)]
        if len(pool):
            assert [t.local for t in tasks] == [False, True] * 3
        assert [t.result() for t in tasks] == [math.comb(50 + i, 5) for i in range(6)]


def test_a_hung_helper_is_killed_and_its_tasks_run_here(monkeypatch):
    """A task that does not answer within ANSWER_TIMEOUT (shortened to 1 s here) gets its helper killed; it
    and the task queued behind it run in this process, with the right values."""
    monkeypatch.setattr(workers, "ANSWER_TIMEOUT", 1.0)
    with Workers(1, share=False) as pool:
        (pid,) = _pids(pool)
        hung = pool.submit(_sleep_unless_in, os.getpid())
        queued = pool.submit(math.comb, 20, 10)
        t = time.perf_counter()
        assert hung.result() == os.getpid()  # ran here after the timeout
        assert time.perf_counter() - t < 15
        assert _gone(pid)
        assert queued.result() == 184756
