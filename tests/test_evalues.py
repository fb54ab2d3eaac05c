"""E-values (bayes_rescue.analyses.evalues) against hand arithmetic and the published examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bayes_rescue.analyses.evalues import data_risk_ratios, evalue, evalue_interval, evalues_table

Z975 = 1.959963984540054  # Phi^-1(0.975)


def test_worked_example_overall_mrs():
    """Issue 16's worked example, overall mRS 0-2, 15/20 vs 8/23: RR 2.16 (1.17-3.99), E-value 3.74, CI 1.61.

    By hand: RR = (15/20) / (8/23) = 0.75 / 0.347826 = 2.15625;
    var log RR = 1/15 - 1/20 + 1/8 - 1/23 = 0.0666667 - 0.05 + 0.125 - 0.0434783 = 0.0981884, se = 0.313350;
    z se = 1.959964 * 0.313350 = 0.614155; CI = 2.15625 * (exp(-0.614155), exp(0.614155))
    = 2.15625 * (0.541098, 1.848095) = (1.166742, 3.984954);
    E = 2.15625 + sqrt(2.15625 * 1.15625) = 2.15625 + sqrt(2.493164) = 2.15625 + 1.578976 = 3.735226;
    E(CI) = E(1.166742) = 1.166742 + sqrt(1.166742 * 0.166742) = 1.166742 + sqrt(0.194545) = 1.166742 + 0.441073
    = 1.607815.
    """
    row = data_risk_ratios(pd.DataFrame({"y_t": [15], "n_t": [20], "y_c": [8], "n_c": [23]})).iloc[0]
    assert row["rr"] == pytest.approx(2.15625, rel=1e-12)
    assert row["rr_lb"] == pytest.approx(1.166742, abs=2e-6)
    assert row["rr_ub"] == pytest.approx(3.984954, abs=2e-6)
    assert row["zero_cell_correction"] == 0.0
    assert evalue(row["rr"]) == pytest.approx(3.735226, abs=2e-6)
    assert evalue_interval(row["rr_lb"], row["rr_ub"]) == pytest.approx(1.607815, abs=2e-6)
    assert round(evalue(row["rr"]), 2) == 3.74 and round(evalue_interval(row["rr_lb"], row["rr_ub"]), 2) == 1.61


@pytest.mark.parametrize(
    ("rr", "lo", "hi", "e_point", "e_ci"),
    [
        (3.9, 1.8, 8.7, 7.263034, 3.0),  # Victora et al., breastfeeding and respiratory death
        (0.80, 0.71, 0.91, 1.809017, 1.428571),  # AHRQ, breastfeeding and childhood leukaemia (RR < 1)
        (10.73, 8.02, 14.36, 20.94777, 15.52336),  # Hammond & Horn, smoking and lung cancer
    ],
)
def test_vanderweele_ding_examples(rr, lo, hi, e_point, e_ci):
    """The examples of VanderWeele & Ding, Ann Intern Med 2017 (doi 10.7326/M16-2607), as printed by the
    authors' EValue package vignette "unmeasured-confounding" (github.com/mayamathur/evalue_package,
    EValue/docs/articles/unmeasured-confounding.html): 3.9 (1.8, 8.7) -> 7.263034 and 3.0; 0.80 (0.71, 0.91)
    -> 1.809017 and 1.428571 (the upper limit, nearer 1); 10.73 (8.02, 14.36) -> 20.94777 and 15.52336."""
    assert evalue(rr) == pytest.approx(e_point, abs=1e-5)
    assert evalue_interval(lo, hi) == pytest.approx(e_ci, abs=1e-5)


def test_katz_interval_hammond_horn_table():
    """Hammond & Horn's 2x2 table (smokers 397 cases / 78557 non-cases, non-smokers 51 / 108778): RR
    10.729780 (8.017457, 14.359688) by the log method, as printed for ``twoXtwoRR`` in the EValue package's
    documentation (EValue/man/threshold.Rd example, github.com/mayamathur/evalue_package)."""
    row = data_risk_ratios(pd.DataFrame({"y_t": [397], "n_t": [397 + 78557], "y_c": [51], "n_c": [51 + 108778]}))
    assert row["rr"].iloc[0] == pytest.approx(10.729780, abs=1e-6)
    assert row["rr_lb"].iloc[0] == pytest.approx(8.017457, abs=1e-4)
    assert row["rr_ub"].iloc[0] == pytest.approx(14.359688, abs=1e-4)


def test_rr_below_one_is_inverted_and_vectorised():
    """Closed form: E(0.5) = E(2) = 2 + sqrt(2 * 1) = 3.414214; E(1) = 1 (the null)."""
    out = evalue(np.array([0.5, 2.0, 1.0]))
    np.testing.assert_allclose(out, [2 + math.sqrt(2), 2 + math.sqrt(2), 1.0], rtol=1e-12)


def test_interval_crossing_one_and_below_one():
    """By definition (VanderWeele & Ding 2017): an interval containing 1 has E-value 1; an interval below 1
    uses its upper limit: E(0.8) = E(1.25) = 1.25 + sqrt(1.25 * 0.25) = 1.809017."""
    np.testing.assert_allclose(
        evalue_interval([0.5, 0.5, 1.2], [1.5, 0.8, 3.0]), [1.0, 1.809017, evalue(1.2)], atol=1e-6
    )
    assert evalue_interval(1.0, 2.0) == 1.0


def test_zero_cells_get_half_added():
    """0/10 vs 5/10 has a zero cell, so 0.5 is added to each of the four cells (a 0.5, n1 11, c 5.5, n2 11):
    RR = (0.5/11) / (5.5/11) = 1/11; var = 1/0.5 - 1/11 + 1/5.5 - 1/11 = 2 exactly; CI = exp(log(1/11) -+
    1.959964 * sqrt(2)). 10/10 vs 5/10 has a zero non-event cell: RR = (10.5/11) / (5.5/11) = 21/11,
    var = 1/10.5 - 1/11 + 1/5.5 - 1/11. 3/10 vs 5/10 has no zero cell and is left alone: RR 0.6."""
    cells = pd.DataFrame({"y_t": [0, 10, 3], "n_t": [10, 10, 10], "y_c": [5, 5, 5], "n_c": [10, 10, 10]})
    out = data_risk_ratios(cells)
    assert out["zero_cell_correction"].tolist() == [0.5, 0.5, 0.0]
    assert out["rr"].iloc[0] == pytest.approx(1 / 11, rel=1e-12)
    assert out["rr_lb"].iloc[0] == pytest.approx(math.exp(math.log(1 / 11) - Z975 * math.sqrt(2)), rel=1e-9)
    assert out["rr_ub"].iloc[0] == pytest.approx(math.exp(math.log(1 / 11) + Z975 * math.sqrt(2)), rel=1e-9)
    se = math.sqrt(1 / 10.5 - 1 / 11 + 1 / 5.5 - 1 / 11)
    assert out["rr"].iloc[1] == pytest.approx(21 / 11, rel=1e-12)
    assert out["rr_ub"].iloc[1] == pytest.approx(21 / 11 * math.exp(Z975 * se), rel=1e-9)
    assert out["rr"].iloc[2] == pytest.approx(0.6, rel=1e-12)


def test_evalues_table_rows_and_sides():
    """A hand-made summary: mRS 0-2 (higher is better) 15/20 vs 8/23 with posterior median RR 2 (1.2, 3.0);
    mortality (lower is better) 1/20 vs 2/23 with posterior median 0.5 (0.3, 0.8); a subgroup 0/5 vs 1/4 whose
    interval crosses 1. References by hand: data E-values 3.735226 / 1.607815 (see the worked example);
    posterior E(2) = 2 + sqrt(2) = 3.414214, E(1.2) = 1.2 + sqrt(0.24) = 1.689898; E(0.5) = 3.414214 and
    E(0.8) = 1.809017; mortality data RR = (1/20)/(2/23) = 0.575 < 1, a benefit for a 'lower' outcome."""
    summary = pd.DataFrame(
        {
            "prior": ["p", "p", "p"],
            "outcome": ["mrs_0_2", "mortality", "x"],
            "subgroup": ["overall", "overall", "a"],
            "level": ["cohort", "cohort", "subgroup"],
            "direction": ["higher", "lower", "higher"],
            "y_t": [15, 1, 0],
            "n_t": [20, 20, 5],
            "y_c": [8, 2, 1],
            "n_c": [23, 23, 4],
            "rr_median": [2.0, 0.5, 0.9],
            "rr_eti95_lb": [1.2, 0.3, 0.2],
            "rr_eti95_ub": [3.0, 0.8, 4.0],
            "rd_median": [0.1, -0.02, 0.0],
        }
    )
    t = evalues_table(summary)
    assert list(t["prior"]) == ["p", "p", "p"] and "rd_median" not in t
    assert t["data_evalue"].iloc[0] == pytest.approx(3.735226, abs=2e-6)
    assert t["data_evalue_ci"].iloc[0] == pytest.approx(1.607815, abs=2e-6)
    np.testing.assert_allclose(t["post_evalue"].iloc[:2], [2 + math.sqrt(2)] * 2, rtol=1e-12)
    np.testing.assert_allclose(t["post_evalue_ci"], [1.2 + math.sqrt(0.24), 1.809017, 1.0], atol=1e-6)
    assert t["data_rr"].iloc[1] == pytest.approx(0.575, rel=1e-12)
    assert list(t["data_side"]) == ["benefit", "benefit", "harm"]
    assert list(t["post_side"]) == ["benefit", "benefit", "harm"]
    assert list(t["zero_cell_correction"]) == [0.0, 0.0, 0.5]
    assert t["data_evalue_ci"].iloc[2] == 1.0


def test_bad_values_are_refused():
    """A risk ratio must be > 0 and finite; an interval's lower limit may not exceed its upper limit."""
    with pytest.raises(ValueError):
        evalue(0.0)
    with pytest.raises(ValueError):
        evalue(np.inf)
    with pytest.raises(ValueError):
        evalue_interval(2.0, 1.0)
    with pytest.raises(ValueError, match="rr_median"):
        evalues_table(pd.DataFrame({"outcome": ["a"]}))
