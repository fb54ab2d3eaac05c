"""Tipping bias: how large a bias towards apparent benefit would bring P(benefit) below a level.

The bias-adjusted model (:mod:`bayes_rescue.model.build`, Turner et al. 2009) observes the arms at
``baseline -/+ (delta + bias) / 2`` with ``bias[o] ~ Normal(m_o, s_o)``, ``m_o`` signed towards apparent benefit
(+m for an outcome where more events is better, -m where fewer is better). For a bias model with sds ``s_o``,
the *tipping bias* of an estimand at level L is the bias mean m (on the benefit scale, log OR) at which the
posterior P(benefit) of the adjusted effect equals L. A larger m explains more of the observed benefit, so
P(benefit) falls as m grows: the tipping m is the smallest systematic bias that the conclusion "P(benefit) >= L"
cannot survive. It is reported on the log OR scale and as the ratio of odds ratios ROR = exp(-m) of the
meta-epidemiological literature (ROR < 1: benefit exaggerated), next to the bias model's own mean.

Computation: the model with the bias is compiled once and refitted by NUTS (common random numbers: one seed)
at every m of a grid (default -1 to 3 by 0.125, all outcomes at once: outcomes have separate parameters); the
tipping m is the linear interpolation of P(benefit) - L between the two grid points that bracket it. Its
accuracy is therefore about the grid step plus the Monte Carlo error of P(benefit) divided by the local slope.
Every grid fit is gated like any other (``diagnostics_passed`` per grid point in the curve table).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayes_rescue.data.counts import CountsData
from bayes_rescue.inference.diagnostics import diagnose_effects
from bayes_rescue.inference.sampling import DEFAULT_CACHE, ModelCache, sample_posterior
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.estimands import benefit_sign, estimands
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.bias import BiasModel, BiasTerm
from bayes_rescue.priors.spec import PriorSpec

#: NUTS settings of a grid point (as the sensitivity sweep's).
BIAS_SWEEP_SETTINGS = SamplerSettings(draws=1000, tune=500, chains=4, prior_draws=1)
DEFAULT_GRID = tuple(np.round(np.arange(-1.0, 3.0 + 1e-9, 0.125), 6))


def with_bias_mean(bias: BiasModel, outcomes: Sequence[str], mean_benefit: float) -> BiasModel:
    """``bias`` with every outcome's mean set to ``mean_benefit`` (benefit scale), its sds kept."""
    terms = {
        o: BiasTerm(
            mean_benefit=float(mean_benefit),
            sd=bias.term_for(o).sd,
            source=f"tipping-bias grid point (sd from '{bias.name}')",
            assumption="a grid point of the tipping-bias search, not a bias estimate",
        )
        for o in outcomes
    }
    return dataclasses.replace(bias, name=f"{bias.name}@{mean_benefit:g}", terms=terms)


def bias_curve(
    data: CountsData,
    prior: PriorSpec,
    bias: BiasModel,
    *,
    kind: str = "hierarchical",
    grid: Sequence[float] = DEFAULT_GRID,
    settings: SamplerSettings = BIAS_SWEEP_SETTINGS,
    cache: ModelCache | None = None,
) -> pd.DataFrame:
    """P(benefit) of every estimand at every bias mean of ``grid`` (benefit scale), with each point's
    diagnostics: columns ``outcome, subgroup, bias_mean, p_benefit, diagnostics_passed``."""
    cache = DEFAULT_CACHE if cache is None else cache
    est = estimands(ModelSpec(data, prior, kind))
    rows = []
    for m in grid:
        spec = ModelSpec(data, prior, kind, bias=with_bias_mean(bias, data.outcomes, m))
        eff, stats_ = sample_posterior(spec, settings, cache)
        passed = diagnose_effects(eff, stats_, settings.target_accept).passed
        for _, e in est.iterrows():
            lor = eff["log_or"].sel(estimand=e["estimand"]).to_numpy()
            rows.append(
                {
                    "outcome": e["outcome"],
                    "subgroup": e["subgroup"],
                    "bias_mean": float(m),
                    "p_benefit": float((benefit_sign(e["direction"]) * lor > 0).mean()),
                    "diagnostics_passed": bool(passed),
                }
            )
    return pd.DataFrame(rows)


def crossing(x: np.ndarray, y: np.ndarray, level: float) -> tuple[float, str]:
    """The first x where y (decreasing in x, up to noise) falls below ``level``, by linear interpolation;
    with a status: ``found``, ``below grid`` (already below at the smallest x) or ``above grid``."""
    if y[0] < level:
        return math.nan, "below grid"
    for i in range(1, len(x)):
        if y[i] < level:
            t = (y[i - 1] - level) / (y[i - 1] - y[i])
            return float(x[i - 1] + t * (x[i] - x[i - 1])), "found"
    return math.nan, "above grid"


def tipping_bias(curve: pd.DataFrame, bias: BiasModel, *, levels: Sequence[float] = (0.95, 0.5)) -> pd.DataFrame:
    """The tipping bias per estimand and level from :func:`bias_curve`'s table: columns ``outcome,
    subgroup, level, bias_model, bias_sd, model_bias_mean, tipping_bias_mean`` (log OR, benefit scale),
    ``tipping_ror`` (exp(-m)), ``model_ror``, ``status``, ``grid_step``, ``grid_points_failing_gate``."""
    rows = []
    for (o, s), part in curve.groupby(["outcome", "subgroup"], sort=False):
        part = part.sort_values("bias_mean")
        x, y = part["bias_mean"].to_numpy(), part["p_benefit"].to_numpy()
        term = bias.term_for(o)
        for level in levels:
            m, status = crossing(x, y, level)
            rows.append(
                {
                    "outcome": o,
                    "subgroup": s,
                    "level": level,
                    "bias_model": bias.name,
                    "bias_sd": term.sd,
                    "model_bias_mean": term.mean_benefit,
                    "model_ror": math.exp(-term.mean_benefit),
                    "tipping_bias_mean": m,
                    "tipping_ror": math.exp(-m) if status == "found" else math.nan,
                    "status": status,
                    "grid_step": float(np.diff(x).min()) if len(x) > 1 else math.nan,
                    "grid_points_failing_gate": int((~part["diagnostics_passed"]).sum()),
                }
            )
    return pd.DataFrame(rows)
