"""Literature priors: MAP meta-analysis, robust/discounted versions, ELIR ESS, rule-derived priors,
subgroup-specific centres."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from bayes_rescue.analyses.map_prior import fit_map, trial_counts
from bayes_rescue.data.counts import load_counts
from bayes_rescue.errors import InputError
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors import literature
from bayes_rescue.priors.mixture import approximate, fit_normal_mixture
from bayes_rescue.priors.report import prior_table
from bayes_rescue.priors.spec import (
    EffectPrior,
    NormalComponent,
    bundled_prior_names,
    discount,
    ess_elir,
    ess_patients,
    load_prior,
    parse_prior,
    resolve_priors,
    robustify,
)


def normal_normal_posterior(y, v, *, mu_sd=2.0, tau_sd=0.5):
    """Independent reference: the normal-normal random-effects model on per-trial log ORs (Woolf
    variances), mu ~ N(0, mu_sd), tau ~ HalfNormal(tau_sd), integrated numerically on a (mu, tau) grid.
    Returns the posterior mean of mu and the predictive sd of a new study's log OR."""
    mu = np.linspace(-3, 3, 1201)[:, None]
    tau = np.linspace(1e-4, 3, 1200)[None, :]
    logp = stats.norm.logpdf(mu, 0, mu_sd) + stats.halfnorm.logpdf(tau, scale=tau_sd)
    for yi, vi in zip(y, v, strict=True):
        logp = logp + stats.norm.logpdf(yi, mu, np.sqrt(vi + tau**2))
    w = np.exp(logp - logp.max())
    w /= w.sum()
    m = float((w * mu).sum())
    pred_var = float((w * (tau**2 + mu**2)).sum()) - m**2
    return m, math.sqrt(pred_var)


def test_map_matches_independent_normal_normal_meta_analysis():
    """Reference: numerical integration of the normal-normal random-effects model on the same five
    early-window RCTs (and the DerSimonian-Laird estimate). Tolerance 0.03 on the log OR: the binomial
    and normal likelihoods differ by O(1/n) with 70-500 patients a trial, and the Monte Carlo error of
    20000 draws is < 0.003."""
    counts = trial_counts(literature.EARLY_WINDOW_RCTS, "mrs_0_2")
    a, b = counts["y_t"], counts["n_t"] - counts["y_t"]
    c, d = counts["y_c"], counts["n_c"] - counts["y_c"]
    y = np.log(a * d / (b * c)).to_numpy()
    v = (1 / a + 1 / b + 1 / c + 1 / d).to_numpy()
    ref_mu, ref_pred_sd = normal_normal_posterior(y, v)
    fitted = fit_map(counts, draws=5000)
    assert fitted.divergences == 0 and fitted.max_rhat <= 1.01 and fitted.min_ess >= 1000
    assert fitted.mu.mean() == pytest.approx(ref_mu, abs=0.03)
    assert fitted.theta_new.std() == pytest.approx(ref_pred_sd, abs=0.03)
    assert fitted.mu.mean() == pytest.approx(
        literature.pooled_log_or(literature.EARLY_WINDOW_RCTS, "mrs_0_2").log_or, abs=0.03
    )


def test_stored_map_prior_matches_its_meta_analysis():
    """The bundled map_early prior (written by --refit) has the predictive quantiles of the reference
    normal-normal meta-analysis, within 0.05 on the log OR (likelihood approximation + mixture fit)."""
    counts = trial_counts(literature.EARLY_WINDOW_RCTS, "mrs_0_2")
    a, b = counts["y_t"], counts["n_t"] - counts["y_t"]
    c, d = counts["y_c"], counts["n_c"] - counts["y_c"]
    ref_mu, ref_sd = normal_normal_posterior(
        np.log(a * d / (b * c)).to_numpy(), (1 / a + 1 / b + 1 / c + 1 / d).to_numpy()
    )
    prior = load_prior("map_early").effect_for("mrs_0_2")
    assert prior.mean == pytest.approx(ref_mu, abs=0.05) and prior.sd == pytest.approx(ref_sd, abs=0.05)
    assert prior.components[0].trials == literature.EARLY_WINDOW_RCTS


