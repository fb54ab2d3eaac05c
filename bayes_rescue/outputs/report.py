"""``report.html``: one self-contained HTML file that tells what a run found, from the files of its folder.

:func:`build_report` reads only the run folder (``manifest.json``, ``summary.csv``, ``inputs/*.csv`` and
``inputs/*.toml``, the root attributes of ``*.nc``, ``figures/*.svg`` or ``*.png``, ``evalues.csv``,
``grid.csv``, ``tipping.csv``) and renders ``outputs/templates/report.html.j2`` with Jinja2 (autoescape on).
The one exception: when the manifest names a *bundled* dataset and its sha256 equals the package's copy,
that copy's record of the figures printed in the source (citation, reported P values) is used too, and
its counts when the folder holds none.

Sections, each present only when its inputs are in the folder: summary in words, data (counts with
provenance and the frequentist P-value check), priors with their sources, results table, figures, bias
analysis and E-values, sensitivity and tipping points, diagnostics (a banner at the top if any failed),
and how to reproduce the run.

The file is self-contained: figures are inline SVG (matplotlib's, checked and with their ids made unique)
or base64 ``data:image/png`` URIs; no scripts, external styles, fonts or images, and a
Content-Security-Policy (``default-src 'none'; img-src data:; style-src 'unsafe-inline'``) under which a
browser would refuse to run or load anything else. Everything read from a
file is escaped, except SVG figures, which are inserted as markup only after :func:`inline_svg` has
checked them.

Probabilities are printed to three decimals, never as ``1.000`` or ``0.000``: values that would round
to those are printed ``>0.999`` and ``<0.001`` (:func:`fmt_prob`).
"""

from __future__ import annotations

import base64
import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from bayes_rescue.errors import InputError

SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Captions of the figures the package draws, by file stem; other files get their stem in words.
CAPTIONS = {
    "prior_posterior": "Prior and posterior densities of each estimand's effect.",
    "forest": "Forest plot: posterior median risk difference with its 95% equal-tailed interval, per estimand.",
    "benefit_curve": "Probability of a benefit of at least x, as a function of the threshold x (risk difference).",
    "rank": "Rank plots of the sampled parameters (uniform histograms mean the chains mixed well).",
    "sbc_ranks": "Simulation-based calibration: ranks of the true values among the posterior draws.",
}
EVALUE_TEXT = (
    "The E-value (VanderWeele & Ding, Ann Intern Med 2017;167:268-274, doi 10.7326/M16-2509) is the minimum"
    " strength of association, on the risk-ratio scale, that an unmeasured confounder would need to have with"
    " both the treatment and the outcome, beyond the measured covariates, to fully explain away the observed"
    " risk ratio; the E-value of the interval is the same for the interval limit closest to no effect (1 when"
    " the interval already includes no effect). Large E-values mean that only strong confounding could"
    " explain the association away."
)


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


# ---------------------------------------------------------------------------------------------- figures


class FigureRejected(ValueError):
    """An SVG file that is not a plain matplotlib figure (or contains active content)."""


_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE\s+svg\s+PUBLIC\s+\"[^\"]*\"\s+\"[^\"]*\"\s*>\s*)?", re.S)
_ALLOWED_HREF = ("#", "data:image/png;base64,", "data:image/jpeg;base64,")
_EXTERNAL_URL = re.compile(r"url\(\s*(?!['\"]?#)", re.I)
_FORBIDDEN_TAGS = {"script", "foreignObject", "iframe", "object", "embed", "a", "animate", "set", "handler"}


