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
