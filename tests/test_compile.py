"""The compile path (bayes_rescue.inference.compile, model.pack_inputs) changes speed only, never results."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numba
import numba.core.ccallback
import numpy as np
import nutpie
import pymc as pm
import pytensor
import pytest

import bayes_rescue.inference.backend as backend_module
from bayes_rescue.data.counts import load_counts
from bayes_rescue.inference.compile import compile_model, numba_cache_dir
from bayes_rescue.inference.engine import with_data
from bayes_rescue.model.build import _unpack_inputs, pack_inputs, stacked_arrays
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import load_prior


def _toy_model() -> pm.Model:
    """Small, with a transformed variable, a deterministic and two shared containers."""
    with pm.Model(coords={"i": range(3)}) as model:
        mu0 = pm.Data("mu0", np.array([0.5, -1.0, 2.0]), dims="i")
        y = pm.Data("y", np.array([1.0, 0.3]))
        s = pm.HalfNormal("s", 1.5)
        x = pm.Normal("x", mu0, s, dims="i")
        pm.Deterministic("x_sum", x.sum())
        pm.Normal("obs", x[:2], 1.0, observed=y)
    return model


_UPDATE = {"mu0": np.array([3.0, 0.0, -2.0]), "y": np.array([-0.5, 4.0])}
_STORED = {"posterior": ("s", "x", "x_sum"), "sample_stats": ("diverging", "n_steps", "step_size", "energy")}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Every test compiles into its own empty cache directory (never the user's)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def _draws(compiled, **update) -> dict[str, np.ndarray]:
    """Draws, deterministic and sampler statistics of a short run (fixed seed) with ``update`` swapped in."""
    trace = nutpie.sample(with_data(compiled, **update), draws=100, tune=100, chains=2, seed=3, progress_bar=False)
    return {f"{group}/{name}": trace[group][name].values for group, names in _STORED.items() for name in names}


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def nutpie_draws() -> dict[str, dict[str, np.ndarray]]:
    """The reference: ``_draws`` of nutpie.compile_pymc_model's compile of ``_toy_model`` (start s = 1), with
    the compiled data ("plain") and with ``_UPDATE`` swapped in ("updated")."""
    theirs = nutpie.compile_pymc_model(_toy_model(), initial_points={"s": 1.0})
    return {"plain": _draws(theirs), "updated": _draws(theirs, **_UPDATE)}


def _cache_files() -> dict[str, int]:
    """numba's index and data files under the cache directory, with their modification times (ns)."""
    return {p.name: p.stat().st_mtime_ns for p in numba_cache_dir().glob("__pycache__/*.nb[ic]")}


_FRESH_PROCESS = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_compile import _UPDATE, _draws, _toy_model
from bayes_rescue.inference.compile import compile_model
compiled = compile_model(_toy_model(), initial_points={"s": 1.0})
hits = [compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits]
plain, updated = _draws(compiled), _draws(compiled, **_UPDATE)
np.savez(sys.argv[2], hits=hits, **{"plain:" + k: v for k, v in plain.items()},
         **{"updated:" + k: v for k, v in updated.items()})
