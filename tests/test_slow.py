"""Long validations, run with `pytest -m slow` (CI runs them after the fast suite)."""

from __future__ import annotations

from importlib import resources

import pytest

from bayes_rescue.analyses.map_prior import LITERATURE_SETS, map_prior_toml


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LITERATURE_SETS))
def test_stored_map_priors_are_what_refit_writes(name):
    """The bundled map_*.toml files are exactly what `scripts/priors.py --refit` produces from the trial
    table with the fixed seed: no fit run refits them, and a refit cannot drift silently."""
    stored = (resources.files("bayes_rescue") / "priors" / f"{name}.toml").read_text("utf-8")
    assert map_prior_toml(name) == stored


@pytest.mark.slow
def test_simulation_based_calibration_hierarchical_model():
    """SBC (Talts et al. 2018) of the hierarchical model on the bundled cohort's arm sizes under the
    skeptical prior: 200 simulated datasets; the rank of every true value among 99 thinned posterior draws
    is uniform by a chi-square test at the Bonferroni-corrected level 0.001 / 6, and no fit diverges. The six
    quantities: mu_log_or of both outcomes, tau_log_or of mrs_0_2 (the only outcome with subgroups) and the
    three cells' delta."""
    from bayes_rescue.analyses.validation import sbc, uniformity
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.priors.spec import load_prior

    ranks = sbc(load_counts("bundled:chen2025"), load_prior("skeptical"), n_sims=200)
    tests = uniformity(ranks)
    print(f"\nSBC uniformity (200 simulations):\n{tests.to_string(index=False)}")
    assert len(tests) == 6
    assert (tests["p_value"] > 0.001 / len(tests)).all(), tests
    assert (ranks["divergences"] == 0).mean() >= 0.99


@pytest.mark.slow
def test_simulation_based_calibration_map_meta_analysis():
    """SBC (Talts et al. 2018) of the random-effects meta-analysis behind the MAP priors, on the arm sizes
    of the five early-window RCTs (mRS 0-2): 200 datasets simulated from the model's priors; the ranks of
    mu, tau and each trial's theta among 99 thinned posterior draws are uniform by a chi-square test at the
    Bonferroni-corrected level 0.001 / 7, and at most 1% of the fits diverge."""
    from bayes_rescue.analyses.map_prior import LITERATURE_SETS, trial_counts
    from bayes_rescue.analyses.validation import sbc_map, uniformity

    counts = trial_counts(LITERATURE_SETS["map_early"][1], "mrs_0_2")
    ranks = sbc_map(counts, n_sims=200)
    tests = uniformity(ranks)
    print(f"\nMAP meta-analysis SBC uniformity (200 simulations):\n{tests.to_string(index=False)}")
    assert len(tests) == 2 + len(counts) == 7
    assert (tests["p_value"] > 0.001 / len(tests)).all(), tests
    assert (ranks["divergences"] == 0).mean() >= 0.99
