"""Sampling the reanalysis model: NUTS runs of one spec or of several priors stacked, the diagnostics gate with
one retry, and provenance. Compiling and sampling go through the engine (:mod:`bayes_rescue.inference.engine`).

A fit that falls short of the gate (:mod:`bayes_rescue.inference.diagnostics`: every sampled parameter and
every reported RD and log OR) is retried once with a higher target acceptance; if it still falls short the
caller is told loudly (:class:`FitResult.passed` is False and :func:`fit` warns, naming the worst quantity).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict

import numpy as np
import nutpie  # noqa: F401  (public; tests patch sampling.nutpie.sample, which the engine calls)
import xarray as xr

from bayes_rescue import workers
from bayes_rescue.inference import engine
from bayes_rescue.inference.derived import complete_tree, effects
from bayes_rescue.inference.diagnostics import Diagnostics
from bayes_rescue.inference.engine import DEFAULT_CACHE, ModelCache
from bayes_rescue.inference.results import FitResult, complete_and_gate, gate
from bayes_rescue.inference.settings import SamplerSettings, retry_settings
from bayes_rescue.model.build import stack_key
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.versions import package_versions

__all__ = [
    "DEFAULT_CACHE",
    "PARAMETER_DIMS",
    "FitResult",
    "ModelCache",
    "attach_provenance",
    "diagnose",
    "fit",
    "fit_many",
    "sample_gated",
    "sample_posterior",
    "sample_raw",
    "sample_tree",
]


#: The gate on a fitted tree (:func:`bayes_rescue.inference.results.gate`; defined there, light enough for
#: helper processes to run it).
diagnose = gate


#: Dims of the model's parameters other than ``cell`` (see :mod:`bayes_rescue.model.build`).
PARAMETER_DIMS = {
    "mu_baseline": "outcome",
    "mu_log_or": "outcome",
    "bias": "outcome",
    "sigma_baseline": "pooled_outcome",
    "tau_log_or": "pooled_outcome",
    "baseline_z": "pooled_cell",
    "log_or_z": "pooled_cell",
}


#: The most a fit's retry multiplies its draws by (a sweep point's may go to 8; a fit's tree is kept).
FIT_RETRY_MAX_FACTOR = 4


def sample_tree(
    spec: ModelSpec, settings: SamplerSettings, *, target_accept: float | None = None, cache: ModelCache | None = None
) -> xr.DataTree:
    """NUTS on ``spec`` (compiled once per structure in ``cache``), as nutpie's DataTree (posterior and
    sample_stats groups); an interrupted run raises."""
    compiled = (DEFAULT_CACHE if cache is None else cache).get(spec)
    return engine.sample_tree(compiled, settings, target_accept=target_accept)


def sample_raw(
    spec: ModelSpec,
    settings: SamplerSettings,
    *,
    target_accept: float | None = None,
    cache: ModelCache | None = None,
    names: tuple[str, ...] = ("baseline", "delta"),
) -> tuple[xr.Dataset, xr.Dataset]:
    """NUTS without the DataTree conversion (the costliest step of a sweep point after sampling):
    post-warm-up draws of ``names`` (dims chain, draw and cell, or outcome for the per-outcome parameters)
    and the ``diverging`` flags. The same draws as :func:`sample_tree` for the same spec, settings and seed."""
    compiled = (DEFAULT_CACHE if cache is None else cache).get(spec)
    draws, diverging = engine.sample_draws(compiled, settings, names=names, target_accept=target_accept)
    c = spec.coords()
    coords = {"chain": np.arange(settings.chains), "draw": np.arange(settings.draws)}
    coords |= {d: c[d] for d in ("cell", "outcome", "pooled_outcome", "pooled_cell") if d in c}
    posterior = xr.Dataset(
        {n: (("chain", "draw", PARAMETER_DIMS.get(n, "cell")), draws[n]) for n in names}, coords=coords
    )
    sample_stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)}, coords=coords)
    return posterior, sample_stats


def sample_posterior(
    spec: ModelSpec, settings: SamplerSettings, cache: ModelCache | None = None
) -> tuple[xr.Dataset, xr.Dataset]:
    """Only what a sweep needs: the posterior effects and the divergence flags (no prior, predictive or
    log likelihood, no DataTree conversion), at ``settings.target_accept``."""
    names = ("baseline", "delta", "bias") if spec.bias is not None else ("baseline", "delta")
    posterior, sample_stats = sample_raw(spec, settings, cache=cache, names=names)
    return effects(posterior, spec), sample_stats


def sample_gated(
    spec: ModelSpec,
    settings: SamplerSettings,
    *,
    target_accept: float | None = None,
    cache: ModelCache | None = None,
    names: tuple[str, ...] = ("baseline", "delta"),
) -> tuple[xr.Dataset, xr.Dataset, Diagnostics]:
    """A sweep point: :func:`sample_raw` of ``names`` and of every free parameter of the model, and the gate
    (:func:`~bayes_rescue.inference.diagnostics.diagnose_effects`) on the reported RD and log OR and on every
    free parameter, as a full fit is gated. Returns the draws of ``names`` and of the free parameters, the
    divergence flags and the diagnostics."""
    from bayes_rescue.inference.diagnostics import diagnose_effects
    from bayes_rescue.model.equations import free_parameter_names

    free = free_parameter_names(spec)
    wanted = tuple(dict.fromkeys((*names, "baseline", "delta", *free)))
    posterior, sample_stats = sample_raw(spec, settings, target_accept=target_accept, cache=cache, names=wanted)
    ta = settings.target_accept if target_accept is None else target_accept
    diagnostics = diagnose_effects(effects(posterior, spec), sample_stats, ta, posterior=posterior[list(free)])
    return posterior, sample_stats, diagnostics


def _sample_once(
    spec: ModelSpec, settings: SamplerSettings, target_accept: float, cache: ModelCache
) -> tuple[xr.DataTree, xr.Dataset]:
    tree = sample_tree(spec, settings, target_accept=target_accept, cache=cache)
    return complete_tree(tree["posterior"].to_dataset(), tree["sample_stats"].to_dataset(), tree.attrs, spec, settings)


def _sample_stacked(
    specs: list[ModelSpec], settings: SamplerSettings, cache: ModelCache
) -> list[tuple[xr.DataTree, xr.Dataset, Diagnostics]]:
    """One NUTS run of the stacked model (:func:`~bayes_rescue.model.build_stacked_model`), split into
    one full DataTree per spec, with its effects and diagnostics
    (:func:`~bayes_rescue.inference.results.complete_and_gate`, one task per spec for the current helper
    processes, :func:`bayes_rescue.workers.current`).
    Every tree carries the run's shared ``sample_stats``."""
    pool = workers.current()
    tree = engine.sample_tree(cache.get_stacked(specs), settings)
    posterior = tree["posterior"].to_dataset()
    stats_ = tree["sample_stats"].to_dataset()
    attrs = {**tree.attrs, "bayes_rescue_sampled_with": json.dumps([s.name for s in specs])}
    tasks = [  # the gate looked up now: a replaced one (tests) runs here, as it cannot be pickled
        pool.submit(complete_and_gate, posterior.isel(prior=k, drop=True), stats_, attrs, spec, settings, diagnose)
        for k, spec in enumerate(specs)
    ]
    return [t.result() for t in tasks]


