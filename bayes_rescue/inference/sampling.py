"""Sampling with nutpie: the compiled-model cache, NUTS runs (single and stacked priors), the diagnostics
gate with one retry, and provenance.

A fit that falls short of the gate (:mod:`bayes_rescue.inference.diagnostics`) is retried once with a
higher target acceptance; if it still falls short the caller is told loudly (:class:`FitResult.passed` is
False and :func:`fit` warns).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import asdict

import numpy as np
import nutpie
import pymc as pm
import xarray as xr

from bayes_rescue import progress
from bayes_rescue.inference.compile import compile_model
from bayes_rescue.inference.derived import complete_tree, effects
from bayes_rescue.inference.diagnostics import Diagnostics, diagnose_effects
from bayes_rescue.inference.results import FitResult
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.build import build_model, build_stacked_model, pack_inputs, stack_key, stacked_arrays
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.versions import package_versions
from bayes_rescue.workers import NO_POOL


def diagnose(tree: xr.DataTree, eff: xr.Dataset, target_accept: float) -> Diagnostics:
    """The diagnostics gate on a fit's effects and its sampler statistics."""
    return diagnose_effects(eff, tree["sample_stats"].to_dataset(), target_accept)


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


def _initial_overrides(model: pm.Model) -> dict:
    """Initial point 0 on the unconstrained scale for every free variable (nutpie adds seeded jitter).

    nutpie's default starts at the prior's support point, which depends on the prior; a fixed start makes
    a reused compiled model give bit-identical draws to a fresh compile of the same spec and seed.
    """
    import pytensor

    ip = model.initial_point()
    out, symbolic = {}, {}
    for rv in model.free_RVs:
        zero = np.zeros_like(ip[model.rvs_to_values[rv].name])
        transform = model.rvs_to_transforms.get(rv)
        if transform is None:
            out[rv] = zero
        else:
            symbolic[rv] = transform.backward(zero, *rv.owner.inputs)
    if symbolic:  # one small function for all of them (FAST_COMPILE: no C or numba compile)
        values = pytensor.function([], list(symbolic.values()), mode="FAST_COMPILE")()
        out |= dict(zip(symbolic, values, strict=True))
    return {rv: out[rv] for rv in model.free_RVs}


def _with_data(compiled, **updates):
    """Return ``compiled`` with new values of its shared data (same shapes).

    Replaces ``nutpie.CompiledPyMCModel.with_data``, which (nutpie 0.16.11 with NumPy 2.x) writes the new
    data pointers into a copy of its record array and so silently keeps sampling the old data: there,
    ``user_data[()]`` returns a ``np.void`` copy. Here the fields are assigned through ndarray views.
    """
    shared = dict(compiled.shared_data)
    keys = {var.name: key for var, key in compiled.shared_var_keys.items()}
    for name, value in updates.items():
        if name not in keys:
            continue  # data the log density does not use (e.g. mixture weights of a one-component prior)
        old = shared[keys[name]]
        new = np.array(value, dtype=old.dtype, order="C", copy=True)
        if new.shape != old.shape:
            raise ValueError(f"shared data {name!r} has shape {new.shape}, compiled with {old.shape}")
        new.flags.writeable = False
        shared[keys[name]] = new
    user_data = compiled.user_data.copy()
    for key, value in shared.items():
        user_data["shared"]["data"][key] = value.ctypes.data
        user_data["shared"]["size"][key] = value.size
        user_data["shared"]["shape"][key] = value.shape
    return dataclasses.replace(compiled, shared_data=shared, user_data=user_data)


def _raise_if_signalled(stage: str) -> None:
    """Raise the interruption now if SIGINT/SIGTERM arrived and was swallowed by library code (a broad
    ``except`` in a compiler), instead of sampling on for minutes."""
    import signal

    from bayes_rescue.errors import Terminated, received_signal

    sig = received_signal()
    if sig is not None:
        cls = Terminated if sig == signal.SIGTERM else KeyboardInterrupt
        raise cls(f"interrupted during {stage}")


