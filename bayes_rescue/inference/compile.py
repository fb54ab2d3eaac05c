"""Compiling a PyMC model for nutpie: the backend switch and the public fallback.

:func:`compile_model` returns what ``nutpie.compile_pymc_model`` returns. With the backend on (the default),
it is built by :func:`bayes_rescue.inference.backend.fast_compile`, whose numba callbacks are cached on disk
across processes (a new process samples a cached structure without compiling it again), imported only now.
Any failure there (an import, a changed layout of nutpie's internals, a numba error) warns in one line and
falls back to ``nutpie.compile_pymc_model``, which gives the same draws bit for bit (tested). The switch:
``BAYES_RESCUE_BACKEND=public`` uses nutpie's public API only (no private name of nutpie, numba or PyTensor is
then touched anywhere: compiling, swapping data and reading draws all go through ``nutpie``'s public calls).
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path

#: Environment variable of the backend switch: ``fast`` (default) or ``public`` (nutpie's public API only).
ENV_BACKEND = "BAYES_RESCUE_BACKEND"
#: Why the backend could not be imported in this process (warned once), or None.
_unavailable: list[str] = []


def backend_enabled() -> bool:
    """True unless ``$BAYES_RESCUE_BACKEND`` is ``public`` (case-insensitive)."""
    return os.environ.get(ENV_BACKEND, "fast").strip().lower() != "public"


def backend():
    """The backend module (:mod:`bayes_rescue.inference.backend`), or None when it is switched off or cannot
    be imported (then a one-line ``RuntimeWarning``, and the public path is used)."""
    if not backend_enabled():
        return None
    try:
        return importlib.import_module("bayes_rescue.inference.backend")
    except Exception as exc:  # numba or nutpie internals missing or changed: the public path is always right
        if not _unavailable:
            _unavailable.append(str(exc))
            _warn("backend unavailable", exc)
        return None


def _warn(what: str, exc: BaseException) -> None:
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200] if str(exc) else type(exc).__name__
    warnings.warn(
        f"bayes_rescue.inference.compile: {what} ({reason}); using nutpie.compile_pymc_model",
        RuntimeWarning,
        stacklevel=3,
    )


def numba_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bayes_rescue/numba`` (``~/.cache/bayes_rescue/numba`` if the variable is unset or
    empty), where the backend's generated callback modules and numba's cache of them live."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bayes_rescue" / "numba"


def compile_model(model, *, initial_points: dict | None = None):
    """Compile ``model`` for ``nutpie.sample``.

    Parameters
    ----------
    model : pymc.Model
        The PyMC model.
    initial_points
        Start values by variable name (nutpie's ``initial_points``), jittered like nutpie's.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        What ``nutpie.compile_pymc_model(model, initial_points=initial_points)`` returns (numba backend,
        jittered support-point start, every variable stored); with the backend on, its callbacks are cached on
        disk across processes, with the same log density, gradient and draws bit for bit. If the backend fails
        for any reason, a one-line ``RuntimeWarning`` and nutpie's own compile.
    """
    import nutpie

    module = backend()
    if module is not None:
        try:
            return module.fast_compile(model, initial_points)
        except Exception as exc:  # any failure: nutpie's own (slower) compile is always right
            _warn("fast compile failed", exc)
    return nutpie.compile_pymc_model(model, initial_points=initial_points)
