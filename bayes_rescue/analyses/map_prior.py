"""Meta-analytic-predictive (MAP) priors from the package trial table, and their mixture approximation.

Model (random-effects binomial meta-analysis; Neuenschwander et al., Clin Trials 2010;7:5-18,
doi 10.1177/1740774509356002), for trial i with two arms::

    b[i]     ~ Normal(0, 2)                  logit control risk, one per trial (not pooled)
    mu       ~ Normal(0, 2)                  mean log odds ratio
    tau      ~ HalfNormal(0.5)               between-trial sd of the log OR (Roever et al. 2021)
    theta[i] = mu + tau * z[i],  z[i] ~ Normal(0, 1)
    y_c[i]   ~ Binomial(n_c[i], expit(b[i]))
    y_t[i]   ~ Binomial(n_t[i], expit(b[i] + theta[i]))

The MAP prior is the predictive distribution of a *new* study's log OR, theta_new = mu + tau * z_new. It is
approximated by a mixture of normals fitted to the predictive draws by EM (the number of components,
1 to 3, chosen by BIC), as RBesT does; the fit is stored in ``priors/map_*.toml`` together with its
approximation error, and is refitted only by ``python scripts/priors.py --refit`` with a fixed seed, never
by a ``fit`` run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm

from bayes_rescue.priors.literature import EARLY_WINDOW_RCTS, LATE_WINDOW_RCTS, trial_table
from bayes_rescue.priors.mixture import approximate

MAP_SEED = 20250601
TAU_SD = 0.5
#: Named literature sets: name -> (description, trials)
LITERATURE_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "map_early": ("the five 2015 early-window thrombectomy RCTs", EARLY_WINDOW_RCTS),
    "map_late": ("the late-window RCTs DAWN and DEFUSE 3", LATE_WINDOW_RCTS),
    "map_pooled": ("all seven thrombectomy RCTs of the trial table", EARLY_WINDOW_RCTS + LATE_WINDOW_RCTS),
}
MAP_OUTCOMES = ("mrs_0_2", "mortality")


def trial_counts(trials: tuple[str, ...], outcome: str, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Two-arm counts of ``outcome`` for ``trials``; trials without both arms in the table are left out."""
    t = trial_table() if table is None else table
    rows = []
    for trial in trials:
        sub = t[(t["source"] == trial) & (t["outcome"] == outcome)].set_index("arm")
        if not {"treatment", "control"} <= set(sub.index):
            continue
        rows.append(
            {
                "trial": trial,
                "y_t": int(sub.loc["treatment", "events"]),
                "n_t": int(sub.loc["treatment", "total"]),
                "y_c": int(sub.loc["control", "events"]),
                "n_c": int(sub.loc["control", "total"]),
                "citation": sub.loc["treatment", "citation"],
                "confidence": ",".join(sorted(set(sub["confidence"]))),
                "count_status": ",".join(sorted(set(sub["count_status"]))),
            }
        )
    return pd.DataFrame(rows)


def build_map_model(counts: pd.DataFrame, *, tau_sd: float = TAU_SD, shared_counts: bool = False) -> pm.Model:
    """The random-effects model of the module docstring.

    ``shared_counts=True`` makes the event counts ``pm.Data`` (``y_c_data``, ``y_t_data``) so that one
    compiled model can be refitted to other counts of the same trials (simulation-based calibration).
    """
    with pm.Model(coords={"trial": counts["trial"].tolist()}) as model:
        y_c = counts["y_c"].to_numpy()
        y_t = counts["y_t"].to_numpy()
        if shared_counts:
            y_c, y_t = pm.Data("y_c_data", y_c, dims="trial"), pm.Data("y_t_data", y_t, dims="trial")
        b = pm.Normal("b", 0.0, 2.0, dims="trial")
        mu = pm.Normal("mu", 0.0, 2.0)
        tau = pm.HalfNormal("tau", tau_sd)
        z = pm.Normal("z", 0.0, 1.0, dims="trial")
        theta = pm.Deterministic("theta", mu + tau * z, dims="trial")
        pm.Binomial("y_c", n=counts["n_c"].to_numpy(), p=pm.math.invlogit(b), observed=y_c)
        pm.Binomial("y_t", n=counts["n_t"].to_numpy(), p=pm.math.invlogit(b + theta), observed=y_t)
    return model


@dataclass
class MapFit:
    """Posterior of the meta-analysis and the predictive draws of a new study's log OR."""

    counts: pd.DataFrame
    mu: np.ndarray
    tau: np.ndarray
    theta_new: np.ndarray
    max_rhat: float
    min_ess: float
    divergences: int