def inline_svg(text: str, prefix: str) -> Markup:
    """Check that ``text`` is a matplotlib SVG document without active content and return it as markup
    to insert in HTML.

    Checks: the XML prolog and the standard SVG 1.1 DOCTYPE are stripped (any other DOCTYPE, hence any
    entity declaration, is refused); the root is an ``<svg>`` element whose ``<metadata>`` names
    Matplotlib as its creator; no ``script``, ``foreignObject``, ``a``, animation or embedding element;
    no ``on*`` event attribute; every ``href`` points inside the document (``#id``) or is an inline PNG or
    JPEG; every ``url()`` (in any attribute, such as ``fill`` or ``clip-path``, or in a ``<style>``)
    points inside the document, and there is no ``@import``. The metadata
    block is dropped, and every ``id`` (with its ``#id`` and ``url(#id)`` references) gets ``prefix``,
    so that several figures' identical glyph and clip-path ids do not collide in one page.

    Raises
    ------
    FigureRejected
        Saying which check failed.
    """
    m = _PROLOG.match(text)
    body = text[m.end() :] if m else text
    if "<!DOCTYPE" in body or "<!ENTITY" in body or "<?" in body:
        raise FigureRejected("has a DOCTYPE, entity or processing instruction other than matplotlib's")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise FigureRejected(f"is not well-formed XML ({exc})") from None
    if root.tag != f"{SVG_NS}svg":
        raise FigureRejected("is not an <svg> document")
    creators = [t.text or "" for t in root.iter("{http://purl.org/dc/elements/1.1/}title")]
    if not any(c.startswith("Matplotlib v") for c in creators):
        raise FigureRejected("was not produced by matplotlib (no Matplotlib creator in its metadata)")
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag in _FORBIDDEN_TAGS:
            raise FigureRejected(f"contains a <{tag}> element")
        for name, value in el.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                raise FigureRejected(f"has an event attribute {local}")
            if local in ("href", "src") and not value.startswith(_ALLOWED_HREF):
                raise FigureRejected(f"links outside itself ({local}={value[:40]!r})")
            if "javascript:" in value.lower():
                raise FigureRejected("contains a javascript: URL")
            if _EXTERNAL_URL.search(value):  # fill, clip-path, mask, filter, marker, style: url(...)
                raise FigureRejected(f"refers outside itself ({local}={value[:40]!r})")
        css = (el.text or "") if tag == "style" else ""
        if "@import" in css.lower() or _EXTERNAL_URL.search(css):
            raise FigureRejected("has CSS that loads something from outside")
    body = re.sub(r"\s*<metadata>.*?</metadata>", "", body, count=1, flags=re.S)
    body = re.sub(r'\bid="([^"]+)"', lambda g: f'id="{prefix}{g.group(1)}"', body)
    body = re.sub(r'href="#([^"]+)"', lambda g: f'href="#{prefix}{g.group(1)}"', body)
    body = re.sub(r"url\(#([^)]+)\)", lambda g: f"url(#{prefix}{g.group(1)})", body)
    return Markup(body.strip())


