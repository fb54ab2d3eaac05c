"""Progress on the terminal for long work (compiling, sampling, grids, tipping points, SBC replicates).

Layer 0: imports nothing from the package, and imports rich only when something is shown. Progress goes to
standard error through one rich ``Console`` and is shown only when that console is a terminal and progress
is enabled; otherwise every call here is a no-op, so piped or captured output (and ``--quiet``) stays
exactly as it was. The command line calls :func:`configure` once (``--quiet`` -> ``enabled=False``).

Usage::

    from bayes_rescue import progress

    with progress.task("sensitivity grid", total=n) as advance:
        for point in points:
            ...
            advance()

    for row in progress.track(rows, "SBC replicates", total=n):   # the same, over an iterable
        ...

Tasks may be nested (a compile inside a grid): they share one live display, one line per open task, and
the display is removed from the terminal when the outermost task ends. nutpie draws its own per-chain
progress table; :func:`sampler_bar` says whether to ask nutpie for it (on a terminal, with no task of
ours on screen, so that the two displays never overlap).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_enabled: bool = True
_console: Any = None  # rich.console.Console, made on first use
_progress: Any = None  # the rich Progress on screen while a task is open
_open: int = 0
#: Widest a progress line grows (columns), however wide the terminal; a longer label wraps, never cut.
WIDTH = 100
#: Widest the label column grows before the label wraps onto a further line.
LABEL_WIDTH = 56


def configure(*, enabled: bool | None = None, console: Any = None) -> None:
    """Switch progress on or off, and/or direct it to another rich ``Console``.

    Parameters
    ----------
    enabled
        ``False`` silences every progress display (the CLI's ``--quiet``); ``True`` shows them when the
        console is a terminal. ``None`` leaves the switch as it is.
    console
        A ``rich.console.Console`` to draw on (tests pass ``Console(file=StringIO(), force_terminal=True)``).
        ``None`` leaves the console as it is; the default is ``Console(stderr=True)``.
    """
    global _enabled, _console
    if enabled is not None:
        _enabled = bool(enabled)
    if console is not None:
        _console = console


def reset() -> None:
    """Back to the defaults: enabled, drawing on standard error (for tests)."""
    global _enabled, _console
    _enabled, _console = True, None


def _get_console():
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True)
    return _console


def active() -> bool:
    """Whether progress is shown: enabled and the console is a terminal."""
    return _enabled and bool(_get_console().is_terminal)


def sampler_bar() -> bool:
    """Whether to ask nutpie for its own progress table (``progress_bar=``): only on a terminal, with
    progress enabled and none of our tasks on screen (a NUTS fit inside a grid shows the grid instead)."""
    return _open == 0 and active()


def _noop(n: int = 1) -> None:
    """Advance nothing (progress is off)."""


def _start():
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column
    from rich.text import Text

    class Count(ProgressColumn):
        """``done/total``; just ``done`` when the total is unknown (nothing before the first step)."""

        def render(self, task) -> Text:
            done = int(task.completed)
            if task.total is None:
                return Text(str(done) if done else "", style="progress.download")
            return Text(f"{done}/{int(task.total)}", style="progress.download")

    console = _get_console()
    progress = Progress(
        SpinnerColumn(),
        # at most LABEL_WIDTH columns, a longer label folded onto further lines (a name is never cut), so that
        # a line stays within WIDTH: spinner 1 + label 56 + bar 20 + count 11 + time 7 + padding 4 = 99
        TextColumn("{task.description}", table_column=Column(max_width=LABEL_WIDTH, overflow="fold")),
        BarColumn(bar_width=20),
        Count(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        # printing to stdout while the bar is up goes above the bar only when stdout is the same terminal;
        # a redirected stdout is left alone (rich would otherwise send it to the console, standard error)
        redirect_stdout=bool(getattr(sys.stdout, "isatty", lambda: False)()),
        redirect_stderr=True,
    )
    progress.start()
    return progress


@contextlib.contextmanager
def task(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Show ``label`` with a spinner (``total=None``) or a bar of ``total`` steps while the block runs.

    Yields ``advance(n=1)``, which moves the task on by ``n`` steps; a no-op when progress is off.
    """
    global _progress, _open
    if not active():
        yield _noop
        return
    if _progress is None:
        _progress = _start()
    progress = _progress
    tid = progress.add_task(label, total=total)
    _open += 1
    try:
        yield lambda n=1: progress.update(tid, advance=n)
    finally:
        _open -= 1
        if _open == 0:
            progress.stop()  # a last refresh (label and count), then the display is cleared
            _progress = None
        else:
            progress.remove_task(tid)


def track[T](iterable: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``iterable`` inside :func:`task`, advancing once per item produced.

    ``total`` defaults to ``len(iterable)`` when it has one.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with task(label, total=total) as advance:
        for item in iterable:  # an item counts as done once the iterable has produced it
            advance()
            yield item
