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
    "heading",
    "interval_heading",
    "mcid_heading",
    "mcid_phrase",
    "outcome_label",
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