def png_data_uri(raw: bytes) -> str:
    """A PNG file as a ``data:image/png;base64,`` URI (the PNG signature is checked)."""
    if not raw.startswith(PNG_SIGNATURE):
        raise FigureRejected("is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def caption_for(stem: str) -> str:
    """A caption from a figure's file name: a known caption, or the name in words."""
    if stem in CAPTIONS:
        return CAPTIONS[stem]
    m = re.fullmatch(r"heatmap_(.+)_robust([0-9.]+)", stem)
    if m:
        what = m.group(1)
        t = re.fullmatch(r"p_benefit_ge_(.+)", what)
        label = f"P(benefit >= {_points(float(t.group(1)))})" if t and _finite(t.group(1)) else what
        if what == "p_benefit":
            label = "P(benefit)"
        return f"Heat map of {label} over the prior grid (centre x sd), robust weight {m.group(2)}."
    return stem.replace("_", " ").replace("-", " ").capitalize() + "."


@dataclass
class Figure:
    name: str
    caption: str
    svg: Markup | None = None
    png: str | None = None
    problem: str = ""


def collect_figures(run_dir: Path) -> list[Figure]:
    """Every figure of the run (``figures/*`` and the folder's own ``*.svg``/``*.png``), one per file
    stem: the SVG inlined when :func:`inline_svg` accepts it, else the PNG as a data URI."""
    files: dict[tuple[str, str], dict[str, Path]] = {}
    for folder in (run_dir / "figures", run_dir):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.is_file() and p.suffix.lower() in (".svg", ".png"):
                rel = str(p.relative_to(run_dir).with_suffix(""))
                files.setdefault((rel, p.stem), {})[p.suffix.lower()] = p
    out = []
    for n, ((rel, stem), byext) in enumerate(files.items()):
        fig = Figure(name=rel, caption=caption_for(stem))
        problems = []
        if ".svg" in byext:
            try:
                fig.svg = inline_svg(byext[".svg"].read_text("utf-8"), prefix=f"fig{n}-")
            except (FigureRejected, UnicodeDecodeError, OSError) as exc:
                problems.append(f"{byext['.svg'].name} not embedded: it {exc}")
        if fig.svg is None and ".png" in byext:
            try:
                fig.png = png_data_uri(byext[".png"].read_bytes())
            except (FigureRejected, OSError) as exc:
                problems.append(f"{byext['.png'].name} not embedded: it {exc}")
        fig.problem = "; ".join(problems)
        out.append(fig)
    return out


# --------------------------------------------------------------------------------------------- sections


def _label(row: pd.Series) -> str:
    out = f"the {row['prior']} prior" if "prior" in row.index else "the prior"
    if "bias" in row.index and isinstance(row["bias"], str) and row["bias"] and row["bias"] != "none":
        out += f" with the {row['bias']} bias model"
    return out


def summary_sentences(summary: pd.DataFrame) -> list[str]:
    """One sentence per cohort-level row (prior x outcome): RD with its 95% interval, P(benefit) and
    P(benefit >= each MCID)."""
    if "level" in summary.columns:
        rows = summary[summary["level"] == "cohort"]
    else:
        rows = summary[summary.get("subgroup", pd.Series(dtype=str)) == "overall"]
    mcids = mcid_columns(summary.columns)
    out = []
    for _, r in rows.iterrows():
        better = {"higher": "more events is better", "lower": "fewer events is better"}.get(r.get("direction"), "")
        s = (
            f"Under {_label(r)}, {r['outcome']}{f' ({better})' if better else ''}, whole cohort: risk difference"
            f" {fmt_interval(fmt_pp(r['rd_median']), fmt_pp(r['rd_eti95_lb']), fmt_pp(r['rd_eti95_ub']))}"
            f" percentage points (median, 95% interval), P(benefit) = {fmt_prob(r['p_benefit'])}"
        )
        s += "".join(f", P(benefit >= {_points(m)}) = {fmt_prob(r[c])}" for c, m in mcids)
        out.append(s + ".")
    return out


def results_table(summary: pd.DataFrame) -> Table:
    """The results table: counts, RD, RR, OR (median, and the 95% interval on a second line), NNT and the
    probabilities."""
    mcids = mcid_columns(summary.columns)
    keys = [c for c in ("prior", "bias", "model", "outcome", "subgroup") if c in summary.columns]
    if "model" in keys and summary["model"].nunique() == 1:
        keys.remove("model")
    cols = [
        *keys,
        "events: treatment vs control",
        "RD, points (95% interval)",
        "RR (95% interval)",
        "OR (95% interval)",
    ]
    cols += ["NNT (95% interval)", "P(benefit)", *[f"P(benefit >= {_points(m)})" for _, m in mcids], "P(harm)"]
    has_rope = "p_rope" in summary.columns
    if has_rope:
        cols.append("P(ROPE)")
    rows = []
    for _, r in summary.iterrows():
        cells: list = [str(r[k]) for k in keys]
        counts = [r.get(k) for k in ("y_t", "n_t", "y_c", "n_c")]
        cells.append("{}/{} vs {}/{}".format(*map(int, counts)) if all(map(_finite, counts)) else "–")
        cells.append((fmt_pp(r["rd_median"]), f"({fmt_pp(r['rd_eti95_lb'])} to {fmt_pp(r['rd_eti95_ub'])})"))
        for k in ("rr", "or"):
            lo, hi = fmt_ratio(r.get(f"{k}_eti95_lb")), fmt_ratio(r.get(f"{k}_eti95_ub"))
            cells.append((fmt_ratio(r.get(f"{k}_median")), f"({lo} to {hi})"))
        nnt = r.get("nnt_median")
        nnt_text = f"{r.get('nnt_kind', '')} {float(nnt):.1f}" if _finite(nnt) else f"{r.get('nnt_kind', '')} inf"
        cells.append((nnt_text, f"({r.get('nnt_eti95', '–')})"))
        cells.append(fmt_prob(r["p_benefit"]))
        cells += [fmt_prob(r[c]) for c, _ in mcids]
        cells.append(fmt_prob(r.get("p_harm")))
        if has_rope:
            cells.append(fmt_prob(r["p_rope"]))
        rows.append(cells)
    numeric = [False] * len(keys) + [True] * (len(cols) - len(keys))
    nnt = cols.index("NNT (95% interval)")
    numeric[nnt] = False  # long text: wraps, in a wider column
    return Table(cols, rows, numeric, wide=[i == nnt for i in range(len(cols))])


def diagnostics_tables(summary: pd.DataFrame | None, manifest: dict) -> tuple[Table | None, list[str]]:
    """Per prior (and bias model): worst R-hat, smallest bulk and tail ESS, divergences, passed, and the
    manifest's attempts and target acceptance; plus the list of failures (for the banner)."""
    failures: list[str] = []
    table = None
    recorded = manifest.get("diagnostics") if isinstance(manifest.get("diagnostics"), dict) else {}
    if summary is not None and "rhat_max" in summary.columns:
        keys = [c for c in ("prior", "bias") if c in summary.columns] or ["model"]
        rows = []
        for key, g in summary.groupby(keys, sort=False):
            key = key if isinstance(key, tuple) else (key,)
            passed = all(_truthy(v) for v in g["diagnostics_passed"]) if "diagnostics_passed" in g else True
            rec = recorded.get(str(key[0]), {}) if isinstance(recorded, dict) else {}
            div = int(g["divergences"].max()) if "divergences" in g else 0
            rows.append(
                [
                    *map(str, key),
                    f"{g['rhat_max'].max():.4f}",
                    f"{g['ess_bulk_min'].min():.0f}" if "ess_bulk_min" in g else "–",
                    f"{g['ess_tail_min'].min():.0f}" if "ess_tail_min" in g else "–",
                    str(div),
                    fmt_cell("", rec.get("attempts")),
                    fmt_cell("", rec.get("target_accept")),
                    "passed" if passed else "FAILED",
                ]
            )
            if not passed:
                failures.append(f"{' / '.join(map(str, key))}: sampler diagnostics failed")
        cols = [
            *keys,
            "R-hat (max)",
            "bulk ESS (min)",
            "tail ESS (min)",
            "divergences",
            "attempts",
            "target acceptance",
            "gate",
        ]
        table = Table(cols, rows, [False] * len(keys) + [True] * 6 + [False])
    if manifest.get("all_diagnostics_passed") is False and not failures:
        failures.append("the manifest records that the sampler diagnostics failed")
    worst = manifest.get("worst_diagnostics")
    if isinstance(worst, dict) and _finite(worst.get("points_failing_gate")) and worst["points_failing_gate"] > 0:
        failures.append(f"{worst['points_failing_gate']} sensitivity grid point(s) failed the diagnostics gate")
    return table, failures


def data_section(run_dir: Path, manifest: dict, attrs: dict[str, dict]) -> dict | None:
    """Counts with provenance and the frequentist check, from ``inputs/*.csv`` (the one whose sha256 the
    manifest records, else the only one), else the counts stored in a posterior's attributes, else (a
    bundled dataset whose sha256 the manifest records) the package's copy."""
    import hashlib

    from bayes_rescue.data.check import check_table
    from bayes_rescue.data.counts import load_bundled, parse_counts

    recorded = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    sha, source = recorded.get("sha256", ""), str(recorded.get("source", ""))
    text, origin, notes = None, "", []
    candidates = sorted((run_dir / "inputs").glob("*.csv")) if (run_dir / "inputs").is_dir() else []
    by_sha = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in candidates}
    chosen = by_sha.get(sha) or (candidates[0] if len(candidates) == 1 else None)
    if chosen is not None:
        text = chosen.read_bytes().decode("utf-8-sig", "replace")
        origin = str(chosen.relative_to(run_dir))
        if sha and hashlib.sha256(chosen.read_bytes()).hexdigest() != sha:
            notes.append(f"{origin} does not have the sha256 the manifest records for the data ({sha}).")
    else:
        for rel, a in attrs.items():
            if isinstance(a.get("bayes_rescue_data_csv"), str):
                text, origin = a["bayes_rescue_data_csv"], f"{rel} (attribute bayes_rescue_data_csv)"
                source = source or str(a.get("bayes_rescue_data_source", ""))
                sha = sha or str(a.get("bayes_rescue_data_sha256", ""))
                break
    if text is None and source.startswith("bundled:") and sha:
        try:
            bundled = load_bundled(source.removeprefix("bundled:"))
        except InputError:
            bundled = None
        if bundled is not None and bundled.sha256 == sha:  # the package's copy of exactly the data fitted
            text, origin = bundled.to_csv_text(), f"{source} (the package's copy; same sha256 as the manifest's)"
    if text is None:
        return None
    try:
        data = parse_counts(text, source=origin, sha256=sha)
    except InputError as exc:
        return {
            "origin": origin,
            "source": source,
            "sha256": sha,
            "citation": "",
            "description": "",
            "notes": [f"The counts could not be read: {exc.one_line()}"],
            "counts": None,
            "check": None,
        }
    citation = description = ""
    if source.startswith("bundled:"):
        try:
            bundled = load_bundled(source.removeprefix("bundled:"))
        except InputError:
            bundled = None
        if bundled is not None and bundled.sha256 == sha:
            data = bundled
            citation = str(bundled.meta.get("citation", ""))
            description = str(bundled.meta.get("description", ""))
            notes.append(
                f"Reported P values are the package's record of the source's printed figures ({source},"
                " the same sha256 as the fitted data)."
            )
    t = data.table
    counts_rows = []
    for _, r in t.iterrows():
        counts_rows.append(
            [
                r["outcome"],
                r["subgroup"],
                r["arm"],
                str(r["events"]),
                str(r["total"]),
                f"{100 * r['events'] / r['total']:.1f}%",
                data.directions.get(r["outcome"], ""),
                str(r.get("provenance", "") or ""),
                str(r.get("reported_p", "") or ""),
                str(r.get("note", "") or ""),
            ]
        )
    counts = Table(
        ["outcome", "subgroup", "arm", "events", "total", "%", "direction", "provenance", "reported P", "note"],
        counts_rows,
        [False, False, False, True, True, True, False, False, True, False],
    )
    chk = check_table(data)
    names = {"p_fisher": "Fisher exact", "p_chi2": "Pearson chi-square", "p_chi2_yates": "Yates chi-square"}
    check_rows = []
    for _, r in chk.iterrows():
        agree = [names[k] for k in names if _truthy(r.get(f"{k}_agrees"))]
        verdict = "" if not r["reported_p"] else (", ".join(agree) if agree else "none of the crude tests")
        check_rows.append(
            [
                r["outcome"],
                r["subgroup"],
                f"{r['y_t']}/{r['n_t']}",
                f"{r['y_c']}/{r['n_c']}",
                fmt_pp(r["rd"]),
                fmt_prob(r["p_fisher"]),
                fmt_prob(r["p_chi2"]),
                fmt_prob(r["p_chi2_yates"]),
                r["reported_p"] or "–",
                verdict,
            ]
        )
    check = Table(
        [
            "outcome",
            "subgroup",
            "treatment",
            "control",
            "crude RD, points",
            "Fisher P",
            "Pearson P",
            "Yates P",
            "reported P",
            "reported P agrees with",
        ],
        check_rows,
        [False, False, True, True, True, True, True, True, True, False],
    )
    return {
        "origin": origin,
        "source": source,
        "sha256": sha,
        "citation": citation,
        "description": description,
        "notes": notes,
        "counts": counts,
        "check": check,
    }


