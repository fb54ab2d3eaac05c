"""Figures. Each figure takes its numbers from a ``*_data`` function that returns a table, so the numbers
can be tested without images; the ``plot_*`` functions only draw.

Every figure is drawn for a journal page: 85 mm (one column) or 180 mm (two columns) wide, text of at
least 7 pt at that size, written as PNG at 300 dpi and as SVG with editable text (``svg.fonttype =
"none"``), or PDF (TrueType fonts) on request (:data:`FORMATS`). Names come from the counts file's labels
(:class:`bayes_rescue.data.counts.Labels`), and every risk-difference axis says which side favours which
arm, in the outcome's own direction (for mortality, a negative RD favours treatment).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

from bayes_rescue.data.counts import OVERALL, Labels, benefit_sign
from bayes_rescue.workers import NO_POOL

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.transforms import blended_transform_factory

if TYPE_CHECKING:
    from bayes_rescue.data.counts import CountsData
    from bayes_rescue.priors.spec import PriorSpec

# The drawing functions (``plot_*``) need only matplotlib, NumPy and pandas, so that a helper process that
# only draws (:mod:`bayes_rescue.workers`) starts quickly; SciPy, xarray and the DataTree readers are imported
# by the ``*_data`` functions that use them.

MM = 1 / 25.4
#: Figure widths (inches) of one and two journal columns (85 mm and 180 mm).
WIDTH_SINGLE = 85 * MM
WIDTH_DOUBLE = 180 * MM
#: Smallest font size (pt) at print size.
MIN_FONT_PT = 7.0
#: File formats a figure can be written in; the default set.
FORMATS = ("png", "svg", "pdf")
DEFAULT_FORMATS = ("png", "svg")
PNG_DPI = 300
#: zlib level 1 instead of Pillow's default 6 for PNGs: the four 300-dpi PNGs of a fit encode in 190 instead of
#: 270 ms, 13% larger.
PNG_PIL_OPTIONS = {"compress_level": 1}
#: Style of every figure: sizes in points at print size, editable SVG text, TrueType in PDF.
STYLE = {
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 8,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 1.0,
    "legend.frameon": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "bayes_rescue",  # fixed ids (not a random salt per process): the same figure, the same file
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}
#: Unicode arrows of the favours annotation.
LEFT_ARROW, RIGHT_ARROW = "\u2190", "\u2192"


def _style():
    return plt.rc_context(STYLE)


def _results(result) -> list:
    return list(result) if isinstance(result, list | tuple) else [result]


def _labels_of(results, labels: Labels | None) -> Labels:
    if labels is not None:
        return labels
    for r in _results(results):
        data = getattr(getattr(r, "spec", None), "data", None)
        if isinstance(getattr(data, "labels", None), Labels):
            return data.labels
    return Labels()


def favours(direction: str, labels: Labels | None = None) -> tuple[str, str]:
    """The (left, right) captions of a risk-difference axis (treatment - control, negative on the left).

    More events is better (``higher``): a positive RD favours treatment, so the right side reads
    "Favours <treatment label>"; fewer events is better (``lower``, e.g. mortality): a negative RD favours
    treatment, so the left side does.
    """
    labels = labels or Labels()
    t, c = labels.arm("treatment"), labels.arm("control")
    good = benefit_sign(direction) > 0
    return (f"Favours {c}", f"Favours {t}") if good else (f"Favours {t}", f"Favours {c}")


def _annotate_favours(ax, direction: str, labels: Labels) -> None:
    """Write the favours captions under the tick labels, at the axis' ends, with arrows outwards; the x
    label moves down to make room."""
    left, right = favours(direction, labels)
    fig = ax.figure
    width_pt = ax.get_position().width * fig.get_figwidth() * 72
    size = MIN_FONT_PT
    if 0.55 * size * (len(left) + len(right) + 6) > width_pt:  # too long for one line: break after "Favours"
        left, right = left.replace("Favours ", "Favours\n", 1), right.replace("Favours ", "Favours\n", 1)
    common = {"xycoords": "axes fraction", "textcoords": "offset points", "va": "top", "fontsize": size}
    ax.annotate(f"{LEFT_ARROW} {left}", xy=(0, 0), xytext=(0, -15), ha="left", **common)
    ax.annotate(f"{right} {RIGHT_ARROW}", xy=(1, 0), xytext=(0, -15), ha="right", **common)
    ax.xaxis.labelpad = 20 if "\n" in left else 13


def effect_axis_limits(
    values: Iterable[float], *, margin: float = 0.08, step: float = 5.0, bounds: tuple[float, float] = (-100, 100)
) -> tuple[float, float]:
    """Limits of an effect axis that fit the plotted values: their range with 0 included, widened by
    ``margin`` of the span on each side, rounded outwards to a multiple of ``step`` and clipped to
    ``bounds`` (percentage points: a risk difference lies in [-100, 100])."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    lo, hi = min(0.0, float(v.min())) if v.size else -step, max(0.0, float(v.max())) if v.size else step
    pad = margin * max(hi - lo, step)
    lo, hi = np.floor((lo - pad) / step) * step, np.ceil((hi + pad) / step) * step
    return max(bounds[0], float(lo)), min(bounds[1], float(hi))


