"""Publication figures: favours captions, fitted axes, labels, formats, sizes and fonts, heat-map layout.

References: the direction rule of the README (a positive RD favours treatment when more events is better,
a negative one when fewer is better); the journal sizes asked for (85 / 180 mm wide, text >= 7 pt at that
size, PNG at 300 dpi, SVG with text kept as text); counts and draws computed here from synthetic inputs.
"""

from __future__ import annotations

import itertools
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_plots import _fake_result

from bayes_rescue.data.counts import Labels
from bayes_rescue.outputs import figures
from bayes_rescue.outputs.figures import (
    effect_axis_limits,
    favours,
    forest_data,
    make_figures,
    parameter_label,
    percent_text,
    plot_heatmaps,
    probability_caption,
)

matplotlib.use("Agg")  # the tests' back end (the package never chooses one)

LABELS = Labels(
    outcomes={"mrs_0_2": "mRS 0-2 at 90 days", "mortality": "mortality at 90 days"},
    subgroups={("mrs_0_2", "a"): "mild anterior circulation"},
    arms={"treatment": "rescue EVT", "control": "medical management"},
)


def test_favours_follows_the_outcome_direction():
    """More events better (mRS 0-2): right = treatment. Fewer events better (mortality): left = treatment."""
    assert favours("higher", LABELS) == ("Favours medical management", "Favours rescue EVT")
    assert favours("lower", LABELS) == ("Favours rescue EVT", "Favours medical management")
    assert favours("higher") == ("Favours control", "Favours treatment")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([8.5, 59.2, 12.0, 66.0], (-10.0, 75.0)),  # 0 included, 8% of the 66-point span on each side
        ([-18.6, 8.4], (-25.0, 15.0)),
        ([-99.0, 99.0], (-100.0, 100.0)),  # never past +-100 percentage points
    ],
)
def test_effect_axis_fits_the_intervals(values, expected):
    """Limits = [min(0, lo), max(0, hi)] widened by 8% of the span, rounded out to 5 points (worked by hand)."""
    assert effect_axis_limits(values) == expected


def _mortality_row(prior: str, **extra) -> dict:
    """One summary row the forest plot reads: the bundled cohort's mortality, 1/20 vs 2/23 (posterior numbers
    made up)."""
    return {
        "prior": prior,
        "outcome": "mortality",
        "subgroup": "overall",
        "level": "cohort",
        "direction": "lower",
        "y_t": 1,
        "n_t": 20,
        "y_c": 2,
        "n_c": 23,
        "rd_median": -0.03,
        "rd_eti95_lb": -0.15,
        "rd_eti95_ub": 0.06,
        **extra,
    }


def test_forest_data_carries_direction_and_raw_interval():
    """The raw RD is (y_t/n_t - y_c/n_c); the Newcombe interval contains it; direction and bias copied."""
    summary = pd.DataFrame([_mortality_row("p", bias="mild")])
    row = forest_data(summary).iloc[0]
    assert row["raw_rd"] == pytest.approx(1 / 20 - 2 / 23)
    assert row["raw_rd_ci95_lb"] < row["raw_rd"] < row["raw_rd_ci95_ub"]
    assert (row["direction"], row["bias"]) == ("lower", "mild")


def test_parameter_labels_use_the_files_names():
    assert parameter_label("mu_log_or[mrs_0_2]", LABELS) == "mean log OR, mRS 0-2 at 90 days"
    assert parameter_label("baseline[mrs_0_2/a]", LABELS, sep="\n") == (
        "mean log odds of the arms\nmRS 0-2 at 90 days\nmild anterior circulation"
    )


@pytest.mark.parametrize(("p", "text"), [(0.0, "<1"), (0.004, "<1"), (0.5, "50"), (0.996, ">99"), (1.0, ">99")])
def test_heatmap_cells_never_print_certainty(p, text):
    assert percent_text(p) == text


def test_colour_bar_label_in_words():
    assert probability_caption("p_benefit", LABELS) == "probability that rescue EVT is better (%)"
    assert "by \u2265 5 percentage points" in probability_caption("p_benefit_ge_0.05", LABELS)