def prior_specs(run_dir: Path, manifest: dict, attrs: dict[str, dict]) -> list[tuple[dict, str]]:
    """``(prior as PriorSpec.to_dict(), where it was read)`` for each prior of the run, in the manifest's
    order: the TOML in ``inputs/`` with the prior's name (read by ``load_prior``), else the spec stored in
    a posterior's attributes, else the TOML in ``inputs/`` with the prior's recorded sha256."""
    from bayes_rescue.priors.spec import load_prior

    recorded = [p for p in manifest.get("priors", []) if isinstance(p, dict)]
    from_inputs = {}
    if (run_dir / "inputs").is_dir():
        for p in sorted((run_dir / "inputs").glob("*.toml")):
            try:
                spec = load_prior(str(p))
            except InputError:
                continue
            from_inputs[spec.name] = from_inputs[spec.sha256] = (spec.to_dict(), str(p.relative_to(run_dir)))
    from_tree = {}
    for rel, a in attrs.items():
        for name, text in _per_prior(a, "bayes_rescue_prior_spec").items():
            try:
                d = json.loads(text)
            except (TypeError, json.JSONDecodeError):
                continue
            from_tree.setdefault(d.get("name", name), (d, f"{rel} (attribute bayes_rescue_prior_spec)"))
    names = [str(p.get("name")) for p in recorded] or list(dict.fromkeys(k for k in from_tree))
    shas = {str(p.get("name")): str(p.get("sha256", "")) for p in recorded}
    out = []
    for name in names:
        # by name first: a robust or discounted prior keeps its file's sha256 under a new name, and only the
        # spec stored with the fit shows what was fitted
        hit = from_inputs.get(name) or from_tree.get(name) or from_inputs.get(shas.get(name, "-"))
        if hit is not None:
            d, where = hit
            # a copy in inputs/ was read from the (possibly still temporary) run folder: show where the run got it
            recorded_origin = next((str(p.get("origin", "")) for p in recorded if str(p.get("name")) == name), "")
            out.append(({**d, "origin": recorded_origin or d.get("origin", "")}, where))
    if not names:
        out = list({id(v): v for v in from_inputs.values()}.values())
    return out


