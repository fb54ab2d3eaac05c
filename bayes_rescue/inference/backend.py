"""The one home of every private name of nutpie (0.16), numba and PyTensor (3.3) that the package uses.

Imported lazily (only by :mod:`bayes_rescue.inference.compile` and :mod:`bayes_rescue.inference.engine`, inside
functions) and only when the backend is switched on (:func:`bayes_rescue.inference.compile.backend_enabled`):
``import bayes_rescue.inference`` never imports numba. Whatever fails here (an import, a changed layout of
nutpie's compiled model, a numba error) makes the caller fall back to nutpie's public API
(``nutpie.compile_pymc_model``, ``CompiledPyMCModel.with_data``, ``nutpie.sample``), which gives the same draws.

It provides three things:

- :func:`fast_compile`: the same compiled model as ``nutpie.compile_pymc_model``, with callbacks that numba
  caches on disk across processes (below);
- :func:`with_data`: new shared-data values without recompiling (written into nutpie's ``user_data`` record);
- :func:`raw_draws`: selected post-warm-up draws read from nutpie's raw (arrow) trace, skipping the DataTree
  conversion (the costliest step of a sweep point after sampling).

Fast compile
------------
``nutpie.compile_pymc_model`` wraps PyTensor's numba functions (cached on disk by PyTensor) in two
``numba.cfunc`` callbacks that numba cannot cache (they close over process-specific objects), so every new
process compiled them again: most of a 4 s compile of the bundled model. :func:`fast_compile` builds the same
``CompiledPyMCModel`` from the same PyTensor functions, with the callbacks written as the *source* of a small
module (:func:`callback_source`: sizes, the word offsets of the shared-data pointers and shapes in
``user_data``, dtypes and ranks are literals; the data pointers are read at every call). The module is written
once to ``<cache>/bayes_rescue/numba/`` (:func:`~bayes_rescue.inference.compile.numba_cache_dir`) under the
SHA-256 of its own text, which names everything the compiled code depends on (PyTensor's cache keys of the two
graphs, the data layout, the versions of Python, NumPy, numba, llvmlite, PyTensor and nutpie), so
``numba.cfunc(..., cache=True)`` finds it in the next process. Tests check the draws against
``nutpie.compile_pymc_model`` bit for bit, also from a fresh process. Without a PyTensor cache key or a
writable cache directory the module is compiled from a temporary directory without caching; any other
failure raises, and :func:`~bayes_rescue.inference.compile.compile_model` falls back (one-line warning).
The private names of nutpie and PyTensor used are listed in :func:`_internals`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numba
import numba.extending
import numpy as np
import nutpie
import pymc as pm
from numba.core.imputils import impl_ret_borrowed

from bayes_rescue.inference.compile import numba_cache_dir

#: Bump when the generated source changes meaning without changing its text (it never should).
_SOURCE_VERSION = 1

#: Generated modules already loaded in this process, by path.
_LOADED: dict[str, ModuleType] = {}

_DOUBLES = numba.types.CPointer(numba.types.double)
_LOGP_SIG = numba.types.int64(numba.types.uint64, _DOUBLES, _DOUBLES, _DOUBLES, numba.types.voidptr)
_EXPAND_SIG = numba.types.int64(numba.types.uint64, numba.types.uint64, _DOUBLES, _DOUBLES, numba.types.voidptr)


def _internals() -> SimpleNamespace:
    """The private names of nutpie (0.16) and PyTensor (3.3) that the fast path uses, in one place.

    nutpie.compile_pymc: ``CompiledPyMCModel`` (the compiled model nutpie samples), ``_make_functions``
    (the PyTensor log-density and expand functions), ``_prepare_dims_and_coords``, ``_wrap_with_lock``,
    ``make_user_data`` (the record of shared-data pointers, sizes and shapes passed to the callbacks).
    pytensor.link.numba.cache: ``CACHED_SRC_FUNCTIONS`` (PyTensor's on-disk cache key of a compiled graph).
    Raises ImportError (or AttributeError) when one is missing; :func:`compile_model` then falls back.
    """
    from nutpie import compile_pymc
    from pytensor.link.numba import cache

    return SimpleNamespace(
        CompiledPyMCModel=compile_pymc.CompiledPyMCModel,
        make_functions=compile_pymc._make_functions,
        prepare_dims_and_coords=compile_pymc._prepare_dims_and_coords,
        wrap_with_lock=compile_pymc._wrap_with_lock,
        make_user_data=compile_pymc.make_user_data,
        graph_cache_keys=cache.CACHED_SRC_FUNCTIONS,
    )


@numba.extending.intrinsic
def as_pointer(typingctx, address):
    """Numba intrinsic: the integer ``address`` reinterpreted as a ``void*`` (LLVM ``inttoptr``)."""
    if not isinstance(address, numba.types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(numba.types.voidptr))

    return numba.types.voidptr(address), codegen


@numba.extending.intrinsic
def as_readonly(typingctx, array):
    """Numba intrinsic: ``array`` typed as read-only (the same value), as nutpie passes the shared data, so
    that the PyTensor function is called with, and compiled for, exactly nutpie's argument types."""
    if not isinstance(array, numba.types.Array):
        return None

    def codegen(context, builder, signature, args):
        return impl_ret_borrowed(context, builder, signature.return_type, args[0])

    return array.copy(readonly=True)(array), codegen


def _word_offsets(record: np.dtype, *path: str) -> tuple[int, int]:
    """Offset (in 8-byte words) and count of the field at ``path`` in the ``user_data`` record, which must
    consist of 8-byte unsigned integers only (so the callbacks can read it as a ``uint64`` array)."""
    offset, dtype = 0, record
    for name in path:
        dtype, field_offset = dtype.fields[name][:2]
        offset += field_offset
    if dtype.base.kind != "u" or dtype.base.itemsize != 8 or offset % 8:
        raise TypeError(f"user_data field {'.'.join(path)} is {dtype}, not 8-byte unsigned integers")
    return offset // 8, max(1, int(np.prod(dtype.shape)))


def _shared_arguments(keys: list[str], shared_data: dict[str, np.ndarray], record: np.dtype) -> str:
    """Source of the PyTensor function's shared-data arguments: one ``numba.carray`` per key, its address and
    shape read from the ``uint64`` view ``u`` of ``user_data``, its dtype and rank literals."""
    args = []
    for key in keys:
        value = shared_data[key]
        if value.dtype.kind not in "biuf" or not value.flags.c_contiguous:
            raise TypeError(f"shared data {key} has dtype {value.dtype}; only C-contiguous numbers are supported")
        data, _ = _word_offsets(record, "shared", "data", key)
        shape, _ = _word_offsets(record, "shared", "shape", key)
        dims = "".join(f"int(u[{shape + i}]), " for i in range(value.ndim))
        args.append(f"as_readonly(numba.carray(as_pointer(u[{data}]), ({dims}), np.{value.dtype.name}))")
    return ", ".join(args)


def callback_source(
    *,
    n_dim: int,
    n_expanded: int,
    logp_keys: list[str],
    expand_keys: list[str],
    shared_data: dict[str, np.ndarray],
    record: np.dtype,
    graph_keys: tuple[str | None, str | None],
) -> str:
    """The source of a module defining nutpie's two callbacks for one compiled model.

    ``logp(dim, x, grad_out, logp_out, user_data) -> int64`` evaluates the PyTensor function
    ``logp_inner(x, *shared) = (log p(x), ∇ log p(x))`` at the ``n_dim`` unconstrained values ``x`` and
    writes log p and the gradient, returning nutpie's codes: 0 ok, -1 wrong dimension, 1 exception,
    3 a non-finite gradient element, 4 a non-finite log density. ``expand(dim, n_expanded, x, out,
    user_data) -> int64`` writes the ``n_expanded`` values of ``expand_inner(x, *shared)`` (the draw's
    variables and deterministics), returning 0, -1 or -2 (exception). The shared arrays are rebuilt at
    every call from the addresses and shapes in ``user_data`` (nutpie's record, read as ``uint64`` words;
    the word offsets are literals). The header names everything the compiled code depends on, so the
    SHA-256 of the text is a sound cache key.
    """
    n_words = record.itemsize // 8
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "llvmlite": metadata.version("llvmlite"),
        "pytensor": metadata.version("pytensor"),
        "nutpie": nutpie.__version__,
    }
    logp_args = _shared_arguments(logp_keys, shared_data, record)
    expand_args = _shared_arguments(expand_keys, shared_data, record)
    return f'''"""nutpie callbacks generated by bayes_rescue (source version {_SOURCE_VERSION}); do not edit.

PyTensor graph keys: logp {graph_keys[0]}, expand {graph_keys[1]}.
Versions: {", ".join(f"{k} {v}" for k, v in versions.items())}.
user_data record ({record.itemsize} bytes): {record}
Globals set by the loader: logp_inner, expand_inner (PyTensor numba functions), as_pointer, as_readonly
(intrinsics).
"""

import numba
import numpy as np


def logp(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    bad_grad = False
    try:
        x = numba.carray(x_, ({n_dim},))
        u = numba.carray(user_data_, ({n_words},), np.uint64)
        logp_val, grad = logp_inner(x, {logp_args})
        logp_[0] = logp_val
        for i in range({n_dim}):
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


def expand(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim} or expanded != {n_expanded}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        u = numba.carray(user_data_, ({n_words},), np.uint64)
        (values,) = expand_inner(x, {expand_args})
        for i in range({n_expanded}):
            out_[i] = values[i]
    except Exception:
        return -2
    return 0
'''


