"""``likelihood.csv``: the data alone in metafor's ``escalc`` layout, for meta-analysts, and the R lines that
pool the right part of it (:data:`LIKELIHOOD_SUBSET_NOTE`, :func:`rma_subset_lines`, for the README and the
report).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_rescue.data.counts import OVERALL, CountsData

#: metafor escalc defaults for 2x2 tables (R/escalc.r of metafor 5.0-1): add = 1/2, to = "only0".
ESCALC_ADD = 0.5
ESCALC_MEASURES = ("OR", "RR", "RD")
ESCALC_COLUMNS = ("outcome", "subgroup", "level", "measure", "yi", "vi", "ai", "bi", "ci", "di", "n1i", "n2i")


def _escalc_rows(ai: int, n1i: int, ci: int, n2i: int) -> dict[str, tuple[float, float, float]]:
    """yi, vi and the amount added, per measure, for one 2x2 table (see :func:`escalc_table`)."""
    bi, di = n1i - ai, n2i - ci
    add = ESCALC_ADD if min(ai, bi, ci, di) == 0 else 0.0
    a, b, c, d = ai + add, bi + add, ci + add, di + add
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    return {
        "OR": (float(np.log(a * d / (b * c))), 1 / a + 1 / b + 1 / c + 1 / d, add),
        "RR": (float(np.log(p1 / p2)), 1 / a - 1 / n1 + 1 / c - 1 / n2, add),
        "RD": (p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2, add),
    }


def escalc_table(data: CountsData) -> pd.DataFrame:
    """The data's 2x2 tables as metafor's ``escalc(measure, ai, bi, ci, di)`` computes them with its defaults.

    One row per outcome x subgroup (``level = "subgroup"``) and per outcome's crude pooled table over its
    subgroups (``subgroup = "overall"``, ``level = "cohort"``), for each measure OR, RR and RD. An outcome
    with one subgroup therefore has both rows, with the same counts: pool either the ``cohort`` rows (one
    per outcome) or the ``subgroup`` rows, never both.

    Mathematics (metafor 5.0-1, R/escalc.r, github.com/cran/metafor at commit 3d2ba39; defaults
    ``add = 1/2, to = "only0", drop00 = FALSE, vtype = "LS"``; ``add`` is set to 0 by default only for the
    measures AS, PHI, ZPHI, RTET, ZTET, IRSD, PAS, PFT, IRS, IRFT, so OR, RR **and RD** get it): with
    ai = treated events, bi = treated non-events, ci = control events, di = control non-events, a table with
    any zero cell has 0.5 added to all four cells (both yi and vi use the adjusted cells, escalc's
    ``addyi = addvi = TRUE``); then n1 = ai + bi, n2 = ci + di, p1 = ai / n1, p2 = ci / n2 and

    - OR: yi = log(ai di / (bi ci)), vi = 1/ai + 1/bi + 1/ci + 1/di;
    - RR: yi = log(p1 / p2), vi = 1/ai - 1/n1 + 1/ci - 1/n2;
    - RD: yi = p1 - p2, vi = p1 (1 - p1) / n1 + p2 (1 - p2) / n2.

    The columns ``ai, bi, ci, di, n1i, n2i`` hold the observed (unadjusted) counts, as in the data frame
    escalc returns; ``zero_cell_correction`` (after the escalc columns) holds the amount added (0 or 0.5).

    Parameters
    ----------
    data
        Validated counts.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ESCALC_COLUMNS` then ``zero_cell_correction``.
    """
    cells = data.cells()
    rows = []
    for outcome in data.outcomes:
        sub = cells[cells["outcome"] == outcome]
        tables = [(r.subgroup, "subgroup", r.y_t, r.n_t, r.y_c, r.n_c) for r in sub.itertuples()]
        tables.append((OVERALL, "cohort", sub["y_t"].sum(), sub["n_t"].sum(), sub["y_c"].sum(), sub["n_c"].sum()))
        for subgroup, level, y_t, n_t, y_c, n_c in tables:
            y_t, n_t, y_c, n_c = int(y_t), int(n_t), int(y_c), int(n_c)
            values = _escalc_rows(y_t, n_t, y_c, n_c)
            for measure in ESCALC_MEASURES:
                yi, vi, add = values[measure]
                rows.append(
                    {
                        "outcome": outcome,
                        "subgroup": subgroup,
                        "level": level,
                        "measure": measure,
                        "yi": yi,
                        "vi": vi,
                        "ai": y_t,
                        "bi": n_t - y_t,
                        "ci": y_c,
                        "di": n_c - y_c,
                        "n1i": n_t,
                        "n2i": n_c,
                        "zero_cell_correction": add,
                    }
                )
    return pd.DataFrame(rows, columns=[*ESCALC_COLUMNS, "zero_cell_correction"])


#: What a meta-analyst should pool from ``likelihood.csv`` (for the README and the report).
LIKELIHOOD_SUBSET_NOTE = (
    "likelihood.csv holds every outcome, the OR, RR and RD of each, and both the subgroup rows and the cohort"
    ' row: rma(yi, vi, data = read.csv("likelihood.csv")) pools them all together (k = 15 for the bundled'
    " cohort), which means nothing. Take one outcome, one measure and one level: the cohort row is this"
    " cohort's one estimate to add to other studies; the subgroup rows are its subgroups (disjoint patients)."
)


def rma_subset_code(outcome: str, *, measure: str = "OR", level: str = "cohort", file: str = "likelihood.csv") -> str:
    """The R line that meta-analyses one outcome, one measure and one level of ``likelihood.csv`` with metafor,
    e.g. ``metafor::rma(yi, vi, data = subset(read.csv("likelihood.csv"), outcome == "mrs_0_2" & measure ==
    "OR" & level == "cohort"))``; ``yi`` is on the log scale for OR and RR (``transf = exp`` gives ratios)."""
    if measure not in ESCALC_MEASURES or level not in ("cohort", "subgroup"):
        raise ValueError(f"measure must be one of {ESCALC_MEASURES} and level 'cohort' or 'subgroup'")
    rows = f'outcome == "{outcome}" & measure == "{measure}" & level == "{level}"'
    return f'metafor::rma(yi, vi, data = subset(read.csv("{file}"), {rows}))'


def rma_subset_lines(data: CountsData, *, measure: str = "OR") -> list[str]:
    """Per outcome of ``data``: the :func:`rma_subset_code` line of its cohort row and, for an outcome with
    several subgroups, of its subgroup rows, each after an R comment saying what it pools (for the report)."""
    cells = data.cells()
    lines = []
    for outcome in data.outcomes:
        n_sub = int((cells["outcome"] == outcome).sum())
        lines.append(f"# {outcome}, {measure}: this cohort's one estimate (k = 1), to add to other studies' rows")
        lines.append(rma_subset_code(outcome, measure=measure, level="cohort"))
        if n_sub > 1:
            lines.append(f"# {outcome}, {measure}: its {n_sub} subgroups (k = {n_sub}, disjoint patients)")
            lines.append(rma_subset_code(outcome, measure=measure, level="subgroup"))
    return lines


__all__ = [
    "ESCALC_ADD",
    "ESCALC_COLUMNS",
    "ESCALC_MEASURES",
    "LIKELIHOOD_SUBSET_NOTE",
    "escalc_table",
    "rma_subset_code",
    "rma_subset_lines",
]