def prior_view(d: dict, where: str, order: list[str] | None = None) -> dict:
    """One prior for the template: its texts, hyperpriors and a component table per outcome (outcomes
    in ``order`` first, e.g. the data's order)."""
    outcomes = []
    effects = d.get("effect") or {}
    rank = {o: i for i, o in enumerate(order or [])}
    for outcome, e in sorted(effects.items(), key=lambda kv: rank.get(kv[0], len(rank))):
        rows = []
        for c in e.get("components", []):
            mean, sd = float(c["mean"]), float(c["sd"])
            rows.append(
                [
                    str(c.get("name", "")),
                    f"{float(c.get('weight', 1)):.4g}",
                    f"{mean:.4g}",
                    f"{sd:.4g}",
                    fmt_ratio(math.exp(mean)),
                    f"{fmt_ratio(math.exp(mean - 1.959964 * sd))} to {fmt_ratio(math.exp(mean + 1.959964 * sd))}",
                    ", ".join(c.get("trials", []) or []),
                    str(c.get("source", "")),
                ]
            )
        table = Table(
            ["component", "weight", "mean (log OR)", "sd", "OR at mean", "OR 95% range", "trials", "source"],
            rows,
            [False, True, True, True, True, True, False, False],
        )
        shifts = [
            (sg, f"{float(s.get('offset', 0)):+.4g}", str(s.get("source", "")))
            for sg, s in (e.get("subgroups") or {}).items()
        ]
        outcomes.append({"name": outcome, "rationale": e.get("rationale", ""), "table": table, "shifts": shifts})
    hyper = d.get("hyper") or {}
    return {
        "name": d.get("name", ""),
        "description": d.get("description", ""),
        "rationale": d.get("rationale", ""),
        "origin": d.get("origin", ""),
        "sha256": d.get("sha256", ""),
        "where": where,
        "hyper": [(k, f"{float(v):g}") for k, v in hyper.items() if _finite(v)],
        "hyper_source": d.get("hyper_source", ""),
        "outcomes": outcomes,
    }


