"""Effect summaries: a tidy table (machine-readable) and text (for people), built from raw draws.

Columns of the summary table (one row per prior x outcome x estimand):

- ``prior, model, outcome, subgroup, level`` (``subgroup`` or ``cohort``), ``direction``
  (``higher``: more events is better), ``y_t, n_t, y_c, n_c`` (observed counts);
- ``rd_mean, rd_median, rd_eti95_lb, rd_eti95_ub``: risk difference, treatment minus control, as a
  proportion (0.10 = 10 percentage points), with its 95% equal-tailed interval; likewise
  ``rr_*`` (risk ratio), ``or_*`` (odds ratio), ``log_or_*``, ``p_control_*`` and ``p_treatment_*``
  (median and interval only);
- ``nnt_kind`` (``NNTB``/``NNTH``, the side of the median), ``nnt_median`` (1 / |median RD|) and
  ``nnt_eti95`` (text; an interval whose RD interval crosses 0 is written as
  ``NNTB a to inf to NNTH b``, Altman BMJ 1998;317:1309, doi 10.1136/bmj.317.7168.1309);
- ``p_benefit``: P(RD on the beneficial side of 0), counted on the log OR (same sign, no underflow to 0);
  ``p_benefit_ge_<m>``: P(benefit >= m) for each MCID m;
  ``p_harm``: P(RD on the harmful side of 0); ``p_rope``: P(|RD| < rope);
- ``rhat_max, ess_bulk_min, ess_tail_min`` of this row's RD and log OR, ``divergences`` of the fit,
  ``diagnostics_passed`` of the fit;
- ``rd_prior_sensitivity, rd_likelihood_sensitivity, rd_psense_diagnosis``: power-scaling sensitivity of
  the RD (:mod:`bayes_rescue.psense`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from bayes_rescue.model.estimands import benefit_sign, prob_column

CI_PROB = 0.95
DEFAULT_MCIDS = (0.05, 0.10)
DEFAULT_ROPE = 0.02


def nnt_text(rd_benefit_lb: float, rd_benefit_ub: float) -> str:
    """Altman's NNT interval from the interval of the benefit-oriented RD (positive = benefit)."""

    def inv(x: float) -> str:
        return "inf" if x == 0 else f"{1 / abs(x):.1f}"

    lb, ub = rd_benefit_lb, rd_benefit_ub
    if lb > 0:
        return f"NNTB {inv(ub)} to {inv(lb)}"
    if ub < 0:
        return f"NNTH {inv(lb)} to {inv(ub)}"
    return f"NNTB {inv(ub)} to inf to NNTH {inv(lb)}"


def _eti(x: np.ndarray, prob: float = CI_PROB) -> tuple[float, float]:
    a = (1 - prob) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return float(lo), float(hi)


