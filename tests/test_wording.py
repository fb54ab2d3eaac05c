"""The shared reader vocabulary (bayes_rescue.outputs.wording).

Reference values: the phrases required by issue 21 item 1 ("more patients with mRS 0-2", "fewer deaths",
"min tail ESS"), the label texts of the bundled Chen et al. 2025 file (PMID 40535629: "mRS 0-2 at 90 days",
"mortality at 90 days", "rescue EVT", "medical management") and of the CSVs written here."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bayes_rescue.data.counts import load_counts, parse_counts
from bayes_rescue.outputs import wording as w

OWN = """outcome,subgroup,arm,events,total,direction,outcome_label,subgroup_label,arm_label
good_recovery,sub_a,treatment,5,10,higher,good recovery at 6 months,younger patients,drug X
good_recovery,sub_a,control,3,10,higher,,younger patients,placebo
good_recovery,sub_b,treatment,4,10,higher,,older patients,
good_recovery,sub_b,control,2,10,higher,,older patients,
bleed,all,treatment,1,20,lower,major bleeding,all patients,
bleed,all,control,2,20,lower,,,
"""


def test_direction_phrases_of_the_bundled_cohort():
    """The issue's wording from the bundled file's labels: more patients with mRS 0-2, fewer deaths."""
    data = load_counts("bundled:chen2025")
    lab = data.labels
    mrs = w.direction_phrase(data.directions["mrs_0_2"], w.outcome_label("mrs_0_2", lab))
    dead = w.direction_phrase(data.directions["mortality"], w.outcome_label("mortality", lab))
    assert mrs == "more patients with mRS 0-2 at 90 days"
    assert dead == "fewer deaths at 90 days"
    assert w.benefit_meaning("lower", "mortality at 90 days", treatment="rescue EVT", control="medical management") == (
        "fewer deaths at 90 days with rescue EVT than with medical management"
    )


@pytest.mark.parametrize(
    ("direction", "label", "phrase"),
    [
        ("lower", "death by day 90", "fewer deaths by day 90"),
        ("lower", "Mortality", "fewer deaths"),
        ("lower", "all-cause mortality within 30 days", "fewer deaths within 30 days"),
        ("lower", "major bleeding", "fewer patients with major bleeding"),
        ("lower", "death or dependency", "fewer patients with death or dependency"),  # not a mortality label
        ("higher", "good recovery at 6 months", "more patients with good recovery at 6 months"),
    ],
)
def test_direction_phrase_fallback_for_user_labels(direction, label, phrase):
    """Mortality labels read as deaths; any other label as 'patients with <label>'."""
    assert w.direction_phrase(direction, label) == phrase


def test_labels_from_a_users_file_and_raw_name_once():
    """Labels come from the user's file; a raw name follows its label in parentheses only where it differs."""
    lab = parse_counts(OWN, source="own.csv").labels
    assert w.estimand_label("good_recovery", "sub_a", lab) == "good recovery at 6 months, younger patients"
    assert w.subgroup_label("good_recovery", "overall", lab) == "whole cohort"
    assert w.with_name(w.subgroup_label("good_recovery", "sub_b", lab), "sub_b") == "older patients (sub_b)"
    assert w.with_name("whole cohort", "overall") == "whole cohort"
    assert w.with_name("mrs 0 2", "mrs_0_2") == "mrs 0 2"  # the default label already says the name
    assert w.favours("lower", lab) == ("Favours drug X", "Favours placebo")
    assert w.favours("higher", lab) == ("Favours placebo", "Favours drug X")


def test_prior_label_and_headings():
    """A prior shows its title (else its name), and a bias-adjusted fit says so; headings say what they are."""
    from types import SimpleNamespace

    assert w.prior_label("skeptical") == "skeptical"
    assert w.prior_label(SimpleNamespace(name="p1", title="my trial prior")) == "my trial prior"
    assert w.prior_label(SimpleNamespace(name="p1")) == "p1"
    assert w.prior_label("skeptical", "mild") == "skeptical, adjusted for bias model mild"
    assert w.prior_label("skeptical", "none") == "skeptical"
    assert w.heading("ess_tail_min") == "min tail ESS" and w.heading("rhat_max") == "max R-hat"
    assert w.heading("p_benefit_ge_0.05") == "P(benefit >= 5 pp)" and w.heading("rd_median") == "rd_median"
    assert w.interval_heading("RD, pp", 0.95) == "RD, pp (95% ETI)"


def test_importable_without_pymc_or_matplotlib():
    """A fresh interpreter imports the module without PyMC or matplotlib."""
    code = (
        "import sys, bayes_rescue.outputs.wording; "
        "print(any(m in sys.modules for m in ('pymc', 'matplotlib', 'pytensor')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
