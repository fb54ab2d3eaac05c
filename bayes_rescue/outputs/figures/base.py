"""What every figure shares: journal sizes and style, the colour and line style of each series, the favours
captions of a risk-difference axis, axis limits, and saving (:func:`finish`, :func:`_save`).

Figures are drawn on a plain :class:`matplotlib.figure.Figure` when they are saved to a file, and with
``pyplot`` (the user's own back end, e.g. a notebook's) when they are returned as ``(fig, ax)``; importing
this package never switches matplotlib's back end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from bayes_rescue.data.counts import Labels
from bayes_rescue.outputs.wording import favours

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


def subplots(path, nrows: int = 1, ncols: int = 1, *, figsize, **kwargs):
    """``plt.subplots`` for a figure returned to the caller (``path`` is None: the user's back end shows it),
    else the same grid on a plain :class:`~matplotlib.figure.Figure` (no back end, no pyplot state)."""
    if path is None:
        return plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def finish(fig, axes, path, formats: Sequence[str] | None = None):
    """``(fig, axes)`` when ``path`` is None; else the figure saved by :func:`_save` (its first path)."""
    if path is None:
        return fig, axes
    return _save(fig, Path(path), formats)


#: Okabe & Ito's colour-blind-safe palette (Color Universal Design), yellow last (faint on white).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: Line styles that tell apart the variants of one prior (unadjusted, then each bias model or robust mix).
LINE_STYLES = ("-", "--", ":", "-.")


def series_styles(names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{name: (colour, line style)}``, distinct for every name: one colour per prior (:data:`OKABE_ITO`),
    one line style per variant of it (the part after ``+``, e.g. ``neutral+bias-observational`` is
    neutral's colour, dashed). With more than 8 priors the colours repeat with the next line style."""
    names = list(dict.fromkeys(names))
    bases = list(dict.fromkeys(str(n).split("+", 1)[0] for n in names))
    variants = list(dict.fromkeys(str(n).split("+", 1)[1] if "+" in str(n) else "" for n in names))
    variants.sort(key=lambda v: v != "")
    out, used = {}, set()
    for n in names:
        b, _, v = str(n).partition("+")
        i, j = bases.index(b), variants.index(v)
        key = (i % len(OKABE_ITO), (j + i // len(OKABE_ITO)) % len(LINE_STYLES))
        while key in used:  # more series than colours x styles: the next free pair
            key = (key[0], key[1] + 1) if key[1] + 1 < len(LINE_STYLES) else ((key[0] + 1) % len(OKABE_ITO), 0)
        used.add(key)
        out[n] = (OKABE_ITO[key[0]], LINE_STYLES[key[1]])
    return out


def with_styles(frame, column: str = "prior"):
    """``frame`` with the ``colour`` and ``linestyle`` of each row's series (:func:`series_styles` of
    ``column``): the figure draws what its data says."""
    styles = series_styles(list(frame[column]))
    return frame.assign(colour=[styles[n][0] for n in frame[column]], linestyle=[styles[n][1] for n in frame[column]])


def legend_width(names: Sequence[str], size_pt: float = 7.0) -> float:
    """Inches a one-column legend of ``names`` needs (a line sample and the longest name at ``size_pt``)."""
    longest = max((len(series_label(n)) for n in names), default=0)
    return 0.45 + 0.55 * size_pt / 72 * longest


def legend_right(fig, handles, names, *, width_in: float) -> None:
    """A legend in a column on the right of the axes, outside the data and the panel titles, from the top:
    ``width_in`` inches kept for it (:func:`legend_height` says how tall the figure must be to hold it)."""
    fig.subplots_adjust(right=1 - width_in / fig.get_figwidth())
    if handles:
        x = 1 - (width_in - 0.05) / fig.get_figwidth()
        fig.legend(handles, [series_label(n) for n in names], loc="upper left", bbox_to_anchor=(x, 1.0))


def legend_height(n_entries: int, size_pt: float = 7.0) -> float:
    """Inches a one-column legend of ``n_entries`` needs (matplotlib's default spacing, 1.5 lines each)."""
    return 0.2 + n_entries * 1.5 * size_pt / 72


def series_label(name: str) -> str:
    """A fit's name for a legend: ``neutral+bias-observational`` -> ``neutral + bias (observational)``."""
    base, sep, rest = str(name).partition("+bias-")
    return f"{base} + bias ({rest})" if sep else str(name)


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
    formats = tuple(formats) if formats else (_format_of(path) or "png",)
    fig.set_dpi(PNG_DPI)  # measure text as the PNG renders it (hinting differs between resolutions)
    fig.draw_without_rendering()  # lay out once: the tight box is shared by every format
    bbox = fig.get_tightbbox().padded(0.04)
    written = []
    for fmt in formats:
        out = _with_format(path, fmt)
        meta = {"Date": None} if fmt in ("svg", "pdf") else {}  # no creation time: the same figure, the same file
        fast_png = {"pil_kwargs": PNG_PIL_OPTIONS} if fmt == "png" else {}
        fig.savefig(out, dpi=PNG_DPI, bbox_inches=bbox, metadata=meta, **fast_png)
        written.append(out)
    plt.close(fig)  # a pyplot figure leaves pyplot's list; a plain Figure was never in it
    return written[0]


def _format_of(path: Path) -> str:
    """The figure format named by ``path``'s suffix (``png``, ``svg``, ``pdf``), or "" for any other suffix."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else ""


def _with_format(path: Path, fmt: str) -> Path:
    """``path`` with the file format's suffix: a format suffix is replaced; any other dot stays part of the
    name (``heatmap_p_benefit_ge_0.05_robust0.2`` -> ``heatmap_p_benefit_ge_0.05_robust0.2.png``, where
    ``Path.with_suffix`` would cut the name at "0.")."""
    path = Path(path)
    stem = path.with_suffix("") if _format_of(path) else path
    return stem.with_name(f"{stem.name}.{fmt}")


def figure_paths(path: Path, formats: Sequence[str]) -> list[Path]:
    """Every file :func:`_save` writes for ``path`` in ``formats``."""
    return [_with_format(path, f) for f in formats]
