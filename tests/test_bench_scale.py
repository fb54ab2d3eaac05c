"""The tables of `bench.py --scale` (scripts/bench_scale.py) are what its docstring and the README say.

References: RECOVERY convalescent plasma, 28-day mortality 1399/5795 vs 1408/5763 (Lancet 2021;397:2049-59,
11,558 patients); the bundled cohort's 43 patients in 3 cells; the package's own CSV loader."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bayes_rescue.data.counts import load_counts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_scale

SIZES = {"sub1": 1, "sub10": 10, "sub50": 50, "sub200": 200}


@pytest.mark.parametrize("label", bench_scale.CASES)
def test_scale_cases_load_and_have_their_stated_size(label, tmp_path):
    """Every case loads with the package's loader (so fit.py accepts it), and has the cells and patients
    the bench prints: subgroup cases 50-200 patients per arm, RECOVERY 11,558, the big cell 100,000."""
    data_arg = bench_scale.case_data(label, tmp_path)
    data = load_counts(data_arg)
    cells, patients = bench_scale.case_size(label, data_arg)
    table = data.cells()
    assert len(table) == cells
    first = table[table["outcome"] == data.outcomes[0]]
    assert int(first["n_t"].sum() + first["n_c"].sum()) == patients
    if label in SIZES:
        assert cells == SIZES[label]
        assert table[["n_t", "n_c"]].to_numpy().min() >= 50 and table[["n_t", "n_c"]].to_numpy().max() <= 200
    expected = {"pat43": 43, "pat11558": 11558, "pat100000": 100000}
    if label in expected:
        assert patients == expected[label]
    if label == "pat11558":
        row = table.iloc[0]
        assert (row["y_t"], row["n_t"], row["y_c"], row["n_c"]) == (1399, 5795, 1408, 5763)


def test_unknown_case_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown --scale-cases label"):
        bench_scale.case_data("sub7x", tmp_path)