def test_em_mixture_recovers_a_known_mixture():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(-1, 0.3, 14000), rng.normal(1.5, 0.6, 6000)])
    mix = fit_normal_mixture(x, 2)
    assert mix.weights == pytest.approx([0.7, 0.3], abs=0.01)
    assert sorted(mix.means) == pytest.approx([-1, 1.5], abs=0.03)
    _, err = approximate(x)
    assert err["ks"] < 0.01


def _two_component():
    return EffectPrior((NormalComponent("a", 0.6, 0.8, 0.3, "s"), NormalComponent("b", 0.4, -0.2, 0.7, "s")))


def test_robust_weight_zero_and_one_reduce_to_components():
    spec = parse_prior(
        {
            "name": "x",
            "description": "d",
            "effect": {"default": {"components": [{"mean": 0.9, "sd": 0.3, "source": "s"}]}},
        },
        origin="t",
    )
    x = np.linspace(-3, 3, 61)
    assert robustify(spec, 0.0) is spec
    only_vague = robustify(spec, 1.0).effect_for("o")
    np.testing.assert_allclose(only_vague.logpdf(x), stats.norm.logpdf(x, 0, 1.5285), atol=1e-12)
    mixed = robustify(spec, 0.2).effect_for("o")
    ref = np.log(0.8 * stats.norm.pdf(x, 0.9, 0.3) + 0.2 * stats.norm.pdf(x, 0, 1.5285))
    np.testing.assert_allclose(mixed.logpdf(x), ref, atol=1e-12)
    assert robustify(spec, 0.2).name == "x_robust0.2"


def test_discount_inflates_sd_like_a_power_prior():
    """A normal prior raised to the power a is normal with sd / sqrt(a): factor 2 <=> power 0.25."""
    spec = load_prior("skeptical")
    d = discount(spec, 2.0).effect_for("mrs_0_2")
    assert d.sd == pytest.approx(2 * spec.effect_for("mrs_0_2").sd)
    x = np.linspace(-2, 2, 9)
    power = 0.25 * spec.effect_for("mrs_0_2").logpdf(x)
    np.testing.assert_allclose(np.diff(d.logpdf(x)), np.diff(power), atol=1e-12)
    with pytest.raises(InputError):
        discount(spec, 0.5)


@pytest.mark.slow  # 6 s
def test_elir_of_a_beta_equivalent_prior_is_a_plus_b():
    """Neuenschwander et al. 2020: the ELIR ESS of a Beta(a, b) prior for a proportion is a + b. Here a
    Beta(a, b) prior is represented as a normal mixture on the logit scale (two-component EM fit to 20000 draws of
    logit(Beta)), and its ELIR with the Bernoulli information p(1-p) must be within 5% of a + b."""
    rng = np.random.default_rng(0)
    for a, b in ((3, 7), (12, 20), (30, 10)):
        draws = special.logit(rng.beta(a, b, 20_000))
        mix = fit_normal_mixture(draws, 2)
        prior = EffectPrior(
            tuple(
                NormalComponent(f"k{i}", w, m, s, "t")
                for i, (w, m, s) in enumerate(zip(mix.weights, mix.means, mix.sds, strict=True))
            )
        )
        ess = ess_elir(prior, lambda t: special.expit(t) * (1 - special.expit(t)))
        assert ess == pytest.approx(a + b, rel=0.05), (a, b, ess)


def test_ess_of_normal_log_or_prior_by_quadrature():
    """Reference: scipy quad of E_prior[(1/s^2) / i(x)] for a normal prior, i(x) the per-patient
    information of a 1:1 trial at control risk 0.35: 1 / (2 (1/(p_t q_t) + 1/(p_c q_c)))."""
    mean, sd, pc = 0.3, 0.5, 0.35
    prior = EffectPrior((NormalComponent("n", 1.0, mean, sd, "t"),))

    def integrand(x):
        pt = special.expit(special.logit(pc) + x)
        return stats.norm.pdf(x, mean, sd) * (1 / sd**2) * 2 * (1 / (pt * (1 - pt)) + 1 / (pc * (1 - pc)))

    ref = integrate.quad(integrand, -8, 8)[0]
    assert ess_patients(prior, pc) == pytest.approx(ref, rel=1e-4)


