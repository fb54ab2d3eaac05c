"""Frequentist reproduction: recompute the source's P values from the counts and say where they agree.

For each outcome x subgroup (and each outcome's whole cohort, summed over subgroups) this computes the
two-sided Fisher exact P (conditional, summing tables no more probable than the observed one: scipy's
``fisher_exact``), Pearson's chi-square P without and with Yates' continuity correction. A computed P
*agrees* with a reported one when it rounds to the printed value at the printed number of decimals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from bayes_rescue.data.counts import OVERALL, CountsData


def p_values(y_t: int, n_t: int, y_c: int, n_c: int) -> dict[str, float]:
    """Fisher exact, Pearson chi-square and Yates-corrected chi-square P for a 2x2 table."""
    table = [[y_t, n_t - y_t], [y_c, n_c - y_c]]
    fisher = float(stats.fisher_exact(table).pvalue)
    if min(y_t + y_c, n_t + n_c - y_t - y_c) == 0:
        chi2 = yates = math.nan  # no variation: chi-square undefined
    else:
        chi2 = float(stats.chi2_contingency(table, correction=False)[1])
        yates = float(stats.chi2_contingency(table, correction=True)[1])
    return {"p_fisher": fisher, "p_chi2": chi2, "p_chi2_yates": yates}


def agrees(computed: float, reported: str) -> bool:
    """True if ``computed`` rounds to the printed P (text, e.g. ``"0.010"``) at its printed decimals."""
    if math.isnan(computed) or not reported:
        return False
    decimals = len(reported.split(".")[1]) if "." in reported else 0
    return f"{computed:.{decimals}f}" == f"{float(reported):.{decimals}f}"


def reported_values(data: CountsData) -> dict[tuple[str, str], str]:
    """Reported P per (outcome, subgroup): from the counts file's ``reported_p`` and from a bundled
    dataset's printed figures (``*`` = the whole cohort, stored under ``overall``)."""
    out: dict[tuple[str, str], str] = {}
    for (o, s), g in data.table.groupby(["outcome", "subgroup"], sort=False):
        ps = [p for p in g["reported_p"] if p]
        if ps:
            out[(o, s)] = ps[0]
    for rep in data.meta.get("reported", []):
        if "p" in rep:
            key = (rep["outcome"], OVERALL if rep["subgroup"] == "*" else rep["subgroup"])
            out[key] = str(rep["p"])
    return out


def check_table(data: CountsData) -> pd.DataFrame:
    """One row per outcome x subgroup (and ``overall`` when an outcome has several subgroups)."""
    reported = reported_values(data)
    rows = []
    cells = data.cells()
    for outcome in data.outcomes:
        sub = cells[cells["outcome"] == outcome]
        items = [(r["subgroup"], r["y_t"], r["n_t"], r["y_c"], r["n_c"]) for _, r in sub.iterrows()]
        if len(items) > 1:
            items.append((OVERALL, sub["y_t"].sum(), sub["n_t"].sum(), sub["y_c"].sum(), sub["n_c"].sum()))
        for sg, yt, nt, yc, nc in items:
            ps = p_values(int(yt), int(nt), int(yc), int(nc))
            # a single subgroup is the whole cohort, so a P reported for the cohort applies to it
            rep = reported.get((outcome, sg), reported.get((outcome, OVERALL), "") if len(items) == 1 else "")
            row = {
                "outcome": outcome,
                "subgroup": sg,
                "y_t": int(yt),
                "n_t": int(nt),
                "y_c": int(yc),
                "n_c": int(nc),
                "risk_t": yt / nt,
                "risk_c": yc / nc,
                "rd": yt / nt - yc / nc,
                **ps,
                "reported_p": rep,
            }
            for k in ps:
                row[f"{k}_agrees"] = agrees(ps[k], rep) if rep else None
            rows.append(row)
    return pd.DataFrame(rows)


def describe_check(table: pd.DataFrame) -> str:
    """Plain statements of what the counts give and whether it matches what was reported."""
    names = {"p_fisher": "Fisher exact", "p_chi2": "Pearson chi-square", "p_chi2_yates": "Yates chi-square"}
    lines = []
    for _, r in table.iterrows():
        head = (
            f"{r['outcome']} / {r['subgroup']}: {r['y_t']}/{r['n_t']} ({100 * r['risk_t']:.1f}%) vs"
            f" {r['y_c']}/{r['n_c']} ({100 * r['risk_c']:.1f}%), RD {100 * r['rd']:+.1f} points; "
            + ", ".join(f"{names[k]} P={r[k]:.3f}" for k in names if not math.isnan(r[k]))
        )
        rep = r["reported_p"]
        if not rep:
            lines.append(head + "; no reported P to compare.")
            continue
        matching = [names[k] for k in names if r[f"{k}_agrees"]]
        if matching:
            lines.append(head + f"; reported P={rep} AGREES with: {', '.join(matching)}.")
        else:
            smaller = min(r[k] for k in names if not math.isnan(r[k]))
            direction = "smaller" if smaller < float(rep) else "larger"
            lines.append(
                head + f"; reported P={rep} DOES NOT match any crude test (the crude tests give {direction} P"
                " values). It may come from an adjusted model (e.g. logistic regression on baseline covariates),"
                " another test, or counts other than those printed; the Bayesian reanalysis uses the printed counts."
            )
    return "\n".join(lines)


Z975 = stats.norm.ppf(0.975)


def wilson(y: int, n: int, z: float = Z975) -> tuple[float, float]:
    """Wilson score interval for a proportion (Wilson, JASA 1927)."""
    p = y / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def newcombe_rd(y_t: int, n_t: int, y_c: int, n_c: int, z: float = Z975) -> tuple[float, float, float]:
    """Raw risk difference with Newcombe's hybrid score interval (method 10, Stat Med 1998;17:873-890)."""
    p1, p2 = y_t / n_t, y_c / n_c
    l1, u1 = wilson(y_t, n_t, z)
    l2, u2 = wilson(y_c, n_c, z)
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return float(d), float(lo), float(hi)
