"""Importance sampling of the sensitivity sweep: one reference fit reweighted by PSIS to other effect priors,
and the grid's prior family.

One long *reference* fit under the wide prior N(0, 1.5285) on every outcome's log OR is reweighted to each grid
prior: for outcome o the weight of draw s is p_new(theta_s) / p_ref(theta_s), where theta is ``mu_log_or[o]``
(hierarchical) or the outcome's cell log ORs (independent); outcomes have separate parameters, so each outcome's
estimands use only its own weights. The log weights are Pareto-smoothed (PSIS; Vehtari, Simpson, Gelman, Yao &
Gabry, JMLR 2024;25(72):1-58). A point is accepted from the reweighted draws only if, for every outcome, the
Pareto k-hat is <= 0.7 and the effective sample size, the reference fit's ESS times the PSIS efficiency
1 / (S sum w^2), is >= 1000 for every estimand (the diagnostics gate, with the reference fit's R-hat and
divergences). :mod:`bayes_rescue.analyses.sensitivity` refits any other point by NUTS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from bayes_rescue.data.counts import CountsData
from bayes_rescue.inference.derived import effects
from bayes_rescue.inference.diagnostics import ESS_MIN
from bayes_rescue.inference.psense import effect_log_prior_by_outcome
from bayes_rescue.inference.sampling import DEFAULT_CACHE, ModelCache, sample_gated
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.estimands import benefit_sign, estimands, prob_column
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import EffectPrior, NormalComponent, PriorSpec, robustify


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
            self.posterior, _, self.diagnostics = sample_gated(
                self.spec, settings, target_accept=target_accept, cache=cache, names=names
            )
            eff = effects(self.posterior, self.spec)
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


__all__ = ["PARETO_K_MAX", "REFERENCE_SD", "REFERENCE_SETTINGS", "ImportanceReweighter", "grid_prior"]
