"""Inference: the sampling engine, fits, the diagnostics gate, derived quantities, power-scaling.

The public interface that the rest of the package (analyses, the MAP model, validation, the API) uses,
imported lazily (``import bayes_rescue.inference.derived`` in a helper process imports no sampler)::

    from bayes_rescue.inference import ModelCache, DEFAULT_CACHE   # compile a model structure once
    from bayes_rescue.inference import sample_tree, sample_raw     # NUTS on a spec: DataTree / raw draws
    from bayes_rescue.inference import engine                      # the same on any compiled PyMC model
    from bayes_rescue.inference import fit, fit_many, diagnose     # fits with the diagnostics gate

Every private name of nutpie, numba and PyTensor is in :mod:`bayes_rescue.inference.backend`, behind the switch
``$BAYES_RESCUE_BACKEND`` (:mod:`bayes_rescue.inference.compile`).
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "ModelCache": "bayes_rescue.inference.engine",
    "DEFAULT_CACHE": "bayes_rescue.inference.engine",
    "compile_model": "bayes_rescue.inference.compile",
    "sample_tree": "bayes_rescue.inference.sampling",
    "sample_raw": "bayes_rescue.inference.sampling",
    "sample_posterior": "bayes_rescue.inference.sampling",
    "fit": "bayes_rescue.inference.sampling",
    "fit_many": "bayes_rescue.inference.sampling",
    "diagnose": "bayes_rescue.inference.sampling",
    "diagnose_effects": "bayes_rescue.inference.diagnostics",
    "diagnose_draws": "bayes_rescue.inference.diagnostics",
    "Diagnostics": "bayes_rescue.inference.diagnostics",
    "ESS_MIN": "bayes_rescue.inference.diagnostics",
    "RHAT_MAX": "bayes_rescue.inference.diagnostics",
    "FitResult": "bayes_rescue.inference.results",
    "SamplerSettings": "bayes_rescue.inference.settings",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayes_rescue.inference' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
