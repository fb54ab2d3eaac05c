"""The words every reader-facing output shares: labels, direction phrases, benefit wording, headings.

One vocabulary for the console, ``check``, ``sensitivity``, the report and the figures (issue 21 item 1):

- names for people come from the data file's label columns (:class:`~bayes_rescue.data.counts.Labels`);
  raw names (``mrs_0_2``, ``mild_anterior``) stay in machine-readable files and may follow a label once, in
  parentheses (:func:`with_name`);
- a prior is shown by its title (:func:`prior_label`);
- the direction of an outcome is said in its own words: "more patients with mRS 0-2 at 90 days" for an outcome
  where more events is better, "fewer deaths at 90 days" for mortality (:func:`direction_phrase`);
- column headings say what they are ("min tail ESS", :data:`HEADINGS`, :func:`heading`).

Pure functions of strings and a ``Labels``; importing this module imports neither PyMC nor matplotlib.

Examples
--------
>>> direction_phrase("higher", "mRS 0-2 at 90 days")
'more patients with mRS 0-2 at 90 days'
>>> direction_phrase("lower", "mortality at 90 days")
'fewer deaths at 90 days'
>>> heading("ess_tail_min")
'min tail ESS'
"""

from __future__ import annotations

import math
import re

from bayes_rescue.data.counts import OVERALL, Labels, benefit_sign

__all__ = [
    "HEADINGS",
    "arm_label",
    "benefit_meaning",
    "direction_phrase",
    "estimand_label",
    "event_phrase",
    "favours",
    "format_probability",
    "heading",
    "interval_heading",
    "mcid_heading",
    "mcid_phrase",
    "nnt_display",
    "nnt_text",
    "outcome_label",
    "parameter_label",
    "prior_label",
    "subgroup_label",
    "with_name",
]

#: Headings of summary columns for people (console tables, the report's tables). The CSV keeps the names.
HEADINGS: dict[str, str] = {
    "prior": "prior",
    "bias": "bias model",
    "model": "model",
    "outcome": "outcome",
    "subgroup": "subgroup",
    "p_benefit": "P(benefit)",
    "p_harm": "P(harm)",
    "rhat_max": "max R-hat",
    "ess_bulk_min": "min bulk ESS",
    "ess_tail_min": "min tail ESS",
    "divergences": "divergences",
    "nnt_kind": "NNT kind",
    "prior_p_benefit": "prior P(benefit)",
}

#: Model parameters for people (figures of the sampler's draws, ``validate``'s quantities).
PARAMETER_NAMES: dict[str, str] = {
    "mu_log_or": "mean log OR",
    "tau_log_or": "SD of subgroup log ORs",
    "delta": "log OR",
    "baseline": "mean log odds of the arms",
    "bias": "bias (log OR)",
}

# "mortality", "death(s)", "all-cause mortality", alone or followed by when it was counted ("at 90 days")
_DEATHS = re.compile(
    r"^(?:all[- ]cause\s+)?(?:mortality|deaths?)(?P<when>\s+(?:at|by|within|in|after|before|over|to|on)\b.*)?$",
    re.IGNORECASE,
)


def _labels(labels: Labels | None) -> Labels:
    return labels if labels is not None else Labels()


def outcome_label(outcome: str, labels: Labels | None = None) -> str:
    """The outcome's label from the data file, or its name with underscores as spaces."""
    return _labels(labels).outcome(outcome)


def subgroup_label(outcome: str, subgroup: str, labels: Labels | None = None) -> str:
    """The subgroup's label from the data file; the cohort-level row (``overall``) is ``whole cohort``."""
    return _labels(labels).subgroup(outcome, subgroup)


def arm_label(arm: str, labels: Labels | None = None) -> str:
    """The arm's label from the data file, or ``treatment`` / ``control``."""
    return _labels(labels).arm(arm)