def test_mixture_second_derivative_against_finite_differences():
    e = _two_component()
    x = np.linspace(-2, 2, 41)
    h = 1e-4
    fd = -(e.logpdf(x + h) - 2 * e.logpdf(x) + e.logpdf(x - h)) / h**2
    np.testing.assert_allclose(e.neg_d2_logpdf(x), fd, rtol=1e-4, atol=1e-4)


def test_derived_priors_follow_the_trial_table(monkeypatch):
    """Change a count in the trial table and the skeptical prior changes with it (it is derived, not typed)."""
    base = load_prior("skeptical").effect_for("mrs_0_2").sd
    table = literature.trial_table()
    mask = (table["source"] == "MR CLEAN") & (table["outcome"] == "mrs_0_2") & (table["arm"] == "treatment")
    table.loc[mask, "events"] = 120
    monkeypatch.setattr(literature, "trial_table", lambda: table)
    changed = load_prior("skeptical").effect_for("mrs_0_2")
    assert changed.sd > base + 0.01
    assert changed.components[0].trials == literature.EARLY_WINDOW_RCTS


def test_derive_errors():
    base = {"name": "x", "description": "d"}
    for derive, fragment in (
        ({"rule": "optimistic", "reference_or": 2.0, "reference_source": "s"}, "unknown rule"),
        ({"rule": "skeptical", "trials": ["NOPE"], "outcome": "mrs_0_2"}, "not in the package trial table"),
        ({"rule": "skeptical", "reference_or": 2.0}, "reference_source"),
        ({"rule": "skeptical", "reference_or": 2.0, "trials": ["ESCAPE"], "reference_source": "s"}, "exactly one"),
    ):
        with pytest.raises(InputError, match=fragment):
            parse_prior({**base, "effect": {"o": {"derive": derive}}}, origin="t")


def test_subgroup_shift_in_spec_and_prior_draws():
    """A subgroup-specific centre moves that cell's prior log OR by the offset (checked on prior draws)."""
    from bayes_rescue.inference.derived import prior_draws

    data = load_counts("bundled:chen2025")
    doc = {
        "name": "shifted",
        "description": "d",
        "effect": {
            "mrs_0_2": {
                "components": [{"mean": 0.5, "sd": 0.4, "source": "s"}],
                "subgroups": {"mild_anterior": {"offset": -0.5, "source": "minor-stroke literature (example)"}},
            },
            "default": {"components": [{"mean": 0.0, "sd": 1.0, "source": "s"}]},
        },
    }
    prior = parse_prior(doc, origin="t")
    assert "subgroup mild_anterior: centre shifted by -0.5" in repr(prior)
    spec = ModelSpec(data, prior, "independent")
    draws = prior_draws(spec, 20000, np.random.default_rng(0))["delta"]
    assert float(draws.sel(cell="mrs_0_2/mild_anterior").mean()) == pytest.approx(0.0, abs=0.02)
    assert float(draws.sel(cell="mrs_0_2/other").mean()) == pytest.approx(0.5, abs=0.02)
    bad = {
        **doc,
        "effect": {
            **doc["effect"],
            "mrs_0_2": {**doc["effect"]["mrs_0_2"], "subgroups": {"nope": {"offset": 1, "source": "s"}}},
        },
    }
    with pytest.raises(InputError, match="offset for subgroup 'nope'"):
        ModelSpec(data, parse_prior(bad, origin="t"), "hierarchical")


def test_prior_table_implied_rd_and_every_prior_listed():
    """Implied RD at the cohort control risk is the monotone map of the log-OR quantiles."""
    data = load_counts("bundled:chen2025")
    table = prior_table(resolve_priors("all"), data)
    assert set(table["prior"]) == set(bundled_prior_names())
    r = table[(table["prior"] == "enthusiastic") & (table["outcome"] == "mrs_0_2")].iloc[0]
    pc = 8 / 23
    assert r["p_control"] == pytest.approx(pc)
    assert r["rd_median"] == pytest.approx(special.expit(special.logit(pc) + 0.8711) - pc, abs=1e-4)
    assert (table["ess_patients"] > 0).all()
    assert table.loc[table["prior"] == "map_late", "source_trials"].eq("DAWN, DEFUSE 3").all()