def _write_module(source: str, persistent: bool) -> tuple[Path, bool]:
    """Write ``source`` as ``nutpie_callbacks_<sha256>.py`` and return its path and whether numba may cache it.

    If ``persistent``, the file goes to :func:`numba_cache_dir` (once: an existing file is left untouched, as
    numba's cache index is stamped with its modification time; a new one is written atomically). Otherwise,
    or if that directory cannot be written, it goes to a new temporary directory, compiled without caching.
    """
    name = f"nutpie_callbacks_{hashlib.sha256(source.encode()).hexdigest()[:40]}.py"
    if persistent:
        try:
            directory = numba_cache_dir()
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / name
            if not path.exists():
                tmp = directory / f".{name}.{os.getpid()}.tmp"
                tmp.write_text(source)
                os.replace(tmp, path)  # a concurrent process sees the whole file or none
            if os.access(directory, os.W_OK):
                return path, True
        except OSError:
            pass
    path = Path(tempfile.mkdtemp(prefix="bayes_rescue_numba_")) / name
    path.write_text(source)
    return path, False


def _load_module(path: Path, cached: bool, **globals_) -> ModuleType:
    """Import the generated module at ``path`` (registered in ``sys.modules``, where numba looks it up) and
    set its globals ``logp_inner``, ``expand_inner``, ``as_pointer`` and ``as_readonly``."""
    module_name = f"bayes_rescue_generated_{path.stem}"
    module = _LOADED.get(str(path)) if cached else None
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        if cached:
            _LOADED[str(path)] = module
    # The same module (same source) can serve several compiled models of one structure: the PyTensor
    # functions have the same graph keys, so the compiled code is the same whichever is bound.
    vars(module).update(globals_)
    return module


