"""Counts loading and validation: the bundled cohort and one-line errors naming file, line and field."""

from __future__ import annotations

import pytest
from conftest import GOOD_CSV

from bayes_rescue.data.counts import check_against_reported, load_bundled, load_counts
from bayes_rescue.errors import InputError


def test_bundled_cohort_matches_abstract():
    """Reference: the abstract of Chen et al. 2025 (PMID 40535629): 15/20 vs 8/23, 13/17 vs 6/19, 1/20 vs 2/23."""
    d = load_counts("bundled:chen2025")
    cells = d.cells().set_index(["outcome", "subgroup"])
    assert tuple(cells.loc[("mrs_0_2", "mild_anterior"), ["y_t", "n_t", "y_c", "n_c"]]) == (13, 17, 6, 19)
    assert tuple(cells.loc[("mrs_0_2", "other"), ["y_t", "n_t", "y_c", "n_c"]]) == (2, 3, 2, 4)
    assert tuple(cells.loc[("mortality", "all"), ["y_t", "n_t", "y_c", "n_c"]]) == (1, 20, 2, 23)
    assert d.directions == {"mrs_0_2": "higher", "mortality": "lower"}
    assert set(d.table["provenance"]) == {"reported", "derived_from_percent"}


def test_bundled_check_catches_a_changed_count():
    d = load_bundled()
    meta = dict(d.meta)
    meta["reported"] = [dict(meta["reported"][0], treatment=[16, 20, 80.0])]
    with pytest.raises(InputError, match="do not match the printed 16/20"):
        check_against_reported(d, meta)


def test_good_file_loads(write_csv):
    d = load_counts(write_csv(GOOD_CSV))
    assert d.outcomes == ["mrs_0_2", "mortality"]
    assert d.subgroups("mrs_0_2") == ["a", "b"]


def test_bom_is_accepted(write_csv):
    assert load_counts(write_csv("\ufeff" + GOOD_CSV)).outcomes == ["mrs_0_2", "mortality"]


BAD = [
    # (description, edit of GOOD_CSV, expected line, field, message fragment)
    ("events > total", ("13,17", "18,17"), 2, "events", "exceed the total"),
    ("negative", ("13,17", "-1,17"), 2, "events", "not a non-negative whole number"),
    ("non-integer", ("13,17", "13.5,17"), 2, "events", "not a non-negative whole number"),
    ("zero total", ("2,3", "0,0"), 4, "total", "at least one patient"),
    ("bad arm", ("a,control,6", "a,placebo,6"), 3, "arm", "not an arm"),
    ("missing arm", ("mrs_0_2,b,control,2,4\n", ""), 4, "arm", "no 'control' row"),
    ("duplicate row", ("mrs_0_2,b,control,2,4", "mrs_0_2,a,control,6,19"), 5, "arm", "duplicate of line 3"),
    ("reserved subgroup", ("mortality,all,", "mortality,overall,"), 6, "subgroup", "reserved"),
    ("bad name", ("mortality,all,treatment", "mortality,a b,treatment"), 6, "subgroup", "not a valid name"),
    ("inconsistent subgroups", ("2,3\n", "2,4\n"), None, "total", "subgroups must partition"),
    ("ragged row", ("mortality,all,control,2,23", "mortality,all,control,2"), 7, None, "has 4 fields"),
]


@pytest.mark.parametrize("desc,edit,line,field,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_rows_give_one_line_errors(write_csv, desc, edit, line, field, fragment):
    text = GOOD_CSV.replace(*edit, 1)
    assert text != GOOD_CSV, desc
    path = write_csv(text)
    with pytest.raises(InputError) as err:
        load_counts(path)
    msg = str(err.value)
    assert "\n" not in msg and fragment in msg and str(path) in msg
    if line is not None:
        assert err.value.line == line, msg
    if field is not None:
        assert err.value.field == field, msg


def test_unknown_column(write_csv):
    with pytest.raises(InputError, match="field 'colour': unknown column"):
        load_counts(
            write_csv(
                GOOD_CSV.replace("total\n", "total,colour\n", 1).replace("\n", ",x\n").replace("colour,x", "colour", 1)
            )
        )


def test_duplicate_and_missing_columns(write_csv):
    with pytest.raises(InputError, match="field 'total': column appears twice"):
        load_counts(write_csv("outcome,subgroup,arm,events,total,total\n"))
    with pytest.raises(InputError, match="field 'events': required column is missing"):
        load_counts(write_csv("outcome,subgroup,arm,total\nmortality,all,treatment,3\n"))


def test_unknown_outcome_needs_direction(write_csv):
    text = GOOD_CSV.replace("mortality", "readmission")
    with pytest.raises(InputError, match="no known direction"):
        load_counts(write_csv(text))
    header = "outcome,subgroup,arm,events,total,direction\n"
    body = "".join(line + ",lower\n" for line in text.splitlines()[1:])
    assert load_counts(write_csv(header + body)).directions["readmission"] == "lower"


def test_contradicting_direction(write_csv):
    text = "outcome,subgroup,arm,events,total,direction\nx,a,treatment,1,5,higher\nx,a,control,1,5,lower\n"
    with pytest.raises(InputError, match="contradicts 'higher' on line 2"):
        load_counts(write_csv(text))


@pytest.mark.parametrize(
    "content,fragment",
    [
        (b"", "is empty"),
        (b"outcome,subgroup,arm,events,total\n", "no counts"),
        (b"\xff\xfe\x00o", "not UTF-8"),
    ],
)
def test_malformed_files(tmp_path, content, fragment):
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    with pytest.raises(InputError, match=fragment):
        load_counts(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_counts(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        load_counts(tmp_path)
