"""Prior sensitivity: a grid over the effect prior's centre x spread (x robust weight), and the
reverse-Bayes tipping point.

Every point reuses one compiled model per structure (:class:`bayes_rescue.inference.sampling.ModelCache`): the prior is
data, swapped in without recompiling, and only the posterior effects and the diagnostics are computed.

**Importance sampling first** (``method="auto"``, the default). One long *reference* fit under the wide
prior N(0, 1.5285) on every outcome's log OR is reweighted to each grid prior: for outcome o the weight of
draw s is p_new(theta_s) / p_ref(theta_s), where theta is ``mu_log_or[o]`` (hierarchical) or the outcome's
cell log ORs (independent); outcomes have separate parameters, so each outcome's estimands use only its own
weights. The log weights are Pareto-smoothed (PSIS; Vehtari, Simpson, Gelman, Yao & Gabry, JMLR
2024;25(72):1-58). A point is accepted from the reweighted draws only if, for every outcome, the Pareto
k-hat is <= 0.7 and the effective sample size, the reference fit's ESS times the PSIS efficiency
1 / (S sum w^2), is >= 1000 for every estimand (the diagnostics gate, with the reference fit's R-hat and
divergences). Any other point is refitted by NUTS (``method`` column ``nuts``), with one adaptive retry.
``method="nuts"`` fits every point.

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

import numpy as np
import pandas as pd
from scipy import optimize, special

from bayes_rescue.data.counts import CountsData
from bayes_rescue.inference.derived import effects
from bayes_rescue.inference.diagnostics import ESS_MIN, diagnose_effects
from bayes_rescue.inference.psense import effect_log_prior_by_outcome
from bayes_rescue.inference.sampling import DEFAULT_CACHE, ModelCache, _nuts_raw, sample_posterior
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.estimands import benefit_sign, estimands, prob_column
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import EffectPrior, NormalComponent, PriorSpec, ess_patients, robustify

SWEEP_SETTINGS = SamplerSettings(draws=1000, tune=500, chains=4, prior_draws=1)


#: The most a retry multiplies a sweep point's draws by.
RETRY_MAX_FACTOR = 8


def retry_settings(settings: SamplerSettings, ess_min: float | None = None) -> SamplerSettings:
    """The settings of a sweep point's second attempt: more draws and warm-up, the retry target
    acceptance, the same seed.

    The draws are multiplied by 2, or, when the first attempt's smallest ESS ``ess_min`` fell short of the
    gate's minimum, by enough to reach it with a quarter to spare (ESS grows in proportion to the draws:
    ``ceil(1.25 * ESS_MIN / ess_min)``), at most :data:`RETRY_MAX_FACTOR`. Measured on the bench's
    200-point grid: a point (centre -1, sd 0.2, robust 0.2) had a bulk ESS of 410 at 1000 draws per
    chain; a flat doubling left it short again (906), four times the draws gave 1970."""
    factor = 2
    if ess_min is not None and ess_min < ESS_MIN:
        factor = max(2, min(RETRY_MAX_FACTOR, math.ceil(1.25 * ESS_MIN / max(ess_min, 1.0))))
    return dataclasses.replace(
        settings,
        draws=factor * settings.draws,
        tune=2 * settings.tune,
        target_accept=settings.retry_target_accept,
    )


def grid_prior(data: CountsData, centre_benefit: float, sd: float, robust: float = 0.0) -> PriorSpec:
    """N(centre, sd) on every outcome's log OR, centre in the benefit direction; optionally robust."""
    effects = {}
    for o in data.outcomes:
        mean = benefit_sign(data.directions[o]) * centre_benefit
        src = f"sensitivity grid point: benefit-scale centre {centre_benefit:g}, sd {sd:g}"
        effects[o] = EffectPrior((NormalComponent("grid", 1.0, mean, sd, src),), "sensitivity grid")
    spec = PriorSpec(f"grid_c{centre_benefit:g}_s{sd:g}", "sensitivity grid point", "", effects, origin="grid")
    return robustify(spec, robust) if robust > 0 else spec


#: The reference fit that importance sampling reweights: many draws, so that reweighted points keep ESS.
REFERENCE_SETTINGS = SamplerSettings(draws=5000, tune=1000, chains=4, prior_draws=1)
REFERENCE_SD = 1.5285  # the neutral prior's sd: 95% of OR within 1/20..20
PARETO_K_MAX = 0.7
METHODS = ("auto", "nuts")


