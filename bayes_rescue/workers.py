"""Helper processes for independent work (figures, several priors' DataTrees), on the standard library's pool.

A command-line fit spends about a third of its time drawing figures after the sampler has finished, on one
core of a machine that has two. :class:`Workers` runs such tasks in ``n`` helper processes, each a
one-process :class:`concurrent.futures.ProcessPoolExecutor` (``spawn`` start method) whose initializer
imports what the tasks will need (``preload``). They are started before the fit (one after the other, each
once the previous one has finished its preload) so that their start-up overlaps the main process importing
PyMC and compiling.

Each helper:

- starts its own session and ignores SIGINT: a Ctrl-C at the terminal reaches only the main process, which
  ends the helpers (:meth:`Workers.kill`, also on any exception: nothing a helper writes outlives the run or
  lands in a folder that the main process is removing);
- exits when the main process is gone (it watches its parent's sentinel);
- runs each task under a warnings recorder: the task's warnings are re-issued in the main process, as if run
  there; its exception is raised there.

The answers travel through the executor's own pipes (any size). A task whose helper is unusable (it failed to
start or to preload, died, did not answer within :data:`ANSWER_TIMEOUT`, or could not pickle the task or its
answer) runs in the main process instead, when its result is asked for, and is counted in
:attr:`Workers.fallbacks`: the results never depend on the helpers, only the time does.
``BAYES_RESCUE_WORKERS=0`` (or a one-core machine) runs everything in the main process.

Library code does not take a pool argument: ``with Workers(...)`` makes the helpers the *current* pool
(:func:`current`) for the block, and the functions that can use helpers (``fit`` of several priors, writing a
run folder) submit to it; outside such a block everything runs in this process.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from typing import Any

#: Environment variable capping the number of helper processes (0: none, everything in this process).
ENV_WORKERS = "BAYES_RESCUE_WORKERS"
#: Seconds to wait for a helper's preload, and for each answer, before the helper is taken as hung: it is
#: killed and its tasks run in this process (a safety net; a helper answers in well under a second).
READY_TIMEOUT = 120.0
ANSWER_TIMEOUT = 600.0


def default_count(wanted: int) -> int:
    """``wanted`` helpers, at most one per core beyond the main process's and at most ``$BAYES_RESCUE_WORKERS``
    (0 on a one-core machine)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = min(wanted, cores) if cores > 1 else 0
    cap = os.environ.get(ENV_WORKERS, "").strip()
    if cap:
        try:
            n = min(n, max(0, int(cap)))
        except ValueError:
            pass  # not a number: ignored (the default stands)
    return n


class _Local:
    """A task not (or no longer) given to a helper: run in this process when its result is asked for."""

    local = True

    def __init__(self, fn: Callable, args: tuple, kwargs: dict) -> None:
        self._call: tuple | None = (fn, args, kwargs)
        self._value: Any = None

    def result(self) -> Any:
        if self._call is not None:  # run once; the arguments are released afterwards
            fn, args, kwargs = self._call
            self._value, self._call = fn(*args, **kwargs), None
        return self._value


class Pending:
    """The result of a task sent to a helper; :meth:`result` waits for it, re-issues the task's warnings and
    returns its value or raises its exception. If the helper could not answer, the task runs here."""

    local = False

    def __init__(self, helper: _Helper, future: Future, fn: Callable, args: tuple, kwargs: dict) -> None:
        self._helper, self._future, self._local = helper, future, _Local(fn, args, kwargs)
        self._answer: tuple | None = None
        #: Where the task ran: the helper's process id, or this process's if it fell back.
        self.pid: int | None = None

    def result(self) -> Any:
        if self._answer is None:
            try:
                self._answer = self._future.result(timeout=ANSWER_TIMEOUT)
                self._helper.answered()
            except Exception as exc:  # the helper died or hung (it is ended), or the task or answer did not pickle
                self._helper.failed(end=isinstance(exc, BrokenExecutor | TimeoutError))
                self._answer = ("ok", self._local.result(), [], os.getpid())
            self._local = None  # the arguments are released
        status, value, caught, self.pid = self._answer
        for w in caught:
            warnings.warn_explicit(w["message"], w["category"], w["filename"], w["lineno"])
        self._answer = (status, value, [], self.pid)  # warn once
        if status == "error":
            raise value
        return value


