"""Tidy counts: loading, validation and the bundled cohort.

The counts format (CSV, UTF-8, a BOM is tolerated) has one row per outcome x subgroup x arm:

==================  ========  ==============================================================
column              required  meaning
==================  ========  ==============================================================
``outcome``         yes       outcome name (letters, digits, ``_ . -``)
``subgroup``        yes       subgroup name; subgroups of one outcome are disjoint and
                              together make up the cohort (use one subgroup, e.g. ``all``,
                              for no split)
``arm``             yes       ``treatment`` or ``control``
``events``          yes       patients with the outcome (integer, 0 <= events <= total)
``total``           yes       patients in the arm and subgroup (integer >= 1)
``direction``       no        ``higher`` (more events is better) or ``lower``; may be left
                              blank for the known outcome names in :data:`KNOWN_DIRECTIONS`
``provenance``      no        ``reported`` or ``derived_from_percent`` (or free text)
``reported_p``      no        the P value the source printed for this outcome x subgroup
``note``            no        free text
``outcome_label``   no        the outcome's name in figures and reports (``mRS 0-2 at 90
                              days``); default: the name with underscores as spaces
``subgroup_label``  no        the subgroup's name in figures (``mild anterior
                              circulation``); default: the name with underscores as spaces
``arm_label``       no        the arm's name in figures (``rescue EVT``); default
                              ``treatment`` / ``control``
==================  ========  ==============================================================

Labels are text for people (at most 80 characters, no line breaks); the names stay the keys. A label is
constant per outcome, per outcome x subgroup and per arm: it may be given on one row and left blank on the
others, and a label that contradicts the same outcome's, subgroup's or arm's label on another line is an
error.

Any other column is an error, as are duplicate rows, a missing arm, and subgroups whose arm totals do not
add up to the same cohort for every outcome.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from bayes_rescue._memo import memoised
from bayes_rescue.data.files import read_input_bytes
from bayes_rescue.data.names import NAME_RULE, is_valid_name, quote
from bayes_rescue.errors import InputError

REQUIRED_COLUMNS = ("outcome", "subgroup", "arm", "events", "total")
LABEL_COLUMNS = ("outcome_label", "subgroup_label", "arm_label")
OPTIONAL_COLUMNS = ("direction", "provenance", "reported_p", "note", *LABEL_COLUMNS)
MAX_LABEL = 80
#: Most outcomes and subgroups (per outcome) a counts file may have: 20 x 50 x 2 arms = 2,000 rows at most,
#: read and checked in well under a second and small enough for the model (one cell per outcome x subgroup).
MAX_OUTCOMES = 20
MAX_SUBGROUPS = 50
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


def benefit_sign(direction: str) -> float:
    """+1 if more events is better (an outcome's ``direction`` is ``higher``), -1 if fewer is better."""
    return 1.0 if direction == "higher" else -1.0


_INT = re.compile(r"[+]?[0-9]+", re.ASCII)
#: A P value as printed: ASCII digits only (``float`` would take Arabic-Indic or full-width digits).
_P_VALUE = re.compile(r"[+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
BUNDLED_COHORT = "chen2025"


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


@dataclass(frozen=True)
class CountsData:
    """Validated two-arm binary-outcome counts.

    Attributes
    ----------
    table
        Tidy frame, one row per outcome x subgroup x arm, columns ``outcome, subgroup, arm, events,
        total, provenance, reported_p, note`` in file order.
    directions
        ``outcome -> "higher" | "lower"``.
    source
        Where the counts came from (a path, or ``bundled:<name>``).
    sha256
        Hash of the file's bytes, recorded in every run's manifest.
    meta
        Figures printed in the source (bundled cohorts), or empty.
    labels
        Names for people of outcomes, subgroups and arms (:class:`Labels`; defaults where not given).
    """

    table: pd.DataFrame
    directions: dict[str, str]
    source: str
    sha256: str
    meta: dict = field(default_factory=dict)
    labels: Labels = field(default_factory=Labels)

    @property
    def outcomes(self) -> list[str]:
        """Outcomes in order of first appearance."""
        return list(dict.fromkeys(self.table["outcome"]))

    def subgroups(self, outcome: str) -> list[str]:
        """Subgroups of ``outcome`` in order of first appearance."""
        rows = self.table[self.table["outcome"] == outcome]
        return list(dict.fromkeys(rows["subgroup"]))

    def cells(self) -> pd.DataFrame:
        """One row per outcome x subgroup with ``y_t, n_t, y_c, n_c`` (treatment/control counts).

        Computed once per object (the object is immutable) and returned as a fresh copy."""
        return memoised(self, "_cells", self._build_cells).copy()

    def _build_cells(self) -> pd.DataFrame:
        t = self.table
        out = []
        for outcome in self.outcomes:
            for sg in self.subgroups(outcome):
                rows = t[(t["outcome"] == outcome) & (t["subgroup"] == sg)].set_index("arm")
                out.append(
                    {
                        "outcome": outcome,
                        "subgroup": sg,
                        "y_t": int(rows.loc["treatment", "events"]),
                        "n_t": int(rows.loc["treatment", "total"]),
                        "y_c": int(rows.loc["control", "events"]),
                        "n_c": int(rows.loc["control", "total"]),
                        "direction": self.directions[outcome],
                    }
                )
        return pd.DataFrame(out)

    def to_csv_text(self) -> str:
        """The validated table as CSV text (used to store the data inside a saved posterior)."""
        cols = ["outcome", "subgroup", "arm", "events", "total", "provenance", "reported_p", "note"]
        frame = self.table[cols].copy()
        frame.insert(3, "direction", frame["outcome"].map(self.directions))
        lab = self.labels
        if lab.outcomes or lab.subgroups or lab.arms:
            frame["outcome_label"] = [lab.outcomes.get(o, "") for o in frame["outcome"]]
            keys = zip(frame["outcome"], frame["subgroup"], strict=True)
            frame["subgroup_label"] = [lab.subgroups.get(k, "") for k in keys]
            frame["arm_label"] = [lab.arms.get(a, "") for a in frame["arm"]]
        return frame.to_csv(index=False, lineterminator="\n")


def _read_text(path: Path) -> tuple[str, bytes]:
    raw = read_input_bytes(path, field="--data", what="file")
    return _decode(raw, path), raw


def _decode(raw: bytes, source) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV", source=source) from None
    if "\x00" in text:
        raise InputError("contains NUL bytes: not a text CSV file", source=source)
    return text


def counts_from_bytes(raw: bytes, *, source: str) -> CountsData:
    """Validate counts given as the bytes of a CSV file (UTF-8, a BOM tolerated; the sha256 is of ``raw``)."""
    return parse_counts(_decode(raw, source), source=source, sha256=hashlib.sha256(raw).hexdigest())


def _csv_records(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
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


def _parse_count(value: str, *, source: str, line: int, field: str) -> int:
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


def _parse_p(value: str, *, source: str, line: int) -> str:
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


def _take_label(seen: dict, key, value: str, what: str, *, source: str, line: int, field: str) -> None:
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


def _check_cells(records: list[dict], directions: dict[str, tuple[str, int]], source: str) -> None:
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


def parse_counts(text: str, *, source: str = "<counts>", sha256: str | None = None) -> CountsData:
    """Validate counts given as CSV text; see the module docstring for the format.

    Raises
    ------
    InputError
        With the file, line and field of the first problem found.
    """
    if text.strip() == "":
        raise InputError("is empty; expected a header line and counts", source=source)
    records_in = _csv_records(text, source)
    first = next(records_in, None)
    if first is None:
        raise InputError("is empty; expected a header line and counts", source=source)
    header_line, header_row = first
    header = [h.strip() for h in header_row]
    seen: set[str] = set()
    for k, col in enumerate(header, start=1):
        if col not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:  # quoted only if it follows the name rule
            shown = col if is_valid_name(col) and len(col) <= 40 else f"<column {k}>"
            raise InputError(
                "unknown column; allowed: " + ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS),
                source=source,
                line=header_line,
                field=shown,
            )
        if col in seen:
            raise InputError("column appears twice in the header", source=source, line=header_line, field=col)
        seen.add(col)
    for col in REQUIRED_COLUMNS:
        if col not in seen:
            raise InputError("required column is missing", source=source, line=header_line, field=col)

    records = []
    labels: dict[str, dict] = {col: {} for col in LABEL_COLUMNS}
    keys: dict[tuple[str, str, str], int] = {}
    directions: dict[str, tuple[str, int]] = {}
    subgroups_seen: dict[str, set[str]] = {}
    for i, row in records_in:
        if not row or all(c.strip() == "" for c in row):
            continue
        if len(row) != len(header):
            raise InputError(f"has {len(row)} fields, the header has {len(header)}", source=source, line=i)
        rec = {h: c.strip() for h, c in zip(header, row, strict=True)}
        for name in ("outcome", "subgroup"):
            if not is_valid_name(rec[name]):
                raise InputError(
                    f"{quote(rec[name])} is not a valid name ({NAME_RULE})", source=source, line=i, field=name
                )
        if rec["subgroup"] == OVERALL:
            raise InputError(
                f"'{OVERALL}' is reserved for the cohort-level summary; rename the subgroup",
                source=source,
                line=i,
                field="subgroup",
            )
        if rec["arm"] not in ARMS:
            raise InputError(
                f"{quote(rec['arm'])} is not an arm; expected 'treatment' or 'control'",
                source=source,
                line=i,
                field="arm",
            )
        events = _parse_count(rec["events"], source=source, line=i, field="events")
        total = _parse_count(rec["total"], source=source, line=i, field="total")
        if total == 0:
            raise InputError("is 0; an arm needs at least one patient", source=source, line=i, field="total")
        if events > total:
            raise InputError(f"{events} events exceed the total of {total}", source=source, line=i, field="events")
        key = (rec["outcome"], rec["subgroup"], rec["arm"])
        if key in keys:
            raise InputError(
                f"duplicate of line {keys[key]} (same outcome, subgroup and arm)",
                source=source,
                line=i,
                field="arm",
            )
        keys[key] = i
        sgs = subgroups_seen.setdefault(rec["outcome"], set())
        if len(sgs) == 0 and len(subgroups_seen) > MAX_OUTCOMES:
            raise InputError(
                f"more than {MAX_OUTCOMES} outcomes; at most {MAX_OUTCOMES} are allowed",
                source=source,
                line=i,
                field="outcome",
            )
        sgs.add(rec["subgroup"])
        if len(sgs) > MAX_SUBGROUPS:
            raise InputError(
                f"outcome '{rec['outcome']}' has more than {MAX_SUBGROUPS} subgroups;"
                f" at most {MAX_SUBGROUPS} are allowed",
                source=source,
                line=i,
                field="subgroup",
            )
        direction = rec.get("direction", "")
        if direction:
            if direction not in DIRECTIONS:
                raise InputError(
                    f"{quote(direction)} is not 'higher' or 'lower'",
                    source=source,
                    line=i,
                    field="direction",
                )
            prev = directions.get(rec["outcome"])
            if prev and prev[0] != direction:
                raise InputError(
                    f"'{direction}' contradicts '{prev[0]}' on line {prev[1]} for the same outcome",
                    source=source,
                    line=i,
                    field="direction",
                )
            directions[rec["outcome"]] = (direction, i)
        for col, key, what in (
            ("outcome_label", rec["outcome"], f"outcome '{rec['outcome']}'"),
            ("subgroup_label", (rec["outcome"], rec["subgroup"]), f"subgroup '{rec['outcome']}/{rec['subgroup']}'"),
            ("arm_label", rec["arm"], f"arm '{rec['arm']}'"),
        ):
            _take_label(labels[col], key, rec.get(col, ""), what, source=source, line=i, field=col)
        records.append(
            {
                "outcome": rec["outcome"],
                "subgroup": rec["subgroup"],
                "arm": rec["arm"],
                "events": events,
                "total": total,
                "provenance": rec.get("provenance", ""),
                "reported_p": _parse_p(rec.get("reported_p", ""), source=source, line=i),
                "note": rec.get("note", ""),
                "_line": i,
            }
        )
    if not records:
        raise InputError("has a header but no counts", source=source, line=header_line + 1)
    _check_cells(records, directions, source)
    table = pd.DataFrame.from_records(records)
    resolved = {
        o: directions[o][0] if o in directions else KNOWN_DIRECTIONS[o] for o in dict.fromkeys(table["outcome"])
    }
    digest = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    return CountsData(
        table=table.drop(columns="_line"),
        directions=resolved,
        source=source,
        sha256=digest,
        labels=Labels(
            outcomes={k: v[0] for k, v in labels["outcome_label"].items()},
            subgroups={k: v[0] for k, v in labels["subgroup_label"].items()},
            arms={k: v[0] for k, v in labels["arm_label"].items()},
        ),
    )


def load_counts(path: str | Path) -> CountsData:
    """Load and validate a counts CSV file (see the module docstring for the format).

    ``path`` may be ``bundled:<name>`` (or just the bundled name) for a dataset shipped with the package;
    the bundled cohort is also checked against the figures printed in its abstract.
    """
    spec = str(path)
    name = spec.removeprefix("bundled:")
    if spec.startswith("bundled:") or (name == BUNDLED_COHORT and not Path(spec).exists()):
        return load_bundled(name)
    p = Path(path)
    text, raw = _read_text(p)
    return parse_counts(text, source=str(p), sha256=hashlib.sha256(raw).hexdigest())


def bundled_names() -> list[str]:
    """Names of the datasets shipped with the package."""
    root = resources.files("bayes_rescue") / "data"
    return sorted(p.name.removesuffix(".csv") for p in root.iterdir() if p.name.endswith(".csv"))


def load_bundled(name: str = BUNDLED_COHORT) -> CountsData:
    """Load a bundled dataset and check it against the figures printed in its source."""
    if name not in bundled_names():
        raise InputError(
            f"unknown bundled dataset {quote(name)}; available: {', '.join(bundled_names())}",
            field="--data",
        )
    root = resources.files("bayes_rescue") / "data"
    raw = (root / f"{name}.csv").read_bytes()
    data = parse_counts(raw.decode("utf-8-sig"), source=f"bundled:{name}", sha256=hashlib.sha256(raw).hexdigest())
    meta_file = root / f"{name}.toml"
    meta = tomllib.loads(meta_file.read_text("utf-8")) if meta_file.is_file() else {}
    if meta:
        check_against_reported(data, meta)
    return CountsData(data.table, data.directions, data.source, data.sha256, meta, data.labels)


def check_against_reported(data: CountsData, meta: dict) -> None:
    """Check counts against printed figures (arm sizes, events/total, percentages to one decimal).

    Raises
    ------
    InputError
        Naming the outcome and arm whose counts disagree with the printed figure.
    """
    t = data.table
    for outcome in data.outcomes:
        for arm, size in meta.get("arms", {}).items():
            n = int(t[(t["outcome"] == outcome) & (t["arm"] == arm)]["total"].sum())
            if n != size:
                raise InputError(
                    f"{arm} arm of '{outcome}' has {n} patients, the source prints {size}",
                    source=data.source,
                    field="total",
                )
    for rep in meta.get("reported", []):
        rows = t[t["outcome"] == rep["outcome"]]
        if rep["subgroup"] != "*":
            rows = rows[rows["subgroup"] == rep["subgroup"]]
        for arm in ARMS:
            events, total, pct = rep[arm]
            sub = rows[rows["arm"] == arm]
            e, n = int(sub["events"].sum()), int(sub["total"].sum())
            if (e, n) != (events, total) or round(100 * e / n, 1) != pct:
                raise InputError(
                    f"{rep['outcome']}/{rep['subgroup']} {arm}: counts {e}/{n} do not match the"
                    f" printed {events}/{total} ({pct}%)",
                    source=data.source,
                    field="events",
                )
