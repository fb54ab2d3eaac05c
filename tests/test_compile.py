"""The compile path (bayes_rescue.compile, model.pack_inputs) changes speed only, never results."""

from __future__ import annotations

import numpy as np
import nutpie
import pymc as pm
import pytensor
import pytest

from bayes_rescue.data.counts import load_counts
from bayes_rescue.inference.compile import compile_model
from bayes_rescue.inference.sampling import _with_data
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


def test_compile_model_samples_exactly_as_nutpie_compile_pymc_model():
    """Reference: nutpie.compile_pymc_model on the same model, same seed and start. The two compiles share
    every PyTensor function and differ only in the numba callbacks' copying loops, so the draws (which
    depend on every log density and gradient evaluation), the deterministic and the sampler statistics
    must agree bit for bit, also after new data are swapped in."""
    model = _toy_model()
    ours = compile_model(model, initial_points={"s": 1.0})
    theirs = nutpie.compile_pymc_model(model, initial_points={"s": 1.0})
    for update in ({}, {"mu0": np.array([3.0, 0.0, -2.0]), "y": np.array([-0.5, 4.0])}):
        a = nutpie.sample(_with_data(ours, **update), draws=150, tune=150, chains=2, seed=3, progress_bar=False)
        b = nutpie.sample(_with_data(theirs, **update), draws=150, tune=150, chains=2, seed=3, progress_bar=False)
        for name in ("s", "x", "x_sum"):
            np.testing.assert_array_equal(a["posterior"][name].values, b["posterior"][name].values)
        for name in ("diverging", "n_steps", "step_size"):
            np.testing.assert_array_equal(a["sample_stats"][name].values, b["sample_stats"][name].values)
    assert a["posterior"]["x"].mean() > 0  # the swapped data moved the posterior (mu0 sums to 1, y to 3.5)


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
