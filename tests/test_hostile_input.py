"""Property-based tests: whatever bytes or documents a user gives, the loaders either return valid
data or raise InputError with a one-line message; never another exception, never a traceback."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_rescue.data import load_counts, parse_counts
from bayes_rescue.errors import InputError
from bayes_rescue.priors import load_prior, parse_prior

COUNTER = {"counts": 0, "counts_ok": 0, "prior": 0, "prior_ok": 0, "bytes": 0}
HEADER = "outcome,subgroup,arm,events,total"

cell = st.one_of(
    st.sampled_from(
        ["", "0", "1", "17", "-3", "2.5", "1e3", "nan", "inf", "NaN", "99999999999", " 4 ", "x", "\ufeff1"]
    ),
    st.text(max_size=6),
)
row = st.tuples(
    st.sampled_from(["mrs_0_2", "mortality", "sich", "custom", "", "a b", "overall"]),
    st.sampled_from(["all", "a", "b", "overall", "", "x/y"]),
    st.sampled_from(["treatment", "control", "placebo", ""]),
    cell,
    cell,
)


def _check_error(exc: InputError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(row, max_size=8), st.sampled_from([HEADER, HEADER + ",direction", "outcome,arm,events", HEADER + ",total"])
)
def test_random_count_tables(rows, header):
    COUNTER["counts"] += 1
    n = len(header.split(","))
    text = header + "\n" + "\n".join(",".join([*r, "lower"][:n]) for r in rows) + "\n"
    try:
        data = parse_counts(text, source="fuzz.csv")
    except InputError as exc:
        _check_error(exc)
        return
    COUNTER["counts_ok"] += 1
    t = data.table
    assert (t["events"] >= 0).all() and (t["events"] <= t["total"]).all() and (t["total"] >= 1).all()
    assert not data.table.duplicated(["outcome", "subgroup", "arm"]).any()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_files(tmp_path_factory, raw):
    COUNTER["bytes"] += 1
    p = tmp_path_factory.mktemp("b") / "x.csv"
    p.write_bytes(raw)
    try:
        load_counts(p)
    except InputError as exc:
        _check_error(exc)


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)
component = st.dictionaries(
    st.sampled_from(["name", "weight", "mean", "sd", "source", "sigma", "trials"]), values, max_size=6
)
prior_doc = st.fixed_dictionaries(
    {"name": st.sampled_from(["p", "", None]), "description": st.sampled_from(["d", None])},
    optional={
        "effect": st.dictionaries(
            st.sampled_from(["mrs_0_2", "default", "x"]),
            st.fixed_dictionaries({}, optional={"components": st.lists(component, max_size=3), "rationale": values}),
            max_size=2,
        ),
        "hyper": st.dictionaries(
            st.sampled_from(["baseline_sd", "effect_tau_sd", "source", "bogus"]), values, max_size=3
        ),
        "colour": values,
    },
)


@settings(max_examples=300, deadline=None)
@given(prior_doc)
def test_random_prior_documents(doc):
    COUNTER["prior"] += 1
    doc = {k: v for k, v in doc.items() if v is not None}
    try:
        spec = parse_prior(doc, origin="fuzz.toml")
    except InputError as exc:
        _check_error(exc)
        return
    COUNTER["prior_ok"] += 1
    for e in spec.effects.values():
        assert abs(e.weights.sum() - 1) < 1e-6 and (e.sds > 0).all() and all(math.isfinite(m) for m in e.means)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=160))
def test_random_prior_files(tmp_path_factory, text):
    """Any text in a .toml file: load_prior returns a valid prior or raises a one-line InputError."""
    COUNTER["prior_files"] = COUNTER.get("prior_files", 0) + 1
    p = tmp_path_factory.mktemp("t") / "p.toml"
    p.write_text(text, encoding="utf-8")
    try:
        load_prior(str(p))
    except InputError as exc:
        _check_error(exc)


@st.composite
def valid_tables(draw):
    outcomes = draw(st.lists(st.sampled_from(["mrs_0_2", "mortality", "sich"]), min_size=1, max_size=3, unique=True))
    n_sub = draw(st.integers(1, 3))
    sizes = {arm: [draw(st.integers(1, 500)) for _ in range(n_sub)] for arm in ("treatment", "control")}
    lines = [HEADER]
    for o in outcomes:
        for s in range(n_sub):
            for arm in ("treatment", "control"):
                n = sizes[arm][s]
                lines.append(f"{o},g{s},{arm},{draw(st.integers(0, n))},{n}")
    return "\n".join(lines) + "\n", outcomes, n_sub, sizes


@settings(max_examples=200, deadline=None)
@given(valid_tables())
def test_valid_random_tables_always_load(case):
    """Any well-formed table (integers, events <= total, subgroups partitioning the same arms) loads,
    and its cells reproduce the counts written."""
    text, outcomes, n_sub, sizes = case
    COUNTER["counts"] += 1
    data = parse_counts(text, source="valid.csv")
    COUNTER["counts_ok"] += 1
    cells = data.cells()
    assert data.outcomes == outcomes and len(cells) == len(outcomes) * n_sub
    assert cells.groupby("outcome")["n_t"].sum().eq(sum(sizes["treatment"])).all()


def test_zz_report_counts():
    """Print how many hostile cases were tried (visible with -s or in the -ra summary on failure)."""
    print(f"\nhostile inputs tried: {COUNTER}")
    assert COUNTER["counts"] >= 500 and COUNTER["prior"] >= 300 and COUNTER["bytes"] >= 200
    assert COUNTER["counts_ok"] >= 200
