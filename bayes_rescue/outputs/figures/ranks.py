"""Sampler and calibration figures: rank histograms of the chains (one prior, or a row per prior) and the
SBC rank histograms of ``validate``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_rescue.data.counts import Labels
from bayes_rescue.outputs.figures.base import (
    OKABE_ITO,
    WIDTH_DOUBLE,
    WIDTH_SINGLE,
    _legend_above,
    _style,
    balanced_columns,
    finish,
    subplots,
)
from bayes_rescue.outputs.wording import PARAMETER_NAMES, parameter_label  # noqa: F401 (one home: wording)

# -------------------------------------------------------------------------------------------- ranks

#: Parameters in the rank plot of one prior, and (the effect parameters) of several priors.
RANK_PARAMETERS = ("mu_log_or", "tau_log_or", "delta", "baseline")
RANK_PARAMETERS_MANY = {"hierarchical": ("mu_log_or", "tau_log_or"), "independent": ("delta",)}


def rank_data(
    result, n_bins: int = 20, *, parameters: tuple[str, ...] = RANK_PARAMETERS, label: str = ""
) -> pd.DataFrame:
    """Rank histograms (Vehtari et al. 2021): per parameter and chain, counts of pooled ranks per bin.

    The draws of all chains are ranked together (ranks 1..N); each chain's ranks are counted in
    ``n_bins`` equal bins of (0, N]. Uniform counts across bins and chains (N / (chains x bins) each)
    indicate mixing. Parameters: by default every cell's ``delta`` and ``baseline``, plus ``mu_log_or``
    and ``tau_log_or`` for the hierarchical model. ``label`` prefixes the parameter names (``"skeptical: "``).
    """
    from scipy import stats

    post = result.tree["posterior"].to_dataset()
    names = [v for v in parameters if v in post]
    rows = []
    for v in names:
        da = post[v]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        for item in da[other[0]].to_numpy() if other else [None]:
            x = da.sel({other[0]: item}) if other else da
            arr = x.transpose("chain", "draw").to_numpy()
            ranks = stats.rankdata(arr.ravel()).reshape(arr.shape)
            edges = np.linspace(0, arr.size, n_bins + 1)
            for c in range(arr.shape[0]):
                counts, _ = np.histogram(ranks[c], bins=edges)
                rows.append(
                    pd.DataFrame(
                        {
                            "parameter": label + (f"{v}[{item}]" if item is not None else v),
                            "chain": c,
                            "bin": np.arange(n_bins),
                            "count": counts,
                        }
                    )
                )
    data = pd.concat(rows, ignore_index=True)
    # 99% band of one bin's count under uniform ranks: Binomial(draws per chain, 1 / bins)
    n = data.groupby(["parameter", "chain"])["count"].sum().iloc[0]
    data["band_lo"], data["band_hi"] = stats.binom.ppf([0.005, 0.995], n, 1 / n_bins)
    return data


def rank_data_many(results, n_bins: int = 20) -> pd.DataFrame:
    """:func:`rank_data` of each prior's effect parameters (:data:`RANK_PARAMETERS_MANY`), with a
    ``prior`` column: the rank figure of a several-prior run (every parameter stays in the DataTree)."""
    return pd.concat(
        [rank_data(r, n_bins, parameters=RANK_PARAMETERS_MANY[r.spec.kind]).assign(prior=r.name) for r in results],
        ignore_index=True,
    )


def _rank_panel(ax, g: pd.DataFrame, show_legend: bool) -> None:
    n_bins = g["bin"].nunique()
    chains = sorted(g["chain"].unique())
    expected = g.groupby("chain")["count"].sum().iloc[0] / n_bins
    centres = (np.arange(n_bins) + 0.5) / n_bins
    for c in chains:
        gc = g[g["chain"] == c].sort_values("bin")
        ax.step(centres, gc["count"], where="mid", lw=0.8, color=OKABE_ITO[c % len(OKABE_ITO)], label=f"chain {c + 1}")
    lo, hi = g["band_lo"].iloc[0], g["band_hi"].iloc[0]  # 99% band of a bin's count if ranks are uniform
    ax.axhspan(lo, hi, color="0.9", zorder=0, label="99% band if uniform" if show_legend else None)
    ax.axhline(expected, color="k", lw=0.6, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
    ax.set_ylim(0, max(hi, g["count"].max()) * 1.15)


def plot_rank(
    data: pd.DataFrame, path: Path | None = None, *, labels: Labels | None = None, formats: Sequence[str] | None = None
):
    """Rank histograms of one prior's parameters: a panel per parameter, a line per chain, the expected
    count (dashed) and its 99% band under uniform ranks; x: the rank as a fraction of all draws."""
    labels = labels or Labels()
    params = list(dict.fromkeys(data["parameter"]))
    ncol = balanced_columns(len(params), 4)
    nrow = int(np.ceil(len(params) / ncol))
    with _style():
        fig, axes = subplots(path, nrow, ncol, figsize=(WIDTH_DOUBLE, 1.2 + 1.45 * nrow), squeeze=False)
        for i, (ax, p) in enumerate(zip(axes.ravel(), params, strict=False)):
            _rank_panel(ax, data[data["parameter"] == p], i == 0)
            ax.set_title(parameter_label(p, labels, sep="\n"), loc="left", fontsize=7, fontweight="normal")
        for ax in axes[:, 0]:
            ax.set_ylabel("draws per bin")
        for ax in axes.ravel()[len(params) :]:
            ax.set_visible(False)
        fig.supxlabel("rank of the draw among all draws, as a fraction (0 = smallest)", fontsize=7.5)
        handles, names = axes[0, 0].get_legend_handles_labels()
        _legend_above(fig, handles, names, len(names), top_in=0.75)
        fig.subplots_adjust(hspace=0.95, wspace=0.3, bottom=0.45 / fig.get_figheight())
        return finish(fig, axes, path, formats)


def plot_rank_many(
    data: pd.DataFrame, path: Path | None = None, *, labels: Labels | None = None, formats: Sequence[str] | None = None
):
    """A row per prior, a column per effect parameter: rank histograms per chain (see :func:`plot_rank`)."""
    labels = labels or Labels()
    priors = list(dict.fromkeys(data["prior"]))
    params = list(dict.fromkeys(data["parameter"]))
    with _style():
        fig, axes = subplots(
            path,
            len(priors),
            len(params),
            figsize=(WIDTH_DOUBLE, 1.2 + 0.6 * len(priors)),
            squeeze=False,
            sharex=True,
        )
        for i, pr in enumerate(priors):
            for j, p in enumerate(params):
                ax = axes[i, j]
                _rank_panel(ax, data[(data["prior"] == pr) & (data["parameter"] == p)], i == j == 0)
                if i == 0:
                    ax.set_title(parameter_label(p, labels, sep="\n"), loc="left", fontsize=7, fontweight="normal")
                if j == 0:
                    ax.set_ylabel(pr, rotation=0, ha="right", va="center")
        fig.supxlabel("rank of the draw among all draws, as a fraction (0 = smallest)", fontsize=7.5)
        handles, names = axes[0, 0].get_legend_handles_labels()
        _legend_above(fig, handles, names, len(names), top_in=0.75)
        fig.subplots_adjust(hspace=0.35, wspace=0.35, bottom=0.45 / fig.get_figheight())
        return finish(fig, axes, path, formats)


# ------------------------------------------------------------------------------------------------ SBC


def plot_ranks(
    ranks: pd.DataFrame, path=None, *, n_rank_draws: int, bins: int = 10, formats: Sequence[str] | None = None
):
    """SBC rank histograms: a panel per quantity, the 99% band of a bin's count under uniform ranks."""
    cols = [c for c in ranks.columns if c not in ("sim", "divergences")]
    ncol = balanced_columns(len(cols), 3)
    nrow = int(np.ceil(len(cols) / ncol))
    edges = np.linspace(0, n_rank_draws + 1, bins + 1)
    from scipy import stats

    n = len(ranks)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
    height = 0.6 + 1.6 * nrow
    with _style():
        fig, axes = subplots(
            path, nrow, ncol, figsize=(WIDTH_SINGLE if ncol == 1 else WIDTH_DOUBLE, height), squeeze=False
        )
        for ax, c in zip(axes.ravel(), cols, strict=False):
            ax.hist(ranks[c], bins=edges, color="C0", alpha=0.8, label="simulations per bin")
            ax.axhspan(lo, hi, color="0.85", zorder=0, label="99% range if ranks are uniform")
            ax.set_title(c, loc="left", fontsize=7, fontweight="normal")
            ax.set_xlabel("rank of the true value")
        for ax in axes[:, 0]:
            ax.set_ylabel("simulations")
        for ax in axes.ravel()[len(cols) :]:
            ax.set_visible(False)
        fig.suptitle(f"SBC rank histograms, {n} simulations", y=1 - 0.05 / height, va="top")
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 1 - 0.22 / height))
        fig.subplots_adjust(top=1 - 0.75 / height, hspace=0.8, wspace=0.3)
        return finish(fig, axes, path, formats)