def _density_range(x: np.ndarray, density: np.ndarray, share: float = 0.005) -> tuple[float, float]:
    """The range of ``x`` where ``density`` exceeds ``share`` of its peak."""
    d = np.asarray(density, float)
    keep = np.flatnonzero(d > share * np.nanmax(d)) if np.isfinite(d).any() and np.nanmax(d) > 0 else []
    return (float(x[keep[0]]), float(x[keep[-1]])) if len(keep) else (float(x[0]), float(x[-1]))


def balanced_columns(n: int, max_cols: int) -> int:
    """Columns of a grid of ``n`` panels with at most ``max_cols`` per row and rows as full as possible
    (4 panels, at most 3 a row: 2 x 2, not 3 + 1)."""
    rows = int(np.ceil(n / max_cols))
    return int(np.ceil(n / rows)) if n else 1


def _legend_above(fig, handles, names, ncol: int, *, top_in: float = 0.45) -> None:
    """A legend centred above the axes, with ``top_in`` inches between the figure's top and the axes."""
    fig.subplots_adjust(top=1 - top_in / fig.get_figheight())
    if handles:
        fig.legend(handles, names, loc="upper center", ncol=ncol, bbox_to_anchor=(0.5, 1.0))


def _save(fig, path: Path, formats: Sequence[str] | None = None) -> Path:
    """Write ``fig`` in each of ``formats`` (default: the suffix of ``path``) next to ``path``; PNG at
    :data:`PNG_DPI`. Returns the path of the first format written."""
    path = Path(path)
    formats = tuple(formats) if formats else (path.suffix.lstrip(".") or "png",)
    fig.set_dpi(PNG_DPI)  # measure text as the PNG renders it (hinting differs between resolutions)
    fig.draw_without_rendering()  # lay out once: the tight box is shared by every format
    bbox = fig.get_tightbbox().padded(0.04)
    written = []
    for fmt in formats:
        out = path.with_suffix(f".{fmt}")
        meta = {"Date": None} if fmt in ("svg", "pdf") else {}  # no creation time: the same figure, the same file
        fast_png = {"pil_kwargs": PNG_PIL_OPTIONS} if fmt == "png" else {}
        fig.savefig(out, dpi=PNG_DPI, bbox_inches=bbox, metadata=meta, **fast_png)
        written.append(out)
    plt.close(fig)
    return written[0]


def figure_paths(path: Path, formats: Sequence[str]) -> list[Path]:
    """Every file :func:`_save` writes for ``path`` in ``formats``."""
    return [Path(path).with_suffix(f".{f}") for f in formats]


# --------------------------------------------------------------------------------------------- forest


def forest_data(summary: pd.DataFrame) -> pd.DataFrame:
    """Per prior x estimand (x bias model, if the summary has a ``bias`` column): posterior RD (median,
    95% ETI) beside the raw RD (Newcombe 95% CI), with the outcome's ``direction``."""
    from bayes_rescue.data.check import newcombe_rd

    rows = []
    for _, r in summary.iterrows():
        d, lo, hi = newcombe_rd(int(r["y_t"]), int(r["n_t"]), int(r["y_c"]), int(r["n_c"]))
        rows.append(
            {
                "prior": r["prior"],
                "outcome": r["outcome"],
                "subgroup": r["subgroup"],
                "level": r["level"],
                "direction": r["direction"],
                "bias": r["bias"] if "bias" in summary.columns else "none",
                "posterior_rd_median": r["rd_median"],
                "posterior_rd_eti95_lb": r["rd_eti95_lb"],
                "posterior_rd_eti95_ub": r["rd_eti95_ub"],
                "raw_rd": d,
                "raw_rd_ci95_lb": lo,
                "raw_rd_ci95_ub": hi,
            }
        )
    return pd.DataFrame(rows)


def _pp(x: float) -> str:
    return f"{100 * x:+.1f}".replace("-", "\u2212")


def _interval_text(r) -> str:
    med, lo, hi = (r[f"posterior_rd_{k}"] for k in ("median", "eti95_lb", "eti95_ub"))
    return f"{_pp(med)} ({_pp(lo)}, {_pp(hi)})"


def plot_forest(
    data: pd.DataFrame, path: Path, *, labels: Labels | None = None, formats: Sequence[str] | None = None
) -> Path:
    """One panel per outcome: a block per subgroup (the whole cohort last), a row per prior; posterior
    median and 95% ETI (one marker per bias model when several), the raw RD and Newcombe 95% CI of the
    block, and the posterior numbers printed on the right."""
    labels = labels or Labels()
    outcomes = list(dict.fromkeys(data["outcome"]))
    priors = list(dict.fromkeys(data["prior"]))
    biases = list(dict.fromkeys(data["bias"])) if "bias" in data else ["none"]
    several = len(priors) > 1
    layout = {}
    for o in outcomes:
        subs = list(dict.fromkeys(data.loc[data["outcome"] == o, "subgroup"]))
        layout[o] = sorted(subs, key=lambda s: s == OVERALL)
    heights = [sum(1 + len(priors) + (0.4 if several else 0) for _ in layout[o]) for o in outcomes]
    row_in = 0.17
    with _style():
        fig, axes = plt.subplots(
            len(outcomes),
            1,
            figsize=(WIDTH_DOUBLE, row_in * sum(heights) + 0.95 * len(outcomes) + 0.2),
            gridspec_kw={"height_ratios": heights, "hspace": 0.95 / (row_in * np.mean(heights))},
            squeeze=False,
        )
        markers = ["o", "D", "^", "v", "P"]
        for ax, o in zip(axes[:, 0], outcomes, strict=True):
            rows = data[data["outcome"] == o]
            y, ticks, ticklabels, bold = 0.0, [], [], []
            xs = []
            for s in layout[o]:
                block = rows[rows["subgroup"] == s]
                raw = block.iloc[0]
                head = f"{labels.subgroup(o, s)}"
                # block header row: the raw RD of the subgroup (the same under every prior)
                ax.errorbar(
                    100 * raw["raw_rd"],
                    -y,
                    xerr=[
                        [100 * (raw["raw_rd"] - raw["raw_rd_ci95_lb"])],
                        [100 * (raw["raw_rd_ci95_ub"] - raw["raw_rd"])],
                    ],
                    fmt="s",
                    color="0.45",
                    mfc="white",
                    ms=3.5,
                    lw=0.8,
                    label="observed RD, Newcombe 95% CI" if not ticks else None,
                )
                xs += [100 * raw["raw_rd_ci95_lb"], 100 * raw["raw_rd_ci95_ub"]]
                ticks.append(-y)
                ticklabels.append(f"{head}  (observed)")
                bold.append(True)
                y += 1
                for pr in priors:
                    for k, b in enumerate(biases):
                        g = block[(block["prior"] == pr) & (block["bias"] == b)]
                        if g.empty:
                            continue
                        r = g.iloc[0]
                        dy = (k - (len(biases) - 1) / 2) * 0.3
                        med, lo, hi = (
                            100 * r[c]
                            for c in ("posterior_rd_median", "posterior_rd_eti95_lb", "posterior_rd_eti95_ub")
                        )
                        name = "posterior median, 95% ETI" + (
                            "" if len(biases) == 1 else f" ({'unadjusted' if b == 'none' else 'bias: ' + str(b)})"
                        )
                        ax.errorbar(
                            med,
                            -(y + dy),
                            xerr=[[med - lo], [hi - med]],
                            fmt=markers[k % len(markers)],
                            color=f"C{k}",
                            ms=3.5,
                            lw=1.0,
                            label=name if (s == layout[o][0] and pr == priors[0]) else None,
                        )
                        xs += [lo, hi]
                        if k == 0:
                            ax.text(
                                1.01,
                                -y,
                                _interval_text(r),
                                transform=blended_transform_factory(ax.transAxes, ax.transData),
                                va="center",
                                fontsize=MIN_FONT_PT,
                            )
                    ticks.append(-y)
                    ticklabels.append(pr if several else "posterior")
                    bold.append(False)
                    y += 1
                y += 0.4 if several else 0
            ax.axvline(0, color="k", lw=0.6)
            ax.set_xlim(*effect_axis_limits(xs))
            ax.set_ylim(-(y - 0.4 if several else y - 1) - 0.6, 0.6)
            ax.set_yticks(ticks, ticklabels)
            ax.tick_params(axis="y", length=0)
            for t, b in zip(ax.get_yticklabels(), bold, strict=True):
                t.set_fontweight("bold" if b else "normal")
            ax.set_title(labels.outcome(o), loc="left")
            ax.text(1.01, 1.0, "median (95% ETI), pp", transform=ax.transAxes, va="bottom", fontsize=MIN_FONT_PT)
            ax.set_xlabel(
                f"risk difference, {labels.arm('treatment')} \u2212 {labels.arm('control')} (percentage points)"
            )
            _annotate_favours(ax, rows["direction"].iloc[0], labels)
        handles, names = axes[0, 0].get_legend_handles_labels()
        _legend_above(fig, handles, names, len(names), top_in=0.5)
        fig.subplots_adjust(right=0.78, bottom=0.55 / fig.get_figheight())
        return _save(fig, path, formats)


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
    return pd.concat(rows, ignore_index=True)


