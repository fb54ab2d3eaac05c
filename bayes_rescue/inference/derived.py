"""What a fit derives from its draws: effects per estimand (RD, RR, OR, arm risks), prior draws, the
pointwise log likelihood, predictive draws, the data groups, and the assembled DataTree.

Everything here is NumPy following the mathematics of :mod:`bayes_rescue.model.build`; the tests check it
against PyMC's own prior sampler and log likelihood.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special, stats

from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.estimands import estimands
from bayes_rescue.model.spec import ModelSpec


def effects(group: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Derived effects per estimand from draws of ``alpha`` and ``log_or`` over cells.

    Returns a Dataset with dims ``(chain, draw, estimand)`` and variables ``p_control``, ``p_treatment``,
    ``rd`` (risk difference, treatment minus control), ``rr`` (risk ratio), ``odds_ratio`` and ``log_or``.
    Cohort rows standardise the arm risks over subgroups by subgroup size (see :mod:`bayes_rescue.model`).
    """
    est = estimands(spec)
    cells = spec.data.cells()
    size = (cells["n_t"] + cells["n_c"]).to_numpy(float)
    alpha = group["alpha"].transpose("chain", "draw", "cell").to_numpy()
    delta = group["log_or"].transpose("chain", "draw", "cell").to_numpy()
    # On the log scale throughout (log p and log(1 - p) by log-sum-exp), so that draws far out on the
    # logit scale (vague priors) give finite log OR and RR instead of inf - inf.
    cell_logs = {
        "pc": special.log_expit(alpha),
        "qc": special.log_expit(-alpha),
        "pt": special.log_expit(alpha + delta),
        "qt": special.log_expit(-(alpha + delta)),
    }
    n = len(est)
    logs = {k: np.empty((*alpha.shape[:2], n)) for k in cell_logs}
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


def prior_draws(spec: ModelSpec, n: int, rng: np.random.Generator) -> xr.Dataset:
    """Draws from the model's prior, in NumPy, following the mathematics in :mod:`bayes_rescue.model`.

    Same variable names and dims as the posterior (chain = 1). Checked against PyMC's own prior sampler
    in the tests.
    """
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
    if spec.kind == "hierarchical":
        on = a["pooled"][o]
        mu_alpha = rng.normal(h[0], h[1], (n, n_out))
        sigma_alpha = np.abs(rng.normal(0, h[2], (n, n_out)))
        w = rng.normal(0, 1, (n, n_cell))
        mu_delta = mixture(np.arange(n_out))
        tau = np.abs(rng.normal(0, h[3], (n, n_out)))
        z = rng.normal(0, 1, (n, n_cell))
        alpha = mu_alpha[:, o] + on * sigma_alpha[:, o] * w
        log_or = mu_delta[:, o] + a["offset"] + on * tau[:, o] * z
        per_outcome = {"mu_alpha": mu_alpha, "sigma_alpha": sigma_alpha, "mu_delta": mu_delta, "tau": tau}
        per_cell = {"w": w, "z": z, "alpha": alpha, "log_or": log_or}
    else:
        per_outcome = {}
        per_cell = {"alpha": rng.normal(h[0], h[1], (n, n_cell)), "log_or": mixture(o) + a["offset"]}
    data_vars = {k: (("chain", "draw", "outcome"), v[None]) for k, v in per_outcome.items()}
    data_vars |= {k: (("chain", "draw", "cell"), v[None]) for k, v in per_cell.items()}
    return xr.Dataset(
        data_vars,
        coords={"chain": [0], "draw": np.arange(n), "outcome": coords["outcome"], "cell": coords["cell"]},
    )