def sensitivity_section(run_dir: Path) -> dict | None:
    """P(benefit) pivots (sd x prior centre) per outcome, subgroup and robust weight from ``grid.csv``,
    the grid's diagnostics, and ``tipping.csv`` as it is."""
    grid_path, tip_path = run_dir / "grid.csv", run_dir / "tipping.csv"
    if not grid_path.is_file() and not tip_path.is_file():
        return None
    pivots, grid_note, tipping = [], "", None
    if grid_path.is_file():
        grid = _read_csv(grid_path)
        need = {"outcome", "subgroup", "centre_benefit", "sd", "p_benefit"}
        if need <= set(grid.columns):
            robust = grid["robust"] if "robust" in grid.columns else pd.Series(0.0, index=grid.index)
            for (outcome, subgroup, w), g in grid.assign(_r=robust).groupby(["outcome", "subgroup", "_r"], sort=False):
                pv = g.pivot_table(index="sd", columns="centre_benefit", values="p_benefit", aggfunc="first")
                rows = [[f"{sd:g}", *[fmt_prob(v) for v in pv.loc[sd]]] for sd in pv.index]
                pivots.append(
                    Table(
                        ["prior sd \\ centre", *[f"{c:+g}" for c in pv.columns]],
                        rows,
                        [True] * (len(pv.columns) + 1),
                        caption=f"{outcome} / {subgroup}, robust weight {w:g}: P(benefit)",
                    )
                )
            parts = [f"{len(grid)} rows"]
            if "method" in grid.columns:
                parts += [f"{n} by {m}" for m, n in grid["method"].value_counts().items()]
            if "diagnostics_passed" in grid.columns:
                bad = int((~grid["diagnostics_passed"].map(_truthy)).sum())
                parts.append(f"{bad} failing the diagnostics gate")
            grid_note = "; ".join(parts)
        else:
            pivots.append(frame_table(grid, caption="grid.csv (first 200 rows)", max_rows=200))
    if tip_path.is_file():
        tipping = frame_table(_read_csv(tip_path))
    return {"pivots": pivots, "grid_note": grid_note, "tipping": tipping}


