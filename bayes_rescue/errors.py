"""Errors raised for bad user input.

Every message is one line naming the file, the row (as the line number in the file, header = line 1)
and the field, so that a user can go straight to the cell that is wrong.
"""

from __future__ import annotations

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


class ConvergenceError(RuntimeError):
    """The sampler did not meet the diagnostics gate, even after a retry."""


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


def install_signal_handlers():
    """Make SIGINT raise :class:`KeyboardInterrupt` and SIGTERM raise :class:`Terminated`, and remember
    which arrived first (:func:`received_signal`). Only possible in the main thread; elsewhere a no-op.

    Returns
    -------
    A function that puts the previous handlers back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _RECEIVED.clear()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if not _RECEIVED:
            _RECEIVED.append(signum)
        if signum == signal.SIGTERM:
            raise Terminated("terminated (SIGTERM)")
        raise KeyboardInterrupt("interrupted (SIGINT)")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore
