"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018, arXiv:1804.06788).

Two models are calibrated: the hierarchical (or independent) reanalysis model (:func:`sbc`) and the
random-effects meta-analysis behind the MAP priors (:func:`sbc_map`, :mod:`bayes_rescue.map_prior`).

For each simulation s = 1..S: draw every parameter from the model's prior, simulate the arm counts from
the likelihood with the real arm sizes (the cohort's, or the trials'), refit the model (the compiled model
is reused; only the counts change), and record the rank of the true value among L thinned posterior
draws. If the sampler and model are correct, each rank is uniform on {0, ..., L}. Uniformity is tested
per quantity with a chi-square test on B equal-width bins; the histograms are saved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import special, stats

from bayes_rescue import progress
from bayes_rescue.data.counts import CountsData
from bayes_rescue.inference import engine
from bayes_rescue.inference.derived import prior_draws
from bayes_rescue.inference.engine import DEFAULT_CACHE
from bayes_rescue.inference.sampling import PARAMETER_DIMS, sample_tree
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import PriorSpec

SBC_SETTINGS = SamplerSettings(draws=500, tune=500, chains=4, prior_draws=1, target_accept=0.95)
N_RANK_DRAWS = 99  # L: ranks take values 0..99


def _with_counts(data: CountsData, y_t: np.ndarray, y_c: np.ndarray) -> CountsData:
    cells = data.cells()
    table = data.table.copy()
    for i, r in cells.iterrows():
        for arm, y in (("treatment", y_t[i]), ("control", y_c[i])):
            mask = (table["outcome"] == r["outcome"]) & (table["subgroup"] == r["subgroup"]) & (table["arm"] == arm)
            table.loc[mask, "events"] = int(y)
    return dataclasses.replace(data, table=table, source=f"{data.source} (simulated)")


def _thin(x: np.ndarray, n: int) -> np.ndarray:
    """x (chain, draw, ...) -> n draws spread evenly over the chains (thinning reduces autocorrelation)."""
    flat = x.reshape(-1, *x.shape[2:])
    idx = np.linspace(0, flat.shape[0] - 1, n).round().astype(int)
    return flat[idx]


def _sbc_task(args: tuple) -> dict:
    data, prior, kind, settings, s, truth = args
    spec = ModelSpec(data, prior, kind)
    cells = data.cells()
    rng = np.random.default_rng([settings.seed, s])
    p_c = special.expit(truth["baseline"] - truth["delta"] / 2)
    p_t = special.expit(truth["baseline"] + truth["delta"] / 2)
    y_c = rng.binomial(cells["n_c"].to_numpy(), p_c)
    y_t = rng.binomial(cells["n_t"].to_numpy(), p_t)
    sim = ModelSpec(_with_counts(data, y_t, y_c), prior, kind)
    tree = sample_tree(sim, dataclasses.replace(settings, seed=settings.seed + s), cache=DEFAULT_CACHE)
    post = tree["posterior"].to_dataset()
    row: dict = {"sim": s, "divergences": int(tree["sample_stats"]["diverging"].sum())}
    coords = spec.coords()
    for name in ("mu_log_or", "tau_log_or", "delta"):
        if name not in truth:
            continue
        true = truth[name]
        draws = _thin(post[name].transpose("chain", "draw", ...).to_numpy(), N_RANK_DRAWS)
        labels = coords[PARAMETER_DIMS.get(name, "cell")]
        for j, label in enumerate(labels):
            row[f"{name}[{label}]"] = int((draws[:, j] < true[j]).sum())
    return row


def sbc(
    data: CountsData,
    prior: PriorSpec,
    *,
    kind: str = "hierarchical",
    n_sims: int = 200,
    settings: SamplerSettings = SBC_SETTINGS,
    map_fn: Callable | None = None,
) -> pd.DataFrame:
    """Ranks per simulation (columns ``sim``, ``divergences`` and one per quantity)."""
    spec = ModelSpec(data, prior, kind)
    truth = prior_draws(spec, n_sims, np.random.default_rng([settings.seed, 99]))
    names = [n for n in ("mu_log_or", "tau_log_or", "delta", "baseline") if n in truth]
    tasks = []
    for s in range(n_sims):
        t = {n: truth[n].isel(chain=0, draw=s).to_numpy() for n in names}
        tasks.append((data, prior, kind, settings, s, t))
    rows = (map if map_fn is None else map_fn)(_sbc_task, tasks)
    return pd.DataFrame(list(progress.track(rows, "SBC replicates", total=len(tasks))))


