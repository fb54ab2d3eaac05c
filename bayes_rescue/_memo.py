"""Memoising derived values on immutable (frozen dataclass) objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def memoised(obj: Any, name: str, build: Callable[[], Any]) -> Any:
    """``build()`` computed once per ``obj`` and kept in its ``__dict__`` (frozen dataclasses forbid
    ``setattr``; the instance dict is still theirs). Callers copy the result if they may change it."""
    cached = obj.__dict__.get(name)
    if cached is None:
        cached = build()
        obj.__dict__[name] = cached
    return cached
