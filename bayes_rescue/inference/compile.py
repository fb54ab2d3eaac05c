"""Compiling a PyMC model for nutpie, with a smaller numba wrapper than nutpie's own.

``nutpie.compile_pymc_model`` (0.16) compiles the model's log density and gradient with PyTensor's numba
backend (cached on disk across processes by PyTensor) and then wraps them in two ``numba.cfunc`` callbacks
that cannot be cached (they close over process-specific pointers), so every new process pays their
compilation. Measured on the bundled cohort's hierarchical model (2 cores): about 16 s, of which about
3 s is numba compiling the error path of one line, ``out[...] = grad`` (its shape-mismatch message is
built by string formatting), and about 2 s is one extraction function per shared variable.

:func:`compile_model` builds the same :class:`nutpie.compile_pymc.CompiledPyMCModel` from the same
PyTensor functions, with callbacks that copy element by element (same results, same return codes) and
nothing else changed; the model itself passes its data as one shared vector
(:func:`bayes_rescue.model.pack_inputs`). Together these halve the compile. A test checks the callbacks
against ``nutpie.compile_pymc_model``'s: the same log density, gradient and draws, bit for bit.

It uses nutpie's internal helpers (pinned ``nutpie>=0.16,<0.17`` in ``pyproject.toml``); if they are
missing it falls back to ``nutpie.compile_pymc_model``.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
import nutpie
import pymc as pm

try:
    from nutpie.compile_pymc import (
        CompiledPyMCModel,
        _make_functions,
        _prepare_dims_and_coords,
        _wrap_with_lock,
        make_extraction_fn,
        make_user_data,
    )
except ImportError:  # pragma: no cover - another nutpie version: use its own compile
    CompiledPyMCModel = None


def _logp_callback(n_dim: int, extract):
    """nutpie's log-density callback (same signature and return codes: 0 ok, 1 error, 3 non-finite
    gradient, 4 non-finite log density, -1 wrong dimension), copying the gradient by a loop."""

    def logp_numba(dim, x_, out_, logp_, user_data_):
        if dim != n_dim:
            return -1
        bad_grad = False
        try:
            x = numba.carray(x_, (n_dim,))
            logp_val, grad = extract(x, user_data_)
            logp_[0] = logp_val
            for i in range(n_dim):
                g = grad[i]
                out_[i] = g
                if not np.isfinite(g):
                    bad_grad = True
        except Exception:
            return 1
        if bad_grad:
            return 3
        if not np.isfinite(logp_val):
            return 4
        return 0

    sig = numba.types.int64(
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )
    return logp_numba, sig


def _expand_callback(n_dim: int, n_expanded: int, extract):
    """nutpie's expand callback (the constrained values and deterministics of a draw), copying by a loop."""

    def expand_numba(dim, expanded, x_, out_, user_data_):
        if dim != n_dim or expanded != n_expanded:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            (values,) = extract(x, user_data_)
            for i in range(n_expanded):
                out_[i] = values[i]
        except Exception:
            return -2
        return 0

    sig = numba.types.int64(
        numba.types.uint64,
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )
    return expand_numba, sig


def compile_model(model: pm.Model, *, initial_points: dict | None = None):
    """Compile ``model`` for ``nutpie.sample``: what ``nutpie.compile_pymc_model(model,
    initial_points=...)`` returns (numba backend, jittered support-point start, every variable stored),
    with the smaller callbacks of the module docstring."""
    if CompiledPyMCModel is None:  # pragma: no cover
        return nutpie.compile_pymc_model(model, initial_points=initial_points)
    from pymc.initial_point import make_initial_point_fn

    initial_point_fn = _wrap_with_lock(
        make_initial_point_fn(
            model=model,
            overrides=initial_points,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )
    n_dim, n_expanded, logp_fn_pt, expand_fn_pt, init_fn, shape_info, reparameterized = _make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=initial_point_fn,
        var_names=None,
    )
    shared_data, shared_var_keys = {}, {}
    for var in [*logp_fn_pt.get_shared(), *expand_fn_pt.get_shared()]:
        if var in shared_var_keys:
            continue
        key = f"s{len(shared_var_keys)}"
        value = np.array(var.get_value(), order="C", copy=True)
        value.flags.writeable = False
        shared_data[key], shared_var_keys[var] = value, key
    user_data = make_user_data(shared_var_keys, shared_data)

    def callback(make, fn_pt, *sizes):
        keys = [shared_var_keys[v] for v in fn_pt.get_shared()]
        extract = make_extraction_fn(fn_pt.vm.jit_fn, shared_data, keys, user_data.dtype)
        raw, sig = make(*sizes, extract)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=numba.NumbaWarning)
            return numba.cfunc(sig)(raw)

    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=callback(_logp_callback, logp_fn_pt, n_dim),
        compiled_expand_func=callback(_expand_callback, expand_fn_pt, n_dim, n_expanded),
        initial_point_func=init_fn,
        shared_data=shared_data,
        shared_var_keys=shared_var_keys,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_fn_pt,
        expand_func=expand_fn_pt,
        reparameterized_names=reparameterized,
    )