"""


def test_compile_model_samples_exactly_as_nutpie_compile_pymc_model():
    """Reference: nutpie.compile_pymc_model on the same model, same seed and start. The two compiles share
    every PyTensor function and differ only in the numba callbacks' copying loops, so the draws (which
    depend on every log density and gradient evaluation), the deterministic and the sampler statistics
    must agree bit for bit, also after new data are swapped in."""
    model = _toy_model()
    ours = compile_model(model, initial_points={"s": 1.0})
    theirs = nutpie.compile_pymc_model(model, initial_points={"s": 1.0})
    for update in ({}, {"mu0": np.array([3.0, 0.0, -2.0]), "y": np.array([-0.5, 4.0])}):
        a = nutpie.sample(with_data(ours, **update), draws=150, tune=150, chains=2, seed=3, progress_bar=False)
        b = nutpie.sample(with_data(theirs, **update), draws=150, tune=150, chains=2, seed=3, progress_bar=False)
        for name in ("s", "x", "x_sum"):
            np.testing.assert_array_equal(a["posterior"][name].values, b["posterior"][name].values)
        for name in ("diverging", "n_steps", "step_size"):
            np.testing.assert_array_equal(a["sample_stats"][name].values, b["sample_stats"][name].values)
    assert a["posterior"]["x"].mean() > 0  # the swapped data moved the posterior (mu0 sums to 1, y to 3.5)


def test_cached_callbacks_sample_identically_in_a_fresh_process(tmp_path, nutpie_draws):
    """Reference: nutpie.compile_pymc_model (its own numba callbacks, never cached), same model, seed and start.
    The first compile_model writes the generated module and numba's cache of both callbacks (no cache hit);
    a fresh Python process then compiles the same model and must load both callbacks from that cache
    (``CFunc.cache_hits`` is 1, and no cache file is rewritten: numba saves only after compiling), and sample
    bit for bit as nutpie's compile, both with the compiled data and with new data swapped in (the data
    pointers are read from ``user_data`` at each call, not baked into the cached code)."""
    model = _toy_model()
    ours = compile_model(model, initial_points={"s": 1.0})
    assert (ours.compiled_logp_func.cache_hits, ours.compiled_expand_func.cache_hits) == (0, 0)
    written = _cache_files()
    assert len([name for name in written if name.endswith(".nbi")]) == 2, written
    reference = nutpie_draws
    assert not np.array_equal(reference["plain"]["posterior/x"], reference["updated"]["posterior/x"])
    _assert_same(_draws(ours), reference["plain"])
    _assert_same(_draws(ours, **_UPDATE), reference["updated"])

    out = tmp_path / "fresh.npz"
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, str(root / "tests"), str(out)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    fresh = dict(np.load(out))
    assert list(fresh.pop("hits")) == [1, 1]
    assert _cache_files() == written  # nothing recompiled, nothing saved
    for which in ("plain", "updated"):
        _assert_same({k.split(":", 1)[1]: v for k, v in fresh.items() if k.startswith(which + ":")}, reference[which])


def test_another_structure_gets_its_own_cached_module():
    """Reference: the definition of the cache key (the SHA-256 of a source naming the sizes, data layout and
    PyTensor graph keys). A model that differs from ``_toy_model`` only in the size of ``x`` (4, not 3) must
    get a module of its own and compile it (no cache hit), while recompiling ``_toy_model`` hits its cache."""
    compile_model(_toy_model(), initial_points={"s": 1.0})
    with pm.Model() as bigger:
        s = pm.HalfNormal("s", 1.5)
        x = pm.Normal("x", pm.Data("mu0", np.zeros(4)), s)
        pm.Deterministic("x_sum", x.sum())
        pm.Normal("obs", x[:2], 1.0, observed=pm.Data("y", np.array([1.0, 0.3])))
    other = compile_model(bigger, initial_points={"s": 1.0})
    assert other.compiled_logp_func.cache_hits == 0
    assert len(list(numba_cache_dir().glob("nutpie_callbacks_*.py"))) == 2
    again = compile_model(_toy_model(), initial_points={"s": 1.0})
    assert (again.compiled_logp_func.cache_hits, again.compiled_expand_func.cache_hits) == (1, 1)


def test_compile_without_a_writable_cache_directory_still_samples_exactly(tmp_path, monkeypatch, nutpie_draws):
    """Reference: nutpie.compile_pymc_model, same seed. With the cache directory impossible to create (its
    parent is a file), the callbacks are compiled from a temporary directory without caching, with no
    warning and no fallback, and sample bit for bit as nutpie's."""
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    model = _toy_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ours = compile_model(model, initial_points={"s": 1.0})
    assert isinstance(ours.compiled_logp_func, numba.core.ccallback.CFunc)
    assert ours.compiled_logp_func.__wrapped__.__module__.startswith("bayes_rescue_generated_")
    assert ours.compiled_logp_func.cache_hits == 0
    _assert_same(_draws(ours), nutpie_draws["plain"])


def _raise_in_make_functions(*args, **kwargs):
    raise AttributeError("module 'nutpie.compile_pymc' has no attribute '_make_functions'")


def _not_jittable(address):
    return address


@pytest.mark.parametrize("failure", ["nutpie internals", "numba typing"])
def test_fast_path_failure_falls_back_to_nutpie(failure, monkeypatch, nutpie_draws):
    """Reference: nutpie.compile_pymc_model, same model, seed and start. When the fast path fails (nutpie's
    private API changed; numba cannot compile the generated callbacks), compile_model warns in one line and
    returns nutpie's own compile, whose draws and statistics equal a separate nutpie compile bit for bit."""
    if failure == "nutpie internals":
        real = backend_module._internals

        def broken():
            internals = real()
            internals.make_functions = _raise_in_make_functions
            return internals

        monkeypatch.setattr(backend_module, "_internals", broken)
    else:
        monkeypatch.setattr(backend_module, "as_pointer", _not_jittable)
    model = _toy_model()
    with pytest.warns(RuntimeWarning, match="fast compile failed") as caught:
        ours = compile_model(model, initial_points={"s": 1.0})
    message = str(caught[0].message)
    assert "\n" not in message and "using nutpie.compile_pymc_model" in message
    assert ours.compiled_logp_func.__wrapped__.__module__ == "nutpie.compile_pymc"
    _assert_same(_draws(ours), nutpie_draws["plain"])


@pytest.mark.parametrize("stacked", [False, True])
def test_packed_inputs_unpack_to_the_arrays(stacked):
    """Reference: the arrays themselves (ModelSpec.arrays / stacked_arrays). The model's unpacked symbolic
    inputs, evaluated, must return every array exactly, counts as integers."""
    data = load_counts("bundled:chen2025")
    specs = [ModelSpec(data, load_prior(name)) for name in ("skeptical", "enthusiastic", "map_early")]
    arrays = stacked_arrays(specs) if stacked else specs[0].arrays()
    packed = pytensor.shared(pack_inputs(arrays))
    unpacked = _unpack_inputs(packed, arrays)
    values = pytensor.function([], list(unpacked.values()))()
    for (name, symbolic), value in zip(unpacked.items(), values, strict=True):
        np.testing.assert_array_equal(value, arrays[name], err_msg=name)
        assert (value.dtype.kind == "i") == (name in ("y_t", "n_t", "y_c", "n_c")), name
        assert symbolic.ndim == np.ndim(arrays[name])
