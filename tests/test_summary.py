"""Summary arithmetic on synthetic draws whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from bayes_rescue.data.check import newcombe_rd, wilson
from bayes_rescue.model.estimands import prob_column
from bayes_rescue.outputs.tables import nnt_text, summarize_draws


def _draws(rd: np.ndarray) -> xr.Dataset:
    dims = ("chain", "draw", "estimand")
    pc = np.full_like(rd, 0.3)
    pt = pc + rd
    arr = lambda x: (dims, x[None, :, None])  # noqa: E731
    return xr.Dataset(
        {
            "rd": arr(rd),
            "rr": arr(pt / pc),
            "odds_ratio": arr(pt / (1 - pt) / (pc / (1 - pc))),
            "log_or": arr(np.log(pt / (1 - pt) / (pc / (1 - pc)))),
            "p_control": arr(pc),
            "p_treatment": arr(pt),
        },
        coords={"chain": [0], "draw": np.arange(rd.size), "estimand": ["o/overall"]},
    )


EST = pd.DataFrame(
    [
        {
            "estimand": "o/overall",
            "outcome": "o",
            "subgroup": "overall",
            "level": "cohort",
            "direction": "higher",
            "y_t": 1,
            "n_t": 2,
            "y_c": 1,
            "n_c": 2,
        }
    ]
)


def test_probabilities_against_normal_cdf():
    """Reference: for RD ~ Normal(0.08, 0.05), P(RD > 0) = Phi(1.6), P(RD >= 0.05) = Phi(0.6),
    P(|RD| < 0.02) = Phi(-1.2) - Phi(-2); 95% ETI = 0.08 +- 1.96 * 0.05. Tolerance 4 binomial SEs at 4e5 draws."""
    rd = stats.norm.ppf((np.arange(400_000) + 0.5) / 400_000, 0.08, 0.05)  # exact quantile grid
    row = summarize_draws(_draws(rd), EST, mcids=(0.05, 0.1), rope=0.02).iloc[0]
    assert row["p_benefit"] == pytest.approx(stats.norm.cdf(1.6), abs=1e-4)
    assert row[prob_column("benefit", 0.05)] == pytest.approx(stats.norm.cdf(0.6), abs=1e-4)
    assert row["p_benefit_ge_0.1"] == pytest.approx(stats.norm.sf(0.4), abs=1e-4)
    assert row["p_harm"] == pytest.approx(stats.norm.cdf(-1.6), abs=1e-4)
    assert row["p_rope"] == pytest.approx(stats.norm.cdf(-1.2) - stats.norm.cdf(-2.0), abs=1e-4)
    assert row["rd_eti95_lb"] == pytest.approx(0.08 - 1.959964 * 0.05, abs=1e-4)
    assert row["rd_eti95_ub"] == pytest.approx(0.08 + 1.959964 * 0.05, abs=1e-4)
    assert row["nnt_kind"] == "NNTB" and row["nnt_median"] == pytest.approx(12.5, rel=1e-3)


def test_lower_is_better_flips_benefit():
    est = EST.assign(direction="lower")
    rd = np.linspace(-0.1, 0.02, 1001)
    row = summarize_draws(_draws(rd), est).iloc[0]
    assert row["p_benefit"] == pytest.approx((rd < 0).mean())
    assert row["nnt_kind"] == "NNTB"


def test_nnt_text_follows_altman():
    """Altman BMJ 1998;317:1309: an RD interval crossing 0 gives 'NNTB a to inf to NNTH b'."""
    assert nnt_text(0.1, 0.5) == "NNTB 2.0 to 10.0"
    assert nnt_text(-0.05, 0.25) == "NNTB 4.0 to inf to NNTH 20.0"
    assert nnt_text(-0.5, -0.1) == "NNTH 2.0 to 10.0"


def test_column_names():
    assert prob_column("benefit", 0.05) == "p_benefit_ge_0.05"
    assert prob_column("benefit", 0.025) == "p_benefit_ge_0.025"


def test_newcombe_published_example():
    """Reference: Newcombe, Stat Med 1998;17:873-890, Table II, example (a) 56/70 vs 48/80, method 10:
    0.0524 to 0.3339; Wilson interval for 81/263 from Newcombe Stat Med 1998;17:857-872: 0.2553 to 0.3662."""
    d, lo, hi = newcombe_rd(56, 70, 48, 80)
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (0.2, 0.0524, 0.3339)
    lo, hi = wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


def test_point_nnt_only_where_the_interval_excludes_no_effect():
    """The NNT rule (issue 21; Altman, BMJ 1998;317:1309): 1 / |RD| by hand. A benefit RD of 0.20 with
    interval (0.10, 0.30) is NNTB 5.0 (1/0.2), interval 1/0.3 = 3.3 to 1/0.1 = 10.0; an interval through 0
    shows no point NNT: the report's null mortality effect (median RD 0.0035, 1/0.0035 = 285.7) must not
    print 'NNTB 285.7'; an interval touching 0 passes through no effect too."""
    assert nnt_text(0.1, 0.3, rd_benefit_median=0.2) == "NNTB 5.0 (NNTB 3.3 to 10.0)"
    assert nnt_text(-0.3, -0.1, rd_benefit_median=-0.2) == "NNTH 5.0 (NNTH 3.3 to 10.0)"
    crossing = nnt_text(-0.1, 0.125, rd_benefit_median=0.0035)
    assert crossing == "NNTB 8.0 to inf to NNTH 10.0" and "285.7" not in crossing
    assert nnt_text(0.0, 0.25, rd_benefit_median=0.1) == "NNTB 4.0 to inf to NNTH inf"
    assert nnt_text(0.1, 0.3) == "NNTB 3.3 to 10.0"  # no median: the interval alone (summary.csv's nnt_eti95)


def test_nnt_display_of_a_summary_row_in_the_outcomes_direction():
    """For a lower-is-better outcome the benefit RD is -RD: RD -0.20 (-0.30, -0.10) is NNTB 5.0 (3.3 to 10.0),
    by hand as above; the same RD for a higher-is-better outcome is harm (NNTH)."""
    from bayes_rescue.outputs.tables import nnt_display

    row = {"direction": "lower", "rd_median": -0.2, "rd_eti95_lb": -0.3, "rd_eti95_ub": -0.1}
    assert nnt_display(row) == "NNTB 5.0 (NNTB 3.3 to 10.0)"
    assert nnt_display({**row, "direction": "higher"}) == "NNTH 5.0 (NNTH 3.3 to 10.0)"
    null = {"direction": "lower", "rd_median": -0.0035, "rd_eti95_lb": -0.125, "rd_eti95_ub": 0.1}
    assert nnt_display(null) == "NNTB 8.0 to inf to NNTH 10.0"
