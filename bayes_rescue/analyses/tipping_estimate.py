"""A low-variance estimate of P(benefit) in the bias-adjusted model: Rao-Blackwellisation (conditioning).

In the bias-adjusted model (:mod:`bayes_rescue.model.build`) the likelihood of outcome o sees the effect and
the bias only through their sum. Write the effect node of the outcome as ``mu`` (hierarchical: ``mu_log_or[o]``;
independent with one cell: ``delta[c] - offset[c]``), each cell's effect ``delta[c] = mu + d[c]`` (``d`` = the
offset plus the pooled deviation ``tau * z``) and ``theta = mu + bias[o]``. Given the other parameters (the cell
baselines ``beta[c]`` and ``d[c]``):

- ``theta``'s conditional density is ``p(theta) prod_c L_c(beta[c], theta + d[c])`` with the binomial
  likelihood L_c and the prior of theta, the convolution ``sum_k pi_k N(theta; m_k + b, sqrt(s_k^2 + s_b^2))``
  of the effect prior (normal mixture pi, m, s) with the bias prior N(b, s_b); it is integrated on a 1-D grid
  (a Riemann sum from 8 posterior sds below the smallest posterior draw of theta to 8 above the largest,
  spacing a quarter of the smaller of theta's posterior sd and the narrowest prior sd of theta);
- ``mu | theta`` does not involve the data: the normal mixture with weights proportional to
  ``pi_k N(theta; m_k + b, sqrt(s_k^2 + s_b^2))``, means ``m_k + s_k^2 / (s_k^2 + s_b^2) (theta - m_k - b)`` and
  sds ``s_k s_b / sqrt(s_k^2 + s_b^2)`` (the conditional of a bivariate normal), so the probability that the
  estimand's log OR is on the benefit side, i.e. that ``mu`` is beyond the root ``mu*`` of the estimand's log
  OR (``-d[c]`` for a cell; for a standardised cohort row, the root of the size-weighted risk difference, found
  by bisection), is a sum of normal cdfs.

The estimate is the average of this conditional probability over the posterior draws of the other parameters:
an unbiased estimate of the same P(benefit) as the share of draws with benefit, with a far smaller variance
(Rao-Blackwell), whose Monte Carlo standard error is ArviZ's ``mcse`` (method "mean") of the per-draw values.
An outcome with several cells sharing one bias in the ``independent`` model has no such 1-D structure; its
rows are the share of draws with benefit (``estimator = "indicator"``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special, stats

from bayes_rescue.model.estimands import benefit_sign, estimands
from bayes_rescue.model.spec import ModelSpec

#: Grid points of theta per sd (of theta's posterior, or of the narrowest prior component if narrower).
GRID_PER_SD = 4

#: Bisection steps for a cohort row's root (the bracket, at most a few units wide, shrinks 2**-40-fold).
BISECTIONS = 40

#: Grid points whose share of a draw's mass is below this are left out of a cohort row's integral.
MASS_FLOOR = 1e-14

#: Largest number of draw x grid-point x cell values evaluated at once (memory bound).
CHUNK_VALUES = 2_000_000


def posterior_names(spec: ModelSpec) -> tuple[str, ...]:
    """The parameters :func:`p_benefit_draws` needs from a bias-adjusted fit."""
    extra = ("mu_log_or",) if spec.kind == "hierarchical" else ()
    return ("baseline", "delta", "bias", *extra)


def _mcse_mean(values: np.ndarray) -> float:
    """ArviZ's MCSE of the mean of ``values`` (chain, draw)."""
    import arviz as az

    return float(az.mcse(xr.DataArray(values, dims=("chain", "draw")), method="mean"))


