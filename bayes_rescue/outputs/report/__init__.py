"""``report.html``: one self-contained HTML file that tells what a run found, as a reanalysis report.

:func:`build_report` reads only the run folder (``manifest.json``, ``summary.csv``, ``inputs/*.csv`` and
``inputs/*.toml``, the ``*.nc`` trees (root attributes, and the prior draws of each estimand),
``figures/*.svg`` or ``*.png``, ``evalues.csv``, ``grid.csv``, ``tipping.csv``) and renders
``outputs/templates/report.html.j2`` with Jinja2 (autoescape on). The one exception: when the manifest names
a *bundled* dataset and its sha256 equals the package's copy, that copy's record of the figures printed in
the source (citation, reported P values) is used too, and its counts when the folder holds none.

The page opens with a short conclusion, an at-a-glance table (a row per outcome and subgroup, a column
group per prior and bias model: RD median (95% CrI), P(benefit), P(>= each MCID) and the prior's own
P(benefit) of that estimand) and a warnings box (failed diagnostics, prior-data conflict, counts derived
from percentages, a non-randomised comparison, the E-values); then the headline figure, the data, the
priors, the full results, the other figures, the bias analysis (only with ``--bias``), sensitivity and
tipping points, diagnostics, a reporting checklist (ROBUST and BARG items, each with where it is
answered) and how to reproduce the run. A section is there only when it has content. Names are the data
file's labels (:mod:`bayes_rescue.outputs.wording`).

The file is self-contained: figures are inline SVG (matplotlib's, checked and with their ids made unique)
or base64 ``data:image/png`` URIs; no scripts, external styles, fonts or images, and a
Content-Security-Policy (``default-src 'none'; img-src data:; style-src 'unsafe-inline'``) under which a
browser would refuse to run or load anything else. Everything read from a file is escaped, except SVG
figures, which are inserted as markup only after :func:`inline_svg` has checked them.

Probabilities are printed to three decimals, never as ``1.000`` or ``0.000``: values that would round
to those are printed ``>0.999`` and ``<0.001`` (:func:`fmt_prob`).

Modules: :mod:`.basics` (formatting, tables, reading), :mod:`.svg` (figures), :mod:`.data` (data and
priors), :mod:`.results` (summary, results, at a glance), :mod:`.checks` (warnings, checklist),
:mod:`.sections` (diagnostics, bias, sensitivity, reproduce), :mod:`.build`.
"""

from bayes_rescue.outputs.report.basics import (
    Table,
    _per_prior,
    fmt_cell,
    fmt_interval,
    fmt_pp,
    fmt_prob,
    fmt_ratio,
    frame_table,
    mcid_columns,
    tree_attrs,
)
from bayes_rescue.outputs.report.build import build_report, run_name, write_report
from bayes_rescue.outputs.report.checks import checklist, warnings_box
from bayes_rescue.outputs.report.data import data_section, prior_specs, prior_view
from bayes_rescue.outputs.report.results import (
    conclusion,
    fit_label,
    glance_tables,
    nnt_cell,
    prior_benefit,
    results_table,
    summary_sentences,
)
from bayes_rescue.outputs.report.sections import (
    EVALUE_TEXT,
    bias_section,
    diagnostics_tables,
    evalues_section,
    reproduce_section,
    sensitivity_section,
)
from bayes_rescue.outputs.report.svg import (
    CAPTIONS,
    PNG_SIGNATURE,
    SVG_NS,
    Figure,
    FigureRejected,
    caption_for,
    collect_figures,
    inline_svg,
    png_data_uri,
)

__all__ = [
    "CAPTIONS",
    "EVALUE_TEXT",
    "PNG_SIGNATURE",
    "SVG_NS",
    "Figure",
    "FigureRejected",
    "Table",
    "_per_prior",
    "bias_section",
    "build_report",
    "caption_for",
    "checklist",
    "collect_figures",
    "conclusion",
    "data_section",
    "diagnostics_tables",
    "evalues_section",
    "fit_label",
    "fmt_cell",
    "fmt_interval",
    "fmt_pp",
    "fmt_prob",
    "fmt_ratio",
    "frame_table",
    "glance_tables",
    "inline_svg",
    "mcid_columns",
    "nnt_cell",
    "png_data_uri",
    "prior_benefit",
    "prior_specs",
    "prior_view",
    "reproduce_section",
    "results_table",
    "run_name",
    "sensitivity_section",
    "summary_sentences",
    "tree_attrs",
    "warnings_box",
    "write_report",
]  # fmt: skip
