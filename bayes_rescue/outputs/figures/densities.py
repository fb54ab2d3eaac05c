"""Densities and probabilities of the effect: prior vs posterior, P(benefit >= t), and the headline figure
(the posterior of every estimand under every prior, with the MCIDs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_rescue.data.counts import Labels, benefit_sign
from bayes_rescue.outputs.figures.base import (
    WIDTH_DOUBLE,
    WIDTH_SINGLE,
    _annotate_favours,
    _density_range,
    _legend_above,
    _results,
    _style,
    balanced_columns,
    effect_axis_limits,
    finish,
    legend_height,
    legend_right,
    legend_width,
    series_label,
    subplots,
    with_styles,
)

# --------------------------------------------------------------------------------------- benefit curve


def benefit_curve_data(result, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """P(benefit >= t) over thresholds t (risk difference in the outcome's beneficial direction), per
    prior x estimand. ``result``: one fit result or a list of them.

    For the draws :math:`b_i = s \\cdot RD_i` (:math:`s = +1` if more events is better, else -1),
    :math:`P(b \\ge t) = \\#\\{i: b_i \\ge t\\} / n`.
    """
    from bayes_rescue.model.estimands import estimands
    from bayes_rescue.outputs.trees import effect_draws

    t = np.linspace(0, 0.5, 101) if thresholds is None else np.asarray(thresholds, float)
    rows = []
    for res in _results(result):
        for _, e in estimands(res.spec).iterrows():
            rd = effect_draws(res.tree, outcome=e["outcome"], subgroup=e["subgroup"])["rd"]
            rdb = np.sort(benefit_sign(e["direction"]) * rd.ravel())
            p = 1.0 - np.searchsorted(rdb, t, side="left") / rdb.size  # share of draws >= t
            frame = {"outcome": e["outcome"], "subgroup": e["subgroup"], "threshold": t, "p_benefit_ge": p}
            rows.append(pd.DataFrame({"prior": res.name, **frame}))
    return with_styles(pd.concat(rows, ignore_index=True))


def plot_benefit_curve(
    data: pd.DataFrame, path: Path | None = None, *, labels: Labels | None = None, formats: Sequence[str] | None = None
):
    """One panel per estimand, a line per prior: P(benefit of treatment >= t) against t."""
    labels = labels or Labels()
    priors = list(dict.fromkeys(data["prior"]))
    keys = list(dict.fromkeys(zip(data["outcome"], data["subgroup"], strict=True)))
    ncol = balanced_columns(len(keys), 3)
    nrow = int(np.ceil(len(keys) / ncol))
    width = WIDTH_SINGLE if ncol == 1 else WIDTH_DOUBLE
    with _style():
        fig, axes = subplots(path, nrow, ncol, figsize=(width, 0.3 + 1.9 * nrow), squeeze=False, sharey=True)
        for ax, (o, s) in zip(axes.ravel(), keys, strict=False):
            part = data[(data["outcome"] == o) & (data["subgroup"] == s)]
            visible = part[part["p_benefit_ge"] > 0.002]["threshold"]
            x_hi = min(
                100 * float(part["threshold"].max()), 5 * np.ceil(100 * (visible.max() if len(visible) else 0) / 5) + 5
            )
            for pr in priors:
                g = part[part["prior"] == pr]
                colour, ls = g["colour"].iloc[0], g["linestyle"].iloc[0]
                ax.plot(100 * g["threshold"], g["p_benefit_ge"], color=colour, ls=ls, label=pr)
            for level in (0.5, 0.95):
                ax.axhline(level, color="0.75", lw=0.6, ls="--")
            ax.set_ylim(0, 1.02)
            ax.set_xlim(0, x_hi)
            ax.set_title(f"{labels.outcome(o)}\n{labels.subgroup(o, s)}", loc="left", fontsize=7.5)
            ax.set_xlabel("t (percentage points)")
        for ax in axes[:, 0]:
            ax.set_ylabel(f"P(benefit of {labels.arm('treatment')} \u2265 t)")
        for ax in axes.ravel()[len(keys) :]:
            ax.set_visible(False)
        handles, names = axes[0, 0].get_legend_handles_labels()
        _legend_above(fig, [], [], 1, top_in=0.45)
        if len(priors) > 1:  # a column on the right, outside the panels and their titles
            fig.set_figheight(max(fig.get_figheight(), legend_height(len(names)) + 0.3))
            legend_right(fig, handles, names, width_in=legend_width(names))
        fig.subplots_adjust(hspace=0.9, wspace=0.12)
        return finish(fig, axes, path, formats)


# --------------------------------------------------------------------------------- prior vs posterior


def kde(
    x: np.ndarray,
    *,
    bounds: tuple[float | None, float | None] = (None, None),
    grid_len: int = 1024,
    bw: float | str = "experimental",
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian kernel density of the draws ``x``, with boundary correction at known bounds
    (``arviz_stats``' linear KDE).

    The draws are binned on ``grid_len`` equal bins and the histogram is convolved with a Gaussian kernel
    of bandwidth ``bw`` (ArviZ's ``"experimental"`` rule by default, or a number). With both ``bounds``
    given, the grid spans exactly ``[lower, upper]`` and the histogram is reflected at both ends before
    the convolution: the estimate is :math:`\\hat f(x) = \\frac{1}{nh} \\sum_i [\\phi(\\frac{x - x_i}{h}) +
    \\phi(\\frac{x - (2a - x_i)}{h}) + \\phi(\\frac{x - (2b - x_i)}{h})]` on :math:`[a, b]` (reflection
    method), so no mass leaks past a bound (a risk difference lies in [-1, 1], a probability in [0, 1]).
    Without bounds, the grid spans the draws' range extended by half a standard deviation, without
    reflection. The density is normalised to integrate to 1 over the grid.

    Returns
    -------
    grid, density
        Bin centres and the density there.
    """
    from arviz_stats.base import array_stats

    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2 or np.ptp(x) == 0:
        lo, hi = (bounds[0] if bounds[0] is not None else -1.0), (bounds[1] if bounds[1] is not None else 1.0)
        grid = np.linspace(lo, hi, grid_len)
        return grid, np.zeros(grid_len)
    if bounds[0] is not None and bounds[1] is not None:
        kwargs = {"custom_lims": [float(bounds[0]), float(bounds[1])], "bound_correction": True}
    else:
        kwargs = {"extend": True, "extend_fct": 0.5, "bound_correction": False}
    grid, pdf, _ = array_stats.kde(x, grid_len=grid_len, bw=bw, **kwargs)
    return np.asarray(grid), np.asarray(pdf)


def prior_posterior_data(result, n_grid: int = 1024) -> pd.DataFrame:
    """Kernel densities (:func:`kde`, reflected at -1 and 1) of the cohort-level RD under the prior and
    the posterior, on a common grid over [-1, 1], per prior x outcome, with the outcome's ``direction``.
    ``result``: one fit result or a list of them."""
    from bayes_rescue.model.estimands import estimands
    from bayes_rescue.outputs.trees import effect_draws, prior_effect_draws

    rows = []
    for res in _results(result):
        est = estimands(res.spec)
        for _, e in est[est["level"] == "cohort"].iterrows():
            a = prior_effect_draws(res.tree, outcome=e["outcome"], subgroup=e["subgroup"])["rd"]
            b = effect_draws(res.tree, outcome=e["outcome"], subgroup=e["subgroup"])["rd"]
            grid, prior_density = kde(a, bounds=(-1, 1), grid_len=n_grid)
            _, posterior_density = kde(b, bounds=(-1, 1), grid_len=n_grid)
            rows.append(
                pd.DataFrame(
                    {
                        "prior": res.name,
                        "outcome": e["outcome"],
                        "direction": e["direction"],
                        "rd": grid,
                        "prior_density": prior_density,
                        "posterior_density": posterior_density,
                    }
                )
            )
    return with_styles(pd.concat(rows, ignore_index=True))


def plot_prior_posterior(
    data: pd.DataFrame, path: Path | None = None, *, labels: Labels | None = None, formats: Sequence[str] | None = None
):
    """Per outcome: each prior's posterior density of the cohort risk difference, and its prior density
    (shaded for one prior; for several, a thin faint line in the posterior's colour and style)."""
    labels = labels or Labels()
    outcomes = list(dict.fromkeys(data["outcome"]))
    priors = list(dict.fromkeys(data["prior"]))
    with _style():
        fig, axes = subplots(
            path, 1, len(outcomes), figsize=(WIDTH_SINGLE if len(outcomes) == 1 else WIDTH_DOUBLE, 2.5), squeeze=False
        )
        for ax, o in zip(axes[0], outcomes, strict=True):
            part = data[data["outcome"] == o]
            spans = []
            for pr in priors:
                g = part[part["prior"] == pr]
                colour, ls = g["colour"].iloc[0], g["linestyle"].iloc[0]
                x = 100 * g["rd"].to_numpy()
                # densities per percentage point
                dp, dq = g["prior_density"].to_numpy() / 100, g["posterior_density"].to_numpy() / 100
                if len(priors) == 1:
                    ax.fill_between(x, dp, color="0.85", label=f"prior ({pr})")
                    ax.plot(x, dq, color="C0", label="posterior")
                else:
                    ax.plot(x, dp, color=colour, ls=ls, lw=0.6, alpha=0.45)
                    ax.plot(x, dq, color=colour, ls=ls, lw=1.1, label=pr)
                spans += list(_density_range(x, dq))
                if len(priors) == 1:  # one prior: show it whole; several: the posteriors set the axis
                    spans += list(_density_range(x, dp, 0.01))
            ax.axvline(0, color="k", lw=0.6)
            ax.set_xlim(*effect_axis_limits(spans, margin=0.02 if len(priors) == 1 else 0.1))
            ax.set_ylim(0, None)
            ax.set_title(f"{labels.outcome(o)}\nwhole cohort", loc="left")
            ax.set_xlabel("risk difference (percentage points)")
            ax.set_ylabel("density (per percentage point)")
            _annotate_favours(ax, part["direction"].iloc[0], labels)
        handles, names = axes[0, 0].get_legend_handles_labels()
        if len(priors) > 1:
            from matplotlib.lines import Line2D

            handles += [Line2D([], [], color="0.3", lw=1.1), Line2D([], [], color="0.3", lw=0.6, alpha=0.45)]
            names += ["posterior (bold)", "prior (thin, faint)"]
            _legend_above(fig, [], [], 1, top_in=0.45)  # the panels keep the width; the legend goes below them
            fig.subplots_adjust(bottom=0.75 / fig.get_figheight())
            fig.legend(handles, [series_label(n) for n in names], loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3)
        else:
            _legend_above(fig, handles, names, 5, top_in=0.6)
        fig.subplots_adjust(wspace=0.3)
        return finish(fig, axes, path, formats)


# ------------------------------------------------------------------------------------------ headline


def headline_data(result, *, mcids: Sequence[float] = (0.05, 0.1), n_grid: int = 512) -> pd.DataFrame:
    """The headline figure's numbers: per prior x estimand (every subgroup and the whole cohort), the
    posterior density (:func:`kde`, reflected at -1 and 1) of the RD on a grid over [-1, 1], P(benefit)
    and P(benefit >= m) for each MCID m (shares of the draws on the outcome's better side), and the
    series' ``colour`` and ``linestyle`` (:func:`~bayes_rescue.outputs.figures.base.series_styles`).
    The MCIDs are in the ``mcid`` column as the text ``"0.05 0.1"``."""
    from bayes_rescue.model.estimands import estimands
    from bayes_rescue.outputs.trees import effect_draws

    rows = []
    for res in _results(result):
        for _, e in estimands(res.spec).iterrows():
            rd = np.asarray(effect_draws(res.tree, outcome=e["outcome"], subgroup=e["subgroup"])["rd"]).ravel()
            grid, density = kde(rd, bounds=(-1, 1), grid_len=n_grid)
            b = benefit_sign(e["direction"]) * rd
            frame = {
                "prior": res.name,
                "outcome": e["outcome"],
                "subgroup": e["subgroup"],
                "level": e["level"],
                "direction": e["direction"],
                "rd": grid,
                "density": density,
                "p_benefit": float(np.mean(b > 0)),
                **{f"p_benefit_ge_{m:g}": float(np.mean(b >= m)) for m in mcids},
                "mcid": " ".join(f"{m:g}" for m in mcids),
            }
            rows.append(pd.DataFrame(frame))
    return with_styles(pd.concat(rows, ignore_index=True))


def _prob_text(p: float) -> str:
    """``= 0.976``; never ``= 1.000`` or ``= 0.000`` (``> 0.999``, ``< 0.001``)."""
    text = f"{p:.3f}"
    return "> 0.999" if text == "1.000" else "< 0.001" if text == "0.000" else f"= {text}"


def plot_headline(
    data: pd.DataFrame, path: Path | None = None, *, labels: Labels | None = None, formats: Sequence[str] | None = None
):
    """The posterior of each estimand under every prior (small multiples: a panel per estimand, a line per
    prior in its own colour and line style), the side of benefit shaded, the MCIDs as dotted lines, and
    the legend in a column outside the panels. With one prior, the area of benefit under the curve is
    filled and P(benefit) printed in the panel."""
    labels = labels or Labels()
    priors = list(dict.fromkeys(data["prior"]))
    keys = list(dict.fromkeys(zip(data["outcome"], data["subgroup"], strict=True)))
    keys.sort(key=lambda k: (list(dict.fromkeys(data["outcome"])).index(k[0]), k[1] == "overall"))
    mcids = [float(m) for m in str(data["mcid"].iloc[0]).split()] if "mcid" in data else []
    ncol = balanced_columns(len(keys), 2)
    nrow = int(np.ceil(len(keys) / ncol))
    with _style():
        fig, axes = subplots(path, nrow, ncol, figsize=(WIDTH_DOUBLE, 0.5 + 2.0 * nrow), squeeze=False)
        for ax, (o, s) in zip(axes.ravel(), keys, strict=False):
            part = data[(data["outcome"] == o) & (data["subgroup"] == s)]
            sign = benefit_sign(part["direction"].iloc[0])
            spans = []
            for pr in priors:
                g = part[part["prior"] == pr]
                x, y = 100 * g["rd"].to_numpy(), g["density"].to_numpy() / 100  # per percentage point
                ax.plot(x, y, color=g["colour"].iloc[0], ls=g["linestyle"].iloc[0], lw=1.1, label=pr)
                if len(priors) == 1:
                    ax.fill_between(x, y, where=sign * x >= 0, color=g["colour"].iloc[0], alpha=0.25, lw=0)
                    ax.text(
                        0.02 if sign < 0 else 0.98, 0.95, f"P(benefit) {_prob_text(g['p_benefit'].iloc[0])}",
                        transform=ax.transAxes, ha="left" if sign < 0 else "right", va="top",
                        bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                    )  # fmt: skip
                spans += list(_density_range(x, y))
            lo, hi = effect_axis_limits(spans, margin=0.05)
            ax.axvspan(0, hi if sign > 0 else lo, color="#009E73", alpha=0.07, lw=0, zorder=0)
            ax.axvline(0, color="k", lw=0.6)
            for m in mcids:
                ax.axvline(100 * sign * m, color="0.35", lw=0.7, ls=(0, (1, 1.5)), gid="mcid")
            ax.set_xlim(lo, hi)
            ax.set_ylim(0, None)
            ax.set_title(f"{labels.outcome(o)}\n{labels.subgroup(o, s)}", loc="left", fontsize=7.5)
            ax.set_xlabel("risk difference (percentage points)")
            ax.set_yticks([])
            _annotate_favours(ax, part["direction"].iloc[0], labels)
        for ax in axes[:, 0]:
            ax.set_ylabel("posterior density")
        for ax in axes.ravel()[len(keys) :]:
            ax.set_visible(False)
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles, names = axes[0, 0].get_legend_handles_labels()
        if len(priors) == 1:
            handles, names = [], []
        handles += [Patch(color="#009E73", alpha=0.15), Line2D([], [], color="0.35", lw=0.7, ls=(0, (1, 1.5)))]
        names += ["benefit side", "MCID " + ", ".join(f"{100 * m:g}" for m in mcids) + " points" if mcids else "MCID"]
        if len(priors) == 1:  # two entries: a row above the panels
            _legend_above(fig, handles, names, len(names), top_in=0.75)
            height = fig.get_figheight()
            fig.subplots_adjust(hspace=1.3, wspace=0.2, bottom=0.6 / height)
        else:
            fig.set_figheight(max(fig.get_figheight(), legend_height(len(names)) + 0.3))
            height = fig.get_figheight()
            fig.subplots_adjust(top=1 - 0.45 / height, hspace=1.3, wspace=0.12, bottom=0.6 / height)
            legend_right(fig, handles, names, width_in=legend_width(names))
        return finish(fig, axes, path, formats)