def plot_benefit_curve(
    data: pd.DataFrame, path: Path, *, labels: Labels | None = None, formats: Sequence[str] | None = None
) -> Path:
    """One panel per estimand, a line per prior: P(benefit of treatment >= t) against t."""
    labels = labels or Labels()
    priors = list(dict.fromkeys(data["prior"]))
    keys = list(dict.fromkeys(zip(data["outcome"], data["subgroup"], strict=True)))
    ncol = balanced_columns(len(keys), 3)
    nrow = int(np.ceil(len(keys) / ncol))
    width = WIDTH_SINGLE if ncol == 1 else WIDTH_DOUBLE
    with _style():
        fig, axes = plt.subplots(nrow, ncol, figsize=(width, 0.3 + 1.9 * nrow), squeeze=False, sharey=True)
        for ax, (o, s) in zip(axes.ravel(), keys, strict=False):
            part = data[(data["outcome"] == o) & (data["subgroup"] == s)]
            visible = part[part["p_benefit_ge"] > 0.002]["threshold"]
            x_hi = min(
                100 * float(part["threshold"].max()), 5 * np.ceil(100 * (visible.max() if len(visible) else 0) / 5) + 5
            )
            for i, pr in enumerate(priors):
                g = part[part["prior"] == pr]
                ax.plot(100 * g["threshold"], g["p_benefit_ge"], color=f"C{i % 10}", label=pr)
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
        _legend_above(
            fig, handles if len(priors) > 1 else [], names, min(len(priors), 7), top_in=0.7 if len(priors) > 1 else 0.45
        )
        fig.subplots_adjust(hspace=0.9, wspace=0.12)
        return _save(fig, path, formats)


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
    return pd.concat(rows, ignore_index=True)


def plot_prior_posterior(
    data: pd.DataFrame, path: Path, *, labels: Labels | None = None, formats: Sequence[str] | None = None
) -> Path:
    """Per outcome: each prior's prior density (shaded for one prior, dotted for several) and posterior
    density (solid) of the cohort risk difference."""
    labels = labels or Labels()
    outcomes = list(dict.fromkeys(data["outcome"]))
    priors = list(dict.fromkeys(data["prior"]))
    with _style():
        fig, axes = plt.subplots(
            1, len(outcomes), figsize=(WIDTH_SINGLE if len(outcomes) == 1 else WIDTH_DOUBLE, 2.5), squeeze=False
        )
        for ax, o in zip(axes[0], outcomes, strict=True):
            part = data[data["outcome"] == o]
            spans = []
            for i, pr in enumerate(priors):
                g = part[part["prior"] == pr]
                x = 100 * g["rd"].to_numpy()
                # densities per percentage point
                dp, dq = g["prior_density"].to_numpy() / 100, g["posterior_density"].to_numpy() / 100
                if len(priors) == 1:
                    ax.fill_between(x, dp, color="0.85", label=f"prior ({pr})")
                    ax.plot(x, dq, color="C0", label="posterior")
                else:
                    ax.plot(x, dp, color=f"C{i % 10}", ls=":", lw=0.8)
                    ax.plot(x, dq, color=f"C{i % 10}", label=pr)
                spans += list(_density_range(x, dq))
                if len(priors) == 1:  # one prior: show it whole; several: the posteriors set the axis
                    spans += list(_density_range(x, dp, 0.01))
            ax.axvline(0, color="k", lw=0.6)
            ax.set_xlim(*effect_axis_limits(spans, margin=0.02 if len(priors) == 1 else 0.1))
            ax.set_ylim(0, None)
            ax.set_title(f"{labels.outcome(o)}: whole cohort", loc="left")
            ax.set_xlabel("risk difference (percentage points)")
            ax.set_ylabel("density (per percentage point)")
            _annotate_favours(ax, part["direction"].iloc[0], labels)
        handles, names = axes[0, 0].get_legend_handles_labels()
        if len(priors) > 1:
            from matplotlib.lines import Line2D

            handles += [Line2D([], [], color="0.3"), Line2D([], [], color="0.3", ls=":", lw=0.8)]
            names += ["posterior (solid)", "prior (dotted)"]
        _legend_above(fig, handles, names, 5, top_in=0.45 if len(names) <= 5 else 0.6)
        fig.subplots_adjust(wspace=0.3)
        return _save(fig, path, formats)


