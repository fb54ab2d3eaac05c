"""The arms enter the model symmetrically (issue 13), and the bias-adjusted model (issue 16) is exact.

References: (1) the model's own log density evaluated twice, with the arms swapped and the effect's sign
flipped — an exact identity of the symmetric parametrisation (no sampling); (2) P(benefit) = 0.5 for identical
arms under a prior centred on 0, which follows from that symmetry; (3) quadrature of the bias-adjusted 2x2
posterior (tests/quadrature.py, bias_adjusted_summary), written from the model's mathematics."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr
from quadrature import bias_adjusted_summary

from bayes_rescue.data.counts import parse_counts
from bayes_rescue.inference.sampling import fit
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.build import build_model
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.bias import load_bias, parse_bias
from bayes_rescue.priors.spec import bundled_prior_names, load_prior, parse_prior

SETTINGS = SamplerSettings(draws=2000, tune=600, chains=4, seed=5, prior_draws=200)


def _counts(rows: list[tuple[str, str, int, int, int, int]]):
    lines = ["outcome,subgroup,arm,events,total"]
    for o, s, yt, nt, yc, nc in rows:
        lines += [f"{o},{s},treatment,{yt},{nt}", f"{o},{s},control,{yc},{nc}"]
    return parse_counts("\n".join(lines) + "\n", source="test")


def _mirror(prior):
    """The prior with every effect mean (and subgroup offset) negated."""
    doc = prior.to_dict()
    for e in doc["effect"].values():
        for c in e["components"]:
            c["mean"] = -c["mean"]
            c.pop("trials", None)
        e.pop("subgroups", None)
    doc = {k: doc[k] for k in ("name", "description", "rationale", "effect")}
    for e in doc["effect"].values():
        e.pop("rationale", None)
    return parse_prior(doc, origin="mirror")


@pytest.mark.parametrize("kind", ["hierarchical", "independent"])
@pytest.mark.parametrize("name", bundled_prior_names())
def test_swapping_the_arms_flips_the_effect_exactly(kind, name):
    """log p(params | data, prior) = log p(mirrored params | arms swapped, mirrored prior) at random points:
    swapping treatment and control and negating every effect mean must give the same density when the
    effect parameters change sign. This fails for the old parametrisation (control at the baseline)."""
    prior = load_prior(name)
    data = _counts([("mrs_0_2", "a", 13, 17, 6, 19), ("mrs_0_2", "b", 2, 3, 2, 4), ("mortality", "all", 1, 20, 2, 23)])
    swapped = _counts(
        [("mrs_0_2", "a", 6, 19, 13, 17), ("mrs_0_2", "b", 2, 4, 2, 3), ("mortality", "all", 2, 23, 1, 20)]
    )
    m1, m2 = build_model(ModelSpec(data, prior, kind)), build_model(ModelSpec(swapped, _mirror(prior), kind))
    f1, f2 = m1.compile_logp(), m2.compile_logp()
    rng = np.random.default_rng(1)
    flip = {"mu_log_or", "log_or_z", "delta"}
    for _ in range(5):
        point = {k: rng.normal(0, 0.7, np.shape(v)) for k, v in m1.initial_point().items()}
        mirrored = {k: (-v if k in flip else v) for k, v in point.items()}
        assert f1(point) == pytest.approx(f2(mirrored), rel=1e-10, abs=1e-9)


@pytest.mark.parametrize("kind", ["hierarchical", "independent"])
@pytest.mark.parametrize("every", [False, True])
def test_identical_arms_give_even_odds(kind, every):
    """0/20 vs 0/20 and 20/20 vs 20/20 under the skeptical prior (centred on 0): P(benefit) = 0.5 and the
    median RD = 0, each within 4 Monte Carlo standard errors (ArviZ mcse). The old parametrisation gave 0.615
    for 0/20 vs 0/20. The summary table has no NaN or inf, and the console prints no NaN."""
    a, b = (20, 10) if every else (0, 0)  # all-event or zero-event arms
    data = _counts([("mortality", "a", a, 20, a, 20), ("mortality", "b", b, 10, b, 10)])
    result = fit(ModelSpec(data, load_prior("skeptical"), kind), SETTINGS)
    assert result.passed, result.diagnostics.problems()
    for est in result.effects["estimand"].to_numpy():
        lor = result.effects["log_or"].sel(estimand=est).transpose("chain", "draw")
        rd = result.effects["rd"].sel(estimand=est).transpose("chain", "draw")
        ind = xr.DataArray((lor.to_numpy() < 0).astype(float), dims=("chain", "draw"))
        assert abs(float(ind.mean()) - 0.5) <= 4 * float(az.mcse(ind, method="mean")), est
        med = float(np.median(rd))
        assert abs(med) <= 4 * float(az.mcse(rd, method="quantile", prob=0.5)) + 1e-12, est
    from bayes_rescue.outputs.tables import describe, summarize

    table = summarize(result)  # zero-event / all-event arms: nothing undefined, nothing printed as certain
    assert np.isfinite(table.select_dtypes("number").to_numpy(dtype=float)).all()
    text = describe(table)
    assert "nan" not in text.lower()  # (P = 1 or 0 printed as >0.999 / <0.001: tests/test_console.py)


BIAS_DOC = {
    "name": "test_bias",
    "description": "test",
    "rationale": "test",
    "bias": {"default": {"mean_benefit": 0.4, "sd": 0.3, "source": "test", "assumption": "test"}},
}


@pytest.mark.parametrize(("outcome", "direction", "counts"), [("mrs_0_2", "higher", (15, 20, 8, 23))])
def test_bias_adjusted_effect_matches_quadrature(outcome, direction, counts):
    """Independent model, normal prior N(0.3, 0.8), bias N(+0.4 towards benefit, 0.3): P(benefit) of the
    adjusted log OR against quadrature (tests/quadrature.py bias_adjusted_summary) within 4 MCSE + 1e-3."""
    bias = parse_bias(BIAS_DOC, origin="test")
    prior = parse_prior(
        {
            "name": "p",
            "description": "d",
            "effect": {"default": {"components": [{"weight": 1.0, "mean": 0.3, "sd": 0.8, "source": "t"}]}},
        },
        origin="test",
    )
    data = _counts([(outcome, "all", *counts)])
    result = fit(ModelSpec(data, prior, "independent", bias=bias), SETTINGS)
    assert result.passed, result.diagnostics.problems()
    ref = bias_adjusted_summary(*counts, direction=direction, mean=0.3, sd=0.8, bias_mean=0.4, bias_sd=0.3)
    lor = result.effects["log_or"].isel(estimand=0).transpose("chain", "draw").to_numpy()
    ind = xr.DataArray((lor > 0).astype(float), dims=("chain", "draw"))
    tol = 4 * float(az.mcse(ind, method="mean")) + 1e-3
    assert abs(float(ind.mean()) - ref["p_benefit"]) <= tol
    unadjusted = fit(ModelSpec(data, prior, "independent"), SETTINGS)
    assert float(ind.mean()) < float((unadjusted.effects["log_or"] > 0).mean())  # the bias explains some benefit


def test_bias_sign_follows_the_outcome_direction():
    """A bias towards benefit raises the observed log OR of mRS 0-2 (more events is better) and lowers that of
    mortality: the model's bias means are +m and -m (bundled observational model, its own numbers)."""
    bias = load_bias("observational")
    data = _counts([("mrs_0_2", "all", 15, 20, 8, 23), ("mortality", "all", 1, 20, 2, 23)])
    a = ModelSpec(data, load_prior("skeptical"), "hierarchical", bias=bias).arrays()
    assert a["bias_mu"][0] == pytest.approx(bias.term_for("mrs_0_2").mean_benefit)
    assert a["bias_mu"][1] == pytest.approx(-bias.term_for("mortality").mean_benefit)


