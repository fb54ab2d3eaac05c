"""Effect summaries: a tidy table (machine-readable), built from raw draws; its text for people is
:mod:`bayes_rescue.outputs.console` (``describe``, importable from here too).

Columns of the summary table (one row per prior x outcome x estimand):

- ``prior, model, outcome, subgroup, level`` (``subgroup`` or ``cohort``), ``direction``
  (``higher``: more events is better), ``y_t, n_t, y_c, n_c`` (observed counts);
- ``rd_mean, rd_median, rd_eti95_lb, rd_eti95_ub``: risk difference, treatment minus control, as a
  proportion (0.10 = 10 percentage points), with its 95% equal-tailed interval; likewise
  ``rr_*`` (risk ratio), ``or_*`` (odds ratio), ``log_or_*``, ``p_control_*`` and ``p_treatment_*``
  (median and interval only);
- ``nnt_kind`` (``NNTB``/``NNTH``, the side of the median), ``nnt_median`` (1 / |median RD|) and
  ``nnt_eti95`` (text; an interval whose RD interval crosses 0 is written as
  ``NNTB a to inf to NNTH b``, Altman BMJ 1998;317:1309, doi 10.1136/bmj.317.7168.1309; for people,
  :func:`~bayes_rescue.outputs.wording.nnt_display` adds the point NNT only where the interval excludes 0);
- ``p_benefit``: P(RD on the beneficial side of 0), counted on the log OR (same sign, no underflow to 0);
  ``p_benefit_ge_<m>``: P(benefit >= m) for each MCID m;
  ``p_harm``: P(RD on the harmful side of 0); ``p_rope``: P(|RD| < rope);
- ``rhat_max, ess_bulk_min, ess_tail_min`` of this row's RD and log OR, ``divergences`` of the fit,
  ``diagnostics_passed`` of the fit;
- ``rd_prior_sensitivity, rd_likelihood_sensitivity, rd_psense_diagnosis``: power-scaling sensitivity of
  the RD (:mod:`bayes_rescue.psense`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from bayes_rescue.model.estimands import benefit_sign, prob_column
from bayes_rescue.outputs.console import (  # noqa: F401 - the console's text, importable from here as before
    CONSOLE_WIDTH,
    NAME_WIDTHS,
    describe,
    psense_warnings,
    render_table,
    tipping_bias_text,
    truncate,
)
from bayes_rescue.outputs.wording import format_probability, nnt_display, nnt_text  # noqa: F401

CI_PROB = 0.95
DEFAULT_MCIDS = (0.05, 0.10)
DEFAULT_ROPE = 0.02


def _eti(x: np.ndarray, prob: float = CI_PROB) -> tuple[float, float]:
    a = (1 - prob) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return float(lo), float(hi)


def summarize_draws(
    draws: xr.Dataset,
    est: pd.DataFrame,
    *,
    mcids: tuple[float, ...] = DEFAULT_MCIDS,
    rope: float = DEFAULT_ROPE,
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """Summary rows from a Dataset of effect draws (dims chain, draw, estimand; see ``fit.effects``)."""
    if not (0 < ci_prob < 1):
        raise ValueError("ci_prob must be in (0, 1)")
    pct = f"eti{round(ci_prob * 100):d}"
    rows = []
    for _, e in est.iterrows():
        sel = draws.sel(estimand=e["estimand"])
        get = {v: sel[v].to_numpy().ravel() for v in ("rd", "rr", "odds_ratio", "log_or", "p_control", "p_treatment")}
        rd = get["rd"]
        sign = benefit_sign(e["direction"])
        rdb = sign * rd
        row: dict = {k: e[k] for k in ("outcome", "subgroup", "level", "direction", "y_t", "n_t", "y_c", "n_c")}
        for name, key in (("rd", "rd"), ("rr", "rr"), ("or", "odds_ratio"), ("log_or", "log_or")):
            x = get[key]
            lo, hi = _eti(x, ci_prob)
            row[f"{name}_mean"] = float(x.mean())
            row[f"{name}_median"] = float(np.median(x))
            row[f"{name}_{pct}_lb"] = lo
            row[f"{name}_{pct}_ub"] = hi
        for name in ("p_control", "p_treatment"):
            lo, hi = _eti(get[name], ci_prob)
            row[f"{name}_median"] = float(np.median(get[name]))
            row[f"{name}_{pct}_lb"] = lo
            row[f"{name}_{pct}_ub"] = hi
        med = float(np.median(rdb))
        row["nnt_kind"] = "NNTB" if med >= 0 else "NNTH"
        row["nnt_median"] = math.inf if med == 0 else 1 / abs(med)
        lo, hi = _eti(rdb, ci_prob)
        row[f"nnt_{pct}"] = nnt_text(lo, hi)
        lorb = sign * get["log_or"]  # the sign of the log OR is the sign of the RD, without underflow to 0
        row["p_benefit"] = float((lorb > 0).mean())
        for m in mcids:
            row[prob_column("benefit", m)] = float((rdb >= m).mean())
        row["p_harm"] = float((lorb < 0).mean())
        row["p_rope"] = float((np.abs(rd) < rope).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(
    result,
    *,
    mcids: tuple[float, ...] = DEFAULT_MCIDS,
    rope: float = DEFAULT_ROPE,
    ci_prob: float = CI_PROB,
) -> pd.DataFrame:
    """Summary table of one :class:`~bayes_rescue.inference.sampling.FitResult` (see the module docstring)."""
    from bayes_rescue.model.estimands import estimands

    est = estimands(result.spec)
    table = summarize_draws(result.effects, est, mcids=mcids, rope=rope, ci_prob=ci_prob)
    table.insert(0, "model", result.spec.kind)
    table.insert(0, "bias", "none" if result.spec.bias is None else result.spec.bias.name)
    table.insert(0, "prior", result.spec.prior.name)
    per = result.diagnostics.per_estimand.set_index("estimand").loc[est["estimand"]]
    table["rhat_max"] = per[["rhat_rd", "rhat_log_or"]].max(axis=1).to_numpy()
    table["ess_bulk_min"] = per[["ess_bulk_rd", "ess_bulk_log_or"]].min(axis=1).to_numpy()
    table["ess_tail_min"] = per[["ess_tail_rd", "ess_tail_log_or"]].min(axis=1).to_numpy()
    table["divergences"] = result.diagnostics.divergences
    table["diagnostics_passed"] = result.diagnostics.passed
    if "log_prior" in result.tree.children:
        from bayes_rescue.inference.psense import power_scaling

        ps = power_scaling(result.tree, result.effects).set_index("estimand").reindex(est["estimand"])
        for col in ("rd_prior_sensitivity", "rd_likelihood_sensitivity", "rd_psense_diagnosis"):
            table[col] = ps[col].to_numpy()
    return table


def draws_table(result) -> pd.DataFrame:
    """Long table of per-draw effects for meta-analysts: prior, model, outcome, subgroup, chain, draw, rd,
    log_or, p_control, p_treatment (rows ordered by chain, draw, estimand)."""
    ds = result.effects.transpose("chain", "draw", "estimand")
    n_chain, n_draw, n_est = (ds.sizes[d] for d in ("chain", "draw", "estimand"))
    reps = n_chain * n_draw
    frame = pd.DataFrame(
        {
            "prior": result.spec.prior.name,
            "bias": "none" if result.spec.bias is None else result.spec.bias.name,
            "model": result.spec.kind,
            "outcome": np.tile(ds["estimand_outcome"].to_numpy(), reps),
            "subgroup": np.tile(ds["estimand_subgroup"].to_numpy(), reps),
            "chain": np.repeat(ds["chain"].to_numpy(), n_draw * n_est),
            "draw": np.tile(np.repeat(ds["draw"].to_numpy(), n_est), n_chain),
            **{v: ds[v].to_numpy().ravel() for v in ("rd", "log_or", "p_control", "p_treatment")},
        }
    )
    return frame
