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

import hashlib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from bayes_rescue._memo import memoised
from bayes_rescue.data.files import read_input_bytes
from bayes_rescue.data.names import NAME_RULE, is_valid_name, quote

# the columns, labels and row checks live in data/rows.py; their names stay importable from here
from bayes_rescue.data.rows import (  # noqa: F401
    ARMS,
    DIRECTIONS,
    KNOWN_DIRECTIONS,
    LABEL_COLUMNS,
    MAX_CELLS,
    MAX_LABEL,
    MAX_OUTCOMES,
    MAX_SUBGROUPS,
    OPTIONAL_COLUMNS,
    OVERALL,
    REQUIRED_COLUMNS,
    Labels,
    benefit_sign,
    check_cells,
    check_table_caps,
    csv_records,
    default_label,
    parse_count,
    parse_p,
    take_label,
)
from bayes_rescue.errors import InputError

BUNDLED_COHORT = "chen2025"


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


def parse_counts(text: str, *, source: str = "<counts>", sha256: str | None = None) -> CountsData:
    """Validate counts given as CSV text; see the module docstring for the format.

    Raises
    ------
    InputError
        With the file, line and field of the first problem found.
    """
    if text.strip() == "":
        raise InputError("is empty; expected a header line and counts", source=source)
    records_in = csv_records(text, source)
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
        events = parse_count(rec["events"], source=source, line=i, field="events")
        total = parse_count(rec["total"], source=source, line=i, field="total")
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
        check_table_caps(subgroups_seen, rec["outcome"], rec["subgroup"], source=source, line=i)
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
            take_label(labels[col], key, rec.get(col, ""), what, source=source, line=i, field=col)
        records.append(
            {
                "outcome": rec["outcome"],
                "subgroup": rec["subgroup"],
                "arm": rec["arm"],
                "events": events,
                "total": total,
                "provenance": rec.get("provenance", ""),
                "reported_p": parse_p(rec.get("reported_p", ""), source=source, line=i),
                "note": rec.get("note", ""),
                "_line": i,
            }
        )
    if not records:
        raise InputError("has a header but no counts", source=source, line=header_line + 1)
    check_cells(records, directions, source)
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
