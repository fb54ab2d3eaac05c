"""NUTS posteriors agree with an independent 2-D quadrature of the same model.

Reference numbers come from ``tests/quadrature.py`` (midpoint-rule quadrature of prior x binomial
likelihood over (baseline, log OR), written from the model's mathematics without package code).
Tolerance: 4 Monte Carlo standard errors of each NUTS estimate (ArviZ ``mcse``: method "mean" for
probabilities, as means of indicators; "quantile" for RD quantiles) plus 1e-3 for the quadrature.
Under correct sampling a 4-MCSE miss has probability ~6e-5 per comparison, so the test is not flaky,
yet a wrong likelihood, link, prior or mixture padding moves these numbers by far more than that.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr
from quadrature import reference_summary

from bayes_rescue.data.counts import load_counts
from bayes_rescue.inference.sampling import fit
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.estimands import estimands
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import load_prior, parse_prior

SETTINGS = SamplerSettings(draws=2500, tune=600, chains=4, seed=11, prior_draws=500)

MIXTURE_PRIOR = {
    "name": "test_mixture",
    "description": "two-component mixture on mrs_0_2, plain normal on mortality (exercises padding)",
    "effect": {
        "mrs_0_2": {
            "components": [
                {"name": "informative", "weight": 0.8, "mean": 0.87, "sd": 0.3, "source": "test"},
                {"name": "vague", "weight": 0.2, "mean": 0.0, "sd": 2.0, "source": "test"},
            ]
        },
        "mortality": {"components": [{"name": "n", "weight": 1.0, "mean": -0.2, "sd": 0.6, "source": "test"}]},
    },
}


def _mcse(draws: np.ndarray, *, method: str, prob: float | None = None) -> float:
    da = xr.DataArray(draws, dims=("chain", "draw"))
    return float(az.mcse(da, method=method, prob=prob))


def _compare(result, tol_extra=1e-3):
    spec = result.spec
    eff = result.effects
    checked = 0
    for _, e in estimands(spec).iterrows():
        if e["level"] == "cohort" and len(e["cells"]) > 1:
            continue  # standardised rows are not single 2x2 cells
        prior = spec.prior.effect_for(e["outcome"])
        ref = reference_summary(
            e["y_t"],
            e["n_t"],
            e["y_c"],
            e["n_c"],
            direction=e["direction"],
            weights=prior.weights,
            means=prior.means,
            sds=prior.sds,
            m_b=spec.prior.hyper["baseline_mean"],
            s_b=spec.prior.hyper["baseline_sd"],
        )
        rd = eff["rd"].sel(estimand=e["estimand"]).transpose("chain", "draw").to_numpy()
        sign = 1.0 if e["direction"] == "higher" else -1.0
        ben = (sign * rd > 0).astype(float)
        ge10 = (sign * rd >= 0.10).astype(float)
        for name, ind in (("p_benefit", ben), ("p_benefit_ge_0.1", ge10)):
            tol = 4 * _mcse(ind, method="mean") + tol_extra
            assert abs(ind.mean() - ref[name]) <= tol, (e["estimand"], name, ind.mean(), ref[name], tol)
        for q, r in zip((0.025, 0.5, 0.975), ref["rd_q"], strict=True):
            tol = 4 * _mcse(rd, method="quantile", prob=q) + tol_extra
            assert abs(np.quantile(rd, q) - r) <= tol, (e["estimand"], q, np.quantile(rd, q), r, tol)
        checked += 1
    return checked


@pytest.fixture(scope="module")
def data():
    return load_counts("bundled:chen2025")


def test_independent_normal_prior_matches_quadrature(data):
    """Skeptical (normal) prior, independent model: every cell against quadrature."""
    result = fit(ModelSpec(data, load_prior("skeptical"), "independent"), SETTINGS)
    assert result.passed, result.diagnostics.problems()
    assert _compare(result) == 3


def test_independent_mixture_prior_matches_quadrature(data):
    """A two-component mixture prior (and a one-component outcome padded beside it) against quadrature:
    the mixture is a real mixture in the model, not a moment-matched normal."""
    prior = parse_prior(MIXTURE_PRIOR, origin="test")
    result = fit(ModelSpec(data, prior, "independent"), SETTINGS)
    assert result.passed, result.diagnostics.problems()
    assert _compare(result) == 3


def test_hierarchical_single_subgroup_outcome_matches_quadrature(data):
    """With one subgroup the hierarchical model's pooling is off, so mortality's posterior is the 2x2
    posterior under the named prior: checked against quadrature (the pooled mrs_0_2 cells are not)."""
    result = fit(ModelSpec(data, load_prior("enthusiastic"), "hierarchical"), SETTINGS)
    assert result.passed, result.diagnostics.problems()
    sub = estimands(result.spec)
    mort = sub[sub["outcome"] == "mortality"].iloc[0]
    prior = result.spec.prior.effect_for("mortality")
    ref = reference_summary(1, 20, 2, 23, direction="lower", weights=prior.weights, means=prior.means, sds=prior.sds)
    rd = result.effects["rd"].sel(estimand=mort["estimand"]).transpose("chain", "draw").to_numpy()
    ben = (-rd > 0).astype(float)
    assert abs(ben.mean() - ref["p_benefit"]) <= 4 * _mcse(ben, method="mean") + 1e-3
    assert abs(np.median(rd) - ref["rd_q"][1]) <= 4 * _mcse(rd, method="quantile", prob=0.5) + 1e-3
