"""The standard figure set of a fit (:func:`make_figures`, :func:`submit_figures`) and the helper processes'
warm-up."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from bayes_rescue import workers
from bayes_rescue.data.counts import Labels
from bayes_rescue.outputs.figures.base import (
    DEFAULT_FORMATS,
    LEFT_ARROW,
    PNG_DPI,
    RIGHT_ARROW,
    _labels_of,
    _results,
    _style,
    figure_paths,
)
from bayes_rescue.outputs.figures.densities import (
    benefit_curve_data,
    headline_data,
    plot_benefit_curve,
    plot_headline,
    plot_prior_posterior,
    prior_posterior_data,
)
from bayes_rescue.outputs.figures.forest import forest_data, plot_forest
from bayes_rescue.outputs.figures.ranks import plot_rank, plot_rank_many, rank_data, rank_data_many


def warm_up() -> None:
    """Load what drawing the first figure loads (the fonts, the Agg renderer, PNG and SVG writers): a helper
    process (:mod:`bayes_rescue.workers`) calls this while the main process is still fitting."""
    import io

    with _style():
        fig = Figure(figsize=(1, 1))  # no pyplot: the helper's back end is never chosen
        ax = fig.subplots()
        ax.set_title("Warm-up 0.1")
        ax.set_xlabel(f"{LEFT_ARROW} x {RIGHT_ARROW}")
        for fmt in ("png", "svg"):
            fig.savefig(io.BytesIO(), format=fmt, dpi=PNG_DPI)


def summary_mcids(summary: pd.DataFrame) -> tuple[float, ...]:
    """The MCIDs of a summary table, from its ``p_benefit_ge_<m>`` columns, smallest first."""
    out = []
    for c in summary.columns:
        try:
            out.append(float(str(c).removeprefix("p_benefit_ge_"))) if str(c).startswith("p_benefit_ge_") else None
        except ValueError:
            continue
    return tuple(sorted(out))


def submit_figures(results, summary: pd.DataFrame, outdir: Path, formats: Sequence[str], labels) -> list:
    """:func:`make_figures` without the waiting: compute the standard figures' numbers here and send each
    drawing to the current helper processes (:func:`bayes_rescue.workers.current`: those of an enclosing
    ``with Workers(...)`` block; without one, drawn here when asked for).
    Returns the pending tasks; each ``.result()`` is a figure's stem path."""
    results = _results(results)
    labels = _labels_of(results, labels)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    kw = {"labels": labels, "formats": tuple(formats)}
    rank = (plot_rank, rank_data(results[0])) if len(results) == 1 else (plot_rank_many, rank_data_many(results))
    jobs = [  # the costliest first
        (*rank, outdir / "rank"),
        (plot_headline, headline_data(results, mcids=summary_mcids(summary) or (0.05, 0.1)), outdir / "headline"),
        (plot_prior_posterior, prior_posterior_data(results), outdir / "prior_posterior"),
        (plot_forest, forest_data(summary), outdir / "forest"),
        (plot_benefit_curve, benefit_curve_data(results), outdir / "benefit_curve"),
    ]
    pool = workers.current()
    return [pool.submit(plot, data, path, **kw) for plot, data, path in jobs]


def make_figures(
    results,
    summary: pd.DataFrame,
    outdir: Path,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    labels: Labels | None = None,
) -> list[Path]:
    """Write the standard figures into ``outdir``, each in every one of ``formats``; return the paths.

    ``results``: one fit result or a list. Several priors share one figure set, so they can be compared:
    ``headline`` (every estimand's posterior under every prior, with the MCIDs), ``prior_posterior``,
    ``forest`` and ``benefit_curve`` show every prior, and ``rank`` shows every
    parameter of one prior, or one row per prior of its effect parameters. ``labels``: the names of
    outcomes, subgroups and arms (default: those of the results' counts). The helper processes of an enclosing
    ``with bayes_rescue.workers.Workers(...)`` block draw them (:func:`submit_figures`); the files are the same
    either way.
    """
    pending = submit_figures(results, summary, outdir, formats, labels)
    stems = [p.result() for p in pending]
    order = ["headline", "prior_posterior", "forest", "benefit_curve", "rank"]
    stems.sort(key=lambda s: order.index(Path(s).stem))
    return [p for s in stems for p in figure_paths(s, formats)]