def bias_section(run_dir: Path, summary: pd.DataFrame | None) -> dict | None:
    """E-values (``evalues.csv``, every column) and the cohort-level results per bias model."""
    ev_path = run_dir / "evalues.csv"
    has_bias = summary is not None and "bias" in summary.columns
    if not ev_path.is_file() and not has_bias:
        return None
    evalues = frame_table(_read_csv(ev_path)) if ev_path.is_file() else None
    by_bias = None
    if has_bias:
        rows = summary[summary["level"] == "cohort"] if "level" in summary.columns else summary
        keep = [c for c in ("prior", "bias", "outcome", "subgroup") if c in rows.columns]
        by_bias = Table(
            [*keep, "RD, points (95% interval)", "P(benefit)"],
            [
                [
                    *(str(r[k]) for k in keep),
                    fmt_interval(fmt_pp(r["rd_median"]), fmt_pp(r["rd_eti95_lb"]), fmt_pp(r["rd_eti95_ub"])),
                    fmt_prob(r["p_benefit"]),
                ]
                for _, r in rows.iterrows()
            ],
            [False] * len(keep) + [True, True],
        )
    return {"evalues": evalues, "by_bias": by_bias, "text": EVALUE_TEXT}


def reproduce_section(manifest: dict, attrs: dict[str, dict]) -> dict | None:
    """The command, seed, data and prior hashes, versions and file hashes recorded for the run."""
    if not manifest and not attrs:
        return None
    first = next(iter(attrs.values()), {})
    settings = manifest.get("settings") if isinstance(manifest.get("settings"), dict) else {}
    versions = manifest.get("versions")
    if not isinstance(versions, dict):
        try:
            versions = json.loads(first.get("bayes_rescue_versions", "{}"))
        except (TypeError, json.JSONDecodeError):
            versions = {}
    data = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    return {
        "command": str(manifest.get("command") or first.get("bayes_rescue_command", "")),
        "created": str(manifest.get("created_utc", "")),
        "seed": str(settings.get("seed", first.get("bayes_rescue_seed", ""))),
        "settings": [(str(k), str(v)) for k, v in settings.items()],
        "data_source": str(data.get("source", first.get("bayes_rescue_data_source", ""))),
        "data_sha256": str(data.get("sha256", first.get("bayes_rescue_data_sha256", ""))),
        "priors": [
            (str(p.get("name", "")), str(p.get("origin", "")), str(p.get("sha256", "")))
            for p in manifest.get("priors", [])
            if isinstance(p, dict)
        ],
        "versions": [(str(k), str(v)) for k, v in versions.items()],
        "files": [(str(k), str(v)) for k, v in files.items()],
        "seconds": str(manifest.get("seconds", "")),
        "rerun": str(manifest.get("command", "")).startswith("bayes-rescue fit") and "rerun" in manifest,
    }


