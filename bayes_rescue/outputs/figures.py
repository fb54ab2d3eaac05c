"""Figures. Each figure takes its numbers from a ``*_data`` function that returns a table, so the numbers
can be tested without images.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

from bayes_rescue.data.check import newcombe_rd
from bayes_rescue.data.counts import CountsData
from bayes_rescue.priors.spec import PriorSpec

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from bayes_rescue.model.estimands import benefit_sign

#: zlib level 1 instead of Pillow's 6: about 30 ms less per figure (40% of the PNG encoding), files ~20% larger.
PNG_KWARGS = {"compress_level": 1}


def _png_options(path) -> dict:
    """``savefig`` options for ``path``: the fast zlib level for a PNG, nothing for other formats."""
    return {"pil_kwargs": PNG_KWARGS} if str(path).lower().endswith(".png") else {}


def forest_data(summary: pd.DataFrame) -> pd.DataFrame:
    """Per prior x estimand: posterior RD (median, 95% ETI) beside the raw RD (Newcombe 95% CI)."""
    rows = []
    for _, r in summary.iterrows():
        d, lo, hi = newcombe_rd(int(r["y_t"]), int(r["n_t"]), int(r["y_c"]), int(r["n_c"]))
        rows.append(
            {
                "prior": r["prior"],
                "outcome": r["outcome"],
                "subgroup": r["subgroup"],
                "level": r["level"],
                "posterior_rd_median": r["rd_median"],
                "posterior_rd_eti95_lb": r["rd_eti95_lb"],
                "posterior_rd_eti95_ub": r["rd_eti95_ub"],
                "raw_rd": d,
                "raw_rd_ci95_lb": lo,
                "raw_rd_ci95_ub": hi,
            }
        )
    return pd.DataFrame(rows)


def _results(result) -> list:
    return list(result) if isinstance(result, list | tuple) else [result]


def benefit_curve_data(result, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """P(benefit >= t) over thresholds t (risk difference in the outcome's beneficial direction), per
    prior x estimand. ``result``: one fit result or a list of them."""
    from bayes_rescue.model.estimands import estimands

    t = np.linspace(0, 0.5, 101) if thresholds is None else np.asarray(thresholds, float)
    rows = []
    for res in _results(result):
        ds = res.tree["effects"].to_dataset()
        for _, e in estimands(res.spec).iterrows():
            rdb = np.sort(benefit_sign(e["direction"]) * ds["rd"].sel(estimand=e["estimand"]).to_numpy().ravel())
            p = 1.0 - np.searchsorted(rdb, t, side="left") / rdb.size  # share of draws >= t
            frame = {"outcome": e["outcome"], "subgroup": e["subgroup"], "threshold": t, "p_benefit_ge": p}
            rows.append(pd.DataFrame({"prior": res.spec.prior.name, **frame}))
    return pd.concat(rows, ignore_index=True)


def kde(x: np.ndarray, grid: np.ndarray, *, bins_per_bandwidth: int = 20) -> np.ndarray:
    """Gaussian kernel density of the draws ``x`` on an evenly spaced ``grid``, with Scott's bandwidth
    (``sd(x, ddof=1) * n**(-1/5)``, scipy's ``gaussian_kde`` default).

    Binned: the draws are histogrammed on bins of width at most bandwidth / ``bins_per_bandwidth`` (and
    at least 4096 of them) spanning the grid plus four bandwidths either side; the histogram is convolved
    with the kernel by FFT and read off at the grid points by linear interpolation. The error against
    the exact sum over draws is of order (bin width / bandwidth)^2 (tested against
    ``scipy.stats.gaussian_kde``); the cost no longer grows with draws x grid points.
    """
    x = np.asarray(x, dtype=float).ravel()
    h = float(np.std(x, ddof=1)) * x.size ** (-1 / 5)
    if not np.isfinite(h) or h <= 0:
        return np.zeros_like(grid, dtype=float)
    lo, hi = grid[0] - 4 * h, grid[-1] + 4 * h
    n_bins = int(min(2**20, max(4096, np.ceil((hi - lo) * bins_per_bandwidth / h))))
    counts, edges = np.histogram(x, bins=n_bins, range=(lo, hi))
    width = edges[1] - edges[0]
    centres = edges[:-1] + width / 2
    offsets = (np.arange(n_bins) - (n_bins - 1) // 2) * width  # centred as fftconvolve(mode="same") reads it
    kernel = np.exp(-0.5 * (offsets / h) ** 2) / (h * np.sqrt(2 * np.pi))
    from scipy.signal import fftconvolve

    density = fftconvolve(counts / x.size, kernel, mode="same")
    return np.interp(grid, centres, density)


def prior_posterior_data(result, n_grid: int = 256) -> pd.DataFrame:
    """Kernel density of the cohort-level RD under the prior and the posterior, on a common grid, per
    prior x outcome. ``result``: one fit result or a list of them."""
    from bayes_rescue.model.estimands import estimands

    grid = np.linspace(-1, 1, n_grid)
    rows = []
    for res in _results(result):
        est = estimands(res.spec)
        post = res.tree["effects"].to_dataset()
        prior = res.tree["prior_effects"].to_dataset()
        for _, e in est[est["level"] == "cohort"].iterrows():
            a = prior["rd"].sel(estimand=e["estimand"]).to_numpy().ravel()
            b = post["rd"].sel(estimand=e["estimand"]).to_numpy().ravel()
            rows.append(
                pd.DataFrame(
                    {
                        "prior": res.spec.prior.name,
                        "outcome": e["outcome"],
                        "rd": grid,
                        "prior_density": kde(a, grid),
                        "posterior_density": kde(b, grid),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


#: Parameters in the rank plot of one prior, and (the effect parameters) of several priors.
RANK_PARAMETERS = ("mu_delta", "tau", "log_or", "alpha")
RANK_PARAMETERS_MANY = {"hierarchical": ("mu_delta", "tau"), "independent": ("log_or",)}


def rank_data(
    result, n_bins: int = 20, *, parameters: tuple[str, ...] = RANK_PARAMETERS, label: str = ""
) -> pd.DataFrame:
    """Rank histograms (Vehtari et al. 2021): per parameter and chain, counts of pooled ranks per bin.

    Uniform counts across bins and chains indicate mixing. Parameters: by default every cell's
    ``log_or`` and ``alpha``, plus ``mu_delta`` and ``tau`` for the hierarchical model. ``label``
    prefixes the parameter names (``"skeptical: "``).
    """
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
                            "parameter": f"{v}[{item}]" if item is not None else v,
                            "chain": c,
                            "bin": np.arange(n_bins),
                            "count": counts,
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight", **_png_options(path))
    plt.close(fig)
    return path


def plot_forest(data: pd.DataFrame, path: Path) -> Path:
    rows = data.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(
        rows["posterior_rd_median"] * 100,
        y + 0.12,
        xerr=[
            (rows["posterior_rd_median"] - rows["posterior_rd_eti95_lb"]) * 100,
            (rows["posterior_rd_eti95_ub"] - rows["posterior_rd_median"]) * 100,
        ],
        fmt="o",
        color="C0",
        label="posterior median, 95% ETI",
    )
    ax.errorbar(
        rows["raw_rd"] * 100,
        y - 0.12,
        xerr=[
            (rows["raw_rd"] - rows["raw_rd_ci95_lb"]) * 100,
            (rows["raw_rd_ci95_ub"] - rows["raw_rd"]) * 100,
        ],
        fmt="s",
        color="0.5",
        mfc="white",
        label="raw, Newcombe 95% CI",
    )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, [f"{r.prior}: {r.outcome} / {r.subgroup}" for r in rows.itertuples()])
    ax.set_xlabel("risk difference, treatment - control (percentage points)")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_benefit_curve(data: pd.DataFrame, path: Path) -> Path:
    """One line per estimand (one prior), or one panel per estimand and a line per prior (several)."""
    priors = list(dict.fromkeys(data["prior"]))
    keys = list(dict.fromkeys(zip(data["outcome"], data["subgroup"], strict=True)))
    panels = [None] if len(priors) == 1 else keys
    ncol = min(3, len(panels))
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(7 if ncol == 1 else 4.2 * ncol, 4.5 if nrow == 1 else 3.2 * nrow))
    axes = np.atleast_1d(axes).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        for (pr, o, s), g in data.groupby(["prior", "outcome", "subgroup"], sort=False):
            if panel is None or (o, s) == panel:
                ax.plot(g["threshold"] * 100, g["p_benefit_ge"], label=f"{o} / {s}" if panel is None else pr)
        for level in (0.5, 0.95):
            ax.axhline(level, color="0.7", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
        if panel is not None:
            ax.set_title(f"{panel[0]} / {panel[1]}", fontsize=9)
        ax.set_xlabel("benefit threshold (RD, percentage points)")
        ax.set_ylabel("P(benefit >= threshold)")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.subplots_adjust(hspace=0.45, wspace=0.3)  # fixed margins: tight_layout's text layout is slow
    return _save(fig, path)


def plot_prior_posterior(data: pd.DataFrame, path: Path) -> Path:
    """Per outcome: each prior's prior density (dashed or shaded) and posterior density (solid)."""
    outcomes = list(dict.fromkeys(data["outcome"]))
    priors = list(dict.fromkeys(data["prior"]))
    fig, axes = plt.subplots(1, len(outcomes), figsize=(5 * len(outcomes), 3.8), squeeze=False)
    for ax, o in zip(axes[0], outcomes, strict=True):
        for i, pr in enumerate(priors):
            g = data[(data["outcome"] == o) & (data["prior"] == pr)]
            if len(priors) == 1:
                ax.fill_between(g["rd"] * 100, g["prior_density"], color="0.8", label="prior")
                ax.plot(g["rd"] * 100, g["posterior_density"], color="C0", label="posterior")
            else:
                ax.plot(g["rd"] * 100, g["prior_density"], color=f"C{i % 10}", ls=":", lw=1)
                ax.plot(g["rd"] * 100, g["posterior_density"], color=f"C{i % 10}", label=pr)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{o}: cohort risk difference" + ("" if len(priors) == 1 else " (dotted: prior)"))
        ax.set_xlabel("percentage points")
        ax.legend(fontsize=7)
    return _save(fig, path)


def rank_data_many(results, n_bins: int = 20) -> pd.DataFrame:
    """:func:`rank_data` of each prior's effect parameters (:data:`RANK_PARAMETERS_MANY`), with a
    ``prior`` column: the rank figure of a several-prior run (every parameter stays in the DataTree)."""
    return pd.concat(
        [
            rank_data(r, n_bins, parameters=RANK_PARAMETERS_MANY[r.spec.kind]).assign(prior=r.spec.prior.name)
            for r in results
        ],
        ignore_index=True,
    )


def plot_rank_many(data: pd.DataFrame, path: Path) -> Path:
    """One row per prior; its parameters' rank histograms side by side, a line per chain."""
    priors = list(dict.fromkeys(data["prior"]))
    params = list(dict.fromkeys(data["parameter"]))
    n_bins = data["bin"].nunique()
    gap = 3
    fig, axes = plt.subplots(len(priors), 1, figsize=(max(6, 1.6 * len(params)), 1.1 * len(priors) + 1), squeeze=False)
    for ax, pr in zip(axes[:, 0], priors, strict=True):
        g = data[data["prior"] == pr]
        for c, gc in g.groupby("chain"):
            x = np.concatenate([j * (n_bins + gap) + np.append(np.arange(n_bins), np.nan) for j in range(len(params))])
            y = np.concatenate([np.append(gc[gc["parameter"] == p]["count"].to_numpy(float), np.nan) for p in params])
            ax.step(x, y, where="mid", lw=0.8, label=f"chain {c}")
        expected = g[g["parameter"] == params[0]].groupby("chain")["count"].sum().iloc[0] / n_bins
        ax.axhline(expected, color="k", lw=0.8, ls="--")
        ax.set_ylim(0, None)
        ax.set_yticks([])
        ax.set_ylabel(pr, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_xticks([j * (n_bins + gap) + (n_bins - 1) / 2 for j in range(len(params))], [])
    axes[-1, 0].set_xticks(axes[-1, 0].get_xticks(), params, fontsize=8)
    fig.suptitle("rank histograms per chain (flat at the dashed expected count = chains agree)", fontsize=10)
    fig.subplots_adjust(hspace=0.15, left=0.15, top=1 - 0.5 / (1.1 * len(priors) + 1))
    return _save(fig, path)


def plot_rank(data: pd.DataFrame, path: Path) -> Path:
    params = list(dict.fromkeys(data["parameter"]))
    ncol = 3
    nrow = int(np.ceil(len(params) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.4 * nrow), squeeze=False)
    for ax, p in zip(axes.ravel(), params, strict=False):
        g = data[data["parameter"] == p]
        for c, gc in g.groupby("chain"):
            ax.step(gc["bin"], gc["count"], where="mid", label=f"chain {c}")
        expected = g.groupby("chain")["count"].sum().iloc[0] / g["bin"].nunique()
        ax.axhline(expected, color="k", lw=0.8, ls="--")
        ax.set_title(p, fontsize=9)
        ax.set_ylim(0, None)
        ax.set_xticks([])  # bin index and counts: the shape against the dashed line is what matters
        ax.set_yticks([])
    for ax in axes.ravel()[len(params) :]:
        ax.set_visible(False)
    fig.suptitle("rank histograms per chain (flat at the dashed expected count = chains agree)")
    fig.subplots_adjust(hspace=0.35, wspace=0.08)  # no tight_layout: text layout is the cost here
    return _save(fig, path)


def make_figures(results, summary: pd.DataFrame, outdir: Path) -> list[Path]:
    """Write the standard figures into ``outdir``; return their paths.

    ``results``: one fit result or a list. Several priors share one figure set, so they can be compared:
    ``prior_posterior.png``, ``forest.png`` and ``benefit_curve.png`` show every prior, and the rank plots
    ``rank.png`` shows every parameter of one prior, or one row per prior of its effect parameters.
    """
    results = _results(results)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_prior_posterior(prior_posterior_data(results), outdir / "prior_posterior.png"),
        plot_forest(forest_data(summary), outdir / "forest.png"),
        plot_benefit_curve(benefit_curve_data(results), outdir / "benefit_curve.png"),
    ]
    if len(results) == 1:
        paths.append(plot_rank(rank_data(results[0]), outdir / "rank.png"))
    else:
        paths.append(plot_rank_many(rank_data_many(results), outdir / "rank.png"))
    return paths


def heatmap_data(
    grid: pd.DataFrame, column: str = "p_benefit", *, robust: float = 0.0
) -> dict[tuple[str, str], pd.DataFrame]:
    """Pivot tables (rows sd, columns centre) of ``column`` per outcome x estimand, for the heat maps."""
    g = grid[grid["robust"] == robust]
    return {
        key: part.pivot(index="sd", columns="centre_benefit", values=column)
        for key, part in g.groupby(["outcome", "subgroup"], sort=False)
    }


def plot_heatmaps(grid: pd.DataFrame, path, column: str = "p_benefit", *, robust: float = 0.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = heatmap_data(grid, column, robust=robust)
    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    for ax, ((o, s), t) in zip(axes[0], tables.items(), strict=True):
        im = ax.imshow(t.to_numpy(), origin="lower", aspect="auto", vmin=0, vmax=1, cmap="RdYlBu")
        ax.set_xticks(range(t.shape[1]), [f"{c:g}" for c in t.columns])
        ax.set_yticks(range(t.shape[0]), [f"{v:g}" for v in t.index])
        for i in range(t.shape[0]):
            for j in range(t.shape[1]):
                ax.text(j, i, f"{t.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title(f"{o} / {s}", fontsize=9)
        ax.set_xlabel("prior centre (log OR, benefit direction)")
        ax.set_ylabel("prior sd")
    fig.colorbar(im, ax=axes[0].tolist(), label=column)
    fig.savefig(path, dpi=110, bbox_inches="tight", **_png_options(path))
    plt.close(fig)
    return path


def plot_ranks(ranks: pd.DataFrame, path, *, n_rank_draws: int, bins: int = 10):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in ranks.columns if c not in ("sim", "divergences")]
    ncol = 3
    nrow = int(np.ceil(len(cols) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.6 * nrow), squeeze=False)
    edges = np.linspace(0, n_rank_draws + 1, bins + 1)
    n = len(ranks)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
    for ax, c in zip(axes.ravel(), cols, strict=False):
        ax.hist(ranks[c], bins=edges, color="C0", alpha=0.8)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.set_title(c, fontsize=9)
    for ax in axes.ravel()[len(cols) :]:
        ax.set_visible(False)
    fig.suptitle(f"SBC rank histograms ({n} simulations; band: 99% range under uniformity)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, **_png_options(path))
    plt.close(fig)
    return path


def plot_priors(specs: list[PriorSpec], data: CountsData, path: Path) -> Path:
    """Density of every prior's log OR, one panel per outcome."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outcomes = data.outcomes
    fig, axes = plt.subplots(1, len(outcomes), figsize=(6 * len(outcomes), 4), squeeze=False)
    x = np.linspace(-4, 4, 801)
    colours = plt.get_cmap("tab20").colors
    for ax, o in zip(axes[0], outcomes, strict=True):
        for i, spec in enumerate(specs):
            style = "--" if "_robust" in spec.name or "_disc" in spec.name else "-"
            ax.plot(x, np.exp(spec.effect_for(o).logpdf(x)), style, color=colours[i % 20], label=spec.name)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{o}: prior of the log odds ratio")
        ax.set_xlabel("log OR (treatment vs control)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, **_png_options(path))
    plt.close(fig)
    return path
