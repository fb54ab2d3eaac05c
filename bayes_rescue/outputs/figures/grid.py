"""Figures of the other commands: the sensitivity heat maps, the priors (``priors --plot``) and the
assurance curve (``predict``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import pandas as pd

from bayes_rescue.data.counts import Labels
from bayes_rescue.outputs.figures.base import (
    MIN_FONT_PT,
    WIDTH_DOUBLE,
    WIDTH_SINGLE,
    _annotate_favours,
    _density_range,
    _legend_above,
    _style,
    balanced_columns,
    effect_axis_limits,
    finish,
    series_styles,
    subplots,
)

if TYPE_CHECKING:
    from bayes_rescue.data.counts import CountsData
    from bayes_rescue.priors.spec import PriorSpec

# ---------------------------------------------------------------------------------------- heat maps


def heatmap_data(
    grid: pd.DataFrame, column: str = "p_benefit", *, robust: float = 0.0
) -> dict[tuple[str, str], pd.DataFrame]:
    """Pivot tables (rows sd, columns centre) of ``column`` per outcome x estimand, for the heat maps."""
    g = grid[grid["robust"] == robust]
    return {
        key: part.pivot(index="sd", columns="centre_benefit", values=column)
        for key, part in g.groupby(["outcome", "subgroup"], sort=False)
    }


def percent_text(p: float) -> str:
    """A probability as a whole percentage for a heat-map cell: ``95``, ``<1``, ``>99``, or blank if
    missing."""
    if not np.isfinite(p):
        return ""
    if p < 0.005:
        return "<1"
    if p > 0.995:
        return ">99"
    return f"{100 * p:.0f}"


def probability_caption(column: str, labels: Labels | None = None) -> str:
    """The colour-bar label of a probability column in words: ``p_benefit`` -> "probability that rescue
    EVT is better (%)", ``p_benefit_ge_0.05`` -> "... better by >= 5 percentage points (%)"."""
    labels = labels or Labels()
    t = labels.arm("treatment")
    if column == "p_benefit":
        return f"probability that {t} is better (%)"
    if column.startswith("p_benefit_ge_"):
        m = float(column.removeprefix("p_benefit_ge_"))
        return f"probability that {t} is better\nby \u2265 {100 * m:g} percentage points (%)"
    return column.replace("_", " ")