#: SBC settings of the meta-analysis: the funnel in (mu, tau, z) calls for a higher target acceptance,
#: as in :func:`bayes_rescue.map_prior.fit_map`.
SBC_MAP_SETTINGS = dataclasses.replace(SBC_SETTINGS, target_accept=0.99)


def _map_compiled(counts: pd.DataFrame):
    """The meta-analysis compiled once per set of trials and arm sizes in this process (the engine's cache)."""
    from bayes_rescue.analyses.map_prior import build_map_model

    key = ("map-sbc", tuple(counts[["trial", "n_t", "n_c"]].itertuples(index=False, name=None)))
    return DEFAULT_CACHE.compiled(key, lambda: build_map_model(counts, shared_counts=True), what="meta-analysis model")


def _sbc_map_task(args: tuple) -> dict:
    counts, settings, s, truth = args
    rng = np.random.default_rng([settings.seed, s])
    y_c = rng.binomial(counts["n_c"].to_numpy(), special.expit(truth["b"]))
    y_t = rng.binomial(counts["n_t"].to_numpy(), special.expit(truth["b"] + truth["theta"]))
    compiled = engine.with_data(_map_compiled(counts), y_c_data=y_c, y_t_data=y_t)
    tree = engine.sample_tree(compiled, dataclasses.replace(settings, seed=settings.seed + s))
    post = tree["posterior"].to_dataset()
    row: dict = {"sim": s, "divergences": int(tree["sample_stats"]["diverging"].sum())}
    for name in ("mu", "tau"):
        draws = _thin(post[name].transpose("chain", "draw").to_numpy(), N_RANK_DRAWS)
        row[name] = int((draws < truth[name]).sum())
    theta = _thin(post["theta"].transpose("chain", "draw", "trial").to_numpy(), N_RANK_DRAWS)
    for j, trial in enumerate(counts["trial"]):
        row[f"theta[{trial}]"] = int((theta[:, j] < truth["theta"][j]).sum())
    return row


def sbc_map(
    counts: pd.DataFrame,
    *,
    n_sims: int = 200,
    settings: SamplerSettings = SBC_MAP_SETTINGS,
    map_fn: Callable | None = None,
) -> pd.DataFrame:
    """SBC of the MAP meta-analysis on the arm sizes of ``counts`` (:func:`bayes_rescue.map_prior.trial_counts`).

    True values are drawn from the model's priors in NumPy: b[i] ~ N(0, 2), mu ~ N(0, 2),
    tau ~ HalfNormal(0.5), theta[i] = mu + tau * z[i] with z[i] ~ N(0, 1). Ranks of ``mu``, ``tau`` and every
    trial's ``theta`` (columns ``sim``, ``divergences`` and one per quantity).
    """
    from bayes_rescue.analyses.map_prior import TAU_SD

    k = len(counts)
    rng = np.random.default_rng([settings.seed, 98])
    b = rng.normal(0.0, 2.0, (n_sims, k))
    mu = rng.normal(0.0, 2.0, n_sims)
    tau = np.abs(rng.normal(0.0, TAU_SD, n_sims))
    theta = mu[:, None] + tau[:, None] * rng.normal(0.0, 1.0, (n_sims, k))
    tasks = [(counts, settings, s, {"b": b[s], "mu": mu[s], "tau": tau[s], "theta": theta[s]}) for s in range(n_sims)]
    rows = (map if map_fn is None else map_fn)(_sbc_map_task, tasks)
    return pd.DataFrame(list(progress.track(rows, "SBC replicates (meta-analysis)", total=len(tasks))))


def uniformity(ranks: pd.DataFrame, *, bins: int = 10, n_rank_draws: int = N_RANK_DRAWS) -> pd.DataFrame:
    """Chi-square test of uniform ranks per quantity (bins of equal width over 0..L)."""
    rows = []
    edges = np.linspace(0, n_rank_draws + 1, bins + 1)
    for col in ranks.columns:
        if col in ("sim", "divergences"):
            continue
        counts, _ = np.histogram(ranks[col], bins=edges)
        expected = len(ranks) * np.diff(edges) / (n_rank_draws + 1)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        rows.append({"quantity": col, "chi2": chi2, "df": bins - 1, "p_value": float(stats.chi2.sf(chi2, bins - 1))})
    return pd.DataFrame(rows)
