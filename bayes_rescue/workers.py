"""Helper processes for independent output work (figures), started early so that their imports overlap the fit.

A command-line fit spends about a third of its time drawing figures after the sampler has finished, on one
core of a machine that has two. :class:`Workers` runs such tasks in ``n`` helper Python processes
(``python -m bayes_rescue.workers``) while the main process writes the other files. They are started before
the fit and import what they will need (``preload``) while the main process imports PyMC and compiles,
so their start-up costs no wall time.

Each helper:

- runs in its own session: a Ctrl-C at the terminal reaches only the main process, which ends the helpers
  (:meth:`Workers.kill`, also on any exception: nothing a helper writes outlives the run or lands in a
  folder that the main process is removing);
- reads tasks from its standard input, a pickled ``(function, args, kwargs)`` each (a module-level function
  of this package), and answers each in order on its standard output with the pickled result, or the
  exception, and the warnings the task raised (re-issued in the main process, as if run there);
- exits when its standard input closes (also when the main process is killed).

A task whose helper is unusable (it failed to start, died, or the pool has no helpers) runs in the main
process instead, when its result is asked for: the results never depend on the helpers, only the time does.
``BAYES_RESCUE_WORKERS=0`` (or a one-core machine) runs everything in the main process.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Environment variable capping the number of helper processes (0: none, everything in this process).
ENV_WORKERS = "BAYES_RESCUE_WORKERS"
#: What a helper answers first, once its preload is done.
_READY = "bayes_rescue.workers ready"
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
    """The result of a task sent to a helper; :meth:`result` waits for it (tasks of one helper answer in
    order), re-issues the task's warnings and returns its value or raises its exception. If the helper
    died, the task runs in this process instead."""

    local = False

    def __init__(self, worker: _Worker, fn: Callable, args: tuple, kwargs: dict) -> None:
        self._worker, self._local = worker, _Local(fn, args, kwargs)
        self._done, self._value = False, None

    def result(self) -> Any:
        if not self._done:
            answer = self._worker.receive(self)
            self._done = True
            if answer is None:  # the helper is gone: run here
                self._value = ("ok", self._local.result(), [])
            else:
                self._value = answer
        status, value, caught = self._value
        for w in caught:
            warnings.warn_explicit(w["message"], w["category"], w["filename"], w["lineno"])
        self._value = (status, value, [])  # warn once
        if status == "error":
            raise value
        return value


class _Worker:
    """One helper process and the tasks sent to it, answered in order.

    A thread of this process starts the helper once ``after`` (the previous helper) has finished its preload,
    so that the helpers' start-ups do not compete with each other for the cores, and then writes the tasks
    to it (a task larger than a pipe's buffer never blocks the main thread)."""

    def __init__(self, preload: Sequence[str], after: _Worker | None = None) -> None:
        self.proc: subprocess.Popen | None = None
        self.sent: list[Pending] = []
        self.answered = 0
        self.alive = True
        self.ready = threading.Event()  # set when the preload is done, or the helper is gone
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._state = threading.Lock()  # start versus kill
        self._reading = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(list(preload), after), daemon=True)
        self._thread.start()

    def _start(self, preload: list[str]) -> bool:
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        with self._state:
            if not self.alive:
                return False
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bayes_rescue.workers", *preload],
                bufsize=0,  # unbuffered answers: select() on the pipe sees every byte not yet read
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C goes to the main process only
            )
        return self._answer(READY_TIMEOUT) == _READY

    def _answer(self, timeout: float):
        """The next pickled answer on the helper's standard output; ``TimeoutError`` if none begins within
        ``timeout`` seconds, ``EOFError`` if the helper is gone."""
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise TimeoutError(f"no answer from the helper within {timeout:g} s")
        return pickle.load(self.proc.stdout)

    def _run(self, preload: list[str], after: _Worker | None) -> None:
        try:
            if after is not None:
                after.ready.wait()
            if not self._start(preload):
                raise EOFError("helper did not start")
        except Exception:  # no process, a failed or hung preload, a broken pipe: its tasks run locally
            self.kill()
        finally:
            self.ready.set()
        while self.alive:
            task = self._outbox.get()
            if task is None:
                break
            try:
                self.proc.stdin.write(task)
                self.proc.stdin.flush()
            except (OSError, ValueError):
                self.alive = False
        if self.proc is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()  # the helper exits once idle

    def send(self, pending: Pending, task: bytes) -> bool:
        """Queue one pickled task; False if the helper is gone."""
        if not self.alive:
            return False
        self.sent.append(pending)
        self._outbox.put(task)
        return True

    def receive(self, pending: Pending):
        """The answer to ``pending`` (reading, in order, the answers to the tasks sent before it), or None if
        the helper died before answering."""
        if not self.ready.wait(READY_TIMEOUT):
            self.kill()  # hung in its preload: this helper's tasks run here
        with self._reading:
            index = self.sent.index(pending)
            while self.answered <= index:
                if not self.alive or self.proc is None:
                    return None
                try:
                    answer = self._answer(ANSWER_TIMEOUT)
                except Exception:  # EOF (the helper died), no answer in time, or a broken one: unusable
                    self.kill()
                    return None
                earlier = self.sent[self.answered]
                self.answered += 1
                if earlier is not pending:
                    earlier._value, earlier._done = answer, True
                else:
                    return answer
            return pending._value

    def close(self, timeout: float = 5.0) -> None:
        """Let the helper finish its tasks and exit; kill it if it has not within ``timeout`` seconds, or if
        it is still starting (it has had no task to do)."""
        if not self.ready.is_set():
            self.kill()
            return
        self._outbox.put(None)
        self._thread.join(timeout)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """End the helper now (or make sure it never starts) and wait until it is gone."""
        with self._state:
            self.alive = False
            proc = self.proc
        self.ready.set()
        self._outbox.put(None)
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


