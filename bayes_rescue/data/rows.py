"""The rows of a counts file: its columns, the names and labels in it, and the checks of single cells and
across rows (both arms present, a direction for every outcome, subgroups that partition one cohort).
:mod:`bayes_rescue.data.counts` puts them together (every name here is importable from there too).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from bayes_rescue.data.names import quote
from bayes_rescue.errors import InputError

REQUIRED_COLUMNS = ("outcome", "subgroup", "arm", "events", "total")
LABEL_COLUMNS = ("outcome_label", "subgroup_label", "arm_label")
OPTIONAL_COLUMNS = ("direction", "provenance", "reported_p", "note", *LABEL_COLUMNS)
MAX_LABEL = 80
#: Most outcomes, subgroups (per outcome) and cells (outcome x subgroup) a counts file may have: a table of
#: hundreds of study arms fits (200 subgroups is a bench case), and 1,000 cells x 2 arms = 2,000 rows at most
#: are read and checked in well under a second and small enough for the model (one cell per outcome x subgroup).
MAX_OUTCOMES = 20
MAX_SUBGROUPS = 500
MAX_CELLS = 1000
ARMS = ("treatment", "control")
DIRECTIONS = ("higher", "lower")
#: Outcome names whose direction is known: ``higher`` means more events is better.
KNOWN_DIRECTIONS: dict[str, str] = {
    "mrs_0_2": "higher",
    "mrs_0_1": "higher",
    "favourable": "higher",
    "favorable": "higher",
    "functional_independence": "higher",
    "mortality": "lower",
    "death": "lower",
    "sich": "lower",
}
#: Name of the cohort-level (standardised) row in every summary; not allowed as a subgroup name.
OVERALL = "overall"
_INT = re.compile(r"[+]?[0-9]+", re.ASCII)
#: A P value as printed: ASCII digits only (``float`` would take Arabic-Indic or full-width digits).
_P_VALUE = re.compile(r"[+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def benefit_sign(direction: str) -> float:
    """+1 if more events is better (an outcome's ``direction`` is ``higher``), -1 if fewer is better."""
    return 1.0 if direction == "higher" else -1.0


def default_label(name: str) -> str:
    """A name as a label when the file gives none: underscores as spaces (``mrs_0_2`` -> ``mrs 0 2``)."""
    return name.replace("_", " ")


@dataclass(frozen=True)
class Labels:
    """Names for people, from the optional label columns; a name without a label gets a default.

    Attributes
    ----------
    outcomes
        ``outcome -> label`` given in the file.
    subgroups
        ``(outcome, subgroup) -> label`` given in the file.
    arms
        ``arm -> label`` given in the file.
    """

    outcomes: dict[str, str] = field(default_factory=dict)
    subgroups: dict[tuple[str, str], str] = field(default_factory=dict)
    arms: dict[str, str] = field(default_factory=dict)

    def outcome(self, outcome: str) -> str:
        """The outcome's label, or its name with underscores as spaces."""
        return self.outcomes.get(outcome) or default_label(outcome)

    def subgroup(self, outcome: str, subgroup: str) -> str:
        """The subgroup's label; the cohort-level row (``overall``) is ``whole cohort``."""
        if subgroup == OVERALL:
            return "whole cohort"
        return self.subgroups.get((outcome, subgroup)) or default_label(subgroup)

    def arm(self, arm: str) -> str:
        """The arm's label, or ``treatment`` / ``control``."""
        return self.arms.get(arm) or arm


def csv_records(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number in the file, fields)`` of every CSV record, with the true line number of the line
    where the record starts (:attr:`csv.reader.line_num`); a generator, so that a file refused at a row
    (a cap reached, say) is not read further.

    A field that spans lines (a quoted newline, or an unterminated quote that would swallow every later
    row) is an error naming the line where the field starts."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for row in reader:
            if any("\n" in c or "\r" in c for c in row):
                raise InputError(
                    "a field runs over more than one line (an unterminated quote?); fields may not contain line breaks",
                    source=source,
                    line=start,
                )
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"is not valid CSV ({exc})", source=source, line=start) from None


def parse_count(value: str, *, source: str, line: int, field: str) -> int:
    v = value.strip()
    if v == "":
        raise InputError("is empty; expected a whole number", source=source, line=line, field=field)
    if not _INT.fullmatch(v):
        raise InputError(
            f"{quote(v)} is not a non-negative whole number (ASCII digits 0-9)", source=source, line=line, field=field
        )
    n = int(v)
    if n > 10**9:
        raise InputError(f"{n} is implausibly large (> 1e9)", source=source, line=line, field=field)
    return n


def parse_p(value: str, *, source: str, line: int) -> str:
    """Validate a printed P value; keep its text, whose decimals say how precisely it was printed."""
    v = value.strip()
    if v == "":
        return ""
    if not _P_VALUE.fullmatch(v):
        raise InputError(f"{quote(v)} is not a number (ASCII digits)", source=source, line=line, field="reported_p")
    p = float(v)
    if not (0.0 <= p <= 1.0):
        raise InputError(f"{v} is not in [0, 1]", source=source, line=line, field="reported_p")
    return v


