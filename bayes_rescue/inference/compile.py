"""Compiling a PyMC model for nutpie, with callbacks that numba caches on disk across processes.

``nutpie.compile_pymc_model`` (0.16) compiles the model's log density and gradient with PyTensor's numba
backend (cached on disk across processes by PyTensor) and then wraps them in two ``numba.cfunc`` callbacks
that numba cannot cache: they close over process-specific objects (an extraction function made per call
by ``make_extraction_fn``, random shared-data keys), so every new process compiles them again. On the
bundled cohort's hierarchical model (2 cores) that was most of a 4 s compile; ``out[...] = grad`` alone
cost about 3 s in an earlier version of this module (numba compiles its error path, whose message is
built by string formatting).

:func:`compile_model` builds the same :class:`nutpie.compile_pymc.CompiledPyMCModel` from the same
PyTensor functions, with callbacks written as the *source* of a small module (:func:`callback_source`):
sizes, the offsets of the shared-data pointers and shapes in nutpie's ``user_data`` record, and the
shared arrays' dtypes and ranks are literals; the data pointers are read from ``user_data`` at every call
(never baked into code); the PyTensor numba functions are module globals. The module is written once to
``<cache>/bayes_rescue/numba/`` (``<cache>`` is ``$XDG_CACHE_HOME`` or ``~/.cache``) under a name that is
the SHA-256 of its own text, and that text names everything that determines the compiled code: PyTensor's
cache keys of the two compiled graphs (:data:`pytensor.link.numba.cache.CACHED_SRC_FUNCTIONS`), the
sizes and data layout, and the versions of Python, NumPy, numba, llvmlite, PyTensor and nutpie. So
``numba.cfunc(..., cache=True)`` finds its compiled code in the next process. The callbacks copy element
by element (same results and return codes as nutpie's); tests check them against
``nutpie.compile_pymc_model`` bit for bit, also from a fresh process that loads them from the cache.

Without a PyTensor cache key (a graph PyTensor does not cache) or a writable cache directory the module is
compiled from a temporary directory without caching. Any other failure of this path (nutpie's internals
changed, a numba error, anything) warns in one line and falls back to ``nutpie.compile_pymc_model``.
Everything taken from nutpie's or PyTensor's private API is in :func:`_internals`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numba
import numba.extending
import numpy as np
import nutpie
import pymc as pm
from numba.core.imputils import impl_ret_borrowed

#: Bump when the generated source changes meaning without changing its text (it never should).
_SOURCE_VERSION = 1

#: Generated modules already loaded in this process, by path.
_LOADED: dict[str, ModuleType] = {}

_LOGP_SIG = numba.types.int64(
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)
_EXPAND_SIG = numba.types.int64(
    numba.types.uint64,
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)


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


def numba_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/bayes_rescue/numba`` (``~/.cache/bayes_rescue/numba`` if the variable is unset or
    empty), where the generated callback modules and numba's cache of them live."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bayes_rescue" / "numba"


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
        "llvmlite": __import__("llvmlite").__version__,
        "pytensor": __import__("pytensor").__version__,
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


def _fast_compile(model: pm.Model, initial_points: dict | None):
    """:func:`compile_model`'s fast path (the module docstring); raises on any failure."""
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


def compile_model(model: pm.Model, *, initial_points: dict | None = None):
    """Compile ``model`` for ``nutpie.sample``.

    Parameters
    ----------
    model
        The PyMC model.
    initial_points
        Start values by variable name (nutpie's ``initial_points``), jittered like nutpie's.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        What ``nutpie.compile_pymc_model(model, initial_points=initial_points)`` returns (numba backend,
        jittered support-point start, every variable stored), with callbacks cached on disk across
        processes (module docstring); the same log density, gradient and draws bit for bit. If the fast
        path fails for any reason, a one-line ``RuntimeWarning`` and nutpie's own compile.
    """
    try:
        return _fast_compile(model, initial_points)
    except Exception as exc:  # any failure: nutpie's own (slower) compile is always right
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        warnings.warn(
            f"bayes_rescue.inference.compile: fast compile failed ({reason}); using nutpie.compile_pymc_model",
            RuntimeWarning,
            stacklevel=2,
        )
        return nutpie.compile_pymc_model(model, initial_points=initial_points)