def _weighted_rows(
    est: pd.DataFrame,
    rd: np.ndarray,
    weights: np.ndarray | None,
    mcids: Sequence[float],
    extra: list[dict],
    order: np.ndarray | None = None,
) -> list[dict]:
    """Per estimand: P(benefit), P(benefit >= m) and the median RD from draws ``rd`` (S, estimand) with
    normalised ``weights`` (S, estimand; None = equal weights); ``extra[i]`` holds the diagnostics columns.
    ``order`` (S, estimand), the argsort of ``rd`` by column, may be passed when it is reused."""
    rows = []
    for i, e in enumerate(est.itertuples()):
        x = rd[:, i]
        w = np.full(x.size, 1.0 / x.size) if weights is None else weights[:, i]
        xb = benefit_sign(e.direction) * x
        if weights is None:
            median = float(np.median(x))
        else:
            o = np.argsort(x, kind="stable") if order is None else order[:, i]
            median = float(x[o][min(np.searchsorted(np.cumsum(w[o]), 0.5), x.size - 1)])
        rows.append(
            {
                "outcome": e.outcome,
                "subgroup": e.subgroup,
                "p_benefit": float(w[xb > 0].sum()),
                **{prob_column("benefit", m): float(w[xb >= m].sum()) for m in mcids},
                "rd_median": median,
                **extra[i],
            }
        )
    return rows


def _worst_per_estimand(diag) -> pd.DataFrame:
    """Per estimand (index): the worst R-hat (``rhat_max``) and the worst bulk or tail ESS (``ess_min``)
    over its RD and log OR."""
    per = diag.per_estimand.set_index("estimand")
    return pd.DataFrame(
        {
            "rhat_max": per[["rhat_rd", "rhat_log_or"]].max(axis=1),
            "ess_min": per[["ess_bulk_rd", "ess_bulk_log_or", "ess_tail_rd", "ess_tail_log_or"]].min(axis=1),
        }
    )