def plot_heatmaps(
    grid: pd.DataFrame,
    path,
    column: str = "p_benefit",
    *,
    robust: float = 0.0,
    labels: Labels | None = None,
    formats: Sequence[str] | None = None,
):
    """Heat maps of ``column`` over the prior grid (rows: prior sd; columns: prior centre), a panel per
    estimand, each cell printed as a whole percentage; the figure grows with the grid so that labels do
    not overlap."""
    labels = labels or Labels()
    tables = heatmap_data(grid, column, robust=robust)
    n = len(tables)
    n_rows = max(t.shape[0] for t in tables.values())
    n_cols = max(t.shape[1] for t in tables.values())
    cell_w, cell_h = 0.34, 0.26  # inches: a 3-character label at 7 pt fits
    panel_w = max(1.2, cell_w * n_cols)
    gap, left, bar = 0.45, 0.55, 1.0  # inches between panels, for the y label, for the colour bar
    ncol = balanced_columns(n, max(1, int((WIDTH_DOUBLE - left - bar + gap) // (panel_w + gap))))
    nrow = int(np.ceil(n / ncol))
    panel_h = cell_h * n_rows
    below = 1.3 if n_cols > 8 else 1.05  # inches under a panel: ticks (rotated when many), 2-line label, title
    width = left + ncol * panel_w + (ncol - 1) * gap + bar
    height = 0.45 + nrow * (panel_h + below)
    with _style():
        fig, axes = subplots(path, nrow, ncol, figsize=(width, height), squeeze=False)
        fig.subplots_adjust(
            left=left / width,
            right=(width - bar) / width,
            top=1 - 0.45 / height,
            bottom=(below - 0.45) / height,
            wspace=gap / panel_w,
            hspace=below / panel_h,
        )
        cmap = matplotlib.colormaps["RdYlBu"]
        for ax, ((o, s), t) in zip(axes.ravel(), tables.items(), strict=False):
            im = ax.imshow(100 * t.to_numpy(), origin="lower", aspect="auto", vmin=0, vmax=100, cmap=cmap)
            ax.set_xticks(range(t.shape[1]), [f"{c:g}" for c in t.columns], rotation=90 if t.shape[1] > 8 else 0)
            ax.set_yticks(range(t.shape[0]), [f"{v:g}" for v in t.index])
            for i in range(t.shape[0]):
                for j in range(t.shape[1]):
                    v = t.iat[i, j]
                    dark = np.isfinite(v) and (v < 0.2 or v > 0.8)
                    ax.text(
                        j,
                        i,
                        percent_text(v),
                        ha="center",
                        va="center",
                        fontsize=MIN_FONT_PT,
                        color="w" if dark else "k",
                    )
            ax.set_title(f"{labels.outcome(o)}\n{labels.subgroup(o, s)}", loc="left", fontsize=7.5)
            ax.set_xlabel(f"prior centre, log OR\n(> 0 favours {labels.arm('treatment')})")
            ax.spines[:].set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("prior SD (log OR)")
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        pos = axes[0, -1].get_position()
        y0 = axes[-1, 0].get_position().y0
        cax = fig.add_axes((1 - (bar - 0.12) / width, y0, 0.12 / width, pos.y1 - y0))
        colour_bar = fig.colorbar(im, cax=cax)
        colour_bar.set_label(probability_caption(column, labels))
        return finish(fig, axes, path, formats)


# ------------------------------------------------------------------------------------------- priors


def priors_data(specs: list[PriorSpec], data: CountsData, grid: np.ndarray | None = None) -> pd.DataFrame:
    """The priors figure's numbers: each prior's density of the log OR of each outcome (exp of the spec's
    ``logpdf``) on ``grid`` (default 1001 points over [-5, 5]), with the outcome's ``direction`` and the
    series' ``colour`` and ``linestyle`` (a robust or discounted prior dashed)."""
    x = np.linspace(-5, 5, 1001) if grid is None else np.asarray(grid, float)
    styles = series_styles([spec.name for spec in specs])
    rows = []
    for o in data.outcomes:
        for spec in specs:
            colour, style = styles[spec.name]
            dashed = "_robust" in spec.name or "_disc" in spec.name
            rows.append(
                pd.DataFrame(
                    {"prior": spec.name, "outcome": o, "direction": data.directions[o], "log_or": x,
                     "density": np.exp(spec.effect_for(o).logpdf(x)), "colour": colour,
                     "linestyle": "--" if dashed else style}
                )
            )  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def plot_priors(
    specs: list[PriorSpec], data: CountsData, path: Path | None = None, *, formats: Sequence[str] | None = None
):
    """Density of every prior's log OR (:func:`priors_data`), one panel per outcome, with the favours
    captions (a positive log OR of the outcome's event favours treatment when more events is better)."""
    labels = data.labels
    frame = priors_data(specs, data)
    outcomes = list(dict.fromkeys(frame["outcome"]))
    with _style():
        fig, axes = subplots(
            path, 1, len(outcomes), figsize=(WIDTH_SINGLE if len(outcomes) == 1 else WIDTH_DOUBLE, 2.6), squeeze=False
        )
        for ax, o in zip(axes[0], outcomes, strict=True):
            spans = []
            for pr, g in frame[frame["outcome"] == o].groupby("prior", sort=False):
                x, y = g["log_or"].to_numpy(), g["density"].to_numpy()
                ax.plot(x, y, g["linestyle"].iloc[0], color=g["colour"].iloc[0], label=pr)
                spans += list(_density_range(x, y, 0.01))
            ax.axvline(0, color="k", lw=0.6)
            lo, hi = effect_axis_limits(spans, margin=0.02, step=0.5, bounds=(-5, 5))
            ax.set_xlim(lo, hi)
            ax.set_ylim(0, None)
            ax.set_title(labels.outcome(o), loc="left")
            ax.set_xlabel(f"log OR, {labels.arm('treatment')} vs {labels.arm('control')}")
            ax.set_ylabel("prior density")
            _annotate_favours(ax, data.directions[o], labels)
        handles, names = axes[0, 0].get_legend_handles_labels()
        _legend_above(fig, handles, names, min(len(names), 6), top_in=0.35 + 0.15 * int(np.ceil(len(names) / 6)))
        fig.subplots_adjust(wspace=0.3)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return finish(fig, axes, path, formats)


def plot_assurance(data: pd.DataFrame, path: Path | None = None, *, title: str = "", mark_n: int | None = None):
    """The assurance curve: probability of success over the total sample size, with a band of +-1.96 Monte
    Carlo standard errors, beside the conditional power at the posterior median effect.

    ``data`` is the table of :func:`bayes_rescue.analyses.prediction.assurance_curve` (columns ``n_total``,
    ``pos``, ``pos_mcse`` and, if present, ``conditional_power``); ``mark_n`` draws a vertical line at a planned
    total. The file type follows the suffix of ``path`` (``.png``, ``.svg``).
    """
    d = data.sort_values("n_total")
    n = d["n_total"].to_numpy()
    pos = d["pos"].to_numpy()
    half = 1.96 * d["pos_mcse"].to_numpy()
    fig, ax = subplots(path, figsize=(7, 4.5))
    ax.fill_between(n, np.clip(pos - half, 0, 1), np.clip(pos + half, 0, 1), color="C0", alpha=0.25, lw=0)
    ax.plot(n, pos, color="C0", marker="o", ms=3, label="probability of success (band: +-1.96 MCSE)")
    if "conditional_power" in d:
        ax.plot(n, d["conditional_power"], color="C1", ls="--", label="power at the posterior median effect")
    for level in (0.8, 0.9):
        ax.axhline(level, color="0.7", lw=0.8, ls=":")
    if mark_n is not None:
        ax.axvline(mark_n, color="0.4", lw=0.8, ls="-.", label=f"planned total n = {mark_n}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("total sample size (1:1)")
    ax.set_ylabel("probability")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return finish(fig, ax, path)
