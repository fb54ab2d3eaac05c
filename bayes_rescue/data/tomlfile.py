"""The one reader of every TOML input (priors, bias models, designs) and the validators their parsers share.

:func:`read_toml` reads a user's file through :func:`~bayes_rescue.data.files.read_input_bytes` (a regular
file of at most :data:`MAX_TOML_BYTES`), and :func:`loads_toml` parses bytes (a bundled resource or a run
folder's kept copy) with the same checks: UTF-8, valid TOML, tables and arrays nested at most
:data:`MAX_TOML_DEPTH` deep. Every failure is an :class:`~bayes_rescue.errors.InputError` naming the file,
with the cap in the message.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

from bayes_rescue.data.files import read_input_bytes
from bayes_rescue.errors import InputError

#: Largest TOML input read, in bytes (the largest bundled one is about 10 kB).
MAX_TOML_BYTES = 1024 * 1024
#: Deepest nesting of tables and arrays accepted (the formats need 5).
MAX_TOML_DEPTH = 16
_OPENERS = re.compile(rb"[\[{]")


def _depth(doc, limit: int) -> int:
    """Nesting depth of a parsed document, stopping once it exceeds ``limit``."""
    stack = [(doc, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((c, d + 1) for c in children if isinstance(c, dict | list))
    return deepest


def loads_toml(raw: bytes, *, origin: str, what: str) -> dict:
    """Parse TOML bytes (UTF-8, a BOM tolerated), nested at most :data:`MAX_TOML_DEPTH` deep.

    A document with more than 8 x the depth cap of opening brackets in a row is refused before parsing, so
    that the parser's recursion is never the limit; any deeper nesting that remains is found afterwards.

    Raises
    ------
    InputError
        Not UTF-8, not TOML, or nested too deeply (the message gives the cap).
    """
    too_deep = f"is not a {what} file (nested too deeply to read: at most {MAX_TOML_DEPTH} levels)"
    if re.search(rb"(?:[\[{]\s*){%d}" % (8 * MAX_TOML_DEPTH), raw):
        raise InputError(too_deep, source=origin)
    try:
        doc = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", source=origin) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"is not valid TOML ({' '.join(str(exc).split())[:200]})", source=origin) from None
    except RecursionError:
        raise InputError(too_deep, source=origin) from None
    if _depth(doc, MAX_TOML_DEPTH) > MAX_TOML_DEPTH:
        raise InputError(too_deep, source=origin)
    return doc


def read_toml(path: str | Path, *, field: str | None, what: str) -> tuple[dict, bytes]:
    """A user's TOML file: regular file of at most :data:`MAX_TOML_BYTES`, parsed by :func:`loads_toml`;
    returns the document and the raw bytes (for the file's sha256)."""
    raw = read_input_bytes(Path(path), field=field, what=f"{what} file", cap=MAX_TOML_BYTES)
    return loads_toml(raw, origin=str(path), what=what), raw


# -- validators shared by the prior, bias-model and design parsers ---------------------------------------


def number(value, *, source: str, field: str) -> float:
    """``value`` as a finite float (a TOML integer or float, not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{shown(value)} is not a number", source=source, field=field)
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"{value!r} is not finite", source=source, field=field)
    return v


def text(value, *, source: str, field: str, required: bool = False) -> str:
    """``value`` as text ('' when absent and not ``required``)."""
    if value is None:
        if required:
            raise InputError("is required", source=source, field=field)
        return ""
    if not isinstance(value, str):
        raise InputError(f"{shown(value)} is not text", source=source, field=field)
    if required and not value.strip():
        raise InputError("is required and may not be blank", source=source, field=field)
    return value


def require_table(table, *, source: str, where: str) -> None:
    """Refuse anything but a TOML table at ``where``."""
    if not isinstance(table, dict):
        raise InputError("must be a table", source=source, field=where or "<top>")


def check_keys(table, allowed: set[str], *, source: str, where: str) -> None:
    """Refuse a non-table or a key outside ``allowed`` (the message lists the allowed keys)."""
    require_table(table, source=source, where=where)
    for key in table:
        if key not in allowed:
            from bayes_rescue.data.names import is_valid_name

            shown = key if is_valid_name(key) else "<key>"
            raise InputError(
                f"unknown key; allowed here: {', '.join(sorted(allowed))}",
                source=source,
                field=f"{where}.{shown}" if where else shown,
            )


def shown(value) -> str:
    """How a message shows a value read from a file: strings through :func:`~bayes_rescue.data.names.quote`,
    anything else as a short repr."""
    from bayes_rescue.data.names import quote

    return quote(value) if isinstance(value, str) else repr(value)[:40]


def check_count(n: int, cap: int, *, what: str, source: str, field: str) -> None:
    """Refuse more than ``cap`` items (subgroups, outcomes, components); the message gives the cap."""
    if n > cap:
        raise InputError(f"has more than {cap} {what}; at most {cap} are allowed", source=source, field=field)
