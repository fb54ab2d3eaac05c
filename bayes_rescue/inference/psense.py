"""Power-scaling prior and likelihood sensitivity (Kallioinen et al., Stat Comput 2024;34:57,
doi 10.1007/s11222-023-10366-5), with ArviZ's ``psense_summary``.

The ``log_prior`` group holds, per draw, the log density of every prior term of the model evaluated at
the posterior draws (NumPy, following :mod:`bayes_rescue.model`):

- ``effect_prior``: the named prior (normal mixture) at ``mu_delta`` (hierarchical) or at each cell's
  ``log_or`` (independent), shifted by any subgroup offset;
- ``other_priors``: the baseline and heterogeneity priors and the standard-normal ``w`` and ``z``.

Sensitivity is reported for the reported quantities (RD and log OR per estimand): a value above the
threshold (0.05) flags "potential strong prior / weak likelihood" or, with likelihood sensitivity also
high, "potential prior-data conflict".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import mixture_logpdf


def effect_log_prior_by_outcome(posterior: xr.Dataset, spec: ModelSpec) -> np.ndarray:
    """Log density of the named effect prior at each draw, per outcome: array (chain, draw, outcome).

    Hierarchical: the mixture at ``mu_log_or[outcome]``; independent: the sum over the outcome's cells of the
    mixture (shifted by the subgroup offset) at ``delta[cell]``. Outcomes have separate parameters, so
    this is also what an importance weight for one outcome's prior needs.
    """
    a = spec.arrays()
    o = a["outcome_idx"]
    if spec.kind == "hierarchical":
        x = posterior["mu_log_or"].transpose("chain", "draw", "outcome").to_numpy()
        return mixture_logpdf(x, a["prior_w"], a["prior_mu"], a["prior_sd"])
    x = posterior["delta"].transpose("chain", "draw", "cell").to_numpy()
    mu = a["prior_mu"][o] + a["offset"][:, None]
    per_cell = mixture_logpdf(x, a["prior_w"][o], mu, a["prior_sd"][o])
    return per_cell @ (o[:, None] == np.arange(a["prior_w"].shape[0])[None, :]).astype(float)


def log_prior(posterior: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Log prior density at each posterior draw, as ``effect_prior`` and ``other_priors`` (chain, draw)."""
    a = spec.arrays()
    h = a["hyper"]

    def arr(name: str) -> np.ndarray:
        return posterior[name].transpose("chain", "draw", ...).to_numpy()

    effect = effect_log_prior_by_outcome(posterior, spec).sum(-1)
    if spec.kind == "hierarchical":
        other = stats.norm.logpdf(arr("mu_baseline"), h[0], h[1]).sum(-1)
        if "sigma_baseline" in posterior:
            other = other + (
                stats.halfnorm.logpdf(arr("sigma_baseline"), scale=h[2]).sum(-1)
                + stats.halfnorm.logpdf(arr("tau_log_or"), scale=h[3]).sum(-1)
                + stats.norm.logpdf(arr("baseline_z")).sum(-1)
                + stats.norm.logpdf(arr("log_or_z")).sum(-1)
            )
    else:
        other = stats.norm.logpdf(arr("baseline"), h[0], h[1]).sum(-1)
    if spec.bias is not None:
        other = other + stats.norm.logpdf(arr("bias"), a["bias_mu"], a["bias_sd"]).sum(-1)
    dims = ("chain", "draw")
    coords = {"chain": posterior["chain"].to_numpy(), "draw": posterior["draw"].to_numpy()}
    return xr.Dataset({"effect_prior": (dims, effect), "other_priors": (dims, other)}, coords=coords)


def power_scaling(tree: xr.DataTree, eff: xr.Dataset, *, threshold: float = 0.05) -> pd.DataFrame:
    """Prior and likelihood sensitivity of RD and log OR per estimand (``eff``: the fit's effects per
    estimand), with ArviZ's diagnosis.

    Returns one row per estimand: ``estimand, rd_prior_sensitivity, rd_likelihood_sensitivity,
    rd_psense_diagnosis`` and the same for ``log_or``.
    """
    from arviz_stats import psense

    eff = eff[["rd", "log_or"]].drop_vars(["estimand_outcome", "estimand_subgroup"])
    lik = tree["log_likelihood"].to_dataset()
    lik = xr.Dataset({"all": sum(lik[v].sum("patient") for v in lik.data_vars)})  # the whole likelihood
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