class ImportanceReweighter:
    """A reference fit under N(0, ``REFERENCE_SD``) on every outcome's log OR, reweighted by PSIS to other
    effect priors (see the module docstring for the weights and the acceptance rule).

    Like :func:`~bayes_rescue.inference.sampling.fit`, the reference fit is retried once at the higher target acceptance
    if it fails the diagnostics gate (a single divergence in its 4 x 5000 draws: 3 of 12 seeds tried on the
    bundled cohort); if it fails again, no point is taken from it and every point is fitted by NUTS."""

    def __init__(
        self,
        data: CountsData,
        kind: str,
        *,
        settings: SamplerSettings = REFERENCE_SETTINGS,
        cache: ModelCache | None = None,
    ) -> None:
        from arviz_stats.base import array_stats

        self._psislw = array_stats.psislw
        self.data, self.kind = data, kind
        self.spec = ModelSpec(data, grid_prior(data, 0.0, REFERENCE_SD), kind)
        names = ("baseline", "delta", "mu_log_or") if kind == "hierarchical" else ("baseline", "delta")
        cache = DEFAULT_CACHE if cache is None else cache
        for target_accept in (settings.target_accept, settings.retry_target_accept):  # the gate's one retry
            self.posterior, sample_stats = _nuts_raw(self.spec, settings, target_accept, cache, names=names)
            eff = effects(self.posterior, self.spec)
            self.diagnostics = diagnose_effects(eff, sample_stats, target_accept)
            if self.diagnostics.passed:
                break
        self.est = estimands(self.spec)
        n_out = len(data.outcomes)
        self.n_draws = settings.chains * settings.draws
        self.est_outcome = self.est["outcome"].map({o: i for i, o in enumerate(data.outcomes)}).to_numpy()
        self.rd = eff["rd"].transpose("chain", "draw", "estimand").to_numpy().reshape(self.n_draws, -1)
        self.order = np.argsort(self.rd, axis=0, kind="stable")  # reused by every reweighting
        self.ref_logp = effect_log_prior_by_outcome(self.posterior, self.spec).reshape(self.n_draws, n_out)
        worst = _worst_per_estimand(self.diagnostics).loc[self.est["estimand"]]
        self.ref_ess = worst["ess_min"].to_numpy()
        self.ref_rhat = worst["rhat_max"].to_numpy()

    def rows(self, prior: PriorSpec, mcids: Sequence[float]) -> list[dict] | None:
        """Grid rows for ``prior`` from the reweighted reference draws, or None if PSIS is not reliable."""
        if not self.diagnostics.passed:
            return None
        spec = ModelSpec(self.data, prior, self.kind)
        logw = effect_log_prior_by_outcome(self.posterior, spec).reshape(self.n_draws, -1) - self.ref_logp
        weights, khat, efficiency = [], [], []
        for j in range(logw.shape[1]):
            if np.ptp(logw[:, j]) < 1e-12:  # the reference prior itself: equal weights, nothing to smooth
                lw, k = np.zeros(self.n_draws), 0.0
            else:
                try:  # arviz-stats' psislw takes LOO's log-likelihood convention and negates it
                    with np.errstate(over="ignore", invalid="ignore"):  # extreme tails: k-hat decides
                        lw, k = self._psislw(-logw[:, j])
                except ValueError:  # a degenerate tail: PSIS cannot vouch for these weights
                    return None
            lw = np.asarray(lw, float) - special.logsumexp(lw)
            w = np.exp(lw)
            weights.append(w)
            khat.append(float(k))
            efficiency.append(1.0 / (self.n_draws * float(np.sum(w * w))))
        if not all(math.isfinite(k) and k <= PARETO_K_MAX for k in khat):
            return None
        ess = self.ref_ess * np.array(efficiency)[self.est_outcome]
        if not (ess >= ESS_MIN).all():
            return None
        extra = [
            {
                "rhat_max": float(self.ref_rhat[i]),
                "ess_min": float(ess[i]),
                "divergences": self.diagnostics.divergences,
                "diagnostics_passed": True,
                "attempts": 0,
                "method": "psis",
                "pareto_k": khat[self.est_outcome[i]],
            }
            for i in range(len(self.est))
        ]
        w = np.stack(weights, axis=1)[:, self.est_outcome]
        return _weighted_rows(self.est, self.rd, w, mcids, extra, order=self.order)


def _point_rows(
    data: CountsData,
    kind: str,
    prior: PriorSpec,
    settings: SamplerSettings,
    mcids: Sequence[float],
    cache: ModelCache,
) -> list[dict]:
    spec = ModelSpec(data, prior, kind)
    eff, stats = sample_posterior(spec, settings, cache)
    diag = diagnose_effects(eff, stats, settings.target_accept)
    attempts = 1
    if not diag.passed:  # adaptive: one retry with more draws (retry_settings), at the retry acceptance
        settings = retry_settings(settings, min(diag.min_ess_bulk, diag.min_ess_tail))
        eff, stats = sample_posterior(spec, settings, cache)
        diag = diagnose_effects(eff, stats, settings.target_accept)
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
    reweighter = _reweighter_for(method, data, kind, settings, reference_settings)
    done: dict[int, list[dict]] = {}
    for i, (_, _, c, s, r, _, m) in enumerate(tasks):
        rows = reweighter.rows(grid_prior(data, c, s, r), m) if reweighter is not None else None
        if rows is not None:
            done[i] = [{"centre_benefit": c, "sd": s, "robust": r, **row} for row in rows]
    pending = [i for i in range(len(tasks)) if i not in done]
    mapper = map if map_fn is None else map_fn
    for i, part in zip(pending, mapper(_grid_task, [tasks[i] for i in pending]), strict=True):
        done[i] = part
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
    memo: dict[tuple[float, float], pd.DataFrame] = {}
    reweighter = _reweighter_for(method, data, kind, settings, reference_settings, cache)

    def at(centre: float, sd: float) -> pd.DataFrame:
        key = (round(centre, 12), round(sd, 12))
        if key not in memo:
            prior = grid_prior(data, centre, sd)
            rows = reweighter.rows(prior, ()) if reweighter is not None else None
            if rows is None:
                rows = _point_rows(data, kind, prior, settings, (), cache)
            memo[key] = pd.DataFrame(rows).set_index(["outcome", "subgroup"])
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