class ModelCache:
    """Compiles each model *structure* once and reuses it for other priors or counts of the same shape.

    The structure is the model kind, the coordinates (outcomes, cells, mixture components) and the
    cell-to-outcome index; counts and prior parameters are the ``pm.Data`` vector ``inputs``
    (:func:`~bayes_rescue.model.pack_inputs`) and are swapped in without recompiling.
    """

    def __init__(self) -> None:
        self._compiled: dict = {}
        self.compilations = 0

    @staticmethod
    def key(spec: ModelSpec) -> tuple:
        return stack_key(spec)

    def _compiled_for(self, key: tuple, build):
        if key not in self._compiled:
            with progress.task("compiling model ..."):
                model = build()
                compiled = compile_model(model, initial_points=_initial_overrides(model))
            _raise_if_signalled("compilation")  # a compiler that swallowed the KeyboardInterrupt
            self._compiled[key] = compiled
            self.compilations += 1
        return self._compiled[key]

    def get(self, spec: ModelSpec):
        """The compiled nutpie model for ``spec``, holding ``spec``'s data and prior values."""
        compiled = self._compiled_for(self.key(spec), lambda: build_model(spec))
        return _with_data(compiled, inputs=pack_inputs(spec.arrays()))

    def get_stacked(self, specs: list[ModelSpec]):
        """The compiled stacked model (:func:`~bayes_rescue.model.build_stacked_model`) for ``specs``,
        compiled once per structure and number of priors, holding ``specs``' priors in order."""
        key = ("stacked", len(specs), self.key(specs[0]))
        compiled = self._compiled_for(key, lambda: build_stacked_model(specs))
        return _with_data(compiled, inputs=pack_inputs(stacked_arrays(specs)))


#: The process-wide cache used by :func:`fit` unless another is passed.
DEFAULT_CACHE = ModelCache()


def _run_nutpie(compiled, settings: SamplerSettings, target_accept: float, *, raw: bool = False):
    """nutpie NUTS on a compiled model with ``settings`` (draws, tune, chains, seed) at ``target_accept``.

    nutpie's own per-chain progress table is shown on a terminal when no other progress is on screen
    (:func:`bayes_rescue.progress.sampler_bar`)."""
    return nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=settings.seed,
        target_accept=target_accept,
        progress_bar=progress.sampler_bar(),
        return_raw_trace=raw,
    )


def _check_complete(chains: int | None, draws: int | None, settings: SamplerSettings, posterior=None) -> None:
    """nutpie answers Ctrl-C (and SIGTERM, a KeyboardInterrupt here) by returning the draws made so far; a
    trace shorter than asked for, one whose shorter chains were padded with NaN to the longest, or any
    trace returned after a signal arrived is therefore an interruption, raised as such (SIGTERM as
    :class:`~bayes_rescue.errors.Terminated`), never passed on as a result."""
    import signal

    from bayes_rescue.errors import Terminated, received_signal

    why = None
    if chains != settings.chains or draws != settings.draws:
        why = f"{chains} chains x {draws} draws of {settings.chains} x {settings.draws}"
    elif posterior is not None and any(
        np.issubdtype(v.dtype, np.floating) and bool(np.isnan(v.values).any()) for v in posterior.data_vars.values()
    ):
        why = "the trace has missing (NaN-padded) draws"
    elif received_signal() is not None:
        why = f"signal {received_signal()} arrived during sampling"
    if why is not None:
        cls = Terminated if received_signal() == signal.SIGTERM else KeyboardInterrupt
        raise cls(f"sampling was interrupted: {why}")


def _nuts(spec: ModelSpec, settings: SamplerSettings, target_accept: float, cache: ModelCache) -> xr.DataTree:
    """nutpie NUTS, converted to a DataTree (posterior and sample_stats groups)."""
    tree = _run_nutpie(cache.get(spec), settings, target_accept)
    sizes = tree["posterior"].sizes
    _check_complete(sizes.get("chain"), sizes.get("draw"), settings, tree["posterior"].to_dataset())
    return tree


def _arrow_numpy(column) -> np.ndarray:
    """A column of nutpie's raw (arro3) trace as NumPy: list columns become (rows, length)."""
    import pyarrow as pa

    arr = pa.array(column)
    if pa.types.is_large_list(arr.type) or pa.types.is_list(arr.type):
        return arr.flatten().to_numpy().reshape(len(arr), -1)
    return arr.to_numpy(zero_copy_only=False)


def _nuts_raw(
    spec: ModelSpec, settings: SamplerSettings, target_accept: float, cache: ModelCache, names=("baseline", "delta")
) -> tuple[xr.Dataset, xr.Dataset]:
    """nutpie NUTS without the DataTree conversion (the costliest step of a sweep point after sampling):
    post-warm-up draws of ``names`` (dims chain, draw and cell, or outcome for the per-outcome parameters)
    and the ``diverging`` flags. The same draws as :func:`_nuts` for the same spec, settings and seed."""
    draw_batches, stat_batches = _run_nutpie(cache.get(spec), settings, target_accept, raw=True).get_arrow_trace()
    post: dict[str, list] = {n: [] for n in names}
    diverging = []
    for draws, stats_ in zip(draw_batches, stat_batches, strict=True):
        keep = ~_arrow_numpy(stats_.column("tuning")).astype(bool)
        for n in names:
            post[n].append(_arrow_numpy(draws.column(n))[keep])
        diverging.append(_arrow_numpy(stats_.column("diverging")).astype(bool)[keep])
    lengths = {len(d) for d in diverging}
    _check_complete(len(diverging), lengths.pop() if len(lengths) == 1 else None, settings)
    c = spec.coords()
    coords = {"chain": np.arange(settings.chains), "draw": np.arange(settings.draws)}
    coords |= {d: c[d] for d in ("cell", "outcome", "pooled_outcome", "pooled_cell") if d in c}
    posterior = xr.Dataset(
        {n: (("chain", "draw", PARAMETER_DIMS.get(n, "cell")), np.stack(v)) for n, v in post.items()},
        coords=coords,
    )
    sample_stats = xr.Dataset({"diverging": (("chain", "draw"), np.stack(diverging))}, coords=coords)
    return posterior, sample_stats


