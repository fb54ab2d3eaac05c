"""The PyMC model built from a :class:`~bayes_rescue.model.spec.ModelSpec`: its mathematics.

Both structures share the binomial likelihood with a logit link, with the two arms placed symmetrically
about a baseline. For cell c (one outcome o(c) x one subgroup s(c)) with y_t of n_t treated and y_c of n_c
control patients having the event::

    y_c[c] ~ Binomial(n_c[c], expit(baseline[c] - delta[c] / 2))
    y_t[c] ~ Binomial(n_t[c], expit(baseline[c] + delta[c] / 2))

so ``delta[c]`` is the log odds ratio (treatment vs control) of the outcome's event in that subgroup, and
``baseline[c]`` is the mean of the two arms' logits (the log odds of the event midway between the arms).
The symmetric placement makes the model invariant to swapping the arms with the sign of the effect: two
identical arms under an effect prior centred on 0 give a posterior of the log OR (and the RD) symmetric about
0, so P(benefit) = 0.5 exactly. (Placing control at the baseline and treatment at baseline + delta makes the
treated arm's prior wider, and zero-event arms then pull the effect towards one side.)

**hierarchical** (default): within each outcome o the subgroups are partially pooled, non-centred::

    mu_baseline[o]    ~ Normal(baseline_mean, baseline_sd)
    sigma_baseline[o] ~ HalfNormal(baseline_tau_sd)
    baseline[c]       = mu_baseline[o] + sigma_baseline[o] * baseline_z[c],    baseline_z[c] ~ Normal(0, 1)
    mu_log_or[o]      ~ sum_k pi[o,k] Normal(m[o,k], s[o,k])     (the named prior, a normal mixture)
    tau_log_or[o]     ~ HalfNormal(effect_tau_sd)
    delta[c]          = mu_log_or[o] + offset[c] + tau_log_or[o] * log_or_z[c],  log_or_z[c] ~ Normal(0, 1)

The pooling parameters (``sigma_baseline``, ``tau_log_or``, ``baseline_z``, ``log_or_z``) exist only for
outcomes with more than one subgroup (coordinates ``pooled_outcome`` and ``pooled_cell``). An outcome with a
single subgroup has ``baseline = mu_baseline`` and ``delta = mu_log_or``, so the named prior is exactly that
outcome's prior.

**independent**: a separate 2x2 analysis per subgroup with the same priors and no pooling::

    baseline[c] ~ Normal(baseline_mean, baseline_sd)
    delta[c]    ~ sum_k pi[o,k] Normal(m[o,k] + offset[c], s[o,k])

``offset[c]`` is 0 unless the prior sets a subgroup-specific centre (``[effect.<outcome>.subgroups.<name>]
offset = ...``): a prior belief that this subgroup's effect differs from the outcome's by that much.

**Bias adjustment** (``ModelSpec.bias``; Turner, Spiegelhalter, Smith & Thompson, J R Stat Soc A
2009;172:21-47): in a non-randomised comparison the observed log OR is the effect plus a bias,
``bias[o] ~ Normal(bias_mean[o], bias_sd[o])`` per outcome (the mean signed towards apparent benefit, from a
bias model of :mod:`bayes_rescue.priors.bias`), so the arms are observed at
``baseline[c] -/+ (delta[c] + bias[o]) / 2``. ``delta`` is then the bias-adjusted effect; the data identify only
``delta + bias``, so the adjustment shifts the effect by the bias mean and widens it by the bias sd.

Reported quantities per cell: p_control = expit(baseline - (delta + bias) / 2) (the control risk as observed;
bias = 0 without a bias model), p_treatment = expit(logit(p_control) + delta), rd = p_treatment - p_control,
rr = p_treatment / p_control, log_or = delta. The cohort as a whole ("overall") is standardised over the
subgroups by their sizes (no refit): with weights v_s = (n_t[s] + n_c[s]) / sum_s (n_t + n_c),
p_arm(overall) = sum_s v_s p_arm[s].

These equations exist once in code, in :mod:`bayes_rescue.model.equations`: the graph below takes the cells'
``baseline`` and ``delta`` and the arms' logits from its functions (with ``pytensor.tensor``), and the
quantities derived from draws use the same functions with NumPy; the NumPy log prior there is tested against
this graph's log density. The likelihood is binomial per cell and arm whatever the number of patients; what
the saved ``log_likelihood`` group calls a point (a patient, or a subgroup's arm in larger cohorts) is set out
in :mod:`bayes_rescue.inference.pointwise`.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_rescue.model.equations import arm_logits, cell_parameters
from bayes_rescue.model.spec import ModelKind, ModelSpec


def _effect_prior(name: str, a: dict, o_idx, dims: tuple[str, ...]) -> pt.TensorVariable:
    """The named prior on log OR: a normal mixture.

    Mixtures with fewer components than the padded width (:data:`MIN_COMPONENTS` or more) carry
    zero-weight components, which add nothing to the density (log 0 = -inf inside a logsumexp).
    Prior arrays may carry a leading ``prior`` axis (a stacked model); the mixture axis is the last.
    """
    if dims[-1] == "cell":
        w, mu, sd = a["prior_w"][..., o_idx, :], a["prior_mu"][..., o_idx, :], a["prior_sd"][..., o_idx, :]
        mu = mu + a["offset"][..., None]
    else:
        w, mu, sd = a["prior_w"], a["prior_mu"], a["prior_sd"]
    return pm.NormalMixture(name, w=w, mu=mu, sigma=sd, dims=dims)


#: The model's numeric inputs, in the order :func:`pack_inputs` lays them out in the ``inputs`` vector
#: (the bias arrays only in a bias-adjusted model).
INPUT_NAMES = ("y_t", "n_t", "y_c", "n_c", "offset", "prior_w", "prior_mu", "prior_sd", "hyper", "bias_mu", "bias_sd")
_INT_NAMES = ("y_t", "n_t", "y_c", "n_c")


def input_names(arrays: dict[str, np.ndarray]) -> tuple[str, ...]:
    """The :data:`INPUT_NAMES` that ``arrays`` holds, in order."""
    return tuple(k for k in INPUT_NAMES if k in arrays)


def pack_inputs(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The model's numeric inputs (counts, prior parameters) as one float64 vector, in
    :data:`INPUT_NAMES` order, each array flattened in C order.

    The model holds them as this single ``pm.Data`` vector rather than one container per array: every
    shared variable costs nutpie's numba wrapper its own extraction function, and one vector halves the
    compile (see :mod:`bayes_rescue.inference.compile`). Counts are stored exactly (integers below 2**53).
    """
    for k in _INT_NAMES:
        if np.any(np.abs(arrays[k]) >= 2**53):
            raise ValueError(f"count {k} too large to pass exactly as float64")
    return np.concatenate([np.asarray(arrays[k], dtype=float).ravel() for k in input_names(arrays)])


