"""Errors raised for bad user input.

Every message is one line naming the file, the row (as the line number in the file, header = line 1)
and the field, so that a user can go straight to the cell that is wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


class InputError(ValueError):
    """Bad user input: a file, a row, a field and what is wrong with it.

    Parameters
    ----------
    message
        What is wrong, in words.
    source
        The file (or ``"--option"``) the bad value came from.
    line
        The 1-based line in the file (the header is line 1), if known.
    field
        The column, key or option name, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = str(source) if source is not None else None
        self.line = line
        self.field = field
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return the error as a single line: ``file: line N, field 'x': message``."""
        where = []
        if self.source:
            where.append(self.source)
        loc = []
        if self.line is not None:
            loc.append(f"line {self.line}")
        if self.field is not None:
            loc.append(f"field '{self.field}'")
        head = ": ".join(filter(None, [", ".join(where), ", ".join(loc)]))
        text = f"{head}: {self.message}" if head else self.message
        return " ".join(text.split())  # never more than one line


class Terminated(KeyboardInterrupt):
    """The process was asked to stop with SIGTERM.

    A subclass of :class:`KeyboardInterrupt`, so that every clean-up path that handles Ctrl-C (the
    temporary run folder, the run lock, nutpie's sampler) handles SIGTERM the same way."""


#: The signal that interrupted this process (set by :func:`install_signal_handlers`' handlers), or None.
_RECEIVED: list[int] = []


def received_signal() -> int | None:
    """The number of the first SIGINT/SIGTERM received since the handlers were installed, else None.

    nutpie answers an interrupt by returning the draws made so far; the sampling code asks this to tell
    such a partial trace from a finished one even when the trace happens to have full length."""
    return _RECEIVED[0] if _RECEIVED else None


#: Set once the command line has taken the interruption in hand (stops the re-delivery below).
_HANDLED: list[bool] = []
#: Depth of :func:`signals_deferred` blocks, and a signal that arrived inside one.
_DEFER: list[int] = [0]
_PENDING: list[int] = []


def _interruption(signum: int) -> KeyboardInterrupt:
    import signal

    if signum == signal.SIGTERM:
        return Terminated("terminated (SIGTERM)")
    return KeyboardInterrupt("interrupted (SIGINT)")


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold back the interruption of SIGINT/SIGTERM (with :func:`install_signal_handlers`' handlers) until
    the block ends, then raise it: for steps that must not be cut in half (two renames, a clean-up).

    The handlers run in the main thread whichever thread the kernel delivered the signal to, so a flag
    is used rather than the thread's signal mask."""
    _DEFER[0] += 1
    try:
        yield
    finally:
        _DEFER[0] -= 1
        if _DEFER[0] == 0 and _PENDING and not _HANDLED:
            signum = _PENDING[0]
            _PENDING.clear()
            raise _interruption(signum)


def mark_handled() -> None:
    """The interruption has reached the command line's handler: stop re-delivering the signal."""
    _HANDLED.append(True)


def install_signal_handlers(redeliver_every: float = 1.0):
    """Make SIGINT raise :class:`KeyboardInterrupt` and SIGTERM raise :class:`Terminated`, and remember
    which arrived first (:func:`received_signal`). Only possible in the main thread; elsewhere a no-op.

    Library code sometimes swallows the exception (an ``except`` that is too broad, or an exception
    raised inside a weakref callback such as the import system's module locks, which Python only reports
    as "Exception ignored"). So after the first signal a daemon thread sends the same signal again every
    ``redeliver_every`` seconds until :func:`mark_handled` is called, and such ignored interruptions are
    not printed.

    Returns
    -------
    A function that puts the previous handlers (and unraisable hook) back and stops the re-delivery."""
    import os
    import signal
    import sys
    import threading
    import time

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _RECEIVED.clear()
    _HANDLED.clear()
    _PENDING.clear()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    previous_hook = sys.unraisablehook
    pid = os.getpid()

    def redeliver(signum: int) -> None:
        while True:
            time.sleep(redeliver_every)
            if _HANDLED or os.getpid() != pid:
                return
            os.kill(pid, signum)

    def handler(signum, frame):
        if not _RECEIVED:
            _RECEIVED.append(signum)
            threading.Thread(target=redeliver, args=(signum,), daemon=True).start()
        if _HANDLED:
            return  # clean-up is under way; a repeated signal must not interrupt it
        if _DEFER[0] > 0:
            _PENDING[:] = [_RECEIVED[0]]
            return
        raise _interruption(_RECEIVED[0])

    def unraisable(info) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            return  # re-delivered shortly; not a traceback for the user
        previous_hook(info)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    sys.unraisablehook = unraisable

    def restore() -> None:
        _HANDLED.append(True)
        sys.unraisablehook = previous_hook
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore
