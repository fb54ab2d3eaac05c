"""The model's equations, written once: the cell parameters from the free parameters, the arm logits, the
log prior density, the likelihood's points, and prior draws (the mathematics is stated in
:mod:`bayes_rescue.model.build`'s docstring).

:func:`cell_parameters` and :func:`arm_logits` are written for either array library: the PyMC graph of
:mod:`bayes_rescue.model.build` calls them with ``pytensor.tensor`` (``xp=pt``) and the NumPy code that
derives quantities from draws (:mod:`bayes_rescue.inference.derived`) with ``xp=np``, so the graph and the
derived quantities are the same expressions. :func:`log_prior_terms` is the NumPy log density of the
model's priors (the graph's log density comes from PyMC's distributions); the tests check it against
PyMC's own log density of the same model (``test_equations.py``), as they check :func:`prior_draws`
against PyMC's prior sampler.

Arrays of parameters carry any leading (draw) axes; the last axis is the parameter's own dim.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import mixture_logpdf


def _pooled(x: Any, idx: np.ndarray, xp: Any) -> Any:
    """``x`` (..., n_pooled) gathered by ``idx``, where ``idx == n_pooled`` selects 0 (not pooled)."""
    return xp.concatenate([x, xp.zeros_like(x[..., :1])], axis=-1)[..., idx]


def cell_parameters(p: dict[str, Any], a: dict[str, Any], kind: str, *, xp: Any = np) -> tuple[Any, Any]:
    """``(baseline, delta)`` per cell from the free parameters ``p`` (by the names of the model's
    variables) and the model's arrays ``a`` (:meth:`ModelSpec.arrays`; in the PyMC graph the symbolic
    counts and prior numbers, with the integer indices as constants).

    hierarchical: ``baseline = mu_baseline[o] + sigma_baseline[o] * baseline_z`` and ``delta = mu_log_or[o]
    + offset + tau_log_or[o] * log_or_z``, the pooling terms only for pooled cells; independent: the cells'
    own ``baseline`` and ``delta``.
    """
    if kind != "hierarchical":
        return p["baseline"], p["delta"]
    o_idx = a["outcome_idx"]
    baseline = p["mu_baseline"][..., o_idx]
    delta = p["mu_log_or"][..., o_idx] + a["offset"]
    if "sigma_baseline" in p:
        c_idx, p_o = a["pool_cell_idx"], a["pool_cell_outcome"]
        baseline = baseline + _pooled(p["sigma_baseline"][..., p_o] * p["baseline_z"], c_idx, xp)
        delta = delta + _pooled(p["tau_log_or"][..., p_o] * p["log_or_z"], c_idx, xp)
    return baseline, delta


def arm_logits(baseline: Any, delta: Any, bias_cell: Any = None) -> dict[str, Any]:
    """The arms' logits per cell: ``control`` and ``treatment_observed`` (the arms as the likelihood sees
    them, at ``baseline -/+ (delta + bias) / 2``), and ``treatment`` (the control arm plus the bias-adjusted
    effect ``delta``; equal to ``treatment_observed`` without a bias model). ``bias_cell`` is the bias of
    each cell's outcome, or None."""
    contrast = delta if bias_cell is None else delta + bias_cell
    control = baseline - contrast / 2
    return {"control": control, "treatment_observed": baseline + contrast / 2, "treatment": control + delta}


def draws_logits(p: dict[str, np.ndarray], spec: ModelSpec) -> dict[str, np.ndarray]:
    """:func:`arm_logits` of NumPy draws ``p`` holding ``baseline``, ``delta`` (and ``bias`` per outcome)."""
    bias = p["bias"][..., spec.arrays()["outcome_idx"]] if spec.bias is not None else None
    return arm_logits(p["baseline"], p["delta"], bias)


def effect_log_prior_by_outcome(p: dict[str, np.ndarray], spec: ModelSpec) -> np.ndarray:
    """Log density of the named effect prior at each draw, per outcome: array (..., outcome).

    Hierarchical: the mixture at ``mu_log_or[outcome]``; independent: the sum over the outcome's cells of the
    mixture (shifted by the subgroup offset) at ``delta[cell]``. Outcomes have separate parameters, so
    this is also what an importance weight for one outcome's prior needs.
    """
    a = spec.arrays()
    o = a["outcome_idx"]
    if spec.kind == "hierarchical":
        return mixture_logpdf(p["mu_log_or"], a["prior_w"], a["prior_mu"], a["prior_sd"])
    mu = a["prior_mu"][o] + a["offset"][:, None]
    per_cell = mixture_logpdf(p["delta"], a["prior_w"][o], mu, a["prior_sd"][o])
    return per_cell @ (o[:, None] == np.arange(a["prior_w"].shape[0])[None, :]).astype(float)


