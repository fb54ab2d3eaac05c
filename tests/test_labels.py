"""Labels of outcomes, subgroups and arms from the optional counts columns: given, defaulted, refused.

Reference values are the label texts written in the test CSVs themselves and, for the bundled cohort, the
wording of Chen et al. 2025 (PMID 40535629): "rescue EVT" vs "medical management", mRS 0-2 and mortality
at 90 days, the mild anterior-circulation subgroup."""

from __future__ import annotations

import pytest
from conftest import GOOD_CSV

from bayes_rescue.data.counts import Labels, load_counts, parse_counts
from bayes_rescue.errors import InputError

LABELLED = """outcome,subgroup,arm,events,total,outcome_label,subgroup_label,arm_label
mrs_0_2,a,treatment,13,17,mRS 0-2 at 90 days,mild anterior,rescue EVT
mrs_0_2,a,control,6,19,,mild anterior,medical management
mrs_0_2,b,treatment,2,3,mRS 0-2 at 90 days,,
mrs_0_2,b,control,2,4,,,medical management
mortality,all,treatment,1,20,death by day 90,all patients,rescue EVT
mortality,all,control,2,23,death by day 90,,
"""


def test_labels_are_read_and_blank_rows_inherit():
    """A label given on one row of an outcome / subgroup / arm holds for its blank rows."""
    d = parse_counts(LABELLED, source="t.csv")
    lab = d.labels
    assert lab.outcome("mrs_0_2") == "mRS 0-2 at 90 days" and lab.outcome("mortality") == "death by day 90"
    assert lab.subgroup("mrs_0_2", "a") == "mild anterior" and lab.subgroup("mortality", "all") == "all patients"
    assert lab.arm("treatment") == "rescue EVT" and lab.arm("control") == "medical management"
    # subgroup b has no label anywhere: the default
    assert lab.subgroup("mrs_0_2", "b") == "b"
    assert lab.subgroup("mrs_0_2", "overall") == "whole cohort"


def test_defaults_without_label_columns():
    """No label columns: underscores become spaces; arms are 'treatment' and 'control'."""
    lab = parse_counts(GOOD_CSV, source="t.csv").labels
    assert lab == Labels()
    assert lab.outcome("mrs_0_2") == "mrs 0 2" and lab.subgroup("mrs_0_2", "a") == "a"
    assert (lab.arm("treatment"), lab.arm("control")) == ("treatment", "control")


@pytest.mark.parametrize(
    ("line", "column", "value", "field"),
    [
        (3, 5, "mRS 0-1", "outcome_label"),  # outcome label contradicts line 2
        (3, 6, "other", "subgroup_label"),  # same outcome x subgroup, another label
        (4, 7, "EVT", "arm_label"),  # treatment arm named differently from line 2
    ],
)
def test_contradicting_labels_are_refused_with_line(line, column, value, field):
    """A label that contradicts the one given earlier for the same outcome / subgroup / arm: InputError
    naming the file, the later line and the column."""
    rows = LABELLED.splitlines()
    cells = rows[line - 1].split(",")
    cells[column] = value
    rows[line - 1] = ",".join(cells)
    with pytest.raises(InputError) as err:
        parse_counts("\n".join(rows) + "\n", source="t.csv")
    assert err.value.line == line and err.value.field == field
    assert "t.csv" in err.value.one_line() and "contradicts" in err.value.one_line()


def test_label_with_line_break_or_too_long_is_refused():
    """A label is one line of at most 80 characters: a line break inside it is refused (by the CSV reader, which
    refuses any field that spans lines, at the line where it starts), and so is an 81-character label."""
    rows = LABELLED.splitlines()
    bad = [*rows[:1], rows[1].replace("mild anterior", '"two\nlines"'), *rows[2:]]
    with pytest.raises(InputError) as err:
        parse_counts("\n".join(bad) + "\n", source="t.csv")
    assert err.value.line == 2 and "more than one line" in str(err.value)
    long = [*rows[:1], rows[1].replace("mild anterior", "x" * 81), *rows[2:]]
    with pytest.raises(InputError, match="at most 80"):
        parse_counts("\n".join(long) + "\n", source="t.csv")


def test_bundled_cohort_has_the_papers_names():
    """Chen et al. 2025 (PMID 40535629) compares rescue EVT with medical management; outcomes at 90 days."""
    lab = load_counts("bundled:chen2025").labels
    assert (lab.arm("treatment"), lab.arm("control")) == ("rescue EVT", "medical management")
    assert lab.outcome("mrs_0_2") == "mRS 0-2 at 90 days" and lab.outcome("mortality") == "mortality at 90 days"
    assert lab.subgroup("mrs_0_2", "mild_anterior") == "mild anterior circulation"


def test_labels_survive_the_csv_text_round_trip():
    """to_csv_text (stored in every posterior) keeps the labels: parsing it again gives the same ones."""
    d = load_counts("bundled:chen2025")
    again = parse_counts(d.to_csv_text(), source="stored")
    assert again.labels == d.labels