def sample_posterior(
    spec: ModelSpec, settings: SamplerSettings, cache: ModelCache | None = None
) -> tuple[xr.Dataset, xr.Dataset]:
    """Only what a sweep needs: the posterior effects and the divergence flags (no prior, predictive or
    log likelihood, no DataTree conversion), at ``settings.target_accept``."""
    names = ("baseline", "delta", "bias") if spec.bias is not None else ("baseline", "delta")
    posterior, sample_stats = _nuts_raw(
        spec, settings, settings.target_accept, DEFAULT_CACHE if cache is None else cache, names=names
    )
    return effects(posterior, spec), sample_stats


def _sample_once(
    spec: ModelSpec, settings: SamplerSettings, target_accept: float, cache: ModelCache
) -> tuple[xr.DataTree, xr.Dataset]:
    tree = _nuts(spec, settings, target_accept, cache)
    return complete_tree(tree["posterior"].to_dataset(), tree["sample_stats"].to_dataset(), tree.attrs, spec, settings)


def _sample_stacked(
    specs: list[ModelSpec], settings: SamplerSettings, cache: ModelCache, pool=NO_POOL
) -> list[tuple[xr.DataTree, xr.Dataset, Diagnostics]]:
    """One NUTS run of the stacked model (:func:`~bayes_rescue.model.build_stacked_model`), split into
    one full DataTree per spec (:func:`~bayes_rescue.inference.derived.complete_tree`, one task per spec in
    ``pool``), with its effects and diagnostics. Every tree carries the run's shared ``sample_stats``."""
    tree = _run_nutpie(cache.get_stacked(specs), settings, settings.target_accept)
    posterior = tree["posterior"].to_dataset()
    _check_complete(posterior.sizes.get("chain"), posterior.sizes.get("draw"), settings, posterior)
    stats_ = tree["sample_stats"].to_dataset()
    attrs = {**tree.attrs, "bayes_rescue_sampled_with": json.dumps([s.name for s in specs])}
    tasks = [
        pool.submit(complete_tree, posterior.isel(prior=k, drop=True), stats_, attrs, spec, settings)
        for k, spec in enumerate(specs)
    ]
    return [(tree, eff, diagnose(tree, eff, settings.target_accept)) for tree, eff in (t.result() for t in tasks)]


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
    """Sample ``spec``; check diagnostics; retry once at a higher target acceptance if they fail.

    Returns the result whatever the diagnostics say, and warns (``RuntimeWarning``) when they fail:
    the caller decides whether to stop (the CLI exits non-zero unless ``--keep-going``).
    """
    settings = settings or SamplerSettings()
    cache = DEFAULT_CACHE if cache is None else cache
    tree, eff = _sample_once(spec, settings, settings.target_accept, cache)
    diag = diagnose(tree, eff, settings.target_accept)
    attempts = 1
    if not diag.passed and retry:
        tree, eff = _sample_once(spec, settings, settings.retry_target_accept, cache)
        diag = diagnose(tree, eff, settings.retry_target_accept)
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
    specs: list[ModelSpec], settings: SamplerSettings | None = None, *, cache: ModelCache | None = None, pool=None
) -> list[FitResult]:
    """Fit several priors on the same data: one NUTS run of the stacked model for all specs that share
    a structure, then each prior's diagnostics gate on its own draws.

    A prior whose draws from the joint run fail the gate (a divergence anywhere in the joint run counts
    against every prior, since it cannot be attributed) is refitted alone by :func:`fit`, with its retry.
    The results are in the order of ``specs``; the root attribute ``bayes_rescue_sampled_with`` of each
    tree names the priors it was sampled with (absent when the prior was fitted alone). Reproducible: the same
    specs, settings and seed give the same draws. A prior's draws differ from those of a fit of that
    prior alone with the same seed (another random stream), by Monte Carlo error only. ``pool``: helper
    processes (:class:`bayes_rescue.workers.Workers`) that complete the priors' trees side by side; the
    results are the same without.
    """
    settings = settings or SamplerSettings()
    pool = NO_POOL if pool is None else pool
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
        for i, (tree, eff, diag) in zip(idx, _sample_stacked(group, settings, cache, pool), strict=True):
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