def summarize_draws(
    draws: xr.Dataset,
    est: pd.DataFrame,
    *,
    mcids: tuple[float, ...] = DEFAULT_MCIDS,
    rope: float = DEFAULT_ROPE,
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """Summary rows from a Dataset of effect draws (dims chain, draw, estimand; see ``fit.effects``)."""
    if not (0 < ci_prob < 1):
        raise ValueError("ci_prob must be in (0, 1)")
    pct = f"eti{round(ci_prob * 100):d}"
    rows = []
    for _, e in est.iterrows():
        sel = draws.sel(estimand=e["estimand"])
        get = {v: sel[v].to_numpy().ravel() for v in ("rd", "rr", "odds_ratio", "log_or", "p_control", "p_treatment")}
        rd = get["rd"]
        sign = benefit_sign(e["direction"])
        rdb = sign * rd
        row: dict = {k: e[k] for k in ("outcome", "subgroup", "level", "direction", "y_t", "n_t", "y_c", "n_c")}
        for name, key in (("rd", "rd"), ("rr", "rr"), ("or", "odds_ratio"), ("log_or", "log_or")):
            x = get[key]
            lo, hi = _eti(x, ci_prob)
            row[f"{name}_mean"] = float(x.mean())
            row[f"{name}_median"] = float(np.median(x))
            row[f"{name}_{pct}_lb"] = lo
            row[f"{name}_{pct}_ub"] = hi
        for name in ("p_control", "p_treatment"):
            lo, hi = _eti(get[name], ci_prob)
            row[f"{name}_median"] = float(np.median(get[name]))
            row[f"{name}_{pct}_lb"] = lo
            row[f"{name}_{pct}_ub"] = hi
        med = float(np.median(rdb))
        row["nnt_kind"] = "NNTB" if med >= 0 else "NNTH"
        row["nnt_median"] = math.inf if med == 0 else 1 / abs(med)
        lo, hi = _eti(rdb, ci_prob)
        row[f"nnt_{pct}"] = nnt_text(lo, hi)
        lorb = sign * get["log_or"]  # the sign of the log OR is the sign of the RD, without underflow to 0
        row["p_benefit"] = float((lorb > 0).mean())
        for m in mcids:
            row[prob_column("benefit", m)] = float((rdb >= m).mean())
        row["p_harm"] = float((lorb < 0).mean())
        row["p_rope"] = float((np.abs(rd) < rope).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(
    result,
    *,
    mcids: tuple[float, ...] = DEFAULT_MCIDS,
    rope: float = DEFAULT_ROPE,
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """Summary table of one :class:`~bayes_rescue.inference.sampling.FitResult` (see the module docstring)."""
    from bayes_rescue.model.estimands import estimands

    est = estimands(result.spec)
    table = summarize_draws(result.effects, est, mcids=mcids, rope=rope, ci_prob=ci_prob)
    table.insert(0, "model", result.spec.kind)
    table.insert(0, "bias", "none" if result.spec.bias is None else result.spec.bias.name)
    table.insert(0, "prior", result.spec.prior.name)
    per = result.diagnostics.per_estimand.set_index("estimand").loc[est["estimand"]]
    table["rhat_max"] = per[["rhat_rd", "rhat_log_or"]].max(axis=1).to_numpy()
    table["ess_bulk_min"] = per[["ess_bulk_rd", "ess_bulk_log_or"]].min(axis=1).to_numpy()
    table["ess_tail_min"] = per[["ess_tail_rd", "ess_tail_log_or"]].min(axis=1).to_numpy()
    table["divergences"] = result.diagnostics.divergences
    table["diagnostics_passed"] = result.diagnostics.passed
    if "log_prior" in result.tree.children:
        from bayes_rescue.inference.psense import power_scaling

        ps = power_scaling(result.tree, result.effects).set_index("estimand").reindex(est["estimand"])
        for col in ("rd_prior_sensitivity", "rd_likelihood_sensitivity", "rd_psense_diagnosis"):
            table[col] = ps[col].to_numpy()
    return table


def draws_table(result) -> pd.DataFrame:
    """Long table of per-draw effects for meta-analysts: prior, model, outcome, subgroup, chain, draw, rd,
    log_or, p_control, p_treatment (rows ordered by chain, draw, estimand)."""
    ds = result.effects.transpose("chain", "draw", "estimand")
    n_chain, n_draw, n_est = (ds.sizes[d] for d in ("chain", "draw", "estimand"))
    reps = n_chain * n_draw
    frame = pd.DataFrame(
        {
            "prior": result.spec.prior.name,
            "bias": "none" if result.spec.bias is None else result.spec.bias.name,
            "model": result.spec.kind,
            "outcome": np.tile(ds["estimand_outcome"].to_numpy(), reps),
            "subgroup": np.tile(ds["estimand_subgroup"].to_numpy(), reps),
            "chain": np.repeat(ds["chain"].to_numpy(), n_draw * n_est),
            "draw": np.tile(np.repeat(ds["draw"].to_numpy(), n_est), n_chain),
            **{v: ds[v].to_numpy().ravel() for v in ("rd", "log_or", "p_control", "p_treatment")},
        }
    )
    return frame


#: Width of the console output (characters).
CONSOLE_WIDTH = 100
#: Widest name columns of the console tables; longer names end in an ellipsis.
NAME_WIDTHS = {"prior": 12, "outcome": 12, "subgroup": 14}


def format_probability(p: float, digits: int = 3) -> str:
    """A probability for people: ``digits`` decimals, but never a rounded certainty.

    A value that would print as 1.000 prints as ``>0.999``, one that would print as 0.000 (including an
    exact 0, which from a finite number of draws only says the probability is small) as ``<0.001``;
    a missing value (NaN, None) as ``n/a``.
    """
    if p is None or not np.isfinite(p):
        return "n/a"
    step = 10.0**-digits
    if p >= 1 - step / 2:
        return f">{1 - step:.{digits}f}"
    if p < step / 2:
        return f"<{step:.{digits}f}"
    return f"{p:.{digits}f}"


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in an ellipsis when cut."""
    text = str(text)
    return text if len(text) <= width else text[: max(0, width - 1)] + "\u2026"


def _render(rows: list[dict[str, str]], right: set[str], *, width: int = CONSOLE_WIDTH) -> list[str]:
    """Rows of strings as a text table (two spaces between columns). The name columns (prior, outcome,
    subgroup) are repeated in every part when the table is wider than ``width``: the other columns
    wrap into further tables below."""
    if not rows:
        return []
    cols = list(rows[0])
    keys = [c for c in cols if c in NAME_WIDTHS]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    parts, current = [], []
    base = sum(widths[k] + 2 for k in keys)
    used = base
    for c in cols:
        if c in keys:
            continue
        if current and used + widths[c] + 2 > width:
            parts.append(current)
            current, used = [], base
        current.append(c)
        used += widths[c] + 2
    parts.append(current)
    lines = []
    for i, part in enumerate(parts):
        shown = keys + part

        def cell(c: str, text: str) -> str:
            return text.rjust(widths[c]) if c in right else text.ljust(widths[c])

        head = "  ".join(cell(c, c) for c in shown).rstrip()
        if i:
            lines.append("")
        lines += [head, "-" * len(head)]
        lines += ["  ".join(cell(c, r[c]) for c in shown).rstrip() for r in rows]
    return lines


def describe(
    table: pd.DataFrame,
    *,
    mcids: tuple[float, ...] = DEFAULT_MCIDS,
    treatment: str = "treatment",
    width: int = CONSOLE_WIDTH,
) -> str:
    """The fit for people, in lines of at most ``width`` characters: a table of effects (RD and NNT),
    a table of probabilities and diagnostics, and one sentence per cohort-level row.

    Names longer than :data:`NAME_WIDTHS` end in an ellipsis; probabilities are written by
    :func:`format_probability`; the full numbers are in summary.csv. ``treatment`` names the treated arm
    in the sentences (the counts file's arm label).
    """
    import textwrap

    pct = (
        next(c for c in table.columns if c.startswith("rd_eti") and c.endswith("_lb"))
        .removeprefix("rd_")
        .removesuffix("_lb")
    )
    level = pct.removeprefix("eti")

    def names(r) -> dict[str, str]:
        return {k: truncate(r[k], w) for k, w in NAME_WIDTHS.items()}

    effects, probs = [], []
    for _, r in table.iterrows():
        effects.append(
            {
                **names(r),
                f"RD, pp ({level}% ETI)": (
                    f"{100 * r['rd_median']:+.1f} ({100 * r[f'rd_{pct}_lb']:+.1f}, {100 * r[f'rd_{pct}_ub']:+.1f})"
                ),
                f"NNT ({level}% ETI)": str(r[f"nnt_{pct}"]),
            }
        )
        ess = min(r["ess_bulk_min"], r["ess_tail_min"])
        probs.append(
            {
                **names(r),
                "P(benefit)": format_probability(r["p_benefit"]),
                **{f"P(>={100 * m:g}pp)": format_probability(r[prob_column("benefit", m)]) for m in mcids},
                "P(harm)": format_probability(r["p_harm"]),
                "R-hat": f"{r['rhat_max']:.3f}",
                "ESS": "n/a" if not np.isfinite(ess) else f"{ess:.0f}",
            }
        )
    right = {c for c in probs[0] if c not in NAME_WIDTHS} if probs else set()
    lines = ["Effects: RD = risk difference, treatment - control, in percentage points (pp); median (interval)"]
    lines += _render(effects, set(), width=width)
    lines += ["", "Probabilities of benefit (in the outcome's own direction; pp = percentage points), diagnostics"]
    lines += _render(probs, right, width=width)
    lines.append("")
    for _, r in table[table["level"] == "cohort"].iterrows():
        better = "more" if r["direction"] == "higher" else "fewer"
        text = (
            f"[{r['prior']}] {r['outcome']}: risk difference {100 * r['rd_median']:+.1f} percentage points"
            f" ({level}% ETI {100 * r[f'rd_{pct}_lb']:+.1f} to {100 * r[f'rd_{pct}_ub']:+.1f}); probability that"
            f" {treatment} gives {better} events (benefit) = {format_probability(r['p_benefit'])}"
            + "".join(
                f", of a benefit >= {100 * m:g} points = {format_probability(r[prob_column('benefit', m)])}"
                for m in mcids
            )
            + "."
        )
        lines += textwrap.wrap(text, width=width, subsequent_indent="    ", break_on_hyphens=False)
    return "\n".join(lines)