def log_prior_terms(p: dict[str, np.ndarray], spec: ModelSpec) -> dict[str, np.ndarray]:
    """The log prior density at each draw (no Jacobian: on the parameters' own scale), in two terms, each
    an array of the draws' leading axes: ``effect_prior`` (the named prior, :func:`effect_log_prior_by_outcome`
    summed over outcomes) and ``other_priors`` (baseline, heterogeneity, standard-normal pooling offsets and
    bias priors). Their sum is PyMC's log prior of the model (checked by a test)."""
    a = spec.arrays()
    h = a["hyper"]
    effect = effect_log_prior_by_outcome(p, spec).sum(-1)
    if spec.kind == "hierarchical":
        other = stats.norm.logpdf(p["mu_baseline"], h[0], h[1]).sum(-1)
        if "sigma_baseline" in p:
            other = other + (
                stats.halfnorm.logpdf(p["sigma_baseline"], scale=h[2]).sum(-1)
                + stats.halfnorm.logpdf(p["tau_log_or"], scale=h[3]).sum(-1)
                + stats.norm.logpdf(p["baseline_z"]).sum(-1)
                + stats.norm.logpdf(p["log_or_z"]).sum(-1)
            )
    else:
        other = stats.norm.logpdf(p["baseline"], h[0], h[1]).sum(-1)
    if spec.bias is not None:
        other = other + stats.norm.logpdf(p["bias"], a["bias_mu"], a["bias_sd"]).sum(-1)
    return {"effect_prior": effect, "other_priors": other}


def free_parameter_names(spec: ModelSpec) -> tuple[str, ...]:
    """The model's free (sampled) parameters, by name."""
    if spec.kind == "hierarchical":
        names = ["mu_baseline", "mu_log_or"]
        if "pooled_outcome" in spec.coords():
            names += ["sigma_baseline", "tau_log_or", "baseline_z", "log_or_z"]
    else:
        names = ["baseline", "delta"]
    return (*names, *(["bias"] if spec.bias is not None else []))


def prior_draws(spec: ModelSpec, n: int, rng: np.random.Generator) -> dict[str, tuple[str, np.ndarray]]:
    """``n`` draws from the model's prior: name -> (dim, array (n, size)) for every free parameter and the
    cells' ``baseline`` and ``delta`` (:func:`cell_parameters`). Checked against PyMC's own prior sampler
    in the tests."""
    a = spec.arrays()
    o = a["outcome_idx"]
    h = a["hyper"]
    n_out, n_cell = a["prior_w"].shape[0], len(o)

    def mixture(rows: np.ndarray) -> np.ndarray:
        w, mu, sd = a["prior_w"][rows], a["prior_mu"][rows], a["prior_sd"][rows]
        u = rng.random((n, len(rows), 1))
        k = (u > np.cumsum(w, axis=1)[None]).sum(axis=2).clip(max=w.shape[1] - 1)
        pick = np.take_along_axis
        return rng.normal(
            pick(np.broadcast_to(mu, (n, *mu.shape)), k[..., None], 2)[..., 0],
            pick(np.broadcast_to(sd, (n, *sd.shape)), k[..., None], 2)[..., 0],
        )

    coords = spec.coords()
    per: dict[str, tuple[str, np.ndarray]] = {}
    if spec.kind == "hierarchical":
        per["mu_baseline"] = ("outcome", rng.normal(h[0], h[1], (n, n_out)))
        per["mu_log_or"] = ("outcome", mixture(np.arange(n_out)))
        if "pooled_outcome" in coords:
            n_po, n_pc = len(coords["pooled_outcome"]), len(coords["pooled_cell"])
            per |= {
                "sigma_baseline": ("pooled_outcome", np.abs(rng.normal(0, h[2], (n, n_po)))),
                "tau_log_or": ("pooled_outcome", np.abs(rng.normal(0, h[3], (n, n_po)))),
                "baseline_z": ("pooled_cell", rng.normal(0, 1, (n, n_pc))),
                "log_or_z": ("pooled_cell", rng.normal(0, 1, (n, n_pc))),
            }
    else:
        per["baseline"] = ("cell", rng.normal(h[0], h[1], (n, n_cell)))
        per["delta"] = ("cell", mixture(o) + a["offset"])
    baseline, delta = cell_parameters({k: v for k, (_, v) in per.items()}, a, spec.kind)
    per |= {"baseline": ("cell", baseline), "delta": ("cell", delta)}
    if spec.bias is not None:
        per["bias"] = ("outcome", rng.normal(a["bias_mu"], a["bias_sd"], (n, n_out)))
    return per