class _Helper:
    """One helper process: a one-process executor, started once ``after`` (the previous helper) is ready."""

    def __init__(self, pool: Workers, preload: Sequence[str], after: _Helper | None) -> None:
        self._pool = pool
        self.alive = True
        self.pid: int | None = None
        self.ready = threading.Event()  # set when the preload is done, or the helper is gone
        self._lock = threading.Lock()
        self.executor = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_initialize, initargs=(tuple(preload),)
        )
        threading.Thread(target=self._start, args=(after,), daemon=True).start()

    def _start(self, after: _Helper | None) -> None:
        try:
            if after is not None:
                after.ready.wait(READY_TIMEOUT)
            with self._lock:
                if not self.alive:
                    return
                warm = self.executor.submit(os.getpid)
            self.pid = warm.result(timeout=READY_TIMEOUT)
        except Exception:  # no process, a failed or hung preload: its tasks run here
            self.failed()
        finally:
            self.ready.set()

    def submit(self, fn: Callable, args: tuple, kwargs: dict) -> Pending | None:
        with self._lock:
            if not self.alive:
                return None
            try:
                future = self.executor.submit(_run, fn, args, kwargs)
            except Exception:  # the executor is broken or shut down
                return None
        return Pending(self, future, fn, args, kwargs)

    def answered(self) -> None:
        with self._lock:
            self._pool.answered += 1

    def failed(self, *, end: bool = True) -> None:
        """An answer did not come: count the task (it runs here) and, with ``end``, end the helper (its other
        tasks run here too)."""
        with self._lock:
            self._pool.fallbacks += 1
        if end:
            self.kill()

    def kill(self) -> None:
        """End the helper now (running and queued tasks are abandoned) and wait until it is gone."""
        with self._lock:
            self.alive = False
        self.ready.set()
        processes = list((getattr(self.executor, "_processes", None) or {}).values())  # for the join below
        if hasattr(self.executor, "kill_workers"):  # Python >= 3.14
            with contextlib.suppress(Exception):
                self.executor.kill_workers()
        for proc in processes:  # Python 3.13 has no public kill of an executor's processes
            with contextlib.suppress(OSError, ValueError, AttributeError):
                proc.kill()
        self.executor.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                proc.join(10)

    def close(self, timeout: float = 5.0) -> None:
        """Let the helper finish its tasks and exit; kill it if it is still starting (it has no task to do)
        or has not exited within ``timeout`` seconds."""
        if not self.ready.is_set():
            self.kill()
            return
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False)
        for proc in processes:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                proc.join(timeout)
        self.kill()


#: The pools entered with ``with Workers(...)``, innermost last (see :func:`current`).
_ACTIVE: list = []