def fast_compile(model: pm.Model, initial_points: dict | None):
    """What ``nutpie.compile_pymc_model(model, initial_points=initial_points)`` returns, with cached callbacks
    (the module docstring); raises on any failure."""
    from pymc.initial_point import make_initial_point_fn

    nut = _internals()
    initial_point_fn = nut.wrap_with_lock(
        make_initial_point_fn(
            model=model,
            overrides=initial_points,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )
    n_dim, n_expanded, logp_fn_pt, expand_fn_pt, init_fn, shape_info, reparameterized = nut.make_functions(
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
    user_data = nut.make_user_data(shared_var_keys, shared_data)

    logp_inner, expand_inner = logp_fn_pt.vm.jit_fn, expand_fn_pt.vm.jit_fn
    graph_keys = (nut.graph_cache_keys.get(logp_inner.py_func), nut.graph_cache_keys.get(expand_inner.py_func))
    source = callback_source(
        n_dim=n_dim,
        n_expanded=n_expanded,
        logp_keys=[shared_var_keys[v] for v in logp_fn_pt.get_shared()],
        expand_keys=[shared_var_keys[v] for v in expand_fn_pt.get_shared()],
        shared_data=shared_data,
        record=user_data.dtype,
        graph_keys=graph_keys,
    )
    path, cache = _write_module(source, persistent=None not in graph_keys)
    try:
        module = _load_module(
            path,
            cache,
            logp_inner=logp_inner,
            expand_inner=expand_inner,
            as_pointer=as_pointer,
            as_readonly=as_readonly,
        )
        compiled_logp = numba.cfunc(_LOGP_SIG, cache=cache)(module.logp)
        compiled_expand = numba.cfunc(_EXPAND_SIG, cache=cache)(module.expand)
    finally:
        if not cache:
            shutil.rmtree(path.parent, ignore_errors=True)

    dims, coords = nut.prepare_dims_and_coords(model, shape_info, reparameterized)
    return nut.CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=compiled_logp,
        compiled_expand_func=compiled_expand,
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


def with_data(compiled, **updates):
    """Return ``compiled`` with new values of its shared data (same shapes), without recompiling: written
    into nutpie's ``user_data`` record through ndarray views; names the log density does not use are skipped."""
    shared = dict(compiled.shared_data)
    keys = {var.name: key for var, key in compiled.shared_var_keys.items()}
    for name, value in updates.items():
        if name not in keys:
            continue
        old = shared[keys[name]]
        new = np.array(value, dtype=old.dtype, order="C", copy=True)
        if new.shape != old.shape:
            raise ValueError(f"shared data {name!r} has shape {new.shape}, compiled with {old.shape}")
        new.flags.writeable = False
        shared[keys[name]] = new
    user_data = compiled.user_data.copy()
    for key, value in shared.items():
        user_data["shared"]["data"][key] = value.ctypes.data
        user_data["shared"]["size"][key] = value.size
        user_data["shared"]["shape"][key] = value.shape
    return dataclasses.replace(compiled, shared_data=shared, user_data=user_data)


def _arrow_numpy(column) -> np.ndarray:
    """A column of nutpie's raw (arro3) trace as NumPy: list columns become (rows, length)."""
    import pyarrow as pa

    arr = pa.array(column)
    if pa.types.is_large_list(arr.type) or pa.types.is_list(arr.type):
        return arr.flatten().to_numpy().reshape(len(arr), -1)
    return arr.to_numpy(zero_copy_only=False)


def raw_draws(compiled, names, **sample_kwargs) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``nutpie.sample(compiled, **sample_kwargs)`` without the DataTree conversion: the post-warm-up draws of
    ``names`` by name, each (chain, draw, size) (flattened per draw), and the ``diverging`` flags (chain,
    draw). Chains of unequal length (an interrupted run) come back as a list per name instead of an array."""
    draw_batches, stat_batches = nutpie.sample(compiled, return_raw_trace=True, **sample_kwargs).get_arrow_trace()
    post: dict[str, list] = {n: [] for n in names}
    diverging = []
    for draws, stats_ in zip(draw_batches, stat_batches, strict=True):
        keep = ~_arrow_numpy(stats_.column("tuning")).astype(bool)
        for n in names:
            post[n].append(_arrow_numpy(draws.column(n))[keep])
        diverging.append(_arrow_numpy(stats_.column("diverging")).astype(bool)[keep])
    if len({len(d) for d in diverging}) > 1:
        return post, diverging
    return {n: np.stack(v) for n, v in post.items()}, np.stack(diverging)
