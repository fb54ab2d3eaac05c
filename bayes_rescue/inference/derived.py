"""What a fit derives from its draws: effects per estimand (RD, RR, OR, arm risks), prior draws, the
pointwise (per-patient) log likelihood, predictive draws, the data groups, and the assembled DataTree.

The model's equations (cell parameters, arm logits, log prior, prior draws) are written once, in
:mod:`bayes_rescue.model.equations`, which the PyMC graph uses too; this module applies them to draws and
lays the results out as ArviZ groups.

The saved DataTree is ArviZ-ready:

- ``posterior`` holds the model's parameters (``mu_baseline``, ``mu_log_or``, the pooling parameters, the
  per-cell ``baseline`` and ``delta``, ``bias`` when bias-adjusted) and the derived effects ``p_control``,
  ``p_treatment``, ``rd``, ``rr``, ``odds_ratio`` and ``log_or`` with dims ``(outcome, subgroup)``; the
  ``subgroup`` coordinate lists every subgroup of the data and ``overall`` (the cohort standardised over its
  subgroups); a combination the data do not have (a subgroup of another outcome) is NaN;
- ``log_likelihood`` holds one variable per outcome, the log likelihood of each point, where a point is a
  patient in a cohort of at most :data:`~bayes_rescue.inference.pointwise.PATIENT_POINTS_MAX` patients (so
  ``az.loo(tree, var_name=<outcome>)`` has one point per patient) and a subgroup's arm in a larger one (the
  group's ``point`` attr says which; see :mod:`bayes_rescue.inference.pointwise`); ``observed_data`` holds
  the points' data (0/1 outcomes or event counts) and ``posterior_predictive`` / ``prior_predictive`` their
  replicates;
- ``prior`` holds prior draws of the parameters and the effects; ``log_prior`` the log prior density at each
  posterior draw (for power-scaling sensitivity); ``constant_data`` the counts and the prior's numbers.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special

from bayes_rescue.data.counts import OVERALL
from bayes_rescue.inference import pointwise
from bayes_rescue.inference.pointwise import log_likelihood, patients, predictive  # noqa: F401 - importable here
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model import equations
from bayes_rescue.model.equations import draws_logits
from bayes_rescue.model.estimands import estimands
from bayes_rescue.model.spec import ModelSpec

#: The derived effect variables, per estimand.
EFFECT_VARS = ("p_control", "p_treatment", "rd", "rr", "odds_ratio", "log_or")


def arm_logits(group: xr.Dataset, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Logits per draw and cell, arrays (chain, draw, cell): ``control`` and ``treatment_observed`` (the arms
    as the likelihood sees them, at baseline -/+ (delta + bias) / 2), and ``treatment`` (the control arm plus
    the bias-adjusted effect delta; equal to ``treatment_observed`` without a bias model); the equations of
    :func:`bayes_rescue.model.equations.arm_logits`."""
    names = ["baseline", "delta", *(["bias"] if spec.bias is not None else [])]
    return draws_logits({k: group[k].transpose("chain", "draw", ...).to_numpy() for k in names}, spec)


