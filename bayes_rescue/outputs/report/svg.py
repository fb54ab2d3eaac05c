"""The report's figures: matplotlib SVGs checked and inlined (:func:`inline_svg`), or PNGs as data URIs, with
their captions."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from bayes_rescue.outputs.report.basics import _finite, _points

SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Captions of the figures the package draws, by file stem; other files get their stem in words.
CAPTIONS = {
    "headline": (
        "Posterior of each estimand's risk difference under every prior (a line per prior and bias model);"
        " the benefit side of no effect shaded, the MCIDs dotted."
    ),
    "prior_posterior": "Prior and posterior densities of each estimand's effect.",
    "forest": "Forest plot: posterior median risk difference with its 95% equal-tailed interval, per estimand.",
    "benefit_curve": "Probability of a benefit of at least x, as a function of the threshold x (risk difference).",
    "rank": "Rank plots of the sampled parameters (uniform histograms mean the chains mixed well).",
    "sbc_ranks": "Simulation-based calibration: ranks of the true values among the posterior draws.",
}


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