def take_label(seen: dict, key, value: str, what: str, *, source: str, line: int, field: str) -> None:
    """Record a label for ``key`` (blank: none on this row); it must agree with the one given before."""
    if value == "":
        return
    if "\n" in value or "\r" in value:
        raise InputError("contains a line break; a label is one line", source=source, line=line, field=field)
    if not value.isprintable():
        raise InputError(
            "contains a control character; a label is printable text", source=source, line=line, field=field
        )
    if len(value) > MAX_LABEL:
        raise InputError(f"is {len(value)} characters long; at most {MAX_LABEL}", source=source, line=line, field=field)
    prev = seen.get(key)
    if prev is not None and prev[0] != value:
        raise InputError(
            f"'{value[:40]}' contradicts '{prev[0][:40]}' on line {prev[1]} for the same {what}",
            source=source,
            line=line,
            field=field,
        )
    seen.setdefault(key, (value, line))


def check_cells(records: list[dict], directions: dict[str, tuple[str, int]], source: str) -> None:
    """The checks across rows, in one pass over the records (linear; no per-group pandas work): both arms
    of every outcome x subgroup, a direction for every outcome, subgroups that partition one cohort, and
    one reported P per outcome x subgroup."""
    groups: dict[tuple[str, str], list[dict]] = {}
    sums: dict[tuple[str, str], list[int]] = {}  # (outcome, arm) -> [total, last line]
    for r in records:
        groups.setdefault((r["outcome"], r["subgroup"]), []).append(r)
        acc = sums.setdefault((r["outcome"], r["arm"]), [0, 0])
        acc[0] += r["total"]
        acc[1] = r["_line"]
    for (outcome, sg), rows in groups.items():  # every outcome x subgroup needs both arms
        arms = {r["arm"] for r in rows}
        for arm in ARMS:
            if arm not in arms:
                raise InputError(
                    f"outcome '{outcome}', subgroup '{sg}' has no '{arm}' row",
                    source=source,
                    line=rows[0]["_line"],
                    field="arm",
                )
    outcomes = list(dict.fromkeys(r["outcome"] for r in records))
    for outcome in outcomes:  # directions: given, or known
        if outcome not in directions and outcome not in KNOWN_DIRECTIONS:
            line = next(r["_line"] for r in records if r["outcome"] == outcome)
            raise InputError(
                f"outcome '{outcome}' has no known direction; add a 'direction' column"
                " with 'higher' (more events is better) or 'lower'",
                source=source,
                line=line,
                field="direction",
            )
    first = outcomes[0]
    for outcome in outcomes:  # subgroups partition one cohort: per arm, the summed totals agree across outcomes
        for arm in ARMS:
            n, line = sums[(outcome, arm)]
            if n != sums[(first, arm)][0]:
                raise InputError(
                    f"the {arm} subgroups of '{outcome}' add up to {n} patients"
                    f" but those of '{first}' to {sums[(first, arm)][0]}; subgroups must partition"
                    " the same cohort",
                    source=source,
                    line=line,
                    field="total",
                )
    for (outcome, sg), rows in groups.items():  # a reported P: both arms agree where both give one
        if len({r["reported_p"] for r in rows if r["reported_p"]}) > 1:
            raise InputError(
                f"the two arms of '{outcome}'/'{sg}' give different reported P values",
                source=source,
                line=rows[-1]["_line"],
                field="reported_p",
            )


def check_table_caps(seen: dict[str, set[str]], outcome: str, subgroup: str, *, source: str, line: int) -> None:
    """Add one row's outcome and subgroup to ``seen`` (outcome -> its subgroups so far), refusing the row that
    goes past :data:`MAX_OUTCOMES`, :data:`MAX_CELLS` or :data:`MAX_SUBGROUPS` (the message gives the cap), so a
    huge file is refused as soon as it passes one, without reading on."""
    sgs = seen.setdefault(outcome, set())
    if not sgs and len(seen) > MAX_OUTCOMES:
        raise InputError(
            f"more than {MAX_OUTCOMES} outcomes; at most {MAX_OUTCOMES} are allowed",
            source=source,
            line=line,
            field="outcome",
        )
    if subgroup not in sgs and sum(map(len, seen.values())) >= MAX_CELLS:
        raise InputError(
            f"more than {MAX_CELLS} cells (outcome x subgroup); at most {MAX_CELLS} are allowed",
            source=source,
            line=line,
            field="subgroup",
        )
    sgs.add(subgroup)
    if len(sgs) > MAX_SUBGROUPS:
        raise InputError(
            f"outcome '{outcome}' has more than {MAX_SUBGROUPS} subgroups; at most {MAX_SUBGROUPS} are allowed",
            source=source,
            line=line,
            field="subgroup",
        )