def estimand_label(outcome: str, subgroup: str, labels: Labels | None = None, *, sep: str = ", ") -> str:
    """``mRS 0-2 at 90 days, mild anterior circulation``: outcome and subgroup labels joined by ``sep``."""
    return f"{outcome_label(outcome, labels)}{sep}{subgroup_label(outcome, subgroup, labels)}"


def parameter_label(parameter: str, labels: Labels | None = None, *, sep: str = ", ") -> str:
    """``mu_log_or[mrs_0_2]`` -> ``mean log OR, mRS 0-2 at 90 days``; a cell ``outcome/subgroup`` gets both
    labels; a parameter or item it does not know (a trial of the MAP meta-analysis) stays as it is. ``sep``
    joins the parts (a line break for narrow panels)."""
    name, _, item = parameter.partition("[")
    item = item.removesuffix("]")
    text = PARAMETER_NAMES.get(name, name)
    if not item:
        return text
    outcome, _, subgroup = item.partition("/")
    where = outcome_label(outcome, labels) + (f"{sep}{subgroup_label(outcome, subgroup, labels)}" if subgroup else "")
    return f"{text}{sep}{where}"


def with_name(label: str, name: str) -> str:
    """``label (name)``: a label followed once by the raw name it stands for, where the two differ.

    The name is left out when the label says it already (the label is the name, or the name with underscores
    as spaces), and for the cohort-level row (``overall``), whose label ``whole cohort`` is no file's name.
    """
    if name == OVERALL or label in (name, name.replace("_", " ")):
        return label
    return f"{label} ({name})"


def prior_label(prior, bias: str | None = None) -> str:
    """The prior's title for people: its ``title`` where the prior spec has one, else its name (the name
    ``--prior`` takes); with ``bias`` (a bias model's name, not ``none``): ``"skeptical, adjusted for bias
    model mild"``.

    ``prior`` is a :class:`~bayes_rescue.priors.spec.PriorSpec` (or anything with a ``name``) or a name.
    """
    if isinstance(prior, str):
        title = prior
    else:
        title = getattr(prior, "title", "") or prior.name
    if bias and bias != "none":
        title += f", adjusted for bias model {bias}"
    return title


def event_phrase(outcome_label: str) -> str:
    """The patients an outcome counts, in words: ``deaths at 90 days`` for a mortality label, else
    ``patients with <label>`` (``patients with mRS 0-2 at 90 days``)."""
    found = _DEATHS.match(outcome_label.strip())
    if found:
        return "deaths" + (found.group("when") or "")
    return f"patients with {outcome_label}"


def direction_phrase(direction: str, outcome_label: str) -> str:
    """What benefit means for an outcome: ``more patients with mRS 0-2 at 90 days`` where more events is
    better (``direction`` ``higher``), ``fewer deaths at 90 days`` where fewer is (``lower``)."""
    more = benefit_sign(direction) > 0
    return f"{'more' if more else 'fewer'} {event_phrase(outcome_label)}"


def benefit_meaning(
    direction: str, outcome_label: str, *, treatment: str = "treatment", control: str = "control"
) -> str:
    """``more patients with mRS 0-2 at 90 days with rescue EVT than with medical management``: what
    "benefit" stands for, with the arms' labels."""
    return f"{direction_phrase(direction, outcome_label)} with {treatment} than with {control}"


def favours(direction: str, labels: Labels | None = None) -> tuple[str, str]:
    """The (left, right) captions of a risk-difference axis (treatment - control, negative on the left).

    More events is better (``higher``): a positive RD favours treatment, so the right side reads
    "Favours <treatment label>"; fewer events is better (``lower``, e.g. mortality): the left side does.
    """
    t, c = arm_label("treatment", labels), arm_label("control", labels)
    return (f"Favours {c}", f"Favours {t}") if benefit_sign(direction) > 0 else (f"Favours {t}", f"Favours {c}")


