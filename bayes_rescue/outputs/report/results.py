"""The Summary and Results: the conclusion, the at-a-glance tables, and the full results table, every name
the data file's label (:mod:`bayes_rescue.outputs.wording`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_rescue.data.counts import Labels
from bayes_rescue.outputs.report.basics import (
    Table,
    _finite,
    _points,
    fmt_interval,
    fmt_pp,
    fmt_prob,
    fmt_ratio,
    mcid_columns,
)
from bayes_rescue.outputs.wording import direction_phrase, nnt_display, outcome_label, prior_label, subgroup_label

#: Column groups per at-a-glance table: 3 fit within a 1280-pixel window beside the row names.
GLANCE_GROUPS = 3


def _bias(row) -> str:
    b = row.get("bias", "none") if hasattr(row, "get") else "none"
    return str(b) if isinstance(b, str) and b else "none"


def fit_label(row) -> str:
    """``skeptical`` or ``skeptical, adjusted for bias model observational``: a summary row's prior and bias."""
    return prior_label(str(row.get("prior", "")), _bias(row))


def _cohort(summary: pd.DataFrame) -> pd.DataFrame:
    if "level" in summary.columns:
        return summary[summary["level"] == "cohort"]
    return summary[summary.get("subgroup", pd.Series(dtype=str)) == "overall"]


def _range(values) -> str:
    v = [float(x) for x in values if _finite(x)]
    lo, hi = fmt_prob(min(v)), fmt_prob(max(v))
    return lo if lo == hi else f"{lo} to {hi}"


def _pp_range(values) -> str:
    v = [float(x) for x in values if _finite(x)]
    lo, hi = fmt_pp(min(v)), fmt_pp(max(v))
    return lo if lo == hi else f"{lo} to {hi}"


def conclusion(summary: pd.DataFrame, labels: Labels | None = None, prior_p: pd.DataFrame | None = None) -> list[str]:
    """The conclusion: one sentence per outcome (whole cohort). One fit: the RD with its 95% ETI, P(benefit)
    (beside the prior's own P(benefit) of it when known) and P(benefit >= each MCID); several: the range of
    P(benefit) and of the RD medians over the priors, unadjusted and bias-adjusted apart, and how many
    priors give P(benefit) >= 0.95."""
    mcids = mcid_columns(summary.columns)
    rows = _cohort(summary)
    fits = rows.drop_duplicates([c for c in ("prior", "bias") if c in rows.columns])
    out = []
    for outcome, g in rows.groupby("outcome", sort=False):
        what = direction_phrase(str(g["direction"].iloc[0]), outcome_label(outcome, labels))
        treat = (labels or Labels()).arm("treatment")
        head = f"{outcome_label(outcome, labels)}, whole cohort"
        if len(fits) == 1:
            r = g.iloc[0]
            rd = fmt_interval(fmt_pp(r["rd_median"]), fmt_pp(r["rd_eti95_lb"]), fmt_pp(r["rd_eti95_ub"]))
            s = (
                f"{head}: under the {fit_label(r)} prior, the probability of {what} with {treat} (benefit) is"
                f" {fmt_prob(r['p_benefit'])}"
            )
            pp = _prior_p(prior_p, r)
            if pp is not None:
                s += f" (the prior alone gave it {fmt_prob(pp)})"
            s += f"; risk difference {rd} percentage points"
            s += "".join(f"; P(benefit >= {_points(m)}) {fmt_prob(r[c])}" for c, m in mcids)
            out.append(s + ".")
            continue
        parts = []
        for adjusted, h in g.groupby(g.apply(lambda r: _bias(r) != "none", axis=1), sort=True):
            n = len(h)
            kind = "bias-adjusted fits" if adjusted else ("priors" if n > 1 else "prior")
            parts.append(
                f"{_range(h['p_benefit'])} under the {n} {kind} (RD medians {_pp_range(h['rd_median'])} points)"
            )
        strong = int((g["p_benefit"] >= 0.95).sum())
        out.append(
            f"{head}: the probability of {what} with {treat} (benefit) is " + "; and ".join(parts)
            + f". It is at least 0.95 under {strong} of the {len(g)} fits."
        )  # fmt: skip
    return out


def _prior_p(prior_p: pd.DataFrame | None, r, column: str = "prior_p_benefit"):
    if prior_p is None or prior_p.empty:
        return None
    m = prior_p[
        (prior_p["prior"] == r.get("prior"))
        & (prior_p["bias"] == _bias(r))
        & (prior_p["outcome"] == r["outcome"])
        & (prior_p["subgroup"] == r["subgroup"])
    ]
    return float(m[column].iloc[0]) if len(m) and column in m else None


