"""bayes_rescue: Bayesian reanalysis of two-arm, subgrouped binary-outcome studies.

The public API (imported lazily, so that ``import bayes_rescue`` and the command line start fast)::

    import bayes_rescue as br
    r = br.fit(prior="skeptical")          # -> br.Result: .summary, .tree, .trees, .save(folder), .plot_forest()
    data = br.load_counts("my_counts.csv")
    prior = br.load_prior("skeptical")
    bias = br.load_bias("observational")
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> module that defines it.
_PUBLIC = {
    "fit": "bayes_rescue.api",
    "Result": "bayes_rescue.api",
    "make_specs": "bayes_rescue.api",
    "load_counts": "bayes_rescue.data.counts",
    "parse_counts": "bayes_rescue.data.counts",
    "CountsData": "bayes_rescue.data.counts",
    "load_prior": "bayes_rescue.priors.spec",
    "PriorSpec": "bayes_rescue.priors.spec",
    "load_bias": "bayes_rescue.priors.bias",
    "BiasModel": "bayes_rescue.priors.bias",
    "ModelSpec": "bayes_rescue.model.spec",
    "SamplerSettings": "bayes_rescue.inference.settings",
    "load_tree": "bayes_rescue.outputs.trees",
    "InputError": "bayes_rescue.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayes_rescue' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
