"""The warnings box and the reporting checklist of the report.

Warnings (:func:`warnings_box`): failed or marginal sampler diagnostics, a power-scaling prior-data conflict
(``rd_psense_diagnosis`` of ``summary.csv``), counts derived from printed percentages, a non-randomised
comparison (with the bias analysis' headline when the run has bias-adjusted fits), and the E-values always.

Checklist (:func:`checklist`): the ROBUST items (Sung et al., J Clin Epidemiol 2005;58:261-268) and the BARG
steps (Kruschke, Nat Hum Behav 2021;5:1282-1291) that a run can answer, each with the section of the report
that answers it, and those it cannot answer, listed as such.
"""

from __future__ import annotations

import re

import pandas as pd

from bayes_rescue.data.counts import Labels
from bayes_rescue.outputs.report.basics import _finite, _truthy, fmt_ratio
from bayes_rescue.outputs.report.results import _cohort, _range, fit_label
from bayes_rescue.outputs.wording import estimand_label, outcome_label

#: Diagnostics that pass the gate but are within this factor of it are "marginal" (ESS < 1.5 x 1000, R-hat
#: above 1.005 where the gate is 1.01).
ESS_GATE, ESS_MARGIN, RHAT_MARGIN = 1000.0, 1.5, 1.005
#: What a power-scaling diagnosis means for a reader.
MEANING = {
    "potential prior-data conflict": "prior and data pull the risk difference in different directions",
    "potential strong prior / weak likelihood": "the data say little here, so the prior largely sets the result",
}
NON_RANDOMISED = re.compile(r"retrospective|observational|non-?randomi[sz]ed|registry|case[- ]control", re.I)


def _marginal(summary: pd.DataFrame) -> list[str]:
    keys = [c for c in ("prior", "bias") if c in summary.columns]
    if "rhat_max" not in summary.columns or not keys:
        return []
    out = []
    for _, g in summary.groupby(keys, sort=False):
        if "diagnostics_passed" in g and not all(_truthy(v) for v in g["diagnostics_passed"]):
            continue  # failed: in the failures
        ess = min(g[c].min() for c in ("ess_bulk_min", "ess_tail_min") if c in g)
        rhat = g["rhat_max"].max()
        if ess < ESS_MARGIN * ESS_GATE or rhat > RHAT_MARGIN:
            out.append(
                f"Diagnostics close to the gate for {fit_label(g.iloc[0])}: max R-hat {rhat:.4f}, smallest ESS"
                f" {ess:.0f} (gate: R-hat <= 1.01, ESS >= {ESS_GATE:.0f}); a longer run (--draws) would be safer."
            )
    return out


def _conflicts(summary: pd.DataFrame, labels: Labels | None) -> list[str]:
    col = "rd_psense_diagnosis"
    if col not in summary.columns:
        return []
    out = []
    text = summary[col].fillna("").astype(str).str.strip()
    flagged = summary[~text.isin(["", "-", "none", "nan", "ok"])]  # "ok": no diagnosis to warn of
    for diagnosis, g in flagged.groupby(col, sort=False):
        where = sorted(  # in the summary's order (deterministic), the whole-cohort rows last
            dict.fromkeys(estimand_label(r["outcome"], r["subgroup"], labels) for _, r in g.iterrows()),
            key=lambda x: x.endswith("whole cohort"),
        )
        fits = list(dict.fromkeys(fit_label(r) for _, r in g.iterrows()))
        out.append(
            f"Power-scaling sensitivity (Kallioinen et al., Stat Comput 2024) finds a {diagnosis} for "
            + "; ".join(where)
            + f" (under {', '.join(fits) if len(fits) <= 3 else f'{len(fits)} of the fits'}): "
            + MEANING.get(str(diagnosis), "the result depends on the prior")
            + "; read it under each prior (columns rd_prior_sensitivity and rd_likelihood_sensitivity of"
            " summary.csv)."
        )
    return out


def _bias_headline(summary: pd.DataFrame, labels: Labels | None) -> str:
    if "bias" not in summary.columns or not (summary["bias"] != "none").any():
        return ""
    parts = []
    for outcome, g in _cohort(summary).groupby("outcome", sort=False):
        plain = g[g["bias"] == "none"]["p_benefit"]
        for b, h in g[g["bias"] != "none"].groupby("bias", sort=False):
            if len(plain):
                parts.append(
                    f"{outcome_label(outcome, labels)}, whole cohort: P(benefit) {_range(plain)} unadjusted,"
                    f" {_range(h['p_benefit'])} adjusted for bias model {b}"
                )
    return "Bias analysis: " + "; ".join(parts) + " (see Bias analysis)." if parts else ""


