"""Sampling, the diagnostics gate and the derived effects (risk difference, RR, OR per estimand).

A fit is accepted only if every reported quantity has R-hat <= 1.01, bulk and tail ESS >= 1000 and there
are no divergences. A fit that falls short is retried once with a higher target acceptance; if it still
falls short the caller is told loudly (:class:`FitResult.passed` is False and :func:`fit` warns).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import platform
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata

import arviz as az
import numpy as np
import nutpie
import pandas as pd
import pymc as pm
import xarray as xr
from scipy import special, stats

from bayes_rescue.compile import compile_model
from bayes_rescue.data import OVERALL
from bayes_rescue.model import ModelSpec, build_model, build_stacked_model, pack_inputs, stack_key, stacked_arrays

#: The quantities the diagnostics gate checks (and the summary reports).
REPORTED = ("rd", "log_or")
RHAT_MAX = 1.01
ESS_MIN = 1000


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings (nutpie). The defaults meet the diagnostics gate on the bundled cohort."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 20250531
    target_accept: float = 0.95
    retry_target_accept: float = 0.99
    prior_draws: int = 4000

    def __post_init__(self) -> None:
        for name in ("draws", "tune", "chains", "prior_draws"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not (0.5 <= self.target_accept < 1 and 0.5 <= self.retry_target_accept < 1):
            raise ValueError("target acceptance must be in [0.5, 1)")


@dataclass
class Diagnostics:
    """Sampler diagnostics over the reported quantities."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    target_accept: float
    rhat_max: float = RHAT_MAX
    ess_min: float = ESS_MIN
    per_estimand: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def passed(self) -> bool:
        return (
            self.max_rhat <= self.rhat_max
            and self.min_ess_bulk >= self.ess_min
            and self.min_ess_tail >= self.ess_min
            and self.divergences == 0
        )

    def problems(self) -> list[str]:
        out = []
        if self.max_rhat > self.rhat_max:
            out.append(f"max R-hat {self.max_rhat:.4f} > {self.rhat_max}")
        if self.min_ess_bulk < self.ess_min:
            out.append(f"min bulk ESS {self.min_ess_bulk:.0f} < {self.ess_min}")
        if self.min_ess_tail < self.ess_min:
            out.append(f"min tail ESS {self.min_ess_tail:.0f} < {self.ess_min}")
        if self.divergences:
            out.append(f"{self.divergences} divergent transitions")
        return out

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "per_estimand"}
        d["passed"] = self.passed
        return d


@dataclass
class FitResult:
    """One fitted prior: the DataTree, its diagnostics and how many attempts it took."""

    spec: ModelSpec
    tree: xr.DataTree
    diagnostics: Diagnostics
    attempts: int

    @property
    def passed(self) -> bool:
        return self.diagnostics.passed


def estimands(spec: ModelSpec) -> pd.DataFrame:
    """Rows of the summary: each subgroup of a multi-subgroup outcome, and every outcome's ``overall``.

    Columns: ``estimand`` (``outcome/subgroup``), ``outcome``, ``subgroup``, ``level`` (``subgroup`` or
    ``cohort``), ``direction``, ``n_t``, ``n_c``, ``y_t``, ``y_c``, and ``cells`` (indices of the model
    cells it standardises over).
    """
    cells = spec.data.cells()
    rows = []
    for outcome in spec.data.outcomes:
        idx = np.flatnonzero(cells["outcome"].to_numpy() == outcome)
        sub = cells.iloc[idx]
        if len(idx) > 1:
            for i, (_, r) in zip(idx, sub.iterrows(), strict=True):
                rows.append(
                    {
                        **r.to_dict(),
                        "estimand": f"{outcome}/{r['subgroup']}",
                        "level": "subgroup",
                        "cells": [i],
                    }
                )
        rows.append(
            {
                "outcome": outcome,
                "subgroup": OVERALL,
                "y_t": int(sub["y_t"].sum()),
                "n_t": int(sub["n_t"].sum()),
                "y_c": int(sub["y_c"].sum()),
                "n_c": int(sub["n_c"].sum()),
                "direction": sub["direction"].iloc[0],
                "estimand": f"{outcome}/{OVERALL}",
                "level": "cohort",
                "cells": list(idx),
            }
        )
    cols = ["estimand", "outcome", "subgroup", "level", "direction", "y_t", "n_t", "y_c", "n_c", "cells"]
    return pd.DataFrame(rows)[cols]