# ------------------------------------------------------------------------------------------------- build


def run_name(run_dir: Path) -> str:
    """The run's name: the folder's name, or, for a run still being written into its hidden
    ``.<name>.partial-<pid>-*`` folder (see ``rundir.atomic_run_dir``), the name it will get."""
    name = Path(run_dir).resolve().name
    m = re.fullmatch(r"\.(.+)\.partial-\d+-.*", name)
    return m.group(1) if m else name


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("bayes_rescue.outputs", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def build_report(run_dir: Path) -> str:
    """The HTML report of a run folder (see the module docstring), reading only files in the folder.

    Parameters
    ----------
    run_dir
        A ``fit`` or ``sensitivity`` run folder (or a partial one being written).

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    InputError
        If the folder has neither ``manifest.json`` nor ``summary.csv`` nor ``grid.csv``, or one of its
        files cannot be read.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("is not a folder", source=run_dir, field="RUN")
    present = [f for f in ("manifest.json", "summary.csv", "grid.csv") if (run_dir / f).is_file()]
    if not present:
        raise InputError(
            "is not a bayes_rescue run folder (no manifest.json, summary.csv or grid.csv)",
            source=run_dir,
            field="RUN",
        )
    manifest = _read_json(run_dir / "manifest.json") if (run_dir / "manifest.json").is_file() else {}
    summary = _read_csv(run_dir / "summary.csv") if (run_dir / "summary.csv").is_file() else None
    attrs = tree_attrs(run_dir)
    diag_table, failures = diagnostics_tables(summary, manifest)
    grid_path = run_dir / "grid.csv"
    if grid_path.is_file() and not manifest.get("worst_diagnostics"):
        grid = _read_csv(grid_path)
        if "diagnostics_passed" in grid.columns and not all(grid["diagnostics_passed"].map(_truthy)):
            failures.append("some sensitivity grid points failed the diagnostics gate (grid.csv)")
    data = data_section(run_dir, manifest, attrs)
    outcomes = list(dict.fromkeys(summary["outcome"])) if summary is not None and "outcome" in summary else []
    title_source = (data or {}).get("citation") or (manifest.get("data") or {}).get("source", "")
    context = {
        "title": f"bayes_rescue report: {run_name(run_dir)}",
        "subtitle": title_source,
        "command_kind": str(manifest.get("command", "")).split(" ")[1] if manifest.get("command") else "",
        "failures": failures,
        "sentences": summary_sentences(summary) if summary is not None else [],
        "model": ", ".join(map(str, summary["model"].unique())) if summary is not None and "model" in summary else "",
        "data": data,
        "priors": [prior_view(d, where, outcomes) for d, where in prior_specs(run_dir, manifest, attrs)],
        "results": results_table(summary) if summary is not None else None,
        "figures": collect_figures(run_dir),
        "bias": bias_section(run_dir, summary),
        "sensitivity": sensitivity_section(run_dir),
        "diagnostics": diag_table,
        "manifest_diagnostics": manifest.get("worst_diagnostics") if isinstance(manifest, dict) else None,
        "reproduce": reproduce_section(manifest, attrs),
        "mcid_text": ", ".join(_points(m) for _, m in mcid_columns(summary.columns)) if summary is not None else "",
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_report(run_dir: Path, path: Path | None = None) -> Path:
    """Write :func:`build_report`'s HTML to ``path`` (default ``run_dir/report.html``) atomically: to a
    temporary file beside it, then renamed into place, so a reader never sees half a report."""
    run_dir = Path(run_dir)
    path = run_dir / "report.html" if path is None else Path(path)
    html = build_report(run_dir)
    from bayes_rescue.outputs.rundir import atomic_write

    return atomic_write(path, html, overwrite=True, field="--out")
