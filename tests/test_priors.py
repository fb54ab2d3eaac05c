"""Prior files: validation, repr, and that every bundled number is the stated rule applied to its source."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from bayes_rescue.errors import InputError
from bayes_rescue.priors.literature import EARLY_WINDOW_RCTS, pooled_log_or, trial_table
from bayes_rescue.priors.spec import bundled_prior_names, calibrate_normal, load_prior, parse_prior, resolve_priors


def test_bundled_priors_load_and_repr_shows_every_distribution():
    assert bundled_prior_names() == [
        "neutral",
        "skeptical",
        "enthusiastic",
        "pessimistic",
        "map_early",
        "map_late",
        "map_pooled",
    ]
    for spec in resolve_priors("all"):
        text = repr(spec)
        for outcome, eff in spec.effects.items():
            assert f"log_or[{outcome}]" in text
            for c in eff.components:
                assert f"Normal(mean={c.mean:.4g}, sd={c.sd:.4g})" in text
                assert c.source.strip()
        assert "HalfNormal" in text and "alpha ~ Normal" in text


def test_calibrated_priors_follow_the_rule_from_the_trial_table():
    """Reference: the literature effect is recomputed here from the package trial table (DerSimonian-
    Laird over the five 2015 RCTs' arm counts) and must equal the published pooled OR 2.39 (1.88-3.04)
    of those trials (shared/literature/effects.csv, Lambrinos 2016); the bundled skeptical/enthusiastic/
    pessimistic numbers must be the 5% rule applied to it (to the 4 decimals written in the files)."""
    pooled = pooled_log_or(EARLY_WINDOW_RCTS, "mrs_0_2")
    lo, hi = pooled.ci()
    assert (round(math.exp(pooled.log_or), 2), round(math.exp(lo), 2), round(math.exp(hi), 2)) == (
        2.39,
        1.88,
        3.04,
    )
    for rule in ("skeptical", "enthusiastic", "pessimistic"):
        mean, sd = calibrate_normal(rule, pooled.log_or)
        c = load_prior(rule).effect_for("mrs_0_2").components[0]
        assert abs(c.mean - mean) < 5e-5 and abs(c.sd - sd) < 5e-5, rule
        # mortality: calibrated on the stated clinically important OR 0.5
        mean, sd = calibrate_normal(rule, math.log(0.5))
        c = load_prior(rule).effect_for("mortality").components[0]
        assert abs(c.mean - mean) < 5e-5 and abs(c.sd - sd) < 5e-5, rule


def test_calibration_tail_probabilities():
    """Closed form: the skeptical prior puts 5% beyond the reference, the enthusiastic 5% below 0."""
    mean, sd = calibrate_normal("skeptical", 0.8711)
    assert stats.norm.sf(0.8711, mean, sd) == pytest.approx(0.05, abs=1e-9)
    mean, sd = calibrate_normal("enthusiastic", 0.8711)
    assert stats.norm.cdf(0, mean, sd) == pytest.approx(0.05, abs=1e-9)


def test_neutral_covers_unknown_outcomes_and_others_refuse():
    assert load_prior("neutral").effect_for("anything").components[0].sd == pytest.approx(
        math.log(20) / 1.959964, abs=1e-4
    )
    with pytest.raises(InputError, match="sets no effect prior for outcome 'readmission'"):
        load_prior("skeptical").effect_for("readmission")


def test_mixture_density_integrates_to_one_and_moments():
    """Reference: numerical quadrature (scipy.integrate.quad) of the mixture density and of x * density."""
    doc = {
        "name": "m",
        "description": "d",
        "effect": {
            "default": {
                "components": [
                    {"weight": 0.7, "mean": 0.5, "sd": 0.3, "source": "s"},
                    {"weight": 0.3, "mean": 0.0, "sd": 2.0, "source": "s"},
                ]
            }
        },
    }
    e = parse_prior(doc, origin="t").effect_for("x")
    total = integrate.quad(lambda x: math.exp(e.logpdf(x)), -30, 30, points=[0.0, 0.5], limit=200)[0]
    mean = integrate.quad(lambda x: x * math.exp(e.logpdf(x)), -30, 30, points=[0.0, 0.5], limit=200)[0]
    assert total == pytest.approx(1, abs=1e-8) and e.mean == pytest.approx(mean, abs=1e-8)
    assert e.cdf(e.ppf(0.3)) == pytest.approx(0.3, abs=1e-9)
    draws = e.sample(np.random.default_rng(0), 200_000)
    assert draws.mean() == pytest.approx(e.mean, abs=0.02) and draws.std() == pytest.approx(e.sd, abs=0.02)


BASE = {
    "name": "x",
    "description": "d",
    "effect": {"default": {"components": [{"mean": 0.0, "sd": 1.0, "source": "s"}]}},
}


@pytest.mark.parametrize(
    "mutate,fragment",
    [
        (lambda d: d.update(colour=1), "field 'colour': unknown key"),
        (
            lambda d: d["effect"]["default"]["components"][0].update(sigma=1),
            "components[0].sigma': unknown key",
        ),
        (lambda d: d["effect"]["default"]["components"][0].update(sd=0.0), "must be > 0"),
        (lambda d: d["effect"]["default"]["components"][0].update(sd=-1), "must be > 0"),
        (lambda d: d["effect"]["default"]["components"][0].update(mean="0"), "is not a number"),
        (lambda d: d["effect"]["default"]["components"][0].update(mean=float("nan")), "is not finite"),
        (lambda d: d["effect"]["default"]["components"][0].update(weight=0.5), "sum to 0.5"),
        (lambda d: d["effect"]["default"]["components"][0].pop("source"), "source': is required"),
        (lambda d: d["effect"]["default"]["components"][0].update(source=" "), "may not be blank"),
        (lambda d: d.update(hyper={"effect_tau_sd": 0}), "must be > 0"),
        (lambda d: d.update(hyper={"effect_tau_sd": 0.3}), "hyper.source': is required"),
        (lambda d: d.update(effect={}), "at least one"),
        (lambda d: d.pop("name"), "field 'name': is required"),
    ],
)
def test_invalid_priors_rejected(mutate, fragment):
    import copy

    doc = copy.deepcopy(BASE)
    mutate(doc)
    with pytest.raises(InputError) as err:
        parse_prior(doc, origin="p.toml")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_prior_files_by_path_and_errors(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text(
        'name = "mine"\ndescription = "d"\n[[effect.default.components]]\nmean = 0.1\nsd = 0.5\nsource = "me"\n'
    )
    assert load_prior(str(good)).effect_for("x").components[0].mean == 0.1
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(InputError, match="is not valid TOML"):
        load_prior(str(bad))
    with pytest.raises(InputError, match="unknown prior 'sceptical'"):
        load_prior("sceptical")
    with pytest.raises(InputError, match="no such prior file"):
        load_prior(str(tmp_path / "none.toml"))


def test_every_trial_row_is_cited():
    t = trial_table()
    assert len(t) > 0
    assert t["citation"].str.strip().str.len().gt(0).all()
    assert t["count_status"].isin(["reported", "derived_from_percent"]).all()
    assert (t["events"] <= t["total"]).all()
    assert set(t["confidence"]) <= {"high", "medium"}
