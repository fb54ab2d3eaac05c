"""Compile the bundled model structures once, at set-up (``scripts/setup.sh``), as rstanarm compiles its Stan
models when it is installed: the first ``fit`` after set-up then finds every structure a bundled analysis
uses in the on-disk caches (PyTensor's numba cache and the backend's callbacks,
:func:`~bayes_rescue.inference.compile.numba_cache_dir`) instead of compiling it.

The structures: the bundled cohort under each bundled prior, for both model kinds, alone (``--prior NAME``)
and stacked as ``fit_many`` stacks them (``--prior all``). A user's own data of another shape, or a bias
model, still compiles on first use, with a progress line (``compiling model ...``).
"""

from __future__ import annotations

import time

from bayes_rescue.inference.engine import ModelCache
from bayes_rescue.model.build import stack_key

KINDS = ("hierarchical", "independent")


def precompile_bundled(*, kinds: tuple[str, ...] = KINDS, cache: ModelCache | None = None) -> int:
    """Compile (or load from the on-disk caches) every structure of the module docstring; returns how many
    distinct structures there were."""
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.model.spec import ModelSpec
    from bayes_rescue.priors.spec import resolve_priors

    cache = ModelCache() if cache is None else cache
    data = load_counts("bundled:chen2025")
    priors = resolve_priors("all")
    for kind in kinds:
        groups: dict[tuple, list] = {}
        for prior in priors:
            spec = ModelSpec(data, prior, kind)
            cache.get(spec)  # one prior alone; a structure seen before is not compiled again
            groups.setdefault(stack_key(spec), []).append(spec)
        for group in groups.values():
            if len(group) > 1:
                cache.get_stacked(group)  # as fit_many stacks --prior all
    return cache.compilations


def main(argv: list[str] | None = None) -> int:
    """``python scripts/precompile.py``: precompile and print one line with the time taken."""
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    t = time.perf_counter()
    n = precompile_bundled()
    print(f"precompiled {n} bundled model structures in {time.perf_counter() - t:.1f} s", flush=True)
    return 0