class Workers:
    """``n`` helper processes (module docstring), started now; use as a context manager.

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
    """

    def __init__(self, n: int = 1, *, preload: Sequence[str] = (), share: bool = True) -> None:
        self._workers: list[_Worker] = []
        self._next = 0
        self._share = share
        for _ in range(default_count(n)):  # each starts once the one before it is ready
            self._workers.append(_Worker(preload, after=self._workers[-1] if self._workers else None))

    def __len__(self) -> int:
        return sum(w.alive for w in self._workers)

    def submit(self, fn: Callable, /, *args, **kwargs) -> Pending | _Local:
        """Send ``fn(*args, **kwargs)`` to the next helper (round robin, this process included when
        sharing); ``.result()`` gives its value.
        ``fn`` must be a module-level function and the arguments picklable; otherwise, or without a live
        helper, the task runs in this process when its result is asked for."""
        slots: list[_Worker | None] = [w for w in self._workers if w.alive]
        if slots and self._share:
            slots.append(None)  # this process's turn
        worker = slots[self._next % len(slots)] if slots else None
        self._next += 1
        if worker is None:
            return _Local(fn, args, kwargs)
        try:
            task = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # not picklable: run it here
            return _Local(fn, args, kwargs)
        pending = Pending(worker, fn, args, kwargs)
        return pending if worker.send(pending, task) else _Local(fn, args, kwargs)

    def kill(self) -> None:
        """End every helper now (running tasks are abandoned) and wait for them to be gone."""
        for w in self._workers:
            w.kill()

    def close(self) -> None:
        """End the helpers once they have answered every task (each exits when its input closes)."""
        for w in self._workers:
            w.close()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.kill()


class _NoPool:
    """What :func:`submit` uses without a pool: every task runs in this process."""

    def submit(self, fn: Callable, /, *args, **kwargs) -> _Local:
        return _Local(fn, args, kwargs)

    def kill(self) -> None:
        pass


NO_POOL = _NoPool()


def no_dask() -> None:
    """Make ``import dask`` fail in this process, as if Dask were not installed: for processes that never use
    it (the helpers; the scripts run without ``--scheduler``, :func:`bayes_rescue.cli.without_dask`). xarray
    otherwise imports Dask the first time it makes an array, only to check whether it is a Dask array, and
    again when it writes netCDF (0.3-0.5 s)."""
    for name in ("dask", "distributed"):
        sys.modules.setdefault(name, None)


# ------------------------------------------------------------------------------------------- the helper side
def _preload(names: Sequence[str]) -> None:
    for name in names:
        module, _, function = name.partition(":")
        mod = importlib.import_module(module)
        if function:
            getattr(mod, function)()


def _serve(stdin, stdout) -> None:
    """Answer tasks from ``stdin`` until it closes."""
    while True:
        try:
            fn, args, kwargs = pickle.load(stdin)
        except EOFError:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                answer = ["ok", fn(*args, **kwargs)]
            except BaseException as exc:
                answer = ["error", exc]
        answer.append(
            [
                {"message": str(w.message), "category": w.category, "filename": w.filename, "lineno": w.lineno}
                for w in caught
            ]
        )
        try:
            data = pickle.dumps(tuple(answer), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an unpicklable value or exception: its text instead
            text = "".join(traceback.format_exception(answer[1])) if answer[0] == "error" else repr(answer[1])
            data = pickle.dumps(("error", RuntimeError(f"helper process: {text}"), answer[2]))
        stdout.write(data)
        stdout.flush()


def main(argv: Sequence[str]) -> int:
    """The helper process: preload ``argv``, then serve tasks (standard output carries only answers)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when a helper ends
    no_dask()  # no task uses Dask
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the answers
    try:
        _preload(argv)
    except Exception:  # unusable: exit; the main process runs its tasks itself
        return 1
    stdout.write(pickle.dumps(_READY))
    stdout.flush()
    _serve(stdin, stdout)
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main(sys.argv[1:]))
