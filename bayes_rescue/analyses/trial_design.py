"""Design files of a coming trial (``analyses/designs/*.toml``): registered facts with their sources and the
analysis values of an assurance calculation, each registered (a source) or assumed (an assumption). Read
through the one TOML reader (:func:`bayes_rescue.data.tomlfile.loads_toml`: regular file, size and depth
caps). The format is described in the :mod:`bayes_rescue.analyses.prediction` docstring; every name here is
importable from there.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bayes_rescue.data.files import read_input_bytes
from bayes_rescue.data.names import quote
from bayes_rescue.data.tomlfile import MAX_TOML_BYTES, loads_toml, shown
from bayes_rescue.errors import InputError

#: The tests and sides a design may name (as :data:`bayes_rescue.analyses.prediction.TESTS` and ``SIDES``).
TESTS = ("z", "chisq", "yates", "fisher")
SIDES = ("one", "two")
ANALYSIS_KEYS = ("outcome", "subgroup", "n_treatment", "n_control", "alpha", "sided", "test", "control_rate")
_TOP_KEYS = {"name", "registry", "citation", "description", "facts", "analysis"}
_FACT_KEYS = {"fact", "value", "source", "confidence"}
_CONFIDENCE = ("high", "medium", "low")
_REQUIRED = ("outcome", "n_treatment", "n_control", "alpha", "test")


@dataclass(frozen=True)
class Fact:
    """One registered fact of a trial, with where it was read and how sure that is."""

    fact: str
    value: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Design:
    """A coming trial's design, as used for its assurance (see the module docstring for the file format).

    ``sources[key]`` says where a registered analysis value was read; ``assumptions[key]`` why an assumed one
    was chosen. Every analysis value present has exactly one of the two.
    """

    name: str
    registry: str
    citation: str
    facts: tuple[Fact, ...]
    outcome: str
    subgroup: str
    n_treatment: int
    n_control: int
    alpha: float
    sided: str
    test: str
    control_rate: float | None
    sources: dict[str, str]
    assumptions: dict[str, str]
    origin: str = ""
    sha256: str = ""

    def basis(self, key: str) -> str:
        """``'registered'``, ``'assumed'`` or ``'default'`` (a key the file leaves out)."""
        if key in self.sources:
            return "registered"
        if key in self.assumptions:
            return "assumed"
        return "default"


def _line_of(text: str, dotted: str) -> int | None:
    """The 1-based line where ``dotted`` (``table.key`` or ``key``) is set in a TOML text, if it can be found."""
    parts = dotted.split(".")
    table, key = ".".join(parts[:-1]), parts[-1]
    lines = text.splitlines()
    start = 0
    if table:
        header = re.compile(rf"^\s*\[{re.escape(table)}\]\s*(#.*)?$")
        found = [i for i, line in enumerate(lines) if header.match(line)]
        if not found:
            return None
        start = found[0] + 1
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, len(lines)):
        if table and lines[i].lstrip().startswith("["):
            break
        if pattern.match(lines[i]):
            return i + 1
    return None


def parse_design(doc: dict, *, origin: str, text: str = "", sha256: str = "") -> Design:
    """Validate a parsed design TOML document (format: the module docstring).

    Raises
    ------
    InputError
        Unknown or missing keys, values out of range, an analysis value with neither a source nor an
        assumption (or both); the message names the file, the line where it can be found and the field.
    """

    def fail(message: str, fld: str):
        raise InputError(message, source=origin, line=_line_of(text, fld) if text else None, field=fld)

    def text_value(table: dict, key: str, where: str, *, required: bool = True) -> str:
        fld = f"{where}.{key}" if where else key
        v = table.get(key)
        if v is None:
            if required:
                fail("is required", fld)
            return ""
        if not isinstance(v, str) or (required and not v.strip()):
            fail(f"must be non-blank text, got {shown(v)}", fld)
        return v

    for key in doc:
        if key not in _TOP_KEYS:
            fail(f"unknown key; allowed here: {', '.join(sorted(_TOP_KEYS))}", key)
    name = text_value(doc, "name", "")
    registry = text_value(doc, "registry", "", required=False)
    citation = text_value(doc, "citation", "")
    facts = []
    raw_facts = doc.get("facts", [])
    if not isinstance(raw_facts, list):
        fail("must be an array of tables ([[facts]])", "facts")
    for i, f in enumerate(raw_facts):
        where = f"facts[{i}]"
        if not isinstance(f, dict):
            fail("must be a table", where)
        for key in f:
            if key not in _FACT_KEYS:
                raise InputError(
                    f"unknown key; allowed here: {', '.join(sorted(_FACT_KEYS))}", source=origin, field=f"{where}.{key}"
                )
        for key in _FACT_KEYS:
            if not isinstance(f.get(key), str) or not f[key].strip():
                raise InputError("is required (non-blank text)", source=origin, field=f"{where}.{key}")
        if f["confidence"] not in _CONFIDENCE:
            raise InputError(
                f"must be one of {', '.join(_CONFIDENCE)}, got {shown(f['confidence'])}",
                source=origin,
                field=f"{where}.confidence",
            )
        facts.append(Fact(f["fact"], f["value"], f["source"], f["confidence"]))

    analysis = doc.get("analysis")
    if not isinstance(analysis, dict):
        fail("is required: a table [analysis]", "analysis")
    allowed = {*ANALYSIS_KEYS, "source", "assumption"}
    for key in analysis:
        if key not in allowed:
            fail(f"unknown key; allowed here: {', '.join(sorted(allowed))}", f"analysis.{key}")
    for key in _REQUIRED:
        if key not in analysis:
            fail("is required", f"analysis.{key}")
    notes = {}
    for table in ("source", "assumption"):
        t = analysis.get(table, {})
        if not isinstance(t, dict):
            fail("must be a table", f"analysis.{table}")
        for key, v in t.items():
            if key not in ANALYSIS_KEYS:
                fail(f"unknown key; allowed here: {', '.join(ANALYSIS_KEYS)}", f"analysis.{table}.{key}")
            if key not in analysis:
                fail(f"notes a value that [analysis] does not set ({key})", f"analysis.{table}.{key}")
            if not isinstance(v, str) or not v.strip():
                fail("must be non-blank text", f"analysis.{table}.{key}")
        notes[table] = dict(t)
    for key in ANALYSIS_KEYS:
        if key not in analysis:
            continue
        n_notes = (key in notes["source"]) + (key in notes["assumption"])
        if n_notes != 1:
            fail(
                "needs exactly one note: [analysis.source] if registered or [analysis.assumption] if assumed"
                + (" (it has both)" if n_notes == 2 else ""),
                f"analysis.{key}",
            )

    def integer(key: str) -> int:
        v = analysis[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            fail(f"must be a whole number >= 1, got {shown(v)}", f"analysis.{key}")
        return v

    def number(key: str, lo: float, hi: float) -> float:
        v = analysis[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo < v < hi:
            fail(f"must be a number in ({lo}, {hi}), got {shown(v)}", f"analysis.{key}")
        return float(v)

    def choice(key: str, options: tuple[str, ...], default: str) -> str:
        v = analysis.get(key, default)
        if v not in options:
            fail(f"must be one of {', '.join(options)}, got {shown(v)}", f"analysis.{key}")
        return v

    outcome = text_value(analysis, "outcome", "analysis")
    subgroup = text_value(analysis, "subgroup", "analysis", required=False) or "overall"
    control_rate = number("control_rate", 0.0, 1.0) if "control_rate" in analysis else None
    return Design(
        name=name,
        registry=registry,
        citation=citation,
        facts=tuple(facts),
        outcome=outcome,
        subgroup=subgroup,
        n_treatment=integer("n_treatment"),
        n_control=integer("n_control"),
        alpha=number("alpha", 0.0, 0.5),
        sided=choice("sided", SIDES, "one"),
        test=choice("test", TESTS, "z"),
        control_rate=control_rate,
        sources=notes["source"],
        assumptions=notes["assumption"],
        origin=origin,
        sha256=sha256,
    )


def _design_dir():
    return resources.files("bayes_rescue.analyses") / "designs"


def bundled_design_names() -> list[str]:
    """Names of the design files shipped with the package (``analyses/designs/*.toml``), sorted."""
    return sorted(p.name.removesuffix(".toml") for p in _design_dir().iterdir() if p.name.endswith(".toml"))


def load_design(name_or_path: str | Path) -> Design:
    """Load a bundled design by name (``rescue-end-low``), or a design TOML file by path.

    Raises
    ------
    InputError
        Unknown name, unreadable or malformed file, unknown key or impossible value (naming file and field).
    """
    spec = str(name_or_path)
    if not (spec.endswith(".toml") or "/" in spec or "\\" in spec):
        if spec not in bundled_design_names():
            raise InputError(
                f"unknown design {quote(spec)}; bundled: {', '.join(bundled_design_names())}"
                " (or give a path to a .toml)",
                field="--design",
            )
        raw = (_design_dir() / f"{spec}.toml").read_bytes()
        origin = f"bundled:designs/{spec}"
    else:
        raw = read_input_bytes(Path(spec), field="--design", what="design file", cap=MAX_TOML_BYTES)
        origin = spec
    doc = loads_toml(raw, origin=origin, what="design")  # regular file, size and depth caps: the one reader
    text = raw.decode("utf-8-sig")
    return parse_design(doc, origin=origin, text=text, sha256=hashlib.sha256(raw).hexdigest())
