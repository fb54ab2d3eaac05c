"""The one rule for every name that can reach the file system or a spreadsheet cell.

Outcome and subgroup names (counts CSV), prior and bias-model names (TOML ``name``), ``--name`` and the
names of exported files become folder names (``<run>/<prior>+bias-<model>/posterior.nc``), file names and
the first cells of CSV rows. A name is therefore 1 to :data:`MAX_NAME` characters of the ASCII alphabet
``A-Z a-z 0-9 _ . -`` starting with a letter or a digit: no ``/`` or ``\\``, no ``..`` on its own, no
control character, nothing a spreadsheet would read as a formula (``= + - @``), nothing outside ASCII
(``re.ASCII``: ``\\d`` would accept Arabic-Indic digits). It is checked where the name is read, with the
file (or option) and field in the message; :func:`quote` is how a message shows a value that was not
accepted.
"""

from __future__ import annotations

import re
from pathlib import Path

from bayes_rescue.errors import InputError

#: Longest name, in characters (ASCII, so also bytes): as long as a label, short enough for any file system.
MAX_NAME = 80
#: The allowed alphabet (ASCII only).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", re.ASCII)
#: In words, for messages.
NAME_RULE = f"1-{MAX_NAME} of A-Z a-z 0-9 _ . - starting with a letter or digit"
#: Longest value a message quotes.
MAX_QUOTED = 40


def is_valid_name(value: object) -> bool:
    """True if ``value`` is a string that follows the name rule (see the module docstring)."""
    return isinstance(value, str) and len(value) <= MAX_NAME and NAME_PATTERN.fullmatch(value) is not None


def check_name(
    value: object, *, source: str | Path | None = None, field: str | None = None, line: int | None = None
) -> str:
    """``value`` if it follows the name rule; otherwise an :class:`InputError` naming the file, line and
    field (the value is quoted only if :func:`quote` finds it safe to show)."""
    if is_valid_name(value):
        return value  # type: ignore[return-value]
    raise InputError(f"{quote(value)} is not a valid name ({NAME_RULE})", source=source, line=line, field=field)


def quote(value: object) -> str:
    """How a message shows a value it refuses: ``'value'`` if it is printable ASCII of at most
    :data:`MAX_QUOTED` characters, else a description that shows none of it (a line of another file, a
    control character or a very long value never reaches the terminal)."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    if value == "":
        return "an empty value"
    if len(value) <= MAX_QUOTED and value.isascii() and value.isprintable():
        return repr(value)
    if not (value.isascii() and value.isprintable()):
        return f"a value of {len(value)} characters with control or non-ASCII characters"
    return f"a value of {len(value)} characters"


def safe_name(text: str) -> str:
    """``text`` with every character outside ``A-Z a-z 0-9 _ . + -`` replaced by ``_`` and a first
    character that is not a letter or digit prefixed by ``r``: for names the program builds from a file's
    name (a default run name such as ``chen2025-skeptical+neutral-hierarchical-<UTC time>``)."""
    out = re.sub(r"[^A-Za-z0-9_.+\-]", "_", text, flags=re.ASCII) or "run"
    return out if out[0].isascii() and out[0].isalnum() else "r" + out
