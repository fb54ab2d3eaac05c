"""Safe loading: the package reads only CSV, TOML (tomllib) and netCDF; nothing is unpickled or evaluated."""

from __future__ import annotations

import re
from pathlib import Path

import bayes_rescue

FORBIDDEN = [
    r"\bpickle\b",
    r"(?<![.\w])eval\(",  # the builtin, not pytensor's Variable.eval()
    r"(?<![.\w])exec\(",
    r"yaml\.load\(",
    r"yaml\.unsafe_load",
    r"\bmarshal\b",
    r"__import__\(",
]


#: The one module allowed to mention pickle: its tasks and results pass through the concurrent.futures pools of
#: the helper processes it started itself (bayes_rescue.workers), never from or to a file.
PIPES_ONLY = "workers.py"


def test_no_unsafe_deserialisation_in_the_package():
    """A source scan of every module of the package (a test that fails if such a call is ever added)."""
    root = Path(bayes_rescue.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) >= 10
    for f in files:
        text = f.read_text("utf-8")
        for pattern in FORBIDDEN:
            if f.name == PIPES_ONLY and pattern == r"\bpickle\b":
                continue
            assert not re.search(pattern, text), (f.name, pattern)


def test_the_helpers_unpickle_only_from_their_own_pipes():
    """bayes_rescue.workers calls no pickle function and opens no file itself: tasks and answers travel only
    through the ``concurrent.futures`` process pools it starts (their own pipes to processes it spawned)."""
    text = (Path(bayes_rescue.__file__).parent / PIPES_ONLY).read_text("utf-8")
    assert not re.search(r"pickle\.\w+\(", text)
    assert "ProcessPoolExecutor" in text
    assert not re.search(r"(?<![.\w])open\(", text)


def test_prior_and_data_formats_cannot_name_other_files(tmp_path):
    """Neither format has a key or column that is a path: an attempt is an unknown key / column error."""
    import pytest

    from bayes_rescue.data.counts import parse_counts
    from bayes_rescue.errors import InputError
    from bayes_rescue.priors.spec import parse_prior

    with pytest.raises(InputError, match="unknown key"):
        parse_prior({"name": "x", "description": "d", "include": "/etc/passwd", "effect": {}}, origin="p")
    with pytest.raises(InputError, match="unknown column"):
        parse_counts("outcome,subgroup,arm,events,total,path\n", source="c")
