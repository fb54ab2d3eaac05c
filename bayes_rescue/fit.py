"""Sampling, the diagnostics gate and the derived effects (risk difference, RR, OR per estimand).

A fit is accepted only if every reported quantity has R-hat <= 1.01, bulk and tail ESS >= 1000 and there
are no divergences. A fit that falls short is retried once with a higher target acceptance; if it still
falls short the caller is told loudly (:class:`FitResult.passed` is False and :func:`fit` warns).
"""

from __future__ import annotations

import json
import platform
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy import special

from bayes_rescue.data import OVERALL
from bayes_rescue.model import ModelSpec, build_model

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
    target_accept: float = 0.9
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
                rows.append({**r.to_dict(), "estimand": f"{outcome}/{r['subgroup']}", "level": "subgroup", "cells": [i]})
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
    pc_cell = special.expit(alpha)
    pt_cell = special.expit(alpha + delta)
    n = len(est)
    pc = np.empty(alpha.shape[:2] + (n,))
    ptr = np.empty_like(pc)
    for j, idx in enumerate(est["cells"]):
        v = size[idx] / size[idx].sum()
        pc[..., j] = pc_cell[..., idx] @ v
        ptr[..., j] = pt_cell[..., idx] @ v
    log_or = special.logit(ptr) - special.logit(pc)
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
            "rr": (dims, ptr / pc),
            "odds_ratio": (dims, np.exp(log_or)),
            "log_or": (dims, log_or),
        },
        coords=coords,
    )


def diagnose(tree: xr.DataTree, target_accept: float) -> Diagnostics:
    """R-hat (rank-normalised), bulk and tail ESS of every reported quantity, and divergences."""
    post = tree["effects"].to_dataset()[["rd", "log_or"]]
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
    divergences = int(tree["sample_stats"]["diverging"].sum())
    return Diagnostics(
        max_rhat=float(np.nanmax(per[["rhat_rd", "rhat_log_or"]].to_numpy())),
        min_ess_bulk=float(np.nanmin(per[["ess_bulk_rd", "ess_bulk_log_or"]].to_numpy())),
        min_ess_tail=float(np.nanmin(per[["ess_tail_rd", "ess_tail_log_or"]].to_numpy())),
        divergences=divergences,
        target_accept=target_accept,
        per_estimand=per,
    )


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("bayes_rescue", "pymc", "pytensor", "nutpie", "arviz", "xarray", "numpy", "scipy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _sample_once(spec: ModelSpec, settings: SamplerSettings, target_accept: float) -> xr.DataTree:
    model = build_model(spec)
    with model:
        tree = pm.sample(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            random_seed=settings.seed,
            target_accept=target_accept,
            nuts_sampler="nutpie",
            progressbar=False,
        )
        prior = pm.sample_prior_predictive(draws=settings.prior_draws, random_seed=settings.seed + 1)
        pm.compute_log_likelihood(tree, progressbar=False)
        pm.sample_posterior_predictive(tree, random_seed=settings.seed + 2, progressbar=False, extend_inferencedata=True)
    tree["prior"] = prior["prior"]
    tree["prior_predictive"] = prior["prior_predictive"]
    tree["effects"] = effects(tree["posterior"].to_dataset(), spec)
    tree["prior_effects"] = effects(tree["prior"].to_dataset(), spec)
    return tree


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
            **{f"bayes_rescue_{k}": (v if isinstance(v, str | int | float) else json.dumps(v)) for k, v in extra.items()},
        }
    )


def fit(spec: ModelSpec, settings: SamplerSettings | None = None, *, retry: bool = True) -> FitResult:
    """Sample ``spec``; check diagnostics; retry once at a higher target acceptance if they fail.

    Returns the result whatever the diagnostics say, and warns (``RuntimeWarning``) when they fail:
    the caller decides whether to stop (the CLI exits non-zero unless ``--keep-going``).
    """
    settings = settings or SamplerSettings()
    tree = _sample_once(spec, settings, settings.target_accept)
    diag = diagnose(tree, settings.target_accept)
    attempts = 1
    if not diag.passed and retry:
        tree = _sample_once(spec, settings, settings.retry_target_accept)
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