def attach_provenance(tree: xr.DataTree, spec: ModelSpec, settings: SamplerSettings, **extra) -> None:
    """Store what is needed to rerun and audit the fit in the DataTree's root attributes."""
    tree.attrs.update(
        {
            "bayes_rescue_prior_name": spec.prior.name,
            "bayes_rescue_prior_spec": spec.prior.to_json(),
            "bayes_rescue_bias_model": "none" if spec.bias is None else spec.bias.name,
            "bayes_rescue_bias_spec": "" if spec.bias is None else spec.bias.to_json(),
            "bayes_rescue_model": spec.kind,
            "bayes_rescue_data_source": spec.data.source,
            "bayes_rescue_data_sha256": spec.data.sha256,
            "bayes_rescue_data_csv": spec.data.to_csv_text(),
            "bayes_rescue_settings": json.dumps(asdict(settings), sort_keys=True),
            "bayes_rescue_seed": settings.seed,
            "bayes_rescue_versions": json.dumps(package_versions(), sort_keys=True),
            **{
                f"bayes_rescue_{k}": (v if isinstance(v, str | int | float) else json.dumps(v))
                for k, v in extra.items()
            },
        }
    )


def fit(
    spec: ModelSpec,
    settings: SamplerSettings | None = None,
    *,
    retry: bool = True,
    cache: ModelCache | None = None,
) -> FitResult:
    """Sample ``spec``; check diagnostics; if they fail, retry once with
    :func:`~bayes_rescue.inference.settings.retry_settings` (the retry target acceptance, twice the warm-up,
    and enough more draws for the smallest ESS to reach the gate, at most :data:`FIT_RETRY_MAX_FACTOR` times).
    The tree records the settings of the attempt it holds.

    Returns the result whatever the diagnostics say, and warns (``RuntimeWarning``) when they fail:
    the caller decides whether to stop (the CLI exits non-zero unless ``--keep-going``).
    """
    settings = settings or SamplerSettings()
    cache = DEFAULT_CACHE if cache is None else cache
    tree, eff = _sample_once(spec, settings, settings.target_accept, cache)
    diag = diagnose(tree, eff, settings.target_accept)
    attempts = 1
    if not diag.passed and retry:
        settings = retry_settings(settings, min(diag.min_ess_bulk, diag.min_ess_tail), max_factor=FIT_RETRY_MAX_FACTOR)
        tree, eff = _sample_once(spec, settings, settings.target_accept, cache)
        diag = diagnose(tree, eff, settings.target_accept)
        attempts = 2
    if not diag.passed:
        warnings.warn(
            f"prior '{spec.name}': sampler diagnostics FAILED after {attempts} attempt(s): "
            + "; ".join(diag.problems()),
            RuntimeWarning,
            stacklevel=2,
        )
    attach_provenance(tree, spec, settings, diagnostics=diag.to_dict(), attempts=attempts)
    return FitResult(spec, tree, eff, diag, attempts)


