from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def write_csv(tmp_path):
    """Write CSV text to a file in tmp_path and return its path."""

    def _write(text: str, name: str = "counts.csv", encoding: str = "utf-8") -> Path:
        p = tmp_path / name
        p.write_bytes(text.encode(encoding))
        return p

    return _write


GOOD_CSV = """outcome,subgroup,arm,events,total
mrs_0_2,a,treatment,13,17
mrs_0_2,a,control,6,19
mrs_0_2,b,treatment,2,3
mrs_0_2,b,control,2,4
mortality,all,treatment,1,20
mortality,all,control,2,23
"""