def _evalue_text(evalues: pd.DataFrame | None, labels: Labels | None) -> str:
    if evalues is None or evalues.empty or "data_evalue" not in evalues.columns:
        return ""
    rows = evalues[evalues["level"] == "cohort"] if "level" in evalues.columns else evalues
    if "bias" in rows.columns:
        rows = rows[rows["bias"] == "none"]
    rows = rows.drop_duplicates(["outcome", "subgroup"])
    parts = [
        f"{outcome_label(r['outcome'], labels)}: observed RR {fmt_ratio(r.get('data_rr'))}, E-value"
        f" {fmt_ratio(r['data_evalue'])} (of the 95% interval {fmt_ratio(r.get('data_evalue_ci'))})"
        for _, r in rows.iterrows()
        if _finite(r["data_evalue"])
    ]
    if not parts:
        return ""
    return (
        "E-values, whole cohort (the strength of unmeasured confounding, as a risk ratio with both treatment and"
        " outcome, that could explain the observed association away; 1 = none needed): " + "; ".join(parts) + "."
    )


def warnings_box(
    summary: pd.DataFrame | None,
    failures: list[str],
    data: dict | None,
    evalues: pd.DataFrame | None,
    labels: Labels | None = None,
) -> list[str]:
    """The warnings at the top of the report, each one sentence or two (empty: no box)."""
    out = [f"Diagnostics failed: {f}." for f in failures]
    if summary is not None:
        out += _marginal(summary) + _conflicts(summary, labels)
    derived = (data or {}).get("derived") or []
    if derived:
        out.append(
            "Counts derived from percentages printed in the source, not reported as counts: "
            + "; ".join(estimand_label(o, s, labels) for o, s in derived)
            + " (see Data, column provenance)."
        )
    description = str((data or {}).get("description", ""))
    bias = _bias_headline(summary, labels) if summary is not None else ""
    if NON_RANDOMISED.search(description) or bias:
        text = "Non-randomised comparison" + (f" ({description})" if description else "") + ": "
        text += "confounding may explain part of the difference between the arms. "
        text += bias or "Refit with --bias to see the results adjusted for the bias of such a comparison."
        out.append(text)
    ev = _evalue_text(evalues, labels)
    if ev:
        out.append(ev)
    return out


def checklist(context: dict) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str]]]:
    """``(answered, unanswered)``: ``(guideline, item, answer, where)`` for each ROBUST / BARG item the run
    answers, with the report section that answers it (present only when that section is), and
    ``(guideline, item)`` for the items a run cannot answer."""
    has = {k: bool(context.get(k)) for k in ("priors", "results", "diagnostics", "reproduce", "sensitivity", "glance")}
    has["diagnostics"] = has["diagnostics"] or bool(context.get("manifest_diagnostics"))
    several = bool(context.get("several_fits"))
    items = [
        ("ROBUST 1", "prior distribution specified", "each prior's components, on the log odds ratio", "priors"),
        ("ROBUST 2", "prior distribution justified", "each prior's rationale and sources", "priors"),
        ("ROBUST 3", "sensitivity analysis of the prior", "results under every prior side by side", "glance")
        if several
        else ("ROBUST 3", "sensitivity analysis of the prior", "P(benefit) over a grid of priors", "sensitivity"),
        ("ROBUST 4", "statistical model", "binomial likelihood, logit link, model named in Results", "results"),
        ("ROBUST 5", "analytical technique", "MCMC (NUTS) settings, software and versions", "reproduce"),
        ("ROBUST 6", "central tendency", "posterior medians", "results"),
        ("ROBUST 7", "standard deviation or credible interval", "95% equal-tailed credible intervals", "results"),
        ("BARG 1C", "prior distribution explained and justified", "each prior with its sources", "priors"),
        ("BARG 1D", "formal specification", "the prior files (sha256) and the model", "reproduce"),
        ("BARG 2A", "software", "package versions", "reproduce"),
        ("BARG 2B", "MCMC convergence", "R-hat per fit", "diagnostics"),
        ("BARG 2C", "MCMC resolution", "bulk and tail ESS per fit", "diagnostics"),
        ("BARG 3B", "posterior summaries", "medians, 95% ETIs, P(benefit), P(>= MCID)", "results"),
        ("BARG 4A", "ROPE and decision thresholds", "P(ROPE) and P(benefit >= MCID)", "results"),
        ("BARG 5A", "sensitivity to the prior", "every prior side by side", "glance")
        if several
        else ("BARG 5A", "sensitivity to the prior", "P(benefit) over a grid of priors", "sensitivity"),
        ("BARG 6", "reproducibility", "command, seed, data and prior hashes, file hashes", "reproduce"),
    ]
    answered = [(g, i, a, w) for g, i, a, w in items if has.get(w)]
    unanswered = [(g, i) for g, i, _, w in items if not has.get(w)]
    unanswered += [
        ("BARG 1A", "why these data variables (the choice of outcomes and subgroups)"),
        ("BARG 1E", "prior predictive check against prior knowledge"),
        ("BARG 3A", "posterior predictive check (a run writes the draws to do one)"),
        ("BARG 3C", "Bayes factors and posterior model probabilities (not computed)"),
        ("BARG 6", "posting the code and data publicly"),
    ]
    return answered, unanswered
