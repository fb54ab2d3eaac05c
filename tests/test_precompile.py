"""Set-up's precompile (bayes_rescue.inference.precompile, run by scripts/setup.sh): the first fit after it
loads the bundled structures' compiled callbacks from the on-disk cache instead of compiling them.

Reference: numba's own cache-hit counter of the compiled callbacks (``CFunc.cache_hits``) in a fresh process,
and the structure count of fit_many's grouping (one alone per kind, one stacked per kind)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_rescue.inference.precompile import precompile_bundled

ROOT = Path(__file__).resolve().parents[1]

_FIRST_FIT = """
from bayes_rescue.data.counts import load_counts
from bayes_rescue.inference.engine import ModelCache
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import load_prior, resolve_priors
data = load_counts("bundled:chen2025")
cache = ModelCache()
alone = cache.get(ModelSpec(data, load_prior("skeptical"), "independent"))
stacked = cache.get_stacked([ModelSpec(data, p, "independent") for p in resolve_priors("all")])
print(*[f.cache_hits for c in (alone, stacked) for f in (c.compiled_logp_func, c.compiled_expand_func)])
"""


@pytest.mark.slow  # 15 s: a fresh process fit after the set-up compile
def test_first_fit_after_precompile_loads_from_the_cache(tmp_path, monkeypatch):
    """After precompile_bundled (independent model, empty cache directory), a fresh process compiling the
    skeptical fit and the --prior all stack finds all four callbacks in numba's cache (1 hit each); in a
    second empty cache directory, without precompile, none (0 hits)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert precompile_bundled(kinds=("independent",)) == 2  # alone + stacked
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    out = subprocess.run([sys.executable, "-c", _FIRST_FIT], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["1"] * 4
    env["XDG_CACHE_HOME"] = str(tmp_path / "empty")
    out = subprocess.run([sys.executable, "-c", _FIRST_FIT], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["0"] * 4
