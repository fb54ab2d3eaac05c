"""The forest plot: posterior risk differences per prior (and bias model) beside the observed ones."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.transforms import blended_transform_factory

from bayes_rescue.data.counts import OVERALL, Labels
from bayes_rescue.outputs.figures.base import (
    MIN_FONT_PT,
    OKABE_ITO,
    WIDTH_DOUBLE,
    _annotate_favours,
    _legend_above,
    _style,
    effect_axis_limits,
    finish,
    subplots,
)

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
    data: pd.DataFrame, path: Path | None = None, *, labels: Labels | None = None, formats: Sequence[str] | None = None
):
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
        fig, axes = subplots(
            path,
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
                            color=OKABE_ITO[k % len(OKABE_ITO)],
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
        return finish(fig, axes, path, formats)
