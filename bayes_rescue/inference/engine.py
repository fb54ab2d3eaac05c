"""The sampling engine: the one small interface through which the package compiles and samples.

- :class:`ModelCache` / :func:`compiled`: compile a model *structure* once (any PyMC model, under a key) and
  reuse it with other data (:func:`with_data`);
- :func:`sample_tree`: NUTS (nutpie), returning a DataTree (posterior and sample_stats);
- :func:`sample_draws`: NUTS returning only some variables' post-warm-up draws (for sweeps and SBC);
- :func:`check_complete`: an interrupted run is raised as an interruption, never returned as a result.

Behind it, the backend (:mod:`bayes_rescue.inference.backend`, switched by ``$BAYES_RESCUE_BACKEND``, see
:mod:`bayes_rescue.inference.compile`) holds every private name of nutpie, numba and PyTensor; without it
(switched off or unusable) the same calls use nutpie's public API and give the same draws (tested).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import xarray as xr

from bayes_rescue import progress
from bayes_rescue.inference.compile import backend, compile_model
from bayes_rescue.inference.settings import SamplerSettings


def initial_overrides(model) -> dict:
    """Initial point 0 on the unconstrained scale for every free variable (nutpie adds seeded jitter).

    nutpie's default starts at the prior's support point, which depends on the prior; a fixed start makes
    a reused compiled model give bit-identical draws to a fresh compile of the same spec and seed.
    """
    import pytensor

    ip = model.initial_point()
    out, symbolic = {}, {}
    for rv in model.free_RVs:
        zero = np.zeros_like(ip[model.rvs_to_values[rv].name])
        transform = model.rvs_to_transforms.get(rv)
        if transform is None:
            out[rv] = zero
        else:
            symbolic[rv] = transform.backward(zero, *rv.owner.inputs)
    if symbolic:  # one small function for all of them (FAST_COMPILE: no C or numba compile)
        values = pytensor.function([], list(symbolic.values()), mode="FAST_COMPILE")()
        out |= dict(zip(symbolic, values, strict=True))
    return {rv: out[rv] for rv in model.free_RVs}


def raise_if_signalled(stage: str) -> None:
    """Raise the interruption now if SIGINT/SIGTERM arrived and was swallowed by library code (a broad
    ``except`` in a compiler), instead of sampling on for minutes."""
    from bayes_rescue.errors import Terminated, received_signal

    sig = received_signal()
    if sig is not None:
        cls = Terminated if sig == signal.SIGTERM else KeyboardInterrupt
        raise cls(f"interrupted during {stage}")


def with_data(compiled, **updates):
    """``compiled`` with new values of its ``pm.Data`` containers by name (same shapes), without recompiling;
    names the compiled log density does not use are skipped."""
    module = backend()
    if module is not None:
        try:
            return module.with_data(compiled, **updates)
        except ValueError:
            raise  # a wrong shape: the caller's error
        except Exception:  # the backend's view of the compiled model does not fit: the public call
            pass
    used = {var.name for var in compiled.shared_var_keys}
    return compiled.with_data(**{k: v for k, v in updates.items() if k in used})


class ModelCache:
    """Compiles each model *structure* once and reuses it for other data of the same shape.

    For the reanalysis model (:meth:`get`, :meth:`get_stacked`) the structure is the model kind, the
    coordinates (outcomes, cells, mixture components) and the cell-to-outcome index; counts and prior
    parameters are the ``pm.Data`` vector ``inputs`` (:func:`~bayes_rescue.model.pack_inputs`) and are swapped
    in without recompiling. Any other PyMC model is compiled once per key by :meth:`compiled`.
    """

    def __init__(self) -> None:
        self._compiled: dict = {}
        self.compilations = 0

    @staticmethod
    def key(spec) -> tuple:
        from bayes_rescue.model.build import stack_key

        return stack_key(spec)

    def compiled(self, key: Hashable, build: Callable, *, what: str = "model", start: str = "zero"):
        """The compiled model of ``build()`` (a ``pm.Model``), compiled on the first call for ``(key, start)``
        (with a progress line), holding the data it was built with. ``start``: ``"zero"`` (a fixed start,
        :func:`initial_overrides`, so that the draws do not depend on the data the structure was built with)
        or ``"support_point"`` (nutpie's default)."""
        key = (key, start)
        if key not in self._compiled:
            with progress.task(f"compiling {what} ..."):
                model = build()
                points = initial_overrides(model) if start == "zero" else None
                compiled = compile_model(model, initial_points=points)
            raise_if_signalled("compilation")  # a compiler that swallowed the KeyboardInterrupt
            self._compiled[key] = compiled
            self.compilations += 1
        return self._compiled[key]

    def get(self, spec):
        """The compiled nutpie model for ``spec``, holding ``spec``'s data and prior values."""
        from bayes_rescue.model.build import build_model, pack_inputs

        compiled = self.compiled(self.key(spec), lambda: build_model(spec))
        return with_data(compiled, inputs=pack_inputs(spec.arrays()))

    def get_stacked(self, specs: list):
        """The compiled stacked model (:func:`~bayes_rescue.model.build_stacked_model`) for ``specs``,
        compiled once per structure and number of priors, holding ``specs``' priors in order."""
        from bayes_rescue.model.build import build_stacked_model, pack_inputs, stacked_arrays

        key = ("stacked", len(specs), self.key(specs[0]))
        compiled = self.compiled(key, lambda: build_stacked_model(specs))
        return with_data(compiled, inputs=pack_inputs(stacked_arrays(specs)))


#: The process-wide cache used unless another is passed.
DEFAULT_CACHE = ModelCache()


def check_complete(chains: int | None, draws: int | None, settings: SamplerSettings, posterior=None) -> None:
    """nutpie answers Ctrl-C (and SIGTERM, a KeyboardInterrupt here) by returning the draws made so far; a
    trace shorter than asked for, one whose shorter chains were padded with NaN to the longest, or any
    trace returned after a signal arrived is therefore an interruption, raised as such (SIGTERM as
    :class:`~bayes_rescue.errors.Terminated`), never passed on as a result."""
    from bayes_rescue.errors import Terminated, received_signal

    why = None
    if chains != settings.chains or draws != settings.draws:
        why = f"{chains} chains x {draws} draws of {settings.chains} x {settings.draws}"
    elif posterior is not None and any(
        np.issubdtype(v.dtype, np.floating) and bool(np.isnan(v.values).any()) for v in posterior.data_vars.values()
    ):
        why = "the trace has missing (NaN-padded) draws"
    elif received_signal() is not None:
        why = f"signal {received_signal()} arrived during sampling"
    if why is not None:
        cls = Terminated if received_signal() == signal.SIGTERM else KeyboardInterrupt
        raise cls(f"sampling was interrupted: {why}")


def _sample_kwargs(settings: SamplerSettings, target_accept: float | None) -> dict:
    """nutpie's arguments; nutpie's own per-chain progress table is shown on a terminal when no other
    progress is on screen (:func:`bayes_rescue.progress.sampler_bar`)."""
    return {
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "seed": settings.seed,
        "target_accept": settings.target_accept if target_accept is None else target_accept,
        "progress_bar": progress.sampler_bar(),
    }


def run_nutpie(compiled, settings: SamplerSettings, target_accept: float | None = None) -> xr.DataTree:
    """nutpie NUTS on a compiled model as nutpie returns it (no completeness check: :func:`sample_tree`)."""
    import nutpie

    return nutpie.sample(compiled, **_sample_kwargs(settings, target_accept))


def sample_tree(compiled, settings: SamplerSettings, *, target_accept: float | None = None) -> xr.DataTree:
    """NUTS (nutpie) on ``compiled`` with ``settings`` at ``target_accept`` (default the settings'), as a
    DataTree with the posterior (every variable) and sample_stats groups; an interrupted run raises
    (:func:`check_complete`)."""
    tree = run_nutpie(compiled, settings, target_accept)
    posterior = tree["posterior"].to_dataset()
    check_complete(posterior.sizes.get("chain"), posterior.sizes.get("draw"), settings, posterior)
    return tree


def sample_draws(
    compiled, settings: SamplerSettings, *, names: Sequence[str], target_accept: float | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """NUTS on ``compiled`` returning only the post-warm-up draws of ``names``, each an array (chain, draw,
    size) with the variable's elements flattened, and the ``diverging`` flags (chain, draw): the same draws as
    :func:`sample_tree` for the same seed, without the DataTree conversion when the backend is on."""
    module = backend()
    if module is not None:
        try:
            draws, diverging = module.raw_draws(compiled, list(names), **_sample_kwargs(settings, target_accept))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            module = None  # the raw trace's layout changed: the public path below
        else:
            if isinstance(diverging, list):  # chains of unequal length: interrupted
                check_complete(len(diverging), None, settings)
            check_complete(diverging.shape[0], diverging.shape[1], settings)
            return draws, diverging
    tree = sample_tree(compiled, settings, target_accept=target_accept)
    post = tree["posterior"].to_dataset()
    shape = (post.sizes["chain"], post.sizes["draw"], -1)
    draws = {n: post[n].transpose("chain", "draw", ...).to_numpy().reshape(shape) for n in names}
    return draws, tree["sample_stats"]["diverging"].transpose("chain", "draw").to_numpy().astype(bool)