@pytest.fixture
def captured(monkeypatch):
    """Every figure passed to figures.base._save (where every plot_* saves), kept open for inspection (then
    saved as usual)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figs = []
    original = figures.base._save

    def keep(fig, path, formats=None):
        FigureCanvasAgg(fig)  # a saved figure is a plain Figure: give it a canvas that draws
        fig.canvas.draw()
        texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_fontsize")) if t.get_text()]
        figs.append((path, fig, texts, fig.canvas.get_renderer()))
        return original(fig, path, formats)

    monkeypatch.setattr(figures.base, "_save", keep)
    return figs


def fake_summary(results) -> pd.DataFrame:
    """The summary rows the figures read, for :func:`test_plots._fake_result` stand-ins (numbers made up)."""
    return pd.DataFrame(
        [
            {
                "prior": r.spec.prior.name,
                "outcome": o,
                "subgroup": s,
                "level": lv,
                "direction": d,
                "y_t": 13,
                "n_t": 17,
                "y_c": 6,
                "n_c": 19,
                "rd_median": 0.2,
                "rd_eti95_lb": -0.05,
                "rd_eti95_ub": 0.45,
            }
            for r in results
            for o, s, lv, d in [
                ("mrs_0_2", "a", "subgroup", "higher"),
                ("mrs_0_2", "overall", "cohort", "higher"),
                ("mortality", "overall", "cohort", "lower"),
            ]
        ]
    )


def test_make_figures_formats_sizes_and_fonts(tmp_path, captured):
    """Two priors: four figures, each as PNG (300 dpi) and SVG whose text is <text> (editable), 85 or
    180 mm wide, no text under 7 pt, a legend naming both priors, and favours captions on RD axes."""
    results = [_fake_result("neutral", 1), _fake_result("skeptical", 2, shift=-0.5)]
    paths = make_figures(results, fake_summary(results), tmp_path, labels=LABELS)
    names = {p.name for p in paths}
    stems = ("headline", "prior_posterior", "forest", "benefit_curve", "rank")
    assert names == {f"{s}.{f}" for s in stems for f in ("png", "svg")}
    for stem in stems:
        dpi = Image.open(tmp_path / f"{stem}.png").info["dpi"]
        assert dpi == pytest.approx((300, 300), abs=0.1)
        svg = (tmp_path / f"{stem}.svg").read_text()
        assert "<text" in svg and "font-family" in svg.replace("font:", "font-family")  # text kept as text
    assert "Favours rescue EVT" in (tmp_path / "forest.svg").read_text()
    for path, fig, texts, _ in captured:
        width_mm = fig.get_figwidth() * 25.4
        assert min(abs(width_mm - 85), abs(width_mm - 180)) < 0.5, path
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 7.0]
        assert not small, (path, small)
        legends = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        if path.name in ("headline", "prior_posterior", "benefit_curve"):
            assert {"neutral", "skeptical"} <= set(legends), path
    forest = next(f for p, f, _, _ in captured if p.name == "forest")
    captions = {t.get_text() for ax in forest.axes for t in ax.texts}
    assert {"\u2190 Favours medical management", "Favours rescue EVT \u2192"} <= captions  # mRS panel
    assert {"\u2190 Favours rescue EVT", "Favours medical management \u2192"} <= captions  # mortality panel
    for ax in forest.axes:
        lo, hi = ax.get_xlim()
        assert -100 <= lo < 0 < hi <= 100 and (lo, hi) != (-100, 100)


def test_pdf_on_request(tmp_path):
    """formats=("pdf",) writes a PDF only."""
    summary = pd.DataFrame([_mortality_row("neutral")])
    first = figures.plot_forest(forest_data(summary), tmp_path / "forest", labels=LABELS, formats=("pdf",))
    assert first == tmp_path / "forest.pdf" and first.read_bytes()[:4] == b"%PDF"
    assert [p.name for p in tmp_path.iterdir()] == ["forest.pdf"]


@pytest.mark.parametrize(("n_centres", "n_sds"), [(4, 4), (13, 9)])
def test_heatmap_labels_do_not_overlap(tmp_path, captured, n_centres, n_sds):
    """Every cell's printed value fits inside its cell, and the tick labels of each axis do not overlap,
    for a small and a large grid (the figure grows with the grid)."""
    rng = np.random.default_rng(1)
    rows = [
        {"outcome": o, "subgroup": s, "robust": 0.0, "centre_benefit": c, "sd": sd, "p_benefit": rng.uniform()}
        for o, s in [("mrs_0_2", "a"), ("mrs_0_2", "overall"), ("mortality", "overall")]
        for c in np.round(np.linspace(-1.5, 1.5, n_centres), 2)
        for sd in np.round(np.geomspace(0.1, 4, n_sds), 2)
    ]
    plot_heatmaps(pd.DataFrame(rows), tmp_path / "h", labels=LABELS, formats=("png",))
    _, fig, _, renderer = captured[-1]
    for ax in fig.axes[:-1]:  # the last axes is the colour bar
        if not ax.get_visible():
            continue
        cell_w = ax.get_window_extent(renderer).width / n_centres
        for t in ax.texts:
            assert t.get_window_extent(renderer).width < cell_w
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            boxes = [t.get_window_extent(renderer) for t in labels if t.get_text()]
            assert not any(a.overlaps(b) for a, b in itertools.pairwise(boxes))
    assert re.search("probability that rescue EVT is better", fig.axes[-1].get_ylabel())


def test_forest_overlays_bias_adjusted_and_unadjusted(tmp_path, captured):
    """A summary with a bias column ('none' and a model name): one posterior series per bias model, named
    in the legend; the raw RD once per block."""
    base = {
        "prior": "skeptical",
        "outcome": "mrs_0_2",
        "subgroup": "overall",
        "level": "cohort",
        "direction": "higher",
        "y_t": 15,
        "n_t": 20,
        "y_c": 8,
        "n_c": 23,
    }
    summary = pd.DataFrame(
        [
            {**base, "bias": "none", "rd_median": 0.21, "rd_eti95_lb": -0.01, "rd_eti95_ub": 0.43},
            {**base, "bias": "mild", "rd_median": 0.15, "rd_eti95_lb": -0.08, "rd_eti95_ub": 0.40},
        ]
    )
    figures.plot_forest(forest_data(summary), tmp_path / "forest", labels=LABELS, formats=("png",))
    _, fig, _, _ = captured[-1]
    names = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert names == [
        "observed RD, Newcombe 95% CI",
        "posterior median, 95% ETI (unadjusted)",
        "posterior median, 95% ETI (bias: mild)",
    ]


def test_heatmap_files_with_dots_in_their_names_do_not_collide(tmp_path):
    """sensitivity names its heat maps heatmap_<column>_robust<w>; with the MCID columns p_benefit_ge_0.05
    and p_benefit_ge_0.1 and a robust weight 0.2, every (column, weight) is its own file (Path.with_suffix
    would cut the first two at "0." and write both to heatmap_p_benefit_ge_0.png)."""
    rows = [
        {"outcome": "mrs_0_2", "subgroup": "overall", "robust": w, "centre_benefit": c, "sd": sd,
         "p_benefit": 0.5, "p_benefit_ge_0.05": 0.4, "p_benefit_ge_0.1": 0.3}
        for w in (0.0, 0.2) for c in (-0.5, 0.5) for sd in (0.5, 1.0)
    ]  # fmt: skip
    grid = pd.DataFrame(rows)
    written = []
    for w in (0.0, 0.2):
        for col in ("p_benefit", "p_benefit_ge_0.05", "p_benefit_ge_0.1"):
            stem = tmp_path / f"heatmap_{col}_robust{w:g}"
            written.append(plot_heatmaps(grid, stem, col, robust=w, labels=LABELS, formats=("png", "svg")))
            assert figures.figure_paths(stem, ("png", "svg")) == [
                tmp_path / f"{stem.name}.png",
                tmp_path / f"{stem.name}.svg",
            ]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 12 and len({p.name for p in written}) == 6
    assert "heatmap_p_benefit_ge_0.05_robust0.2.png" in names and "heatmap_p_benefit_ge_0.png" not in names
    assert figures.figure_paths(tmp_path / "forest.png", ("svg",)) == [tmp_path / "forest.svg"]


def test_import_keeps_the_users_backend(tmp_path):
    """Importing the figures package and drawing a figure to a file does not switch matplotlib's back end
    (a notebook keeps its own); a plot_* without a path returns (fig, axes) drawn with pyplot."""
    import subprocess
    import sys

    code = (
        "import matplotlib\nmatplotlib.use('pdf')\n"
        "import pandas as pd\n"
        "from bayes_rescue.outputs import figures\n"
        "from bayes_rescue.data.counts import Labels\n"
        "s = pd.DataFrame([dict(prior='p', outcome='mortality', subgroup='overall', level='cohort',"
        " direction='lower', y_t=1, n_t=20, y_c=2, n_c=23, rd_median=-0.03, rd_eti95_lb=-0.15, rd_eti95_ub=0.06)])\n"
        f"figures.plot_forest(figures.forest_data(s), {str(tmp_path / 'f')!r}, formats=('png',))\n"
        "fig, axes = figures.plot_forest(figures.forest_data(s))\n"
        "print(matplotlib.get_backend(), type(fig).__name__, axes.shape)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["pdf", "Figure", "(1,", "1)"]
    assert (tmp_path / "f.png").is_file()


@pytest.mark.parametrize("n_priors", [7, 14])
def test_series_styles_are_distinct_for_every_prior(n_priors):
    """The multi-prior figures' data (headline, prior vs posterior, benefit curve) give every series its own
    (colour, line style) pair, from the colour-blind-safe Okabe-Ito palette; a bias-adjusted fit keeps its
    prior's colour with another line style (7 priors, and the same 7 + a bias model = 14)."""
    bundled = ["neutral", "skeptical", "enthusiastic", "pessimistic", "neutral", "skeptical", "enthusiastic"]
    results = []
    for i in range(n_priors):
        r = _fake_result(bundled[i % 7], i + 1)
        r.name = f"prior{i % 7}" + ("+bias-observational" if i >= 7 else "")
        results.append(r)
    for data in (
        figures.headline_data(results, n_grid=128),
        figures.prior_posterior_data(results, n_grid=128),
        figures.benefit_curve_data(results, np.linspace(0, 0.5, 11)),
    ):
        per = data.groupby("prior", sort=False)[["colour", "linestyle"]].agg(set)
        assert (per["colour"].map(len) == 1).all() and (per["linestyle"].map(len) == 1).all()
        pairs = {(next(iter(c)), next(iter(s))) for c, s in zip(per["colour"], per["linestyle"], strict=True)}
        assert len(pairs) == n_priors
        assert {next(iter(c)) for c in per["colour"]} <= set(figures.OKABE_ITO)
    if n_priors == 14:
        styles = figures.series_styles([r.name for r in results])
        assert styles["prior2"][0] == styles["prior2+bias-observational"][0]
        assert styles["prior2"][1] != styles["prior2+bias-observational"][1]