def _arm_probs(group: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    p_c = xr.apply_ufunc(special.expit, group["alpha"])
    p_t = xr.apply_ufunc(special.expit, group["alpha"] + group["log_or"])
    return p_c, p_t


def log_likelihood(group: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    """Pointwise binomial log likelihood per draw and cell (``y_control``, ``y_treatment``)."""
    a = spec.arrays()
    p_c, p_t = _arm_probs(group)
    cell = xr.DataArray
    return xr.Dataset(
        {
            "y_control": xr.apply_ufunc(
                stats.binom.logpmf, cell(a["y_c"], dims="cell"), cell(a["n_c"], dims="cell"), p_c
            ),
            "y_treatment": xr.apply_ufunc(
                stats.binom.logpmf, cell(a["y_t"], dims="cell"), cell(a["n_t"], dims="cell"), p_t
            ),
        }
    ).transpose("chain", "draw", "cell")


def predictive(group: xr.Dataset, spec: ModelSpec, rng: np.random.Generator) -> xr.Dataset:
    """Replicated counts per draw and cell: Binomial(n_arm, p_arm)."""
    a = spec.arrays()
    p_c, p_t = _arm_probs(group)
    dims = ("chain", "draw", "cell")
    p_c, p_t = p_c.transpose(*dims), p_t.transpose(*dims)
    return xr.Dataset(
        {
            "y_control": (dims, rng.binomial(a["n_c"], p_c.to_numpy())),
            "y_treatment": (dims, rng.binomial(a["n_t"], p_t.to_numpy())),
        },
        coords=p_c.coords,
    )


def observed_and_constant(spec: ModelSpec) -> tuple[xr.Dataset, xr.Dataset]:
    """The ``observed_data`` and ``constant_data`` groups."""
    a = spec.arrays()
    coords = spec.coords()
    cells = spec.data.cells()
    observed = xr.Dataset(
        {"y_control": ("cell", a["y_c"]), "y_treatment": ("cell", a["y_t"])}, coords={"cell": coords["cell"]}
    )
    constant = xr.Dataset(
        {
            "n_control": ("cell", a["n_c"]),
            "n_treatment": ("cell", a["n_t"]),
            "outcome_idx": ("cell", a["outcome_idx"]),
            "cell_outcome": ("cell", cells["outcome"].to_numpy(str)),
            "cell_subgroup": ("cell", cells["subgroup"].to_numpy(str)),
            "pooled": ("outcome", a["pooled"]),
            "offset": ("cell", a["offset"]),
            "direction": ("outcome", np.array([spec.data.directions[o] for o in coords["outcome"]])),
            "prior_w": (("outcome", "component"), a["prior_w"]),
            "prior_mu": (("outcome", "component"), a["prior_mu"]),
            "prior_sd": (("outcome", "component"), a["prior_sd"]),
            "hyper": ("hyper_name", a["hyper"]),
        },
        coords={**coords, "hyper_name": ["baseline_mean", "baseline_sd", "baseline_tau_sd", "effect_tau_sd"]},
    )
    return observed, constant


def _log_prior(posterior: xr.Dataset, spec: ModelSpec) -> xr.Dataset:
    from bayes_rescue.inference.psense import log_prior

    return log_prior(posterior, spec)


def _complete_tree(
    posterior: xr.Dataset, sample_stats: xr.Dataset, attrs: dict, spec: ModelSpec, settings: SamplerSettings
) -> xr.DataTree:
    """The full DataTree of one prior's fit from its posterior draws and sampler statistics: prior draws,
    log likelihood and log prior, predictive draws, data groups and the derived effects."""
    posterior = posterior[[v for v in posterior.data_vars if not v.endswith("__")]]
    rng = np.random.default_rng([settings.seed, 1])
    prior = prior_draws(spec, settings.prior_draws, rng)
    observed, constant = observed_and_constant(spec)
    out = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": sample_stats,
            "log_likelihood": log_likelihood(posterior, spec),
            "log_prior": _log_prior(posterior, spec),
            "posterior_predictive": predictive(posterior, spec, rng),
            "prior": prior,
            "prior_predictive": predictive(prior, spec, rng),
            "observed_data": observed,
            "constant_data": constant,
            "effects": effects(posterior, spec),
            "prior_effects": effects(prior, spec),
        }
    )
    out.attrs.update(attrs)
    return out