def effects(group: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Derived effects per estimand from draws of ``baseline`` and ``delta`` (and ``bias``) over cells.

    Returns a Dataset with dims ``(chain, draw, estimand)`` and variables ``p_control``, ``p_treatment``,
    ``rd`` (risk difference, treatment minus control), ``rr`` (risk ratio), ``odds_ratio`` and ``log_or``.
    Cohort rows standardise the arm risks over subgroups by subgroup size (see :mod:`bayes_rescue.model.build`).
    """
    est = estimands(spec)
    cells = spec.data.cells()
    size = (cells["n_t"] + cells["n_c"]).to_numpy(float)
    logits = arm_logits(group, spec)
    lc, lt = logits["control"], logits["treatment"]
    # On the log scale throughout (log p and log(1 - p) by log-sum-exp), so that draws far out on the
    # logit scale (vague priors) give finite log OR and RR instead of inf - inf.
    cell_logs = {
        "pc": special.log_expit(lc),
        "qc": special.log_expit(-lc),
        "pt": special.log_expit(lt),
        "qt": special.log_expit(-lt),
    }
    n = len(est)
    logs = {k: np.empty((*lc.shape[:2], n)) for k in cell_logs}
    for j, idx in enumerate(est["cells"]):
        log_v = np.log(size[idx] / size[idx].sum())
        for k, cell_log in cell_logs.items():
            logs[k][..., j] = special.logsumexp(cell_log[..., idx] + log_v, axis=-1)
    pc, ptr = np.exp(logs["pc"]), np.exp(logs["pt"])
    log_or = (logs["pt"] - logs["qt"]) - (logs["pc"] - logs["qc"])
    coords = {
        "chain": group["chain"].to_numpy(),
        "draw": group["draw"].to_numpy(),
        "estimand": est["estimand"].tolist(),
        "estimand_outcome": ("estimand", est["outcome"].tolist()),
        "estimand_subgroup": ("estimand", est["subgroup"].tolist()),
    }
    dims = ("chain", "draw", "estimand")
    return xr.Dataset(
        {
            "p_control": (dims, pc),
            "p_treatment": (dims, ptr),
            "rd": (dims, ptr - pc),
            "rr": (dims, np.exp(logs["pt"] - logs["pc"])),
            "odds_ratio": (dims, np.exp(log_or)),
            "log_or": (dims, log_or),
        },
        coords=coords,
    )


def subgroup_coords(spec: ModelSpec) -> list[str]:
    """The ``subgroup`` coordinate of the saved effects: the subgroups of the estimands (those of outcomes
    with more than one subgroup), in data order, then ``overall``."""
    subgroups = estimands(spec)["subgroup"].tolist()
    return [*dict.fromkeys(s for s in subgroups if s != OVERALL), OVERALL]


def effects_grid(eff: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Effects per estimand (:func:`effects`) laid out with dims ``(chain, draw, outcome, subgroup)``; an
    outcome x subgroup the data do not have is NaN."""
    est = estimands(spec)
    outcomes, subgroups = spec.data.outcomes, subgroup_coords(spec)
    shape = (eff.sizes["chain"], eff.sizes["draw"], len(outcomes), len(subgroups))
    out = {}
    for v in EFFECT_VARS:
        arr = np.full(shape, np.nan)
        x = eff[v].transpose("chain", "draw", "estimand").to_numpy()
        for j, (o, s) in enumerate(zip(est["outcome"], est["subgroup"], strict=True)):
            arr[:, :, outcomes.index(o), subgroups.index(s)] = x[..., j]
        out[v] = (("chain", "draw", "outcome", "subgroup"), arr)
    coords = {"chain": eff["chain"].to_numpy(), "draw": eff["draw"].to_numpy(), "outcome": outcomes}
    return xr.Dataset(out, coords={**coords, "subgroup": subgroups})


def grid_effects(group: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """The inverse of :func:`effects_grid`: the estimand-dim effects (``estimand = outcome/subgroup``) of a
    group that holds them with dims ``(outcome, subgroup)`` (a saved posterior or prior group)."""
    est = estimands(spec)
    o_sel = xr.DataArray(est["outcome"].tolist(), dims="estimand")
    s_sel = xr.DataArray(est["subgroup"].tolist(), dims="estimand")
    ds = group[list(EFFECT_VARS)].sel(outcome=o_sel, subgroup=s_sel).drop_vars(["outcome", "subgroup"])
    return ds.assign_coords(
        estimand=est["estimand"].tolist(),
        estimand_outcome=("estimand", est["outcome"].tolist()),
        estimand_subgroup=("estimand", est["subgroup"].tolist()),
    ).transpose("chain", "draw", "estimand")


def prior_draws(spec: ModelSpec, n: int, rng: np.random.Generator) -> xr.Dataset:
    """Draws from the model's prior (:func:`bayes_rescue.model.equations.prior_draws`) as a Dataset with the
    same variable names and dims as the posterior's parameters (chain = 1). Checked against PyMC's own prior
    sampler in the tests."""
    per = equations.prior_draws(spec, n, rng)
    coords = spec.coords()
    data_vars = {k: (("chain", "draw", dim), v[None]) for k, (dim, v) in per.items()}
    dims = {dim for dim, _ in per.values()}
    return xr.Dataset(data_vars, coords={"chain": [0], "draw": np.arange(n), **{d: coords[d] for d in dims}})


def observed_and_constant(spec: ModelSpec) -> tuple[xr.Dataset, xr.Dataset]:
    """The ``observed_data`` (:func:`bayes_rescue.inference.pointwise.observed`) and ``constant_data``
    (counts per cell and the prior's numbers) groups."""
    a = spec.arrays()
    coords = spec.coords()
    cells = spec.data.cells()
    observed = pointwise.observed(spec)
    constant = xr.Dataset(
        {
            "y_control": ("cell", a["y_c"]),
            "y_treatment": ("cell", a["y_t"]),
            "n_control": ("cell", a["n_c"]),
            "n_treatment": ("cell", a["n_t"]),
            "offset": ("cell", a["offset"]),
            "direction": ("outcome", np.array([spec.data.directions[o] for o in coords["outcome"]])),
            "prior_w": (("outcome", "component"), a["prior_w"]),
            "prior_mu": (("outcome", "component"), a["prior_mu"]),
            "prior_sd": (("outcome", "component"), a["prior_sd"]),
            "hyper": ("hyper_name", a["hyper"]),
            **(
                {"bias_mean": ("outcome", a["bias_mu"]), "bias_sd": ("outcome", a["bias_sd"])} if "bias_mu" in a else {}
            ),
        },
        coords={
            "outcome": coords["outcome"],
            "component": coords["component"],
            "cell": coords["cell"],
            "cell_outcome": ("cell", cells["outcome"].to_numpy(str)),
            "cell_subgroup": ("cell", cells["subgroup"].to_numpy(str)),
            "hyper_name": ["baseline_mean", "baseline_sd", "baseline_tau_sd", "effect_tau_sd"],
        },
    )
    return observed, constant


def _log_prior(posterior: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    from bayes_rescue.inference.psense import log_prior

    return log_prior(posterior, spec)


def with_cell_coords(ds: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """``ds`` with the non-dimension coordinates ``cell_outcome`` and ``cell_subgroup`` on its ``cell`` dim."""
    if "cell" not in ds.dims:
        return ds
    cells = spec.data.cells()
    return ds.assign_coords(
        cell_outcome=("cell", cells["outcome"].to_numpy(str)), cell_subgroup=("cell", cells["subgroup"].to_numpy(str))
    )


def complete_tree(
    posterior: xr.Dataset, sample_stats: xr.Dataset, attrs: dict, spec: ModelSpec, settings: SamplerSettings
) -> tuple[xr.DataTree, xr.Dataset]:
    """The full DataTree of one prior's fit from its posterior draws and sampler statistics (prior draws,
    log likelihood and log prior, predictive draws, data groups, the derived effects in the posterior and
    prior groups), and the effects per estimand (:func:`effects`), which the summaries use."""
    posterior = posterior[[v for v in posterior.data_vars if not v.endswith("__")]]
    rng = np.random.default_rng([settings.seed, 1])
    prior = prior_draws(spec, settings.prior_draws, rng)
    observed, constant = observed_and_constant(spec)
    eff = effects(posterior, spec)
    out = xr.DataTree.from_dict(
        {
            "posterior": xr.merge([with_cell_coords(posterior, spec), effects_grid(eff, spec)]),
            "sample_stats": sample_stats,
            "log_likelihood": log_likelihood(posterior, spec),
            "log_prior": _log_prior(posterior, spec),
            "posterior_predictive": predictive(posterior, spec, rng),
            "prior": xr.merge([with_cell_coords(prior, spec), effects_grid(effects(prior, spec), spec)]),
            "prior_predictive": predictive(prior, spec, rng),
            "observed_data": observed,
            "constant_data": constant,
        }
    )
    out.attrs.update(attrs)
    return out, eff