def effects(group: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Derived effects per estimand from draws of ``alpha`` and ``log_or`` over cells.

    Returns a Dataset with dims ``(chain, draw, estimand)`` and variables ``p_control``, ``p_treatment``,
    ``rd`` (risk difference, treatment minus control), ``rr`` (risk ratio), ``odds_ratio`` and ``log_or``.
    Cohort rows standardise the arm risks over subgroups by subgroup size (see :mod:`bayes_rescue.model`).
    """
    est = estimands(spec)
    cells = spec.data.cells()
    size = (cells["n_t"] + cells["n_c"]).to_numpy(float)
    alpha = group["alpha"].transpose("chain", "draw", "cell").to_numpy()
    delta = group["log_or"].transpose("chain", "draw", "cell").to_numpy()
    # On the log scale throughout (log p and log(1 - p) by log-sum-exp), so that draws far out on the
    # logit scale (vague priors) give finite log OR and RR instead of inf - inf.
    cell_logs = {
        "pc": special.log_expit(alpha),
        "qc": special.log_expit(-alpha),
        "pt": special.log_expit(alpha + delta),
        "qt": special.log_expit(-(alpha + delta)),
    }
    n = len(est)
    logs = {k: np.empty((*alpha.shape[:2], n)) for k in cell_logs}
    for j, idx in enumerate(est["cells"]):
        log_v = np.log(size[idx] / size[idx].sum())
        for k, cell_log in cell_logs.items():
            logs[k][..., j] = special.logsumexp(cell_log[..., idx] + log_v, axis=-1)
    pc, ptr = np.exp(logs["pc"]), np.exp(logs["pt"])
    log_or = (logs["pt"] - logs["qt"]) - (logs["pc"] - logs["qc"])
    coords = {
        "chain": group["chain"].to_numpy(),
        "draw": group["draw"].to_numpy(),
        "estimand": est["estimand"].tolist(),
        "estimand_outcome": ("estimand", est["outcome"].tolist()),
        "estimand_subgroup": ("estimand", est["subgroup"].tolist()),
    }
    dims = ("chain", "draw", "estimand")
    return xr.Dataset(
        {
            "p_control": (dims, pc),
            "p_treatment": (dims, ptr),
            "rd": (dims, ptr - pc),
            "rr": (dims, np.exp(logs["pt"] - logs["pc"])),
            "odds_ratio": (dims, np.exp(log_or)),
            "log_or": (dims, log_or),
        },
        coords=coords,
    )


def diagnose_effects(effects_ds: xr.Dataset, sample_stats: xr.Dataset, target_accept: float) -> Diagnostics:
    """R-hat (rank-normalised), bulk and tail ESS of every reported RD and log OR, and divergences."""
    post = effects_ds[["rd", "log_or"]]
    rhat = az.rhat(post)
    ess_b = az.ess(post, method="bulk")
    ess_t = az.ess(post, method="tail")
    per = pd.DataFrame(
        {
            "estimand": post["estimand"].to_numpy(),
            "rhat_rd": rhat["rd"].to_numpy(),
            "rhat_log_or": rhat["log_or"].to_numpy(),
            "ess_bulk_rd": ess_b["rd"].to_numpy(),
            "ess_bulk_log_or": ess_b["log_or"].to_numpy(),
            "ess_tail_rd": ess_t["rd"].to_numpy(),
            "ess_tail_log_or": ess_t["log_or"].to_numpy(),
        }
    )
    return Diagnostics(
        max_rhat=float(np.nanmax(per[["rhat_rd", "rhat_log_or"]].to_numpy())),
        min_ess_bulk=float(np.nanmin(per[["ess_bulk_rd", "ess_bulk_log_or"]].to_numpy())),
        min_ess_tail=float(np.nanmin(per[["ess_tail_rd", "ess_tail_log_or"]].to_numpy())),
        divergences=int(sample_stats["diverging"].sum()),
        target_accept=target_accept,
        per_estimand=per,
    )


def diagnose(tree: xr.DataTree, target_accept: float) -> Diagnostics:
    """Diagnostics of a fitted DataTree (see :func:`diagnose_effects`)."""
    return diagnose_effects(tree["effects"].to_dataset(), tree["sample_stats"].to_dataset(), target_accept)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that determine the numbers (looked up once per process)."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("bayes_rescue", "pymc", "pytensor", "nutpie", "arviz", "xarray", "numpy", "scipy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


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
            model = build()
            self._compiled[key] = compile_model(model, initial_points=_initial_overrides(model))
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


def prior_draws(spec: ModelSpec, n: int, rng: np.random.Generator) -> xr.Dataset:
    """Draws from the model's prior, in NumPy, following the mathematics in :mod:`bayes_rescue.model`.

    Same variable names and dims as the posterior (chain = 1). Checked against PyMC's own prior sampler
    in the tests.
    """
    a = spec.arrays()
    o = a["outcome_idx"]
    h = a["hyper"]
    n_out, n_cell = a["prior_w"].shape[0], len(o)

    def mixture(rows: np.ndarray) -> np.ndarray:
        w, mu, sd = a["prior_w"][rows], a["prior_mu"][rows], a["prior_sd"][rows]
        u = rng.random((n, len(rows), 1))
        k = (u > np.cumsum(w, axis=1)[None]).sum(axis=2).clip(max=w.shape[1] - 1)
        pick = np.take_along_axis
        return rng.normal(
            pick(np.broadcast_to(mu, (n, *mu.shape)), k[..., None], 2)[..., 0],
            pick(np.broadcast_to(sd, (n, *sd.shape)), k[..., None], 2)[..., 0],
        )

    coords = spec.coords()
    if spec.kind == "hierarchical":
        on = a["pooled"][o]
        mu_alpha = rng.normal(h[0], h[1], (n, n_out))
        sigma_alpha = np.abs(rng.normal(0, h[2], (n, n_out)))
        w = rng.normal(0, 1, (n, n_cell))
        mu_delta = mixture(np.arange(n_out))
        tau = np.abs(rng.normal(0, h[3], (n, n_out)))
        z = rng.normal(0, 1, (n, n_cell))
        alpha = mu_alpha[:, o] + on * sigma_alpha[:, o] * w
        log_or = mu_delta[:, o] + a["offset"] + on * tau[:, o] * z
        per_outcome = {"mu_alpha": mu_alpha, "sigma_alpha": sigma_alpha, "mu_delta": mu_delta, "tau": tau}
        per_cell = {"w": w, "z": z, "alpha": alpha, "log_or": log_or}
    else:
        per_outcome = {}
        per_cell = {"alpha": rng.normal(h[0], h[1], (n, n_cell)), "log_or": mixture(o) + a["offset"]}
    data_vars = {k: (("chain", "draw", "outcome"), v[None]) for k, v in per_outcome.items()}
    data_vars |= {k: (("chain", "draw", "cell"), v[None]) for k, v in per_cell.items()}
    return xr.Dataset(
        data_vars,
        coords={"chain": [0], "draw": np.arange(n), "outcome": coords["outcome"], "cell": coords["cell"]},
    )


def _arm_probs(group: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    p_c = xr.apply_ufunc(special.expit, group["alpha"])
    p_t = xr.apply_ufunc(special.expit, group["alpha"] + group["log_or"])
    return p_c, p_t


def log_likelihood(group: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Pointwise binomial log likelihood per draw and cell (``y_control``, ``y_treatment``)."""
    a = spec.arrays()
    p_c, p_t = _arm_probs(group)
    cell = xr.DataArray
    return xr.Dataset(
        {
            "y_control": xr.apply_ufunc(
                stats.binom.logpmf, cell(a["y_c"], dims="cell"), cell(a["n_c"], dims="cell"), p_c
            ),
            "y_treatment": xr.apply_ufunc(
                stats.binom.logpmf, cell(a["y_t"], dims="cell"), cell(a["n_t"], dims="cell"), p_t
            ),
        }
    ).transpose("chain", "draw", "cell")


def predictive(group: xr.Dataset, spec: ModelSpec, rng: np.random.Generator) -> xr.Dataset:
    """Replicated counts per draw and cell: Binomial(n_arm, p_arm)."""
    a = spec.arrays()
    p_c, p_t = _arm_probs(group)
    dims = ("chain", "draw", "cell")
    p_c, p_t = p_c.transpose(*dims), p_t.transpose(*dims)
    return xr.Dataset(
        {
            "y_control": (dims, rng.binomial(a["n_c"], p_c.to_numpy())),
            "y_treatment": (dims, rng.binomial(a["n_t"], p_t.to_numpy())),
        },
        coords=p_c.coords,
    )


def observed_and_constant(spec: ModelSpec) -> tuple[xr.Dataset, xr.Dataset]:
    """The ``observed_data`` and ``constant_data`` groups."""
    a = spec.arrays()
    coords = spec.coords()
    cells = spec.data.cells()
    observed = xr.Dataset(
        {"y_control": ("cell", a["y_c"]), "y_treatment": ("cell", a["y_t"])}, coords={"cell": coords["cell"]}
    )
    constant = xr.Dataset(
        {
            "n_control": ("cell", a["n_c"]),
            "n_treatment": ("cell", a["n_t"]),
            "outcome_idx": ("cell", a["outcome_idx"]),
            "cell_outcome": ("cell", cells["outcome"].to_numpy(str)),
            "cell_subgroup": ("cell", cells["subgroup"].to_numpy(str)),
            "pooled": ("outcome", a["pooled"]),
            "offset": ("cell", a["offset"]),
            "direction": ("outcome", np.array([spec.data.directions[o] for o in coords["outcome"]])),
            "prior_w": (("outcome", "component"), a["prior_w"]),
            "prior_mu": (("outcome", "component"), a["prior_mu"]),
            "prior_sd": (("outcome", "component"), a["prior_sd"]),
            "hyper": ("hyper_name", a["hyper"]),
        },
        coords={**coords, "hyper_name": ["baseline_mean", "baseline_sd", "baseline_tau_sd", "effect_tau_sd"]},
    )
    return observed, constant


def _log_prior(posterior: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    from bayes_rescue.psense import log_prior

    return log_prior(posterior, spec)


def _run_nutpie(compiled, settings: SamplerSettings, target_accept: float, *, raw: bool = False):
    """nutpie NUTS on a compiled model with ``settings`` (draws, tune, chains, seed) at ``target_accept``."""
    return nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=settings.seed,
        target_accept=target_accept,
        progress_bar=False,
        return_raw_trace=raw,
    )


def _check_complete(chains: int | None, draws: int | None, settings: SamplerSettings) -> None:
    """nutpie answers Ctrl-C by returning the draws made so far; a trace shorter than asked for is
    therefore an interruption, raised as such, never passed on as a result."""
    if chains != settings.chains or draws != settings.draws:
        raise KeyboardInterrupt(
            f"sampling was interrupted: {chains} chains x {draws} draws of {settings.chains} x {settings.draws}"
        )


def _nuts(spec: ModelSpec, settings: SamplerSettings, target_accept: float, cache: ModelCache) -> xr.DataTree:
    """nutpie NUTS, converted to a DataTree (posterior and sample_stats groups)."""
    tree = _run_nutpie(cache.get(spec), settings, target_accept)
    sizes = tree["posterior"].sizes
    _check_complete(sizes.get("chain"), sizes.get("draw"), settings)
    return tree


def _arrow_numpy(column) -> np.ndarray:
    """A column of nutpie's raw (arro3) trace as NumPy: list columns become (rows, length)."""
    import pyarrow as pa

    arr = pa.array(column)
    if pa.types.is_large_list(arr.type) or pa.types.is_list(arr.type):
        return arr.flatten().to_numpy().reshape(len(arr), -1)
    return arr.to_numpy(zero_copy_only=False)


def _nuts_raw(
    spec: ModelSpec, settings: SamplerSettings, target_accept: float, cache: ModelCache, names=("alpha", "log_or")
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
    per_outcome = {"mu_alpha", "sigma_alpha", "mu_delta", "tau"}  # the rest are per cell (model.py)
    c = spec.coords()
    coords = {"chain": np.arange(settings.chains), "draw": np.arange(settings.draws), "cell": c["cell"]}
    coords["outcome"] = c["outcome"]
    posterior = xr.Dataset(
        {n: (("chain", "draw", "outcome" if n in per_outcome else "cell"), np.stack(v)) for n, v in post.items()},
        coords=coords,
    )
    sample_stats = xr.Dataset({"diverging": (("chain", "draw"), np.stack(diverging))}, coords=coords)
    return posterior, sample_stats


def sample_posterior(
    spec: ModelSpec, settings: SamplerSettings, cache: ModelCache | None = None
) -> tuple[xr.Dataset, xr.Dataset]:
    """Only what a sweep needs: the posterior effects and the divergence flags (no prior, predictive or
    log likelihood, no DataTree conversion), at ``settings.target_accept``."""
    posterior, sample_stats = _nuts_raw(
        spec, settings, settings.target_accept, DEFAULT_CACHE if cache is None else cache
    )
    return effects(posterior, spec), sample_stats


def _sample_once(spec: ModelSpec, settings: SamplerSettings, target_accept: float, cache: ModelCache) -> xr.DataTree:
    tree = _nuts(spec, settings, target_accept, cache)
    return _complete_tree(tree["posterior"].to_dataset(), tree["sample_stats"].to_dataset(), tree.attrs, spec, settings)


def _complete_tree(
    posterior: xr.Dataset, sample_stats: xr.Dataset, attrs: dict, spec: ModelSpec, settings: SamplerSettings
) -> xr.DataTree:
    """The full DataTree of one prior's fit from its posterior draws and sampler statistics: prior draws,
    log likelihood and log prior, predictive draws, data groups and the derived effects."""
    posterior = posterior[[v for v in posterior.data_vars if not v.endswith("__")]]
    rng = np.random.default_rng([settings.seed, 1])
    prior = prior_draws(spec, settings.prior_draws, rng)
    observed, constant = observed_and_constant(spec)
    out = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": sample_stats,
            "log_likelihood": log_likelihood(posterior, spec),
            "log_prior": _log_prior(posterior, spec),
            "posterior_predictive": predictive(posterior, spec, rng),
            "prior": prior,
            "prior_predictive": predictive(prior, spec, rng),
            "observed_data": observed,
            "constant_data": constant,
            "effects": effects(posterior, spec),
            "prior_effects": effects(prior, spec),
        }
    )
    out.attrs.update(attrs)
    return out


