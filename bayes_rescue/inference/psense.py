"""Power-scaling prior and likelihood sensitivity (Kallioinen et al., Stat Comput 2024;34:57,
doi 10.1007/s11222-023-10366-5), with ArviZ's ``psense_summary``.

The ``log_prior`` group holds, per draw, the log density of every prior term of the model evaluated at
the posterior draws (:func:`bayes_rescue.model.equations.log_prior_terms`, tested against PyMC's log
density of the model):

- ``effect_prior``: the named prior (normal mixture) at ``mu_log_or`` (hierarchical) or at each cell's
  ``delta`` (independent), shifted by any subgroup offset;
- ``other_priors``: the baseline, heterogeneity and bias priors and the standard-normal ``baseline_z`` and
  ``log_or_z``.

The ``log_likelihood`` group's points are patients or cells' arms (:mod:`bayes_rescue.inference.pointwise`);
power-scaling uses their sum, the same on either grain up to a constant.

Sensitivity is reported for the reported quantities (RD and log OR per estimand): a value above the
threshold (0.05) flags "potential strong prior / weak likelihood" or, with likelihood sensitivity also
high, "potential prior-data conflict".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayes_rescue.model import equations
from bayes_rescue.model.equations import free_parameter_names, log_prior_terms
from bayes_rescue.model.spec import ModelSpec


def _draws(posterior: xr.Dataset, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The free parameters' draws, arrays (chain, draw, dim)."""
    names = [n for n in free_parameter_names(spec) if n in posterior]
    return {n: posterior[n].transpose("chain", "draw", ...).to_numpy() for n in names}


def effect_log_prior_by_outcome(posterior: xr.Dataset, spec: ModelSpec) -> np.ndarray:
    """Log density of the named effect prior at each draw, per outcome: array (chain, draw, outcome)
    (:func:`bayes_rescue.model.equations.effect_log_prior_by_outcome`)."""
    return equations.effect_log_prior_by_outcome(_draws(posterior, spec), spec)


def log_prior(posterior: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Log prior density at each posterior draw, as ``effect_prior`` and ``other_priors`` (chain, draw)
    (:func:`bayes_rescue.model.equations.log_prior_terms`)."""
    terms = log_prior_terms(_draws(posterior, spec), spec)
    dims = ("chain", "draw")
    coords = {"chain": posterior["chain"].to_numpy(), "draw": posterior["draw"].to_numpy()}
    return xr.Dataset({k: (dims, v) for k, v in terms.items()}, coords=coords)


def power_scaling(tree: xr.DataTree, eff: xr.Dataset, *, threshold: float = 0.05) -> pd.DataFrame:
    """Prior and likelihood sensitivity of RD and log OR per estimand (``eff``: the fit's effects per
    estimand), with ArviZ's diagnosis.

    Returns one row per estimand: ``estimand, rd_prior_sensitivity, rd_likelihood_sensitivity,
    rd_psense_diagnosis`` and the same for ``log_or``.
    """
    from arviz_stats import psense

    eff = eff[["rd", "log_or"]].drop_vars(["estimand_outcome", "estimand_subgroup"])
    lik = tree["log_likelihood"].to_dataset()
    # the whole likelihood: the sum over every outcome's points, whatever the grain (patients or cells' arms;
    # the grains differ by a constant, which power-scaling's normalised weights do not see)
    points = {v: [d for d in lik[v].dims if d not in ("chain", "draw")] for v in lik.data_vars}
    lik = xr.Dataset({"all": sum(lik[v].sum(dims) for v, dims in points.items())})
    data = xr.DataTree.from_dict({"posterior": eff, "log_prior": tree["log_prior"].to_dataset(), "log_likelihood": lik})
    prior = psense(data, group="prior")
    like = psense(data, group="likelihood")
    out = pd.DataFrame({"estimand": eff["estimand"].to_numpy()})
    for var in ("rd", "log_or"):
        p = prior[var].to_numpy().astype(float)
        q = like[var].to_numpy().astype(float)
        out[f"{var}_prior_sensitivity"] = p
        out[f"{var}_likelihood_sensitivity"] = q
        out[f"{var}_psense_diagnosis"] = [diagnosis(a, b, threshold) for a, b in zip(p, q, strict=True)]
    return out


def diagnosis(prior_sens: float, like_sens: float, threshold: float = 0.05) -> str:
    """ArviZ's rule (``psense_summary``): both above the threshold -> prior-data conflict; prior only ->
    strong prior / weak likelihood; otherwise fine."""
    if prior_sens >= threshold and like_sens >= threshold:
        return "potential prior-data conflict"
    if prior_sens > threshold and like_sens < threshold:
        return "potential strong prior / weak likelihood"
    return "ok"