@pytest.mark.slow  # 18 s; the default suite has test_tipping_bias.py's quadrature check of the same root
def test_tipping_bias_matches_quadrature():
    """Independent model, one 2x2 table (15/20 vs 8/23), normal prior N(0, 0.8), bias sd 0.3: the bias mean at
    which P(benefit) falls to 0.95 and 0.5, found by the NUTS grid of bayes_rescue.analyses.bias, against the
    root of the quadrature P(benefit)(m) (tests/quadrature.py bias_adjusted_summary, scipy brentq). Tolerance
    0.01 + 4 x the reported MC error of the root: linear interpolation over a grid step of 0.125 of this smooth
    curve errs by < 0.005 (quadrature, checked below), and the Rao-Blackwellised P(benefit) leaves an MC error of
    the root of about 0.002 (it must report one, below 0.02)."""
    from scipy import optimize

    from bayes_rescue.analyses.bias import bias_curve, tipping_bias

    bias = parse_bias(BIAS_DOC, origin="test")
    prior = parse_prior(
        {
            "name": "p",
            "description": "d",
            "effect": {"default": {"components": [{"weight": 1.0, "mean": 0.0, "sd": 0.8, "source": "t"}]}},
        },
        origin="test",
    )
    data = _counts([("mrs_0_2", "all", 15, 20, 8, 23)])
    curve = bias_curve(data, prior, bias, kind="independent", grid=np.arange(-0.5, 2.5001, 0.125))
    assert curve["diagnostics_passed"].all()
    tips = tipping_bias(curve, bias, levels=(0.95, 0.5))

    def p_benefit(m):
        return bias_adjusted_summary(15, 20, 8, 23, direction="higher", mean=0.0, sd=0.8, bias_mean=m, bias_sd=0.3)[
            "p_benefit"
        ]

    for level in (0.95, 0.5):
        ref = optimize.brentq(lambda m, lv=level: p_benefit(m) - lv, -0.5, 2.5, xtol=1e-4)
        row = tips[tips["level"] == level].iloc[0]
        assert row["status"] == "found"
        grid = np.arange(-0.5, 2.5001, 0.125)
        lin = float(np.interp(level, [p_benefit(m) for m in grid][::-1], grid[::-1]))
        assert abs(lin - ref) < 0.005  # the interpolation error of the grid itself
        assert 0 < row["tipping_bias_mean_mcse"] < 0.02
        tol = 0.01 + 4 * row["tipping_bias_mean_mcse"]
        assert abs(row["tipping_bias_mean"] - ref) <= tol, (level, row["tipping_bias_mean"], ref, tol)
        assert row["tipping_ror"] == pytest.approx(np.exp(-row["tipping_bias_mean"]))