# -------------------------------------------------------------------------------------------- ranks

#: Parameters in the rank plot of one prior, and (the effect parameters) of several priors.
RANK_PARAMETERS = ("mu_log_or", "tau_log_or", "delta", "baseline")
RANK_PARAMETERS_MANY = {"hierarchical": ("mu_log_or", "tau_log_or"), "independent": ("delta",)}
#: Names for people of the model's parameters (the labeller of the rank plots).
PARAMETER_NAMES = {
    "mu_log_or": "mean log OR",
    "tau_log_or": "SD of subgroup log ORs",
    "delta": "log OR",
    "baseline": "mean log odds of the arms",
    "bias": "bias (log OR)",
}


def parameter_label(parameter: str, labels: Labels | None = None, *, sep: str = ", ") -> str:
    """``mu_log_or[mrs_0_2]`` -> ``mean log OR, mRS 0-2 at 90 days``; a cell ``outcome/subgroup`` gets
    both labels. ``sep`` joins the parts (a line break for narrow panels)."""
    labels = labels or Labels()
    name, _, item = parameter.partition("[")
    item = item.rstrip("]")
    text = PARAMETER_NAMES.get(name, name)
    if not item:
        return text
    outcome, _, subgroup = item.partition("/")
    where = labels.outcome(outcome) + (f"{sep}{labels.subgroup(outcome, subgroup)}" if subgroup else "")
    return f"{text}{sep}{where}"


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
        ax.step(centres, gc["count"], where="mid", lw=0.8, color=f"C{c % 10}", label=f"chain {c + 1}")
    lo, hi = g["band_lo"].iloc[0], g["band_hi"].iloc[0]  # 99% band of a bin's count if ranks are uniform
    ax.axhspan(lo, hi, color="0.9", zorder=0, label="99% band if uniform" if show_legend else None)
    ax.axhline(expected, color="k", lw=0.6, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
    ax.set_ylim(0, max(hi, g["count"].max()) * 1.15)


def plot_rank(
    data: pd.DataFrame, path: Path, *, labels: Labels | None = None, formats: Sequence[str] | None = None
) -> Path:
    """Rank histograms of one prior's parameters: a panel per parameter, a line per chain, the expected
    count (dashed) and its 99% band under uniform ranks; x: the rank as a fraction of all draws."""
    labels = labels or Labels()
    params = list(dict.fromkeys(data["parameter"]))
    ncol = balanced_columns(len(params), 4)
    nrow = int(np.ceil(len(params) / ncol))
    with _style():
        fig, axes = plt.subplots(nrow, ncol, figsize=(WIDTH_DOUBLE, 1.2 + 1.45 * nrow), squeeze=False)
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
        return _save(fig, path, formats)


def plot_rank_many(
    data: pd.DataFrame, path: Path, *, labels: Labels | None = None, formats: Sequence[str] | None = None
) -> Path:
    """A row per prior, a column per effect parameter: rank histograms per chain (see :func:`plot_rank`)."""
    labels = labels or Labels()
    priors = list(dict.fromkeys(data["prior"]))
    params = list(dict.fromkeys(data["parameter"]))
    with _style():
        fig, axes = plt.subplots(
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
        return _save(fig, path, formats)


def warm_up() -> None:
    """Load what drawing the first figure loads (the fonts, the Agg renderer, PNG and SVG writers): a helper
    process (:mod:`bayes_rescue.workers`) calls this while the main process is still fitting."""
    import io

    with _style():
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_title("Warm-up 0.1")
        ax.set_xlabel(f"{LEFT_ARROW} x {RIGHT_ARROW}")
        for fmt in ("png", "svg"):
            fig.savefig(io.BytesIO(), format=fmt, dpi=PNG_DPI)
        plt.close(fig)


def submit_figures(results, summary: pd.DataFrame, outdir: Path, formats: Sequence[str], labels, pool) -> list:
    """:func:`make_figures` without the waiting: compute the standard figures' numbers here and send each
    drawing to ``pool`` (:class:`bayes_rescue.workers.Workers`, or ``NO_POOL``: drawn here when asked for).
    Returns the pending tasks; each ``.result()`` is a figure's stem path."""
    results = _results(results)
    labels = _labels_of(results, labels)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    kw = {"labels": labels, "formats": tuple(formats)}
    rank = (plot_rank, rank_data(results[0])) if len(results) == 1 else (plot_rank_many, rank_data_many(results))
    jobs = [  # the costliest first
        (*rank, outdir / "rank"),
        (plot_prior_posterior, prior_posterior_data(results), outdir / "prior_posterior"),
        (plot_forest, forest_data(summary), outdir / "forest"),
        (plot_benefit_curve, benefit_curve_data(results), outdir / "benefit_curve"),
    ]
    return [pool.submit(plot, data, path, **kw) for plot, data, path in jobs]


def make_figures(
    results,
    summary: pd.DataFrame,
    outdir: Path,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    labels: Labels | None = None,
    pool=NO_POOL,
) -> list[Path]:
    """Write the standard figures into ``outdir``, each in every one of ``formats``; return the paths.

    ``results``: one fit result or a list. Several priors share one figure set, so they can be compared:
    ``prior_posterior``, ``forest`` and ``benefit_curve`` show every prior, and ``rank`` shows every
    parameter of one prior, or one row per prior of its effect parameters. ``labels``: the names of
    outcomes, subgroups and arms (default: those of the results' counts). ``pool``: helper processes that
    draw them (:func:`submit_figures`); the files are the same either way.
    """
    pending = submit_figures(results, summary, outdir, formats, labels, pool)
    stems = [p.result() for p in pending]
    order = ["prior_posterior", "forest", "benefit_curve", "rank"]
    stems.sort(key=lambda s: order.index(Path(s).stem))
    return [p for s in stems for p in figure_paths(s, formats)]


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
        fig, axes = plt.subplots(nrow, ncol, figsize=(width, height), squeeze=False)
        fig.subplots_adjust(
            left=left / width,
            right=(width - bar) / width,
            top=1 - 0.45 / height,
            bottom=(below - 0.45) / height,
            wspace=gap / panel_w,
            hspace=below / panel_h,
        )
        cmap = plt.get_cmap("RdYlBu")
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
        return _save(fig, Path(path), formats)


# ------------------------------------------------------------------------------------------------ SBC


def plot_ranks(ranks: pd.DataFrame, path, *, n_rank_draws: int, bins: int = 10, formats: Sequence[str] | None = None):
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
        fig, axes = plt.subplots(
            nrow, ncol, figsize=(WIDTH_SINGLE if ncol == 1 else WIDTH_DOUBLE, height), squeeze=False
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
        return _save(fig, Path(path), formats)


# ------------------------------------------------------------------------------------------- priors


def plot_priors(specs: list[PriorSpec], data: CountsData, path: Path, *, formats: Sequence[str] | None = None) -> Path:
    """Density of every prior's log OR, one panel per outcome, with the favours captions (a positive log
    OR of the outcome's event favours treatment when more events is better)."""
    labels = data.labels
    outcomes = data.outcomes
    x = np.linspace(-5, 5, 1001)
    colours = plt.get_cmap("tab20").colors
    with _style():
        fig, axes = plt.subplots(
            1, len(outcomes), figsize=(WIDTH_SINGLE if len(outcomes) == 1 else WIDTH_DOUBLE, 2.6), squeeze=False
        )
        for ax, o in zip(axes[0], outcomes, strict=True):
            spans = []
            for i, spec in enumerate(specs):
                style = "--" if "_robust" in spec.name or "_disc" in spec.name else "-"
                y = np.exp(spec.effect_for(o).logpdf(x))
                ax.plot(x, y, style, color=colours[i % 20], label=spec.name)
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
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return _save(fig, Path(path), formats)


def plot_assurance(data: pd.DataFrame, path: Path, *, title: str = "", mark_n: int | None = None) -> Path:
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
    fig, ax = plt.subplots(figsize=(7, 4.5))
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
    return _save(fig, path)