def glance_tables(
    summary: pd.DataFrame, labels: Labels | None = None, prior_p: pd.DataFrame | None = None
) -> list[Table]:
    """The at-a-glance tables: a row per outcome and subgroup (whole cohort last), a column group per prior
    (and bias model; unadjusted first) with RD median (95% ETI), P(benefit), P(benefit >= each MCID) and the
    prior P(benefit) of that estimand (from the prior draws); :data:`GLANCE_GROUPS` groups per table so that
    a table fits a 1280-pixel window."""
    mcids = mcid_columns(summary.columns)
    keys = [c for c in ("prior", "bias") if c in summary.columns]
    fits = summary.drop_duplicates(keys) if keys else summary.head(1)
    fits = sorted((r for _, r in fits.iterrows()), key=lambda r: _bias(r) != "none")
    estimands = list(dict.fromkeys(zip(summary["outcome"], summary["subgroup"], strict=True)))
    outcomes = list(dict.fromkeys(summary["outcome"]))
    estimands.sort(key=lambda k: (outcomes.index(k[0]), k[1] == "overall"))
    has_prior = prior_p is not None and not prior_p.empty
    per_group = ["RD, points (95% ETI)", "P(benefit)", *[f"P(\u2265 {100 * m:g})" for _, m in mcids]]
    per_group += ["prior P(benefit)"] if has_prior else []
    tables = []
    for start in range(0, len(fits), GLANCE_GROUPS):
        block = fits[start : start + GLANCE_GROUPS]
        rows = []
        for o, s in estimands:
            cells: list = [(outcome_label(o, labels), subgroup_label(o, s, labels))]
            for f in block:
                m = summary[(summary["outcome"] == o) & (summary["subgroup"] == s)]
                for k in keys:
                    m = m[m[k] == f[k]]
                if m.empty:
                    cells += ["–"] * len(per_group)
                    continue
                r = m.iloc[0]
                cells.append((fmt_pp(r["rd_median"]), f"({fmt_pp(r['rd_eti95_lb'])} to {fmt_pp(r['rd_eti95_ub'])})"))
                cells += [fmt_prob(r["p_benefit"]), *[fmt_prob(r[c]) for c, _ in mcids]]
                if has_prior:
                    pp = _prior_p(prior_p, r)
                    cells.append(fmt_prob(pp) if pp is not None else "–")
            rows.append(cells)
        cols = ["outcome, subgroup", *per_group * len(block)]
        t = Table(cols, rows, [False, *[True] * (len(cols) - 1)])
        t.groups = [("", 1), *[(fit_label(f), len(per_group)) for f in block]]
        if len(fits) > GLANCE_GROUPS:
            t.caption = f"Fits {start + 1}-{start + len(block)} of {len(fits)}"
        tables.append(t)
    return tables


def prior_benefit(run_dir, summary: pd.DataFrame) -> pd.DataFrame | None:
    """The prior's own P(benefit) and P(benefit >= each MCID) of every estimand of every fit, from the prior
    draws (``prior`` group) of the fit's tree: the share of prior draws of the RD on the outcome's better
    side. In the hierarchical model the named prior sits on the mean subgroup effect, so each estimand's
    prior P(benefit) is not the prior's nominal one. None when no tree has prior draws."""
    import xarray as xr

    from bayes_rescue.data.counts import benefit_sign
    from bayes_rescue.errors import InputError
    from bayes_rescue.outputs.trees import prior_effect_draws, run_tree_path

    mcids = mcid_columns(summary.columns)
    keys = [c for c in ("prior", "bias") if c in summary.columns]
    out = []
    for _, f in (summary.drop_duplicates(keys) if keys else summary.head(1)).iterrows():
        part = summary
        for k in keys:
            part = part[part[k] == f[k]]
        try:  # opened lazily: only the prior draws of the RD are read, not the whole tree
            with xr.open_datatree(run_tree_path(run_dir, prior=str(f.get("prior")), bias=_bias(f))) as tree:
                out += _prior_rows(tree, f, part, mcids, prior_effect_draws, benefit_sign)
        except (InputError, OSError, ValueError, KeyError):
            continue
    return pd.DataFrame(out) if out else None


def _prior_rows(tree, fit: pd.Series, part: pd.DataFrame, mcids, prior_effect_draws, benefit_sign) -> list[dict]:
    """:func:`prior_benefit`'s rows of one fit's tree."""
    from bayes_rescue.errors import InputError

    rows = []
    for _, r in part.iterrows():
        try:
            rd = prior_effect_draws(tree, outcome=r["outcome"], subgroup=r["subgroup"])["rd"]
        except (InputError, KeyError, ValueError):
            continue
        b = benefit_sign(str(r["direction"])) * np.asarray(rd, float).ravel()
        row = {"prior": fit.get("prior"), "bias": _bias(fit), "outcome": r["outcome"], "subgroup": r["subgroup"]}
        row["prior_p_benefit"] = float(np.mean(b > 0))
        row.update({f"prior_{c}": float(np.mean(b >= m)) for c, m in mcids})
        rows.append(row)
    return rows


