"""Property-based tests: whatever bytes or documents a user gives, the loaders either return valid
data or raise InputError with a one-line message; never another exception, never a traceback.

Every test is seeded (``derandomize=True``: the same examples on every run) and the whole file runs in
well under a minute, so it is part of the default suite."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayes_rescue.analyses.sensitivity  # (imports PyMC, which raises the recursion limit, up front)
import bayes_rescue.api  # noqa: F401  (bound before any patched block, which would otherwise leak the stub)
from bayes_rescue.data.counts import load_counts, parse_counts
from bayes_rescue.errors import InputError
from bayes_rescue.priors.spec import load_prior, parse_prior

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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
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


quoted_cell = st.one_of(cell, st.sampled_from(['"', '"a\nb"', '"open', 'x"y', '""', '"\r\n"', "\n"]))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.lists(quoted_cell, min_size=5, max_size=5), max_size=6))
def test_csv_quotes_and_line_breaks(rows):
    """Cells with quotes, unterminated quotes and line breaks: a one-line InputError whose line number
    is a line of the text (true line numbers, counted from the file), or a valid table; a table is never
    returned with rows silently dropped (every line with an arm in it is a row)."""
    COUNTER["csv_quotes"] = COUNTER.get("csv_quotes", 0) + 1
    text = HEADER + "\n" + "\n".join(",".join(r) for r in rows) + "\n"
    try:
        data = parse_counts(text, source="q.csv")
    except InputError as exc:
        _check_error(exc)
        if exc.line is not None:
            assert 1 <= exc.line <= text.count("\n") + 1, (exc.line, text)
        return
    assert len(data.table) == sum(1 for r in rows if any(c.strip() for c in r))


@settings(max_examples=200, deadline=None, derandomize=True)
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


@settings(max_examples=300, deadline=None, derandomize=True)
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


@settings(max_examples=150, deadline=None, derandomize=True)
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


@settings(max_examples=200, deadline=None, derandomize=True)
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


class _Accepted(Exception):
    """Raised by the patched fitting functions: the arguments were accepted and work would start here."""


NUMBERS = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "2",
            "0.5",
            "0.95",
            "1.0",
            "2.5",
            "1e3",
            "1e309",
            "nan",
            "inf",
            "-inf",
            "",
            "abc",
            "0x10",
            " 3",
            "99999999999999999999",
            "-0",
            "1_000",
        ]
    ),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
FIT_OPTIONS = {
    "--draws": NUMBERS,
    "--tune": NUMBERS,
    "--chains": NUMBERS,
    "--seed": NUMBERS,
    "--target-accept": NUMBERS,
    "--prior-draws": NUMBERS,
    "--rope": NUMBERS,
    "--discount": NUMBERS,
    "--mcid": st.lists(NUMBERS, min_size=0, max_size=3),
    "--robust": st.lists(NUMBERS, min_size=0, max_size=1),
    "--prior": st.sampled_from(
        ["skeptical", "all", "nope", "neutral,skeptical", "skeptical,", ",", "/no/such.toml", "{dir}"]
    ),
    "--model": st.sampled_from(["hierarchical", "independent", "pooled", ""]),
    "--data": st.sampled_from(["bundled:chen2025", "bundled:nope", "/no/such.csv", "{dir}", "{good}"]),
    "--name": st.sampled_from(["run", "../escape", ".hidden", "a/b", " ", "ok-name"]),
    "--bogus": st.just([]),
}
SENS_OPTIONS = {
    "--centres": st.lists(NUMBERS, min_size=0, max_size=3),
    "--sds": st.lists(NUMBERS, min_size=0, max_size=3),
    "--robust": st.lists(NUMBERS, min_size=0, max_size=2),
    "--levels": st.lists(NUMBERS, min_size=0, max_size=2),
    "--mcid": st.lists(NUMBERS, min_size=0, max_size=2),
    "--draws": NUMBERS,
    "--seed": NUMBERS,
    "--model": st.sampled_from(["hierarchical", "independent", "x"]),
    "--data": st.sampled_from(["bundled:chen2025", "/no/such.csv", "{dir}"]),
    "--name": st.sampled_from(["grid", "../up", "a/b"]),
    "--chains": NUMBERS,
    "--scheduler": st.sampled_from(["serial", "bogus", "tcp://", "a b", ""]),
}
HOSTILE_FILES = ["/dev/zero", "{fifo}", "{big}", "{deep}", "/proc/self/status", "{dir}"]
CHECK_OPTIONS = {
    "--data": st.sampled_from(["bundled:chen2025", "/no/such.csv", "{good}", *HOSTILE_FILES]),
    "--overwrite": st.just([]),
    "--bogus": st.just([]),
}
PRIORS_OPTIONS = {
    "--prior": st.sampled_from(["skeptical", "nope", "{deep}", "{fifo}", "{big}", "/dev/zero", "{dir}", ",", "x.toml"]),
    "--data": st.sampled_from(["bundled:chen2025", "{good}", *HOSTILE_FILES]),
    "--robust": NUMBERS,
    "--plot": st.sampled_from(["plain", "{dir}", "{dir}/x.gif", "/proc/x.png", "{existing}"]),
    "--overwrite": st.just([]),
    "--verbose": st.just([]),
}
VALIDATE_OPTIONS = {
    "--sims": NUMBERS,
    "--prior": st.sampled_from(["skeptical", "nope", "{deep}", "{fifo}", "/dev/zero"]),
    "--model": st.sampled_from(["hierarchical", "independent", "map", "x"]),
    "--literature": st.sampled_from(["map_early", "nope", ""]),
    "--outcome": st.sampled_from(["mrs_0_2", "mortality", "nope", ""]),
    "--data": st.sampled_from(["bundled:chen2025", "{good}", *HOSTILE_FILES]),
    "--scheduler": st.sampled_from(["serial", "bogus", "a b", "tcp://x"]),
    "--overwrite": st.just([]),
}
FIT_OPTIONS["--data"] = st.sampled_from(["bundled:chen2025", "bundled:nope", "/no/such.csv", "{good}", *HOSTILE_FILES])
FIT_OPTIONS["--prior"] = st.sampled_from(
    ["skeptical", "all", "nope", "neutral,skeptical", "skeptical,", ",", "/no/such.toml", "{dir}", "{deep}", "{fifo}"]
)
FIT_OPTIONS["--rerun"] = st.sampled_from(["{deep}", "{fifo}", "/dev/zero", "{big}", "{good}", "{dir}"])
POOLS = {
    "fit": FIT_OPTIONS,
    "sensitivity": SENS_OPTIONS,
    "check": CHECK_OPTIONS,
    "priors": PRIORS_OPTIONS,
    "validate": VALIDATE_OPTIONS,
}


HOSTILE: dict = {}


@st.composite
def cli_args(draw):
    command = draw(st.sampled_from(sorted(POOLS)))
    pool = POOLS[command]
    argv = [command]
    for opt in draw(st.lists(st.sampled_from(sorted(pool)), max_size=6)):
        value = draw(pool[opt])
        argv += [opt, *(value if isinstance(value, list) else [value])]
    return argv


def _accepted_values_are_valid(command: str, args: dict) -> None:
    """What the CLI let through is in range: the property behind 'accept or reject with exit 2'."""
    if command == "fit":
        s = args["settings"]
        assert 4 <= s.draws <= 100_000 and 1 <= s.tune <= 100_000 and 1 <= s.chains <= 64
        assert s.chains * s.draws <= 2_000_000 and 1 <= s.prior_draws <= 100_000 and 0.5 <= s.target_accept < 1
        assert 0 <= s.seed < 2**63
        for spec in args["specs"]:
            for e in spec.prior.effects.values():
                assert all(math.isfinite(x) for x in (*e.means, *e.sds)) and (e.sds > 0).all()
    elif command == "validate":
        assert 1 <= args["n_sims"] <= 100_000
    else:
        assert all(math.isfinite(c) and abs(c) <= 20 for c in args["centres"])
        assert all(0 < v < 1e3 for v in args["sds"]) and all(0 <= w <= 1 for w in args["robust"])
        assert 0 <= args["settings"].seed < 2**63


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(cli_args())
def test_random_command_lines(tmp_path_factory, argv):
    """Random command lines for every command (``fit`` incl. ``--rerun``, ``sensitivity``, ``check``,
    ``priors``, ``validate``), with hostile files among the values (/dev/zero, a FIFO without a writer, a
    file over 10 MB, a TOML nested 5000 deep, a folder): each is either rejected (exit 2, one line on stderr
    naming the problem, no traceback, no output) or accepted with in-range values (the sampling functions
    are replaced by a stub that records what they were given and stops; ``check`` and ``priors`` run to
    the end, exit 0)."""
    import contextlib
    import io
    import os
    from unittest import mock

    from bayes_rescue.cli import main

    COUNTER["cli"] = COUNTER.get("cli", 0) + 1
    if "files" not in HOSTILE:  # made once: a 10 MB file per example would dominate the run time
        shared = tmp_path_factory.mktemp("hostile")
        fifo, big, deep = shared / "fifo.toml", shared / "big.toml", shared / "deep.toml"
        os.mkfifo(fifo)
        big.write_bytes(b"#" * (10 * 1024 * 1024 + 5))
        deep.write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
        HOSTILE["files"] = {"fifo": fifo, "big": big, "deep": deep}
    base = tmp_path_factory.mktemp("cli")
    good = base / "good.csv"
    good.write_text("outcome,subgroup,arm,events,total\nm,all,treatment,3,10\nm,all,control,2,10\n")
    existing = base / "existing.png"
    existing.write_text("keep")
    fmt = {"dir": base, "good": good, "existing": existing, **HOSTILE["files"]}
    argv = [a.format(**fmt) for a in argv]
    out = base / "out"
    seen: dict = {}

    def stop_fit(specs, settings=None, **_):
        seen.update(specs=specs, settings=settings)
        raise _Accepted

    def stop_grid(data, **kw):
        seen.update(kw)
        raise _Accepted

    def stop_sbc(*args, **kw):
        seen.update(kw)
        raise _Accepted

    err = io.StringIO()
    with (
        mock.patch("bayes_rescue.api.fit_many", stop_fit),
        mock.patch("bayes_rescue.analyses.sensitivity.sensitivity_grid", stop_grid),
        mock.patch("bayes_rescue.analyses.validation.sbc", stop_sbc),
        mock.patch("bayes_rescue.analyses.validation.sbc_map", stop_sbc),
        mock.patch("bayes_rescue.outputs.figures.plot_priors", lambda specs, data, path: path.write_bytes(b"png")),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            rc = main([*argv, "--out", str(out)])
        except _Accepted:
            COUNTER["cli_accepted"] = COUNTER.get("cli_accepted", 0) + 1
            _accepted_values_are_valid(argv[0], seen)
            return
    lines = err.getvalue().strip().splitlines()
    if rc == 0 and argv[0] in ("check", "priors"):
        COUNTER["cli_accepted"] = COUNTER.get("cli_accepted", 0) + 1
        return
    assert rc == 2, (argv, err.getvalue())
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0], lines
    assert not out.exists() and existing.read_text() == "keep"
    assert not [p.name for p in base.iterdir() if p.name.startswith(".")], argv


def test_zz_report_counts():
    """Print how many hostile cases were tried (visible with -s or in the -ra summary on failure)."""
    print(f"\nhostile inputs tried: {COUNTER}")
    assert COUNTER["counts"] >= 500 and COUNTER["prior"] >= 300 and COUNTER["bytes"] >= 200
    assert COUNTER["counts_ok"] >= 200
    assert COUNTER["cli"] >= 400 and COUNTER.get("cli_accepted", 0) >= 10
    assert COUNTER.get("csv_quotes", 0) >= 300
