"""Formatting rules of the report (probabilities never printed as 1 or 0, points, ratios), its table
structure, and the readers of a run folder's files (JSON, CSV, the root attributes of ``*.nc``)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_rescue.errors import InputError

# ---------------------------------------------------------------------------------------------- formatting


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_prob(p, digits: int = 3) -> str:
    """A probability to ``digits`` decimals, never printed as exactly 1 or 0.

    Values whose rounding would print ``1.000`` (``0.000``) are printed ``>0.999`` (``<0.001``): a
    posterior probability estimated from draws is never exactly certain. Missing values print ``–``.
    """
    if not _finite(p):
        return "–"
    text = f"{float(p):.{digits}f}"
    one, zero = f"{1:.{digits}f}", f"{0:.{digits}f}"
    if text == one:
        return ">" + f"{1 - 10**-digits:.{digits}f}"
    if text in (zero, "-" + zero):
        return "<" + f"{10**-digits:.{digits}f}"
    return text


def fmt_pp(x) -> str:
    """A risk difference (a proportion) in signed percentage points to one decimal: ``+20.7``."""
    return f"{100 * float(x):+.1f}" if _finite(x) else "–"


def fmt_ratio(x) -> str:
    """A ratio (RR, OR) to two decimals (no decimals from 100 on)."""
    if not _finite(x):
        return "–" if not (isinstance(x, float) and math.isinf(x)) else "inf"
    x = float(x)
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}"


def fmt_interval(mid: str, lo: str, hi: str) -> str:
    return f"{mid} ({lo} to {hi})"


def fmt_cell(column: str, value) -> str:
    """Generic cell formatting for tables whose columns are not known in advance (E-values, tipping
    points): probabilities (columns starting ``p_`` or ``prob``) by :func:`fmt_prob`, other numbers to
    four significant digits, booleans as yes/no, missing values as ``–``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if column.startswith(("p_", "prob")) and 0 <= value <= 1:
            return fmt_prob(value)
        if value == int(value) and abs(value) < 1e6:
            return f"{value:.0f}"
        return f"{value:.4g}"
    return str(value)


def mcid_columns(columns) -> list[tuple[str, float]]:
    """``(column, threshold)`` of the ``p_benefit_ge_<m>`` columns, by threshold."""
    out = []
    for c in columns:
        m = re.fullmatch(r"p_benefit_ge_(.+)", str(c))
        if m and _finite(m.group(1)):
            out.append((str(c), float(m.group(1))))
    return sorted(out, key=lambda t: t[1])


def _points(m: float) -> str:
    return f"{100 * m:g} point" + ("" if 100 * m == 1 else "s")


def _truthy(v) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


# --------------------------------------------------------------------------------------------- structures


@dataclass
class Table:
    """A table to render: header cells, rows of cells, which columns are numeric (right-aligned). A cell
    is text, or a pair ``(main, detail)`` shown on two lines (an estimate and its interval)."""

    columns: list[str]
    rows: list[list[str | tuple[str, str]]]
    numeric: list[bool] = field(default_factory=list)
    caption: str = ""
    wide: list[bool] = field(default_factory=list)
    #: Optional header row above the columns: ``(label, number of columns it spans)``.
    groups: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.numeric:
            self.numeric = [False] * len(self.columns)
        if not self.wide:
            self.wide = [False] * len(self.columns)


def frame_table(frame: pd.DataFrame, caption: str = "", max_rows: int | None = None) -> Table:
    """Any data frame as a :class:`Table`, each cell by :func:`fmt_cell`."""
    cols = [str(c) for c in frame.columns]
    shown = frame if max_rows is None else frame.head(max_rows)
    rows = [
        [fmt_cell(c, v.item() if hasattr(v, "item") else v) for c, v in zip(cols, r, strict=True)]
        for r in shown.itertuples(index=False, name=None)
    ]
    numeric = [
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame.columns
    ]
    return Table(cols, rows, numeric, caption)


# ----------------------------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot be read as JSON ({exc})", source=path) from None
    if not isinstance(obj, dict):
        raise InputError("is not a JSON object", source=path)
    return obj


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot be read as CSV ({exc})", source=path) from None


def _attr_text(v) -> str | int | float:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return v.item()
    if hasattr(v, "tolist"):
        v = v.tolist()
        return v[0] if isinstance(v, list) and len(v) == 1 else v
    return v


def tree_attrs(run_dir: Path) -> dict[str, dict]:
    """Root attributes of every netCDF file in the run folder, by path relative to it (read with h5py,
    without loading any variable). Files that cannot be read are skipped."""
    import h5py

    out = {}
    for path in sorted(run_dir.rglob("*.nc")):
        try:
            with h5py.File(path, "r") as f:
                out[str(path.relative_to(run_dir))] = {k: _attr_text(v) for k, v in f.attrs.items()}
        except (OSError, ValueError):
            continue
    return out


def _per_prior(attrs: dict, key: str) -> dict[str, str]:
    """``{prior: value}`` of a root attribute, from a single-prior tree or a stacked tree's
    ``bayes_rescue_per_prior`` JSON."""
    out = {}
    if key in attrs and "bayes_rescue_prior_name" in attrs:
        out[str(attrs["bayes_rescue_prior_name"])] = attrs[key]
    try:
        per = json.loads(attrs.get("bayes_rescue_per_prior", "{}"))
    except (TypeError, json.JSONDecodeError):
        per = {}
    for prior, v in (per.get(key) or {}).items():
        if v is not None:
            out[prior] = v
    if key in attrs and not out and "bayes_rescue_prior_name" not in attrs:
        out[""] = attrs[key]
    return out
