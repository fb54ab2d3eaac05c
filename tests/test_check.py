"""Frequentist reproduction of the paper's P values.

References: Fisher's exact P by direct enumeration of the hypergeometric distribution with math.comb
(two-sided: sum of tables no more probable than the observed, relative tolerance 1e-7 as in R's
fisher.test); Pearson's X^2 from its closed form sum (O-E)^2/E with scipy's chi-square survival function;
and the trial table's note that the crude Fisher exact P for 15/20 vs 8/23 is 0.014.
"""

from __future__ import annotations

import math

import pytest

from bayes_rescue.data.check import agrees, check_table, describe_check, p_values
from bayes_rescue.data.counts import load_counts


def fisher_enumerated(a, n1, c, n0):
    m = a + c
    total = math.comb(n1 + n0, m)
    probs = {x: math.comb(n1, x) * math.comb(n0, m - x) / total for x in range(max(0, m - n0), min(n1, m) + 1)}
    obs = probs[a]
    return min(1.0, sum(p for p in probs.values() if p <= obs * (1 + 1e-7)))


def pearson_closed_form(a, n1, c, n0):
    from scipy.stats import chi2

    n = n1 + n0
    obs = [a, n1 - a, c, n0 - c]
    col = [a + c, n - a - c]
    exp = [n1 * col[0] / n, n1 * col[1] / n, n0 * col[0] / n, n0 * col[1] / n]
    x2 = sum((o - e) ** 2 / e for o, e in zip(obs, exp, strict=True))
    return chi2.sf(x2, 1)


@pytest.mark.parametrize("counts", [(15, 20, 8, 23), (13, 17, 6, 19), (1, 20, 2, 23), (2, 3, 2, 4), (0, 10, 5, 10)])
def test_p_values_match_independent_computation(counts):
    p = p_values(*counts)
    assert p["p_fisher"] == pytest.approx(fisher_enumerated(*counts), rel=1e-9)
    assert p["p_chi2"] == pytest.approx(pearson_closed_form(*counts), rel=1e-9)


def test_bundled_cohort_statements():
    table = check_table(load_counts("bundled:chen2025")).set_index(["outcome", "subgroup"])
    overall = table.loc[("mrs_0_2", "overall")]
    assert round(overall["p_fisher"], 3) == 0.014  # the trial table's note
    assert overall["reported_p"] == "0.031"
    assert not any(overall[f"{k}_agrees"] for k in ("p_fisher", "p_chi2", "p_chi2_yates"))
    mild = table.loc[("mrs_0_2", "mild_anterior")]
    assert mild["p_fisher_agrees"] and not mild["p_chi2_agrees"]  # 0.00965 -> "0.010"; 0.0071 -> "0.007"
    assert table.loc[("mortality", "all"), "p_fisher_agrees"]
    text = describe_check(table.reset_index())
    assert "reported P=0.031 DOES NOT match any crude test" in text
    assert "reported P=0.010 AGREES with: Fisher exact." in text


def test_agreement_respects_printed_precision():
    assert agrees(0.00965, "0.010") and not agrees(0.00707, "0.010")
    assert agrees(0.00707, "0.01") and not agrees(0.0139, "0.031")


def test_check_console_speaks_the_papers_labels():
    """The check statements in the bundled file's labels (Chen et al. 2025, PMID 40535629: rescue EVT 13/17 vs
    medical management 6/19 in the mild anterior-circulation subgroup; 15/20 vs 8/23 overall), each raw name
    once in parentheses at its first mention, the verdicts as in describe_check, every line <= 100 columns."""
    import re

    from bayes_rescue.outputs.console import check_text

    data = load_counts("bundled:chen2025")
    text = check_text(check_table(data), labels=data.labels)
    flat = " ".join(text.split())
    assert flat.startswith(
        "mRS 0-2 at 90 days (mrs_0_2), mild anterior circulation (mild_anterior): rescue EVT 13/17 (76.5%) vs"
        " medical management 6/19 (31.6%), RD +44.9 percentage points"
    )
    assert "mRS 0-2 at 90 days, whole cohort: rescue EVT 15/20 (75.0%) vs medical management 8/23 (34.8%)" in flat
    assert "reported P=0.031 DOES NOT match any crude test" in flat
    assert "reported P=0.010 AGREES with: Fisher exact." in flat
    for name in ("mrs_0_2", "mild_anterior"):
        assert len(re.findall(rf"\({name}\)", text)) == 1 and len(re.findall(rf"\b{name}\b", text)) == 1
    assert text.count("(mortality)") == 1  # the word itself is in its label, "mortality at 90 days"
    assert max(len(x) for x in text.splitlines()) <= 100