def _sample_stacked(specs: list[ModelSpec], settings: SamplerSettings, cache: ModelCache) -> list[xr.DataTree]:
    """One NUTS run of the stacked model (:func:`~bayes_rescue.model.build_stacked_model`), split into
    one full DataTree per spec. Every tree carries the run's shared ``sample_stats``."""
    tree = _run_nutpie(cache.get_stacked(specs), settings, settings.target_accept)
    posterior = tree["posterior"].to_dataset()
    _check_complete(posterior.sizes.get("chain"), posterior.sizes.get("draw"), settings)
    stats_ = tree["sample_stats"].to_dataset()
    attrs = {**tree.attrs, "bayes_rescue_sampled_with": json.dumps([s.prior.name for s in specs])}
    return [
        _complete_tree(posterior.isel(prior=k, drop=True), stats_, attrs, spec, settings)
        for k, spec in enumerate(specs)
    ]


def attach_provenance(tree: xr.DataTree, spec: ModelSpec, settings: SamplerSettings, **extra) -> None:
    """Store what is needed to rerun and audit the fit in the DataTree's root attributes."""
    tree.attrs.update(
        {
            "bayes_rescue_prior_name": spec.prior.name,
            "bayes_rescue_prior_spec": spec.prior.to_json(),
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
    tree = _sample_once(spec, settings, settings.target_accept, cache)
    diag = diagnose(tree, settings.target_accept)
    attempts = 1
    if not diag.passed and retry:
        tree = _sample_once(spec, settings, settings.retry_target_accept, cache)
        diag = diagnose(tree, settings.retry_target_accept)
        attempts = 2
    if not diag.passed:
        warnings.warn(
            f"prior '{spec.prior.name}': sampler diagnostics FAILED after {attempts} attempt(s): "
            + "; ".join(diag.problems()),
            RuntimeWarning,
            stacklevel=2,
        )
    attach_provenance(tree, spec, settings, diagnostics=diag.to_dict(), attempts=attempts)
    return FitResult(spec, tree, diag, attempts)


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
    prior alone with the same seed (another random stream), by Monte Carlo error only.
    """
    settings = settings or SamplerSettings()
    cache = DEFAULT_CACHE if cache is None else cache
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault((stack_key(spec), spec.data.sha256), []).append(i)
    results: list[FitResult | None] = [None] * len(specs)
    for idx in groups.values():
        group = [specs[i] for i in idx]
        names = [s.prior.name for s in group]
        if len(group) == 1 or len(set(names)) != len(names):
            for i in idx:
                results[i] = fit(specs[i], settings, cache=cache)
            continue
        for i, tree in zip(idx, _sample_stacked(group, settings, cache), strict=True):
            diag = diagnose(tree, settings.target_accept)
            if diag.passed:
                attach_provenance(tree, specs[i], settings, diagnostics=diag.to_dict(), attempts=1)
                results[i] = FitResult(specs[i], tree, diag, 1)
            else:
                alone = fit(specs[i], settings, cache=cache)
                alone.attempts += 1
                alone.tree.attrs["bayes_rescue_attempts"] = alone.attempts
                alone.tree.attrs["bayes_rescue_joint_run_problems"] = "; ".join(diag.problems())
                results[i] = alone
    return results