class Workers:
    """``n`` helper processes (module docstring), started now; use as a context manager, which makes them
    the :func:`current` pool inside the block.

    Parameters
    ----------
    n
        Number of helpers wanted; :func:`default_count` caps it (0: every task runs in this process).
    share
        This process takes its turn in the round robin (its tasks run when their results are asked for,
        while the helpers work on theirs): with one helper on two cores, both cores draw.
    preload
        What each helper imports (or calls, ``"module:function"``) before its first task, e.g.
        ``"bayes_rescue.outputs.figures:warm_up"``. A preload that fails makes that helper's tasks fail over
        to this process, never the run.

    Attributes
    ----------
    answered
        How many tasks a helper answered (their values or exceptions came back from it).
    fallbacks
        How many tasks given to a helper ran here instead because it could not answer (0 in a healthy run).
    """

    def __init__(self, n: int = 1, *, preload: Sequence[str] = (), share: bool = True) -> None:
        self.answered = 0
        self.fallbacks = 0
        self._helpers: list[_Helper] = []
        self._next = 0
        self._share = share
        for _ in range(default_count(n)):  # each starts once the one before it is ready
            self._helpers.append(_Helper(self, preload, self._helpers[-1] if self._helpers else None))

    def __len__(self) -> int:
        return sum(h.alive for h in self._helpers)

    def pids(self, timeout: float = READY_TIMEOUT) -> list[int]:
        """The process ids of the live helpers, once each has finished starting (or failed to)."""
        for h in self._helpers:
            h.ready.wait(timeout)
        return [h.pid for h in self._helpers if h.alive and h.pid is not None]

    def submit(self, fn: Callable, /, *args, **kwargs) -> Pending | _Local:
        """Send ``fn(*args, **kwargs)`` to the next helper (round robin, this process included when
        sharing); ``.result()`` gives its value. ``fn`` must be importable by name in a fresh process (a
        module-level function) and the arguments picklable; otherwise, or without a live helper, the task
        runs in this process when its result is asked for."""
        slots: list[_Helper | None] = [h for h in self._helpers if h.alive]
        if slots and self._share:
            slots.append(None)  # this process's turn
        helper = slots[self._next % len(slots)] if slots else None
        self._next += 1
        pending = None if helper is None else helper.submit(fn, args, kwargs)
        return _Local(fn, args, kwargs) if pending is None else pending

    def kill(self) -> None:
        """End every helper now (running tasks are abandoned) and wait for them to be gone."""
        for h in self._helpers:
            h.kill()

    def close(self) -> None:
        """End the helpers once they have answered every task."""
        for h in self._helpers:
            h.close()

    def __enter__(self) -> Workers:
        _ACTIVE.append(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        with contextlib.suppress(ValueError):
            _ACTIVE.remove(self)
        if exc_type is None:
            self.close()
        else:
            self.kill()


class _NoPool:
    """The pool outside any ``with Workers(...)`` block: every task runs in this process."""

    answered = fallbacks = 0

    def __len__(self) -> int:
        return 0

    def submit(self, fn: Callable, /, *args, **kwargs) -> _Local:
        return _Local(fn, args, kwargs)

    def kill(self) -> None:
        pass


NO_POOL = _NoPool()


def current() -> Workers | _NoPool:
    """The innermost pool entered with ``with Workers(...)``, or :data:`NO_POOL`."""
    return _ACTIVE[-1] if _ACTIVE else NO_POOL


@contextlib.contextmanager
def using(pool: Workers | _NoPool | None) -> Iterator[Workers | _NoPool]:
    """Make ``pool`` the :func:`current` one inside the block (``None``: leave the current one)."""
    if pool is None or pool is current():
        yield current()
        return
    _ACTIVE.append(pool)
    try:
        yield pool
    finally:
        with contextlib.suppress(ValueError):
            _ACTIVE.remove(pool)


def no_dask() -> None:
    """Make ``import dask`` fail in this process, as if Dask were not installed: for processes that never use
    it (the helpers; the scripts run without ``--scheduler``, :func:`bayes_rescue.cli.without_dask`). xarray
    otherwise imports Dask the first time it makes an array, only to check whether it is a Dask array, and
    again when it writes netCDF (0.3-0.5 s)."""
    for name in ("dask", "distributed"):
        sys.modules.setdefault(name, None)


# ------------------------------------------------------------------------------------------- the helper side
def _exit_with_parent() -> None:
    """In a helper: exit as soon as the main process is gone (a killed main process leaves no helper)."""
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os._exit(1)


def _initialize(preload: Sequence[str]) -> None:
    """A helper's initializer: own session, SIGINT ignored, no Dask, exit with the parent, then the preload
    (an exception here makes the executor unusable: the main process then runs the tasks itself)."""
    with contextlib.suppress(OSError):
        os.setsid()  # a terminal's Ctrl-C goes to the main process only
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when a helper ends
    no_dask()  # no task uses Dask
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    for name in preload:
        module, _, function = name.partition(":")
        mod = importlib.import_module(module)
        if function:
            getattr(mod, function)()


def _run(fn: Callable, args: tuple, kwargs: dict) -> tuple:
    """In a helper: ``fn(*args, **kwargs)`` as ``(status, value or exception, warnings, pid)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status, value = "ok", fn(*args, **kwargs)
        except Exception as exc:
            status, value = "error", exc
    found = [
        {"message": str(w.message), "category": w.category, "filename": w.filename, "lineno": w.lineno} for w in caught
    ]
    return status, value, found, os.getpid()
