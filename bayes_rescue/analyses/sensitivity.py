"""Prior sensitivity: a grid over the effect prior's centre x spread (x robust weight), and the
reverse-Bayes tipping point.

Every point reuses one compiled model per structure (:class:`bayes_rescue.inference.sampling.ModelCache`): the prior is
data, swapped in without recompiling, and only the posterior effects and the diagnostics are computed.

**Importance sampling first** (``method="auto"``, the default): one long reference fit is reweighted by PSIS to
each grid prior (:mod:`bayes_rescue.analyses.reweighting`, which states the weights and the acceptance rule). Any
other point is refitted by NUTS (``method`` column ``nuts``), with one adaptive retry. ``method="nuts"`` fits every
point.

The grid's centre is on the **benefit** scale: ``centre_benefit = +0.5`` means a prior log OR of +0.5 for an
outcome where more events is better and -0.5 for one where fewer is better, so one grid serves every
outcome. The same normal prior N(centre, sd) (optionally mixed with N(0, 1.5285) at the robust weight)
is set for every outcome at once; outcomes are independent in the model, so this is the same as sweeping
them one at a time.

**Tipping point** (reverse Bayes; Matthews, J R Stat Soc A 2001;164:17-34; Held, J R Stat Soc A
2019;182:1253-1272): for each outcome x estimand, the skeptical prior N(0, s) whose posterior P(benefit) is
exactly the chosen level (default 0.95). Smaller s (a more skeptical reader) brings P(benefit) down towards
0.5, so the tipping s is the most skeptical prior under which the benefit still reaches the level. It is
found by Brent's method on log s over fits with common random numbers (one seed), to a relative tolerance
of 1%, and reported as the prior sd and as its effective sample size in patients (ELIR at the cohort's
control risk).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import pandas as pd
from scipy import optimize

from bayes_rescue import progress
from bayes_rescue.analyses.reweighting import (  # noqa: F401 - PARETO_K_MAX, REFERENCE_SD: this module's API too
    PARETO_K_MAX,
    REFERENCE_SD,
    REFERENCE_SETTINGS,
    ImportanceReweighter,
    _weighted_rows,
    _worst_per_estimand,
    grid_prior,
)
from bayes_rescue.data.counts import CountsData
from bayes_rescue.inference.derived import effects
from bayes_rescue.inference.sampling import DEFAULT_CACHE, ModelCache, sample_gated
from bayes_rescue.inference.settings import RETRY_MAX_FACTOR, SamplerSettings, retry_settings  # noqa: F401
from bayes_rescue.model.estimands import estimands
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import EffectPrior, NormalComponent, PriorSpec, ess_patients

SWEEP_SETTINGS = SamplerSettings(draws=1000, tune=500, chains=4, prior_draws=1)
METHODS = ("auto", "nuts")


def _point_rows(
    data: CountsData,
    kind: str,
    prior: PriorSpec,
    settings: SamplerSettings,
    mcids: Sequence[float],
    cache: ModelCache,
) -> list[dict]:
    spec = ModelSpec(data, prior, kind)
    posterior, _, diag = sample_gated(spec, settings, cache=cache)
    eff = effects(posterior, spec)
    attempts = 1
    if not diag.passed:  # adaptive: one retry with more draws (retry_settings), at the retry acceptance
        settings = retry_settings(settings, min(diag.min_ess_bulk, diag.min_ess_tail))
        posterior, _, diag = sample_gated(spec, settings, cache=cache)
        eff = effects(posterior, spec)
        attempts = 2
    worst = _worst_per_estimand(diag)
    est = estimands(spec)
    rd = eff["rd"].transpose("chain", "draw", "estimand").to_numpy().reshape(-1, len(est))
    extra = []
    for e in est["estimand"]:
        extra.append(
            {
                "rhat_max": float(worst.at[e, "rhat_max"]),
                "ess_min": float(worst.at[e, "ess_min"]),
                "divergences": diag.divergences,
                "diagnostics_passed": diag.passed,
                "attempts": attempts,
                "method": "nuts",
                "pareto_k": math.nan,
            }
        )
    return _weighted_rows(est, rd, None, mcids, extra)


def _reweighter_for(
    method: str,
    data: CountsData,
    kind: str,
    settings: SamplerSettings,
    reference_settings: SamplerSettings,
    cache: ModelCache | None = None,
) -> ImportanceReweighter | None:
    """The reference fit for ``method="auto"`` (with the sweep's seed), None for ``"nuts"``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    if method == "nuts":
        return None
    return ImportanceReweighter(
        data, kind, settings=dataclasses.replace(reference_settings, seed=settings.seed), cache=cache
    )


def _grid_task(args: tuple) -> list[dict]:
    """One grid point (a picklable task for Dask workers; each worker keeps its own compile cache)."""
    data, kind, centre, sd, robust, settings, mcids = args
    rows = _point_rows(data, kind, grid_prior(data, centre, sd, robust), settings, mcids, DEFAULT_CACHE)
    return [{"centre_benefit": centre, "sd": sd, "robust": robust, **r} for r in rows]


def sensitivity_grid(
    data: CountsData,
    *,
    kind: str = "hierarchical",
    centres: Sequence[float] = (-0.5, 0.0, 0.5, 1.0),
    sds: Sequence[float] = (0.25, 0.5, 1.0, 2.0),
    robust: Sequence[float] = (0.0,),
    settings: SamplerSettings = SWEEP_SETTINGS,
    mcids: Sequence[float] = (0.05, 0.10),
    map_fn: Callable | None = None,
    method: str = "auto",
    reference_settings: SamplerSettings = REFERENCE_SETTINGS,
) -> pd.DataFrame:
    """Posterior summaries over the grid; one row per grid point x outcome x estimand.

    ``method="auto"`` takes each point from the PSIS-reweighted reference fit when that passes the gate
    and fits the rest by NUTS; ``"nuts"`` fits every point. The reference fit uses ``settings.seed``.
    ``map_fn`` maps the NUTS task function over the NUTS points (default: the builtin ``map``, serial in
    this process); :func:`bayes_rescue.parallel.dask_map` runs them as independent Dask tasks. Every point
    uses the same seed, so the result does not depend on where a point ran.
    """
    tasks = [(data, kind, c, s, r, settings, tuple(mcids)) for r in robust for s in sds for c in centres]
    with progress.task("sensitivity grid: reference fit"):
        reweighter = _reweighter_for(method, data, kind, settings, reference_settings)
    done: dict[int, list[dict]] = {}
    with progress.task("sensitivity grid: points", total=len(tasks)) as advance:
        for i, (_, _, c, s, r, _, m) in enumerate(tasks):
            rows = reweighter.rows(grid_prior(data, c, s, r), m) if reweighter is not None else None
            if rows is not None:
                done[i] = [{"centre_benefit": c, "sd": s, "robust": r, **row} for row in rows]
                advance()
        pending = [i for i in range(len(tasks)) if i not in done]
        mapper = map if map_fn is None else map_fn
        for i, part in zip(pending, mapper(_grid_task, [tasks[i] for i in pending]), strict=True):
            done[i] = part
            advance()
    return pd.DataFrame([row for i in range(len(tasks)) for row in done[i]])


def tipping_points(
    data: CountsData,
    *,
    kind: str = "hierarchical",
    levels: Sequence[float] = (0.95, 0.5),
    settings: SamplerSettings = SWEEP_SETTINGS,
    sd_bounds: tuple[float, float] = (0.02, 10.0),
    centre_sd: float = 0.5,
    centre_bounds: tuple[float, float] = (-5.0, 0.0),
    cache: ModelCache | None = None,
    method: str = "auto",
    reference_settings: SamplerSettings = REFERENCE_SETTINGS,
) -> pd.DataFrame:
    """Reverse-Bayes tipping points per outcome x estimand and level (see the module docstring).

    Two prior families are searched by root-finding over fits:

    - ``tipping_sd``: the skeptical N(0, s) whose posterior P(benefit) equals the level (levels > 0.5;
      a prior centred on 0 cannot bring P(benefit) below 0.5);
    - ``tipping_centre``: with the sd fixed at ``centre_sd``, the most pessimistic centre (benefit scale,
      <= 0) under which P(benefit) still equals the level: how much prior belief in harm the data overcome.

    Each evaluation reweights the reference fit where PSIS passes the gate (``method="auto"``; a smooth
    function of the prior, which suits root-finding) and otherwise fits by NUTS with the one seed.
    """
    cache = DEFAULT_CACHE if cache is None else cache
    with progress.task("tipping points: reference fit"):
        reweighter = _reweighter_for(method, data, kind, settings, reference_settings, cache)
    with progress.task("tipping points: prior evaluations") as advance:
        return _tipping_search(
            data, kind, levels, settings, sd_bounds, centre_sd, centre_bounds, cache, reweighter, advance
        )


def _tipping_search(
    data: CountsData,
    kind: str,
    levels: Sequence[float],
    settings: SamplerSettings,
    sd_bounds: tuple[float, float],
    centre_sd: float,
    centre_bounds: tuple[float, float],
    cache: ModelCache,
    reweighter: ImportanceReweighter | None,
    advance: Callable[[], None],
) -> pd.DataFrame:
    """The root-finding of :func:`tipping_points` (its arguments, and the reference reweighter); calls
    ``advance()`` once per prior evaluated."""
    memo: dict[tuple[float, float], pd.DataFrame] = {}

    def at(centre: float, sd: float) -> pd.DataFrame:
        key = (round(centre, 12), round(sd, 12))
        if key not in memo:
            prior = grid_prior(data, centre, sd)
            rows = reweighter.rows(prior, ()) if reweighter is not None else None
            if rows is None:
                rows = _point_rows(data, kind, prior, settings, (), cache)
            memo[key] = pd.DataFrame(rows).set_index(["outcome", "subgroup"])
            advance()
        return memo[key]

    def solve(f, a: float, b: float, xtol: float) -> tuple[str, float]:
        fa, fb = f(a), f(b)
        if fa < 0 and fb < 0:
            return "not reached: P(benefit) is below the level across the bracket", math.nan
        if fa > 0 and fb > 0:
            return "reached across the whole bracket", math.nan
        return "found", float(optimize.brentq(f, a, b, xtol=xtol))

    lo, hi = sd_bounds
    clo, chi = centre_bounds
    cells = data.cells()
    out = []
    for (outcome, subgroup), _ in at(0.0, hi).iterrows():
        sub = cells[cells["outcome"] == outcome]
        if subgroup != "overall":
            sub = sub[sub["subgroup"] == subgroup]
        p_c = float(sub["y_c"].sum() / sub["n_c"].sum())
        key = (outcome, subgroup)
        for level in levels:
            row = {"outcome": outcome, "subgroup": subgroup, "level": level, "p_control": p_c}
            if level > 0.5:
                status, log_sd = solve(
                    lambda x, lv=level, k=key: at(0.0, math.exp(x)).loc[k, "p_benefit"] - lv,
                    math.log(lo),
                    math.log(hi),
                    0.01,
                )
                sd = math.exp(log_sd) if status == "found" else math.nan
            else:
                status, sd = "not applicable: a prior centred on 0 keeps P(benefit) above 0.5", math.nan
            ess = ess_patients(EffectPrior((NormalComponent("s", 1.0, 0.0, sd, "tip"),)), p_c) if sd == sd else math.nan
            c_status, centre = solve(
                lambda c, lv=level, k=key: at(c, centre_sd).loc[k, "p_benefit"] - lv, clo, chi, 0.01
            )
            out.append(
                {
                    **row,
                    "sd_status": status,
                    "tipping_sd": sd,
                    "tipping_sd_ess_patients": ess,
                    "centre_sd": centre_sd,
                    "centre_status": c_status,
                    "tipping_centre": centre,
                    "tipping_centre_or": math.exp(centre) if centre == centre else math.nan,
                }
            )
    return pd.DataFrame(out)


def points_failing_gate(grid: pd.DataFrame) -> int:
    """Number of grid points (centre x sd x robust) whose fit failed the diagnostics gate."""
    return int((~grid.groupby(["centre_benefit", "sd", "robust"])["diagnostics_passed"].all()).sum())


__all__ = [
    "REFERENCE_SETTINGS",
    "SWEEP_SETTINGS",
    "ImportanceReweighter",
    "grid_prior",
    "points_failing_gate",
    "sensitivity_grid",
    "tipping_points",
]