def test_headline_figure_mcid_lines_and_legend_outside(tmp_path, captured):
    """The headline figure: a panel per estimand titled with the file's labels, the MCID lines at +5 and
    +10 points for mRS 0-2 (more is better) and at -5 and -10 for mortality (fewer is better), and a legend
    naming every prior whose box overlaps no panel (nor its title)."""
    results = [_fake_result(p, i) for i, p in enumerate(("neutral", "skeptical", "enthusiastic"))]
    data = figures.headline_data(results, mcids=(0.05, 0.1), n_grid=128)
    first = figures.plot_headline(data, tmp_path / "headline", labels=LABELS, formats=("png",))
    assert first == tmp_path / "headline.png" and first.is_file()
    _, fig, _, renderer = captured[-1]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    titles = {ax.get_title(loc="left") for ax in panels}
    assert "mRS 0-2 at 90 days\nmild anterior circulation" in titles
    assert not any("mrs_0_2" in t for t in titles)
    for ax in panels:
        mcid = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_gid() == "mcid")
        sign = -1 if ax.get_title(loc="left").startswith("mortality") else 1
        assert mcid == sorted([sign * 5.0, sign * 10.0]), ax.get_title(loc="left")
    [legend] = fig.legends
    assert {"neutral", "skeptical", "enthusiastic"} <= {t.get_text() for t in legend.get_texts()}
    box = legend.get_window_extent(renderer)
    for ax in panels:
        assert not box.overlaps(ax.get_tightbbox(renderer))


def test_priors_figure_numbers_from_its_data_function(tmp_path):
    """priors_data: each bundled prior's log-OR density is exp(logpdf) of its spec (integrates to ~1 over
    [-5, 5] by the trapezoid rule, the priors being well inside), one distinct colour per prior; plot_priors
    draws those lines (returned as (fig, axes) without a path)."""
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.priors.spec import load_prior

    data = load_counts("bundled:chen2025")
    specs = [load_prior(n) for n in ("neutral", "skeptical", "enthusiastic", "pessimistic")]
    frame = figures.priors_data(specs, data)
    for (_, _), g in frame.groupby(["prior", "outcome"]):
        assert np.trapezoid(g["density"], g["log_or"]) == pytest.approx(1.0, abs=2e-3)
    assert frame.groupby("prior")["colour"].first().nunique() == 4
    fig, axes = figures.plot_priors(specs, data)
    drawn = {ln.get_label() for ln in axes[0, 0].lines}
    assert {"neutral", "skeptical", "enthusiastic", "pessimistic"} <= drawn
    assert len(fig.axes) == len(data.outcomes)
    import matplotlib.pyplot as plt

    plt.close(fig)