def mcid_heading(mcid: float) -> str:
    """``P(benefit >= 5 pp)``: the heading of ``p_benefit_ge_0.05`` (pp = percentage points)."""
    return f"P(benefit >= {100 * mcid:g} pp)"


def mcid_phrase(mcid: float) -> str:
    """``a benefit of at least 5 percentage points``."""
    return f"a benefit of at least {100 * mcid:g} percentage points"


def interval_heading(what: str, ci_prob: float = 0.95, *, kind: str = "ETI") -> str:
    """``RD, pp (95% ETI)``: a quantity's heading with the interval it shows."""
    return f"{what} ({100 * ci_prob:g}% {kind})"


def heading(column: str) -> str:
    """The heading of a summary column for people: :data:`HEADINGS`, ``p_benefit_ge_<m>`` as
    :func:`mcid_heading`; any other column is returned as it is (its CSV name)."""
    if column in HEADINGS:
        return HEADINGS[column]
    if column.startswith("p_benefit_ge_"):
        try:
            return mcid_heading(float(column.removeprefix("p_benefit_ge_")))
        except ValueError:
            return column
    return column


def format_probability(p: float | None, digits: int = 3) -> str:
    """A probability for people: ``digits`` decimals, but never a rounded certainty.

    A value that would print as 1.000 prints as ``>0.999``, one that would print as 0.000 (including an
    exact 0, which from a finite number of draws only says the probability is small) as ``<0.001``;
    a missing value (NaN, None) as ``n/a``.
    """
    if p is None or not math.isfinite(p):
        return "n/a"
    step = 10.0**-digits
    if p >= 1 - step / 2:
        return f">{1 - step:.{digits}f}"
    if p < step / 2:
        return f"<{step:.{digits}f}"
    return f"{p:.{digits}f}"


def nnt_text(rd_benefit_lb: float, rd_benefit_ub: float, *, rd_benefit_median: float | None = None) -> str:
    """Altman's NNT interval from the interval of the benefit-oriented RD (positive = benefit).

    An interval on one side of no effect is ``NNTB a to b`` (or ``NNTH``); one that passes through no
    effect (including one that touches 0) is ``NNTB a to inf to NNTH b`` (Altman, BMJ 1998;317:1309,
    doi 10.1136/bmj.317.7168.1309). With ``rd_benefit_median`` the point NNT comes first,
    ``NNTB 3.3 (NNTB 1.9 to 19.6)``, but only where the interval does not pass through no effect: there a
    point NNT (``NNTB 284.6`` for a null effect) says nothing the interval does not, and misleads.
    """

    def inv(x: float) -> str:
        return "inf" if x == 0 else f"{1 / abs(x):.1f}"

    lb, ub = rd_benefit_lb, rd_benefit_ub
    if lb > 0:
        interval = f"NNTB {inv(ub)} to {inv(lb)}"
    elif ub < 0:
        interval = f"NNTH {inv(lb)} to {inv(ub)}"
    else:
        return f"NNTB {inv(ub)} to inf to NNTH {inv(lb)}"
    if rd_benefit_median is None or not math.isfinite(rd_benefit_median) or rd_benefit_median == 0:
        return interval
    kind = "NNTB" if rd_benefit_median > 0 else "NNTH"
    return f"{kind} {inv(rd_benefit_median)} ({interval})"


def nnt_display(row, ci_prob: float = 0.95) -> str:
    """The NNT of a summary row for people (:func:`nnt_text` with the point NNT where it means something),
    from its ``direction``, ``rd_median`` and ``rd_eti<level>_lb/_ub`` (level from ``ci_prob``)."""
    pct = f"eti{round(ci_prob * 100):d}"
    sign = benefit_sign(row["direction"])
    lo, hi = sign * float(row[f"rd_{pct}_lb"]), sign * float(row[f"rd_{pct}_ub"])
    return nnt_text(min(lo, hi), max(lo, hi), rd_benefit_median=sign * float(row["rd_median"]))