def _unpack_inputs(packed: pt.TensorVariable, arrays: dict[str, np.ndarray]) -> dict[str, pt.TensorVariable]:
    """The symbolic arrays of :func:`pack_inputs`' vector (shapes from ``arrays``; counts back as int64)."""
    out, start = {}, 0
    for k in input_names(arrays):
        shape = np.shape(arrays[k])
        size = int(np.prod(shape, dtype=int))
        x = packed[start : start + size].reshape(shape)
        out[k] = pt.cast(x, "int64") if k in _INT_NAMES else x
        start += size
    return out


def _build(arrays: dict[str, np.ndarray], coords: dict, kind: ModelKind, batch: tuple[str, ...] = ()) -> pm.Model:
    """The model of the module docstring from its numeric inputs. ``batch`` names leading axes of the
    prior parameters and counts (``("prior",)`` for a stacked model): each index along them is an
    independent copy of the model, with its own prior and parameters and the same likelihood.

    Counts and prior parameters enter as one ``pm.Data`` vector, ``inputs`` (:func:`pack_inputs`); the
    cell-to-outcome and pooling indices are structure, constants. ``check_bounds=False``: the log density
    skips its parameter checks (sd > 0, weights summing to 1, 0 <= y <= n), which cost about a quarter of
    each gradient evaluation (measured: 3.8 -> 2.7 us per gradient on the bundled cohort's model); the inputs
    are checked once instead, by :func:`~bayes_rescue.model.spec._check_domain`."""
    with pm.Model(coords=coords, check_bounds=False) as model:
        d = _unpack_inputs(pm.Data("inputs", pack_inputs(arrays)), arrays)
        o_idx = arrays["outcome_idx"]
        hyper = [d["hyper"][..., i] for i in range(4)]
        if batch:  # (prior,) -> (prior, 1): broadcast against the outcome axis
            hyper = [h[..., None] for h in hyper]
        per_outcome, per_cell = (*batch, "outcome"), (*batch, "cell")
        if kind == "hierarchical":
            p = {
                "mu_baseline": pm.Normal("mu_baseline", mu=hyper[0], sigma=hyper[1], dims=per_outcome),
                "mu_log_or": _effect_prior("mu_log_or", d, o_idx, dims=per_outcome),
            }
            if "pooled_outcome" in coords:
                po, pc = (*batch, "pooled_outcome"), (*batch, "pooled_cell")
                p["sigma_baseline"] = pm.HalfNormal("sigma_baseline", sigma=hyper[2], dims=po)
                p["tau_log_or"] = pm.HalfNormal("tau_log_or", sigma=hyper[3], dims=po)
                p["baseline_z"] = pm.Normal("baseline_z", 0.0, 1.0, dims=pc)
                p["log_or_z"] = pm.Normal("log_or_z", 0.0, 1.0, dims=pc)
            baseline, delta = cell_parameters(p, {**arrays, "offset": d["offset"]}, kind, xp=pt)
            baseline = pm.Deterministic("baseline", baseline, dims=per_cell)
            delta = pm.Deterministic("delta", delta, dims=per_cell)
        else:
            baseline = pm.Normal("baseline", mu=hyper[0], sigma=hyper[1], dims=per_cell)
            delta = _effect_prior("delta", d, o_idx, dims=per_cell)
        bias = None
        if "bias_mu" in arrays:
            bias = pm.Normal("bias", mu=d["bias_mu"], sigma=d["bias_sd"], dims=per_outcome)[..., o_idx]
        logits = arm_logits(baseline, delta, bias)
        p_c = pm.math.invlogit(logits["control"])
        p_t = pm.math.invlogit(logits["treatment_observed"])
        pm.Binomial("y_control", n=d["n_c"], p=p_c, observed=d["y_c"], dims=per_cell)
        pm.Binomial("y_treatment", n=d["n_t"], p=p_t, observed=d["y_t"], dims=per_cell)
    return model