def _overall_root(beta: np.ndarray, d: np.ndarray, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``mu*`` (n,) where sum_c v_c [expit(lc_c + d_c + mu) - expit(lc_c)] = 0, with the observed control logit
    lc_c = beta_c - (theta + d_c) / 2; ``beta``, ``d`` (n, cell), ``theta`` (n,). The sum increases with mu and
    the root lies between the cells' own roots -d_c: bisection, :data:`BISECTIONS` steps."""
    a = beta + d / 2 - theta[:, None] / 2  # lc_c + d_c
    target = (v * special.expit(a - d)).sum(-1)
    lo, hi = (-d).min(-1), (-d).max(-1)
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        above = (v * special.expit(a + mid[:, None])).sum(-1) > target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return (lo + hi) / 2


def _outcome_values(
    node: np.ndarray,
    bias: np.ndarray,
    beta: np.ndarray,
    d: np.ndarray,
    counts: np.ndarray,
    prior: tuple[np.ndarray, np.ndarray, np.ndarray],
    bias_prior: tuple[float, float],
    rows: list[tuple[int, list[int], np.ndarray]],
) -> dict[int, np.ndarray]:
    """Per estimand j of ``rows`` (j, cell positions within the outcome, size weights): the per-draw
    conditional P(log OR > 0) (draws flattened). ``node``, ``bias`` (S,); ``beta``, ``d`` (S, cells);
    ``counts`` (cells, 4) = y_t, n_t, y_c, n_c; ``prior`` = weights, means, sds of the effect node's mixture."""
    w, m, s = (np.asarray(a, float)[np.asarray(prior[0]) > 0] for a in prior)
    b, sb = bias_prior
    theta_sd = np.sqrt(s**2 + sb**2)
    theta_draws = node + bias
    spread = min(float(np.std(theta_draws)) or 1.0, float(theta_sd.max()))
    h = min(float(theta_sd.min()), spread) / GRID_PER_SD
    grid = np.arange(float(theta_draws.min()) - 8 * spread, float(theta_draws.max()) + 8 * spread + h, h)
    # theta's prior and mu | theta on the grid (no data): mixture weights, means, sds per component
    log_comp = np.log(w) + stats.norm.logpdf(grid[:, None], m + b, theta_sd)  # (G, K)
    log_prior = special.logsumexp(log_comp, axis=1)
    omega = np.exp(log_comp - log_prior[:, None])
    shrink = s**2 / (s**2 + sb**2)
    cond_mean = m + shrink * (grid[:, None] - m - b)  # (G, K)
    cond_sd = s * sb / theta_sd
    y_t, n_t, y_c, n_c = (counts[:, i].astype(float) for i in range(4))
    out = {j: np.empty(node.size) for j, _, _ in rows}
    step = max(1, CHUNK_VALUES // (grid.size * beta.shape[1]))
    for a in range(0, node.size, step):
        sl = slice(a, a + step)
        bt, dd = beta[sl, None, :], d[sl, None, :]
        x = grid[None, :, None] + dd  # the contrast the data see, per cell
        loglik = (
            y_t * special.log_expit(bt + x / 2)
            + (n_t - y_t) * special.log_expit(-bt - x / 2)
            + y_c * special.log_expit(bt - x / 2)
            + (n_c - y_c) * special.log_expit(-bt + x / 2)
        ).sum(-1)
        logp = log_prior[None, :] + loglik
        mass = np.exp(logp - logp.max(axis=1, keepdims=True))
        mass /= mass.sum(axis=1, keepdims=True)
        for j, pos, v in rows:
            if len(pos) == 1:
                root = -d[sl, pos[0]][:, None, None]
                p_pos = (omega[None] * special.ndtr((cond_mean[None] - root) / cond_sd)).sum(-1)  # P(mu > mu*)
                out[j][sl] = (mass * p_pos).sum(axis=1)
            else:  # the root at the grid points that carry mass
                si, gi = np.nonzero(mass > MASS_FLOOR)
                dsel = d[sl][si][:, pos]
                root = _overall_root(beta[sl][si][:, pos], dsel, grid[gi], v)
                p_pos = (omega[gi] * special.ndtr((cond_mean[gi] - root[:, None]) / cond_sd)).sum(-1)
                out[j][sl] = np.bincount(si, weights=mass[si, gi] * p_pos, minlength=mass.shape[0])
    return out


def p_benefit_draws(posterior: xr.Dataset, spec: ModelSpec) -> tuple[np.ndarray, list[str]]:
    """Per-draw conditional P(benefit) of every estimand, array (chain, draw, estimand), and per estimand the
    estimator used (``rao-blackwell`` or ``indicator``); ``posterior`` holds :func:`posterior_names`."""
    est = estimands(spec)
    a = spec.arrays()
    o_idx = a["outcome_idx"]
    cells = spec.data.cells()
    size = (cells["n_t"] + cells["n_c"]).to_numpy(float)
    counts = cells[["y_t", "n_t", "y_c", "n_c"]].to_numpy()

    def arr(name: str, dim: str) -> np.ndarray:
        x = posterior[name].transpose("chain", "draw", dim).to_numpy()
        return x.reshape(-1, x.shape[-1])

    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    baseline, delta, bias = arr("baseline", "cell"), arr("delta", "cell"), arr("bias", "outcome")
    mu_all = arr("mu_log_or", "outcome") if spec.kind == "hierarchical" else None
    p_pos = np.empty((baseline.shape[0], len(est)))
    kinds = ["rao-blackwell"] * len(est)
    for o, outcome in enumerate(spec.data.outcomes):
        idx = np.flatnonzero(o_idx == o)
        js = np.flatnonzero(est["outcome"].to_numpy() == outcome)
        if mu_all is None and len(idx) > 1:  # independent cells sharing one bias: no 1-D structure
            for j in js:
                lor = delta[:, est.at[j, "cells"]] if len(est.at[j, "cells"]) == 1 else None
                if lor is None:  # the cohort row: its log OR from the derived effects
                    from bayes_rescue.inference.derived import effects

                    lor = effects(posterior, spec)["log_or"].isel(estimand=j).to_numpy().reshape(-1, 1)
                p_pos[:, j] = (lor[:, 0] > 0).astype(float)
                kinds[j] = "indicator"
            continue
        node = mu_all[:, o] if mu_all is not None else delta[:, idx[0]] - a["offset"][idx[0]]
        d = delta[:, idx] - node[:, None]
        rows = []
        for j in js:
            pos = [int(np.flatnonzero(idx == c)[0]) for c in est.at[j, "cells"]]
            rows.append((int(j), pos, size[idx][pos] / size[idx][pos].sum()))
        prior = (a["prior_w"][o], a["prior_mu"][o], a["prior_sd"][o])
        bias_prior = (float(a["bias_mu"][o]), float(a["bias_sd"][o]))
        values = _outcome_values(node, bias[:, o], baseline[:, idx], d, counts[idx], prior, bias_prior, rows)
        for j, v in values.items():
            p_pos[:, j] = v
    signs = np.array([benefit_sign(x) for x in est["direction"]])
    p_benefit = np.where(signs > 0, p_pos, 1.0 - p_pos)
    return p_benefit.reshape(*shape, len(est)), kinds


def p_benefit_summary(posterior: xr.Dataset, spec: ModelSpec) -> list[dict]:
    """Per estimand: ``p_benefit``, its ``p_benefit_mcse`` and the ``estimator`` (see the module docstring)."""
    values, kinds = p_benefit_draws(posterior, spec)
    return [
        {"p_benefit": float(values[..., j].mean()), "p_benefit_mcse": _mcse_mean(values[..., j]), "estimator": k}
        for j, k in enumerate(kinds)
    ]