def fit_map(
    counts: pd.DataFrame,
    *,
    seed: int = MAP_SEED,
    draws: int = 5000,
    tau_sd: float = TAU_SD,
    target_accept: float = 0.99,
) -> MapFit:
    """Sample the meta-analysis with nutpie (the engine, compiled once per set of counts in this process) and
    draw theta_new = mu + tau * z_new (seeded). ``max_rhat`` and ``min_ess`` are those of mu and tau (the
    numbers the prior files quote); the diagnostics gate on every parameter (b, mu, tau, z, theta) warns when
    it fails."""
    import warnings

    from bayes_rescue.inference.diagnostics import diagnose_draws
    from bayes_rescue.inference.engine import DEFAULT_CACHE, sample_tree
    from bayes_rescue.inference.settings import SamplerSettings

    key = ("map", tuple(counts[["trial", "y_t", "n_t", "y_c", "n_c"]].itertuples(index=False, name=None)), tau_sd)
    compiled = DEFAULT_CACHE.compiled(
        key, lambda: build_map_model(counts, tau_sd=tau_sd), what="meta-analysis model", start="support_point"
    )
    settings = SamplerSettings(draws=draws, tune=2000, chains=4, seed=seed, target_accept=target_accept)
    tree = sample_tree(compiled, settings)
    post, stats = tree["posterior"].to_dataset(), tree["sample_stats"].to_dataset()
    gate = diagnose_draws(post, stats, target_accept)
    if not gate.passed:
        warnings.warn(
            "MAP meta-analysis: sampler diagnostics FAILED: " + "; ".join(gate.problems()), RuntimeWarning, stacklevel=2
        )
    mu = post["mu"].to_numpy().ravel()
    tau = post["tau"].to_numpy().ravel()
    rng = np.random.default_rng([seed, 7])
    theta_new = mu + tau * rng.standard_normal(mu.size)
    core = diagnose_draws(post[["mu", "tau"]], stats, target_accept)
    return MapFit(
        counts, mu, tau, theta_new, core.max_rhat, min(core.min_ess_bulk, core.min_ess_tail), gate.divergences
    )


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def map_prior_toml(name: str, *, seed: int = MAP_SEED, draws: int = 5000) -> str:
    """Fit the MAP prior of the named literature set for every outcome and return the prior file text."""
    description, trials = LITERATURE_SETS[name]
    lines = [
        f"# Generated by `python scripts/priors.py --refit` (seed {seed}); do not edit by hand.",
        f"name = {_toml_str(name)}",
        f"description = {_toml_str('Meta-analytic-predictive prior from ' + description)}",
        "rationale = "
        + _toml_str(
            "Predictive distribution of a new study's log OR under a random-effects binomial meta-analysis"
            " (Neuenschwander et al. 2010, doi 10.1177/1740774509356002; tau ~ HalfNormal(0.5), Roever et al."
            " 2021, doi 10.1002/jrsm.1475) of the trials' arm counts in the package trial table, approximated"
            " by a normal mixture fitted by EM (components chosen by BIC)."
        ),
        "",
    ]
    for outcome in MAP_OUTCOMES:
        counts = trial_counts(trials, outcome)
        if len(counts) < 2:
            continue
        fitted = fit_map(counts, seed=seed, draws=draws)
        mix, err = approximate(fitted.theta_new)
        used = "; ".join(
            f"{r.trial} {r.y_t}/{r.n_t} vs {r.y_c}/{r.n_c} ({r.citation}; {r.count_status}; confidence {r.confidence})"
            for r in counts.itertuples()
        )
        left_out = sorted(set(trials) - set(counts["trial"]))
        note = f"; left out (no two-arm {outcome} counts in the table): {', '.join(left_out)}" if left_out else ""
        lines += [
            f"[effect.{outcome}]",
            "rationale = "
            + _toml_str(
                f"MAP prior from {len(counts)} trials: {used}{note}. Meta-analysis: posterior mean mu"
                f" {fitted.mu.mean():.4f}, tau {fitted.tau.mean():.4f}; diagnostics max R-hat {fitted.max_rhat:.4f},"
                f" min ESS {fitted.min_ess:.0f}, divergences {fitted.divergences}. Mixture approximation of"
                f" {fitted.theta_new.size} predictive draws: KS distance {err['ks']:.4f}, largest error of the"
                f" 2.5/50/97.5% quantiles {err['max_quantile_error']:.4f} (log OR)."
            ),
        ]
        for j, (w, m, s) in enumerate(zip(mix.weights, mix.means, mix.sds, strict=True)):
            lines += [
                f"[[effect.{outcome}.components]]",
                f'name = "map{j}"',
                f"weight = {w:.6f}"
                if j < len(mix.weights) - 1
                else f"weight = {1 - mix.weights[:-1].round(6).sum():.6f}",
                f"mean = {m:.6f}",
                f"sd = {s:.6f}",
                "trials = [" + ", ".join(_toml_str(t) for t in counts["trial"]) + "]",
                "source = "
                + _toml_str(f"EM component {j} of the MAP predictive from {', '.join(counts['trial'])} (seed {seed})"),
            ]
        lines.append("")
    return "\n".join(lines)