def build_model(spec: ModelSpec) -> pm.Model:
    """Build the PyMC model for ``spec`` (see the module docstring for the mathematics).

    Data and prior parameters are a ``pm.Data`` vector (:func:`pack_inputs`), so a compiled model can be
    reused with other counts or priors of the same shape.
    """
    return _build(spec.arrays(), spec.coords(), spec.kind)


#: Arrays that hold a prior's parameters; they get the leading ``prior`` axis in a stacked model.
PRIOR_ARRAYS = ("prior_w", "prior_mu", "prior_sd", "offset", "hyper", "bias_mu", "bias_sd")
#: Counts, repeated along the ``prior`` axis of a stacked model (each copy sees the same data).
COUNT_ARRAYS = ("y_t", "n_t", "y_c", "n_c")


def stack_key(spec: ModelSpec) -> tuple:
    """Specs with equal keys have the same model structure and can be stacked (or share a compile)."""
    return (
        spec.kind,
        spec.bias is not None,
        tuple((k, tuple(v)) for k, v in spec.coords().items()),
        tuple(spec.arrays()["outcome_idx"]),
    )


def stacked_arrays(specs: list[ModelSpec]) -> dict[str, np.ndarray]:
    """Numeric inputs of :func:`build_stacked_model`: each spec's prior arrays stacked on a leading axis,
    the (shared) counts repeated along it."""
    first = specs[0].arrays()
    out = {k: v for k, v in first.items() if k not in PRIOR_ARRAYS + COUNT_ARRAYS}
    out |= {k: np.stack([s.arrays()[k] for s in specs]) for k in PRIOR_ARRAYS if k in first}
    out |= {k: np.tile(first[k], (len(specs), 1)) for k in COUNT_ARRAYS}
    return out


def build_stacked_model(specs: list[ModelSpec]) -> pm.Model:
    """One PyMC model holding an independent copy of the model per spec (same data, same structure,
    different priors), indexed by a leading ``prior`` dimension.

    The copies share no parameter, so the joint posterior factorises,
    ``p(theta_1..theta_K | y) = prod_k p_k(theta_k | y)``, and each copy's draws are draws from that
    prior's posterior: one NUTS run (one compile, one warm-up) serves every prior. The copies do share
    the sampler's step size and its divergence flags; :func:`bayes_rescue.inference.sampling.fit_many`
    therefore checks each prior's diagnostics and refits alone any prior that falls short.
    """
    if len({stack_key(s) for s in specs}) != 1 or len({s.data.sha256 for s in specs}) != 1:
        raise ValueError("stacked specs must share data and model structure")
    coords = {"prior": [s.prior.name for s in specs], **specs[0].coords()}
    return _build(stacked_arrays(specs), coords, specs[0].kind, batch=("prior",))