def fit_many(
    specs: list[ModelSpec], settings: SamplerSettings | None = None, *, cache: ModelCache | None = None
) -> list[FitResult]:
    """Fit several priors on the same data: one NUTS run of the stacked model for all specs that share
    a structure, then each prior's diagnostics gate on its own draws.

    A prior whose draws from the joint run fail the gate (a divergence anywhere in the joint run counts
    against every prior, since it cannot be attributed) is refitted alone by :func:`fit`, with its retry.
    The results are in the order of ``specs``; the root attribute ``bayes_rescue_sampled_with`` of each
    tree names the priors it was sampled with (absent when the prior was fitted alone). Reproducible: the same
    specs, settings and seed give the same draws. A prior's draws differ from those of a fit of that
    prior alone with the same seed (another random stream), by Monte Carlo error only. Inside a
    ``with bayes_rescue.workers.Workers(...)`` block, its helper processes complete the priors' trees side by
    side; the results are the same without.
    """
    settings = settings or SamplerSettings()
    cache = DEFAULT_CACHE if cache is None else cache
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault((stack_key(spec), spec.data.sha256), []).append(i)
    results: list[FitResult | None] = [None] * len(specs)
    for idx in groups.values():
        group = [specs[i] for i in idx]
        names = [s.name for s in group]
        if len(group) == 1 or len(set(names)) != len(names):
            for i in idx:
                results[i] = fit(specs[i], settings, cache=cache)
            continue
        for i, (tree, eff, diag) in zip(idx, _sample_stacked(group, settings, cache), strict=True):
            if diag.passed:
                attach_provenance(tree, specs[i], settings, diagnostics=diag.to_dict(), attempts=1)
                results[i] = FitResult(specs[i], tree, eff, diag, 1)
            else:
                alone = fit(specs[i], settings, cache=cache)
                alone.attempts += 1
                alone.tree.attrs["bayes_rescue_attempts"] = alone.attempts
                alone.tree.attrs["bayes_rescue_joint_run_problems"] = "; ".join(diag.problems())
                results[i] = alone
    return results