def _label(row: pd.Series) -> str:
    out = f"the {row['prior']} prior" if "prior" in row.index else "the prior"
    if "bias" in row.index and isinstance(row["bias"], str) and row["bias"] and row["bias"] != "none":
        out += f" with the {row['bias']} bias model"
    return out


def summary_sentences(summary: pd.DataFrame, labels: Labels | None = None) -> list[str]:
    """One sentence per cohort-level row (prior x outcome): RD with its 95% interval, P(benefit) and
    P(benefit >= each MCID)."""
    if "level" in summary.columns:
        rows = summary[summary["level"] == "cohort"]
    else:
        rows = summary[summary.get("subgroup", pd.Series(dtype=str)) == "overall"]
    mcids = mcid_columns(summary.columns)
    out = []
    for _, r in rows.iterrows():
        better = {"higher": "more events is better", "lower": "fewer events is better"}.get(r.get("direction"), "")
        s = (
            f"Under {_label(r)}, {outcome_label(r['outcome'], labels)}{f' ({better})' if better else ''},"
            " whole cohort: risk difference"
            f" {fmt_interval(fmt_pp(r['rd_median']), fmt_pp(r['rd_eti95_lb']), fmt_pp(r['rd_eti95_ub']))}"
            f" percentage points (median, 95% interval), P(benefit) = {fmt_prob(r['p_benefit'])}"
        )
        s += "".join(f", P(benefit >= {_points(m)}) = {fmt_prob(r[c])}" for c, m in mcids)
        out.append(s + ".")
    return out


def results_table(summary: pd.DataFrame, labels: Labels | None = None) -> Table:
    """The results table: counts, RD, RR, OR (median, and the 95% interval on a second line), NNT and the
    probabilities."""
    mcids = mcid_columns(summary.columns)
    keys = [c for c in ("prior", "bias", "model", "outcome") if c in summary.columns]
    if "model" in keys and summary["model"].nunique() == 1:
        keys.remove("model")
    cols = [
        *[{"bias": "bias model", "outcome": "outcome, subgroup"}.get(k, k) for k in keys],
        "events: treatment vs control",
        "RD, points (95% interval)",
        "RR (95% interval)",
        "OR (95% interval)",
    ]
    cols += ["NNT (95% interval)", "P(benefit)", *[f"P(benefit >= {_points(m)})" for _, m in mcids], "P(harm)"]
    has_rope = "p_rope" in summary.columns
    if has_rope:
        cols.append("P(ROPE)")
    rows = []
    for _, r in summary.iterrows():
        names = {"bias": _bias(r)}
        names["outcome"] = (outcome_label(r["outcome"], labels), subgroup_label(r["outcome"], r["subgroup"], labels))
        cells: list = [names.get(k, str(r[k])) for k in keys]
        counts = [r.get(k) for k in ("y_t", "n_t", "y_c", "n_c")]
        cells.append("{}/{} vs {}/{}".format(*map(int, counts)) if all(map(_finite, counts)) else "–")
        cells.append((fmt_pp(r["rd_median"]), f"({fmt_pp(r['rd_eti95_lb'])} to {fmt_pp(r['rd_eti95_ub'])})"))
        for k in ("rr", "or"):
            lo, hi = fmt_ratio(r.get(f"{k}_eti95_lb")), fmt_ratio(r.get(f"{k}_eti95_ub"))
            cells.append((fmt_ratio(r.get(f"{k}_median")), f"({lo} to {hi})"))
        cells.append(nnt_cell(r))
        cells.append(fmt_prob(r["p_benefit"]))
        cells += [fmt_prob(r[c]) for c, _ in mcids]
        cells.append(fmt_prob(r.get("p_harm")))
        if has_rope:
            cells.append(fmt_prob(r["p_rope"]))
        rows.append(cells)
    numeric = [False] * len(keys) + [True] * (len(cols) - len(keys))
    nnt = cols.index("NNT (95% interval)")
    numeric[nnt] = False  # long text: wraps, in a wider column
    return Table(cols, rows, numeric, wide=[i == nnt for i in range(len(cols))])


def nnt_cell(r) -> str | tuple[str, str]:
    """The NNT of a summary row (:func:`bayes_rescue.outputs.wording.nnt_display`): the point NNT over its
    interval where the RD interval excludes no effect; only Altman's interval where it passes through it."""
    text = nnt_display(r)
    point, sep, interval = text.partition(" (")
    return (point, f"({interval}") if sep else text
