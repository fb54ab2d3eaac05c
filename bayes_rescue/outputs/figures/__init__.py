"""Figures: one home for every figure the package draws. Each figure takes its numbers from a ``*_data``
function that returns a table (so the numbers, colours and line styles can be tested without images), and
each ``plot_*`` function draws that table: it returns ``(fig, axes)``, or, given a ``path``, writes the
figure there (:func:`~bayes_rescue.outputs.figures.base.finish`) and returns the first file's path.

Every figure is drawn for a journal page: 85 mm (one column) or 180 mm (two columns) wide, text of at
least 7 pt at that size, written as PNG at 300 dpi and as SVG with editable text (``svg.fonttype =
"none"``), or PDF (TrueType fonts) on request (:data:`FORMATS`). Names come from the counts file's labels
(:class:`bayes_rescue.data.counts.Labels`), and every risk-difference axis says which side favours which
arm, in the outcome's own direction (for mortality, a negative RD favours treatment). Series (priors,
bias models) get distinct colour-blind-safe colours and line styles (:func:`series_styles`).

Importing this package does not choose or switch matplotlib's back end: saved figures are drawn on plain
:class:`matplotlib.figure.Figure` objects, returned ones with ``pyplot`` under the user's back end.

Modules: :mod:`.base` (style, sizes, series styles, saving), :mod:`.forest`, :mod:`.densities` (headline,
prior vs posterior, benefit curve, KDE), :mod:`.ranks` (rank plots, SBC), :mod:`.grid` (heat maps, priors,
assurance), :mod:`.standard` (the set a fit writes).
"""

from bayes_rescue.outputs.figures.base import (
    DEFAULT_FORMATS,
    FORMATS,
    LEFT_ARROW,
    LINE_STYLES,
    MIN_FONT_PT,
    MM,
    OKABE_ITO,
    PNG_DPI,
    PNG_PIL_OPTIONS,
    RIGHT_ARROW,
    STYLE,
    WIDTH_DOUBLE,
    WIDTH_SINGLE,
    _annotate_favours,
    _density_range,
    _labels_of,
    _legend_above,
    _results,
    _save,
    _style,
    balanced_columns,
    effect_axis_limits,
    favours,
    figure_paths,
    finish,
    legend_height,
    legend_right,
    legend_width,
    series_label,
    series_styles,
    subplots,
    with_styles,
)
from bayes_rescue.outputs.figures.densities import (
    benefit_curve_data,
    headline_data,
    kde,
    plot_benefit_curve,
    plot_headline,
    plot_prior_posterior,
    prior_posterior_data,
)
from bayes_rescue.outputs.figures.forest import forest_data, plot_forest
from bayes_rescue.outputs.figures.grid import (
    heatmap_data,
    percent_text,
    plot_assurance,
    plot_heatmaps,
    plot_priors,
    priors_data,
    probability_caption,
)
from bayes_rescue.outputs.figures.ranks import (
    PARAMETER_NAMES,
    RANK_PARAMETERS,
    RANK_PARAMETERS_MANY,
    parameter_label,
    plot_rank,
    plot_rank_many,
    plot_ranks,
    rank_data,
    rank_data_many,
)
from bayes_rescue.outputs.figures.standard import make_figures, submit_figures, summary_mcids, warm_up

__all__ = [
    "DEFAULT_FORMATS", "FORMATS", "LEFT_ARROW", "LINE_STYLES", "MIN_FONT_PT", "MM", "OKABE_ITO", "PARAMETER_NAMES",
    "PNG_DPI", "PNG_PIL_OPTIONS", "RANK_PARAMETERS", "RANK_PARAMETERS_MANY", "RIGHT_ARROW", "STYLE", "WIDTH_DOUBLE",
    "WIDTH_SINGLE", "_annotate_favours", "_density_range", "_labels_of", "_legend_above", "_results", "_save",
    "_style", "balanced_columns", "benefit_curve_data", "effect_axis_limits", "favours", "figure_paths", "finish",
    "forest_data", "headline_data", "heatmap_data", "kde", "legend_height", "legend_right", "legend_width",
    "make_figures",
    "parameter_label", "percent_text", "plot_assurance", "plot_benefit_curve", "plot_forest", "plot_headline",
    "plot_heatmaps", "plot_prior_posterior", "plot_priors", "plot_rank", "plot_rank_many", "plot_ranks",
    "prior_posterior_data", "priors_data", "probability_caption", "rank_data", "rank_data_many", "series_label",
    "series_styles",
    "submit_figures", "subplots", "summary_mcids", "warm_up", "with_styles",
]  # fmt: skip
