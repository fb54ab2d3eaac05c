"""``report.html`` (bayes_rescue.outputs.report, ``bayes-rescue report``): built from real run folders and
checked by parsing the HTML (html.parser) and by loading it in headless Chromium.

Reference values: the numbers the report must show are read from the run's own ``summary.csv`` with
pandas and formatted here, by rules written out in this file (not by the report's formatting functions);
figures are compared byte for byte with the run's files; the frequentist P values with scipy's Fisher
test called here on the printed counts.
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_rescue.cli import main
from bayes_rescue.outputs.report import FigureRejected, build_report, fmt_prob, inline_svg, write_report

matplotlib.use("Agg")

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = '<img src="http://evil.example/x.png" onerror="alert(2)">'


# ------------------------------------------------------------------------------------------------ helpers


class Page(HTMLParser):
    """Tags with their attributes, section ids, figure contents and the text of each section."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.sections: dict[str, str] = {}
        self.figures: list[dict] = []
        self.ids: list[str] = []
        self._section: str | None = None
        self._figure: dict | None = None
        self._svg_depth = 0
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "section":
            self._section = a.get("id")
            self.sections[self._section] = ""
        if tag == "figure":
            self._figure = {"svg": False, "img": None}
        if self._figure is not None and tag == "svg" and self._svg_depth == 0:
            self._figure["svg"] = True
        if tag == "svg":
            self._svg_depth += 1
        if self._figure is not None and tag == "img":
            self._figure["img"] = a.get("src")

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        if tag == "svg":
            self._svg_depth -= 1
        if tag == "figure" and self._figure is not None:
            self.figures.append(self._figure)
            self._figure = None

    def handle_data(self, data):
        self.text.append(data)
        if self._section is not None and self._svg_depth == 0:
            self.sections[self._section] += data

    def cells(self, section: str) -> list[str]:
        raw = re.findall(r"<td[^>]*>(.*?)</td>", self._raw_sections[section], re.S)
        return [" ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", t)).split()) for t in raw]


def parse(html: str) -> Page:
    page = Page(html)
    page._raw_sections = {
        m.group(1): m.group(2) for m in re.finditer(r'<section id="([^"]+)"[^>]*>(.*?)</section>', html, re.S)
    }
    return page


def prob_text(p: float) -> str:
    """Independent statement of the probability rule: 3 decimals, never 1.000 or 0.000."""
    if p >= 0.9995:
        return ">0.999"
    if p < 0.0005:
        return "<0.001"
    return f"{p:.3f}"


def pp(x: float) -> str:
    return f"{100 * x:+.1f}"


def external_refs(page: Page) -> list[str]:
    """Every src/href that leaves the document (anything but #fragment and inline PNG/JPEG data)."""
    bad = []
    for tag, attrs in page.tags:
        for k, v in attrs.items():
            if k.split(":")[-1] in ("src", "href") and v is not None:
                if not v.startswith(("#", "data:image/png;base64,", "data:image/jpeg;base64,")):
                    bad.append(f"<{tag} {k}={v!r}>")
                if re.match(r"\s*(https?:|//|file:)", v):
                    bad.append(f"<{tag} {k}={v!r}>")
    return bad


def copy_run(run: Path, tmp_path: Path, name: str = "copy") -> Path:
    dst = tmp_path / name
    shutil.copytree(run, dst)
    return dst


def matplotlib_svg(path: Path, title: str = "forest (svg)") -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [0.1, 0.4, 0.2])
    ax.imshow(np.arange(16.0).reshape(4, 4), extent=(0, 1, 0, 1))
    ax.set_title(title)
    fig.savefig(path, format="svg")
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A real small run of the bundled cohort (skeptical prior; short chains, so the gate may fail)."""
    out = tmp_path_factory.mktemp("report") / "run"
    rc = main(["fit", "--draws", "300", "--tune", "300", "--chains", "2", "--keep-going", "--out", str(out)])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def html(run) -> str:
    return build_report(run)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    """A real run whose user-written texts carry markup: the counts' notes and provenance, and a user
    prior's name, description, rationale and component sources (the fields a user can fill freely;
    outcome and subgroup names are restricted to letters, digits and _ . -)."""
    root = tmp_path_factory.mktemp("hostile")
    counts = root / "counts.csv"
    counts.write_text(
        "outcome,subgroup,arm,events,total,provenance,note\n"
        f'mrs_0_2,mild,treatment,13,17,"{HOSTILE}",note {HOSTILE}\n'
        "mrs_0_2,mild,control,6,19,reported,x\n"
        "mrs_0_2,other,treatment,2,3,reported,x\n"
        "mrs_0_2,other,control,2,4,reported,x\n"
        "mortality,all,treatment,1,20,reported,x\n"
        "mortality,all,control,2,23,reported,x\n",
        encoding="utf-8",
    )
    prior = root / "evil.toml"
    prior.write_text(
        'name = "evil"\n'
        f"description = '{HOSTILE_IMG}'\n"
        f'rationale = "r {HOSTILE}"\n'
        "[effect.default]\n"
        f'rationale = "{HOSTILE}"\n'
        "[[effect.default.components]]\n"
        'name = "c</td><script>"\nweight = 1.0\nmean = 0.0\nsd = 1.0\n'
        f'source = "{HOSTILE}"\n',
        encoding="utf-8",
    )
    out = root / "run"
    rc = main(
        ["fit", "--data", str(counts), "--prior", str(prior), "--draws", "200", "--tune", "200", "--chains", "2",
         "--keep-going", "--no-figures", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    return out


# ------------------------------------------------------------------------------------------------- tests


def test_fmt_prob_never_prints_certainty():
    """Probability rule (stated in the brief): 3 decimals, and never 1.000 / 0.000 but >0.999 / <0.001;
    the boundaries are where a 3-decimal rounding would print 1.000 or 0.000."""
    assert fmt_prob(1.0) == ">0.999"
    assert fmt_prob(0.9996) == ">0.999"
    assert fmt_prob(0.9994) == "0.999"
    assert fmt_prob(0.0) == "<0.001"
    assert fmt_prob(0.0004) == "<0.001"
    assert fmt_prob(0.0006) == "0.001"
    assert fmt_prob(0.5) == "0.500"
    assert fmt_prob(float("nan")) == "–"


def test_no_script_no_external_resources(html):
    """The report runs no script and loads nothing: no <script>, <link>, <iframe>, <object> or <embed>,
    no on* attribute, every src/href inside the document or an inline image, no CSS url() that leaves the
    document, and a Content-Security-Policy that forbids everything else."""
    page = parse(html)
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed", "base"}
    assert not [k for _, a in page.tags for k in a if k.lower().startswith("on")]
    assert external_refs(page) == []
    assert not re.search(r"url\(\s*['\"]?(?!#)", html)
    assert "@import" not in html and "@font-face" not in html
    csp = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]


def test_every_figure_inlined(run, html, tmp_path):
    """Each figure of the run is in the report exactly once, inline: as SVG where the run wrote one (it
    writes PNG and SVG), else as the PNG, whose bytes are identical to the file's (base64-decoded here)."""
    page = parse(html)
    stems = sorted({p.stem for p in (run / "figures").iterdir()})
    assert len(stems) == 5  # headline, prior_posterior, forest, benefit_curve, rank
    assert len(page.figures) == len(stems) and all(f["svg"] for f in page.figures)
    d = copy_run(run, tmp_path)
    for svg in (d / "figures").glob("*.svg"):
        svg.unlink()
    page = parse(build_report(d))
    files = sorted((d / "figures").glob("*.png"))
    embedded = [base64.b64decode(f["img"].split(",", 1)[1]) for f in page.figures if f["img"]]
    assert len(page.figures) == len(files)
    assert sorted(embedded) == sorted(p.read_bytes() for p in files)


def test_key_numbers_match_summary(run, html):
    """Every cohort-level RD (median and 95% interval, in points), P(benefit) and P(benefit >= MCID) of
    summary.csv is in the conclusion, every row's RD and probabilities are in the at-a-glance table and the
    results table, formatted by the rules written out in this file."""
    page = parse(html)
    summary = pd.read_csv(run / "summary.csv")
    text = " ".join(page.sections["summary"].split())
    mcids = [c for c in summary.columns if c.startswith("p_benefit_ge_")]
    assert mcids == ["p_benefit_ge_0.05", "p_benefit_ge_0.1"]
    for _, r in summary[summary["level"] == "cohort"].iterrows():
        assert f"{pp(r['rd_median'])} ({pp(r['rd_eti95_lb'])} to {pp(r['rd_eti95_ub'])})" in text
        assert f"(benefit) is {prob_text(r['p_benefit'])}" in text
        assert f"P(benefit >= 5 points) {prob_text(r['p_benefit_ge_0.05'])}" in text
        assert f"P(benefit >= 10 points) {prob_text(r['p_benefit_ge_0.1'])}" in text
    glance = page.cells("summary")
    for _, r in summary.iterrows():
        assert f"{pp(r['rd_median'])} ({pp(r['rd_eti95_lb'])} to {pp(r['rd_eti95_ub'])})" in glance
        for c in ("p_benefit", *mcids):
            assert prob_text(r[c]) in glance
    cells = page.cells("results")
    for _, r in summary.iterrows():
        assert f"{pp(r['rd_median'])} ({pp(r['rd_eti95_lb'])} to {pp(r['rd_eti95_ub'])})" in cells
        assert f"{r['or_median']:.2f} ({r['or_eti95_lb']:.2f} to {r['or_eti95_ub']:.2f})" in cells
        assert f"{int(r['y_t'])}/{int(r['n_t'])} vs {int(r['y_c'])}/{int(r['n_c'])}" in cells
        assert r["nnt_eti95"] in " ".join(cells)
    assert len(page.cells("results")) == len(summary) * 13  # 13 columns per row (prior and bias among them)


def test_certain_probabilities_are_not_printed_as_one(run, tmp_path):
    """A summary whose P(benefit) is exactly 1 and P(harm) exactly 0 (edited here) prints >0.999 and
    <0.001, and no probability cell of the results table reads 1.000 or 0.000."""
    d = copy_run(run, tmp_path)
    s = pd.read_csv(d / "summary.csv")
    s["p_benefit"], s["p_harm"], s["p_benefit_ge_0.05"] = 1.0, 0.0, 0.99999
    s.to_csv(d / "summary.csv", index=False)
    page = parse(build_report(d))
    cells = page.cells("results")
    assert cells.count(">0.999") == 2 * len(s) and cells.count("<0.001") == len(s)
    assert "1.000" not in cells and "0.000" not in cells
    assert "(benefit) is >0.999" in page.sections["summary"]


def test_hostile_user_text_is_escaped(hostile_run):
    """Markup in a user's counts notes/provenance and prior texts reaches the page only as text: the
    parsed page has no script, image or event attribute, and the texts are shown (escaped)."""
    html = build_report(hostile_run)
    page = parse(html)
    tags = {t for t, _ in page.tags}
    assert "script" not in tags and "img" not in tags
    assert not [k for _, a in page.tags for k in a if k.lower().startswith("on")]
    assert external_refs(page) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = "".join(page.text)
    assert f"note {HOSTILE}" in page.sections["data"]  # the counts note, shown as text
    assert "evil" in page.sections["priors"]  # the prior's name (names follow the name rule: no markup possible)
    assert HOSTILE_IMG in page.sections["priors"]  # its description
    assert "evil" in page.sections["results"]  # the prior column of summary.csv
    assert "c</td><script>" in text


def test_sections_follow_their_inputs(run, tmp_path):
    """A section is there exactly when its input is: no figures/ -> no Figures; no summary.csv -> no
    Summary/Results; no posterior.nc and no inputs/ -> no Priors, and no Data unless the manifest names a
    bundled cohort with the package copy's sha256; grid.csv, tipping.csv and
    evalues.csv (written here) -> Sensitivity and Bias sections showing their values."""
    html = build_report(run)
    ids = set(parse(html).sections)
    assert {"summary", "data", "priors", "results", "figures", "diagnostics", "reproduce", "evalues"} <= ids
    assert "sensitivity" not in ids  # a fit writes evalues.csv (the E-values section), not grid.csv
    assert "bias" not in ids  # no bias-adjusted fit (no --bias): no Bias analysis section

    d = copy_run(run, tmp_path)
    shutil.rmtree(d / "figures")
    shutil.rmtree(d / "inputs")
    (d / "evalues.csv").unlink()
    (d / "summary.csv").unlink()
    (d / "posterior.nc").unlink()
    page = parse(build_report(d))  # the manifest still names the bundled cohort, with its sha256
    assert "the package's copy" in page.sections["data"]
    m = json.loads((d / "manifest.json").read_text())
    m["data"] = {"source": "/elsewhere/counts.csv", "sha256": "0" * 64}
    (d / "manifest.json").write_text(json.dumps(m))
    ids = set(parse(build_report(d)).sections)
    assert not ids & {"figures", "summary", "results", "data", "priors", "bias", "evalues", "sensitivity"}
    assert {"reproduce"} <= ids

    d = copy_run(run, tmp_path, "extra")
    grid = pd.DataFrame(
        [
            {"centre_benefit": c, "sd": s, "robust": 0.0, "outcome": "mrs_0_2", "subgroup": "overall",
             "level": "cohort", "p_benefit": 0.5 + c / 10 + s / 100, "rd_median": 0.1, "rhat_max": 1.0,
             "ess_min": 2000.0, "divergences": 0, "diagnostics_passed": True, "attempts": 1, "method": "psis"}
            for c in (-0.5, 0.0, 0.5) for s in (0.2, 1.0)
        ]
    )  # fmt: skip
    grid.to_csv(d / "grid.csv", index=False)
    pd.DataFrame([{"outcome": "mrs_0_2", "subgroup": "overall", "level": 0.95, "tipping_sd": 0.3312,
                   "sd_status": "root"}]).to_csv(d / "tipping.csv", index=False)  # fmt: skip
    evalues = [{"outcome": "mrs_0_2", "subgroup": "overall", "level": "cohort", "rr": 2.16, "rr_lb": 1.2,
                "rr_ub": 4.0, "evalue_rr": 3.74, "evalue_ci": 1.69}]  # fmt: skip
    pd.DataFrame(evalues).to_csv(d / "evalues.csv", index=False)
    page = parse(build_report(d))
    assert {"sensitivity", "evalues"} <= set(page.sections) and "bias" not in page.sections
    sens = page.cells("sensitivity")
    assert "0.560" in sens and "0.452" in sens  # 0.5 + 0.5/10 + 1/100 and 0.5 - 0.5/10 + 0.2/100
    assert "0.3312" in sens and "root" in sens
    ev = page.cells("evalues")
    assert "3.74" in ev and "1.69" in ev
    assert "E-value" in page.sections["evalues"]


def test_inputs_folder_is_preferred(run, tmp_path):
    """Counts and prior files in inputs/ are what the Data and Priors sections show (said so in 'read
    from'), and the P-value check is recomputed from them: Fisher's exact P of the mild subgroup's
    13/17 vs 6/19 computed here with scipy."""
    d = copy_run(run, tmp_path)
    (d / "posterior.nc").unlink()
    shutil.rmtree(d / "inputs")  # a fit keeps its own inputs/; replaced here by files named for the test
    (d / "inputs").mkdir()
    from importlib import resources

    root = resources.files("bayes_rescue")
    (d / "inputs" / "chen2025.csv").write_bytes((root / "data" / "chen2025.csv").read_bytes())
    (d / "inputs" / "skeptical.toml").write_bytes((root / "priors" / "skeptical.toml").read_bytes())
    page = parse(build_report(d))
    assert "inputs/chen2025.csv" in page.sections["data"]
    assert "inputs/skeptical.toml" in page.sections["priors"]
    for table in ([[13, 4], [6, 13]], [[15, 5], [8, 15]]):  # mild subgroup; whole cohort
        assert f"{stats.fisher_exact(table).pvalue:.3f}" in page.cells("data")
    assert "0.031" in page.cells("data")  # the abstract's printed P for the whole cohort


def test_banner_iff_diagnostics_failed(run, tmp_path):
    """The failure banner is shown when summary.csv or the manifest records a failed gate, and only then
    (both states written here)."""
    for passed in (False, True):
        d = copy_run(run, tmp_path, f"p{passed}")
        s = pd.read_csv(d / "summary.csv")
        s["diagnostics_passed"] = passed
        s.to_csv(d / "summary.csv", index=False)
        m = json.loads((d / "manifest.json").read_text())
        m["all_diagnostics_passed"] = passed
        (d / "manifest.json").write_text(json.dumps(m))
        html = build_report(d)
        assert ('id="diagnostics-failed"' in html) is (not passed)
        assert ("DIAGNOSTICS FAILED" in html) is (not passed)


def test_svg_figures_inlined_with_unique_ids(run, tmp_path):
    """A matplotlib SVG is inlined instead of the PNG of the same name, without its XML prolog,
    DOCTYPE or metadata; two SVGs' ids are made unique in the page and their references follow."""
    d = copy_run(run, tmp_path)
    for svg in (d / "figures").glob("*.svg"):
        svg.unlink()
    matplotlib_svg(d / "figures" / "forest.svg")
    matplotlib_svg(d / "figures" / "extra.svg", "extra")
    html = build_report(d)
    page = parse(html)
    assert sum(f["svg"] for f in page.figures) == 2
    assert len(page.figures) == 6  # 5 PNG stems (forest now SVG) + extra
    assert "<?xml" not in html and "DOCTYPE svg" not in html and "<metadata>" not in html
    assert len(page.ids) == len(set(page.ids))
    ids = set(page.ids)
    refs = re.findall(r'href="#([^"]+)"', html) + re.findall(r"url\(#([^)]+)\)", html)
    assert refs and all(r in ids for r in refs)


def test_svg_checks_refuse_active_or_foreign_content(tmp_path):
    """inline_svg accepts a real matplotlib SVG and refuses: a <script>, an on* attribute, an external
    href, a DOCTYPE with an entity, a non-SVG root, and an SVG that matplotlib did not write."""
    good = matplotlib_svg(tmp_path / "g.svg").read_text("utf-8")
    assert str(inline_svg(good, "x-")).startswith("<svg")
    bad = {
        "script": good.replace("</svg>", "<script>alert(1)</script></svg>"),
        "onload": good.replace("<svg ", '<svg onload="alert(1)" ', 1),
        "external href": good.replace("</svg>", '<image href="http://evil.example/x.png"/></svg>'),
        "entity": '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "b">]>' + good.split("?>", 1)[1].split(">", 1)[1],
        "not svg": '<html xmlns="http://www.w3.org/2000/svg"></html>',
        "not matplotlib": '<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>',
        "external fill": good.replace("<g ", '<g fill="url(http://evil.example/p.svg#g)" ', 1),
        "css import": good.replace("<defs>", "<defs><style>@import url(http://evil.example/a.css);</style>", 1),
    }
    for name, text in bad.items():
        with pytest.raises(FigureRejected):
            inline_svg(text, "x-")
        assert name


def test_rejected_svg_falls_back_to_png_and_says_so(run, tmp_path):
    """A hostile forest.svg is not inlined: the PNG of the same name is shown and the caption says why."""
    d = copy_run(run, tmp_path)
    for other in (d / "figures").glob("*.svg"):
        other.unlink()
    svg = matplotlib_svg(d / "figures" / "forest.svg")
    svg.write_text(svg.read_text().replace("</svg>", "<script>alert(1)</script></svg>"))
    html = build_report(d)
    page = parse(html)
    assert "script" not in {t for t, _ in page.tags}
    assert sum(f["svg"] for f in page.figures) == 0 and len(page.figures) == 5
    assert "forest.svg not embedded" in html


def test_write_report_and_command(run, tmp_path, capsys):
    """write_report writes build_report's text atomically (no partial file left); the command writes
    --out, refuses to replace it without --overwrite (exit 2, one line), replaces it with it, and refuses
    a folder that is not a run (exit 2)."""
    out = write_report(run, tmp_path / "r.html")
    assert out.read_text("utf-8") == build_report(run)
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    target = tmp_path / "cli.html"
    assert main(["report", str(run), "--out", str(target)]) == 0 and target.is_file()
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--out" in err
    assert main(["report", str(run), "--out", str(target), "--overwrite"]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "x.html")]) == 2
    assert not (tmp_path / "x.html").exists()


# ------------------------------------------------------------------------------------------------ browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _load(path: Path, tmp_path: Path) -> tuple[list[str], Path]:
    """Load ``path`` in headless Chromium: (console messages, screenshot PNG)."""
    shot = tmp_path / f"{path.stem}.png"
    proc = subprocess.run(
        [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=5000", f"--screenshot={shot}", "--window-size=1200,3000",
         path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return console, shot


def test_browser_renders_without_console_errors(run, tmp_path):
    """Headless Chromium loads the report with no console message (the page's Content-Security-Policy
    turns any script or external load into one) and a non-blank screenshot. Control: the same report
    with an external image and a script added gives console messages, so the check can fail."""
    if _chromium() is None:
        pytest.skip("chromium not installed")
    from PIL import Image

    page = write_report(run, tmp_path / "report.html")
    console, shot = _load(page, tmp_path)
    assert console == []
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (3000, 1200)
    assert img.std() > 5 and (img < 128).mean() > 0.01  # text and figures, not a blank page

    control = tmp_path / "control.html"
    control.write_text(
        page.read_text("utf-8").replace(
            "<body>", '<body><img src="http://example.invalid/x.png"><script>console.error("x")</script>', 1
        ),
        "utf-8",
    )
    console, _ = _load(control, tmp_path)
    assert len(console) >= 2


def test_title_of_a_run_being_written(run, tmp_path):
    """Inside fit, the report is written while the run is still in its hidden partial folder
    (rundir.atomic_run_dir: '.<name>.partial-<pid>-<random>'); the title names the run, not that folder."""
    d = copy_run(run, tmp_path, ".myrun.partial-12345-abc_de")
    html = build_report(d)
    page = parse(html)
    assert re.search(r"<title>(.*?)</title>", html).group(1) == "bayes_rescue report: myrun"
    assert page.sections["reproduce"].count("--rerun") == 1


def test_priors_of_a_several_prior_run(tmp_path):
    """A several-prior run stores each prior's spec in its own <prior>/posterior.nc; the Priors section lists
    them in the manifest's order with their own components (the bundled files' numbers, loaded here with
    load_prior)."""
    from importlib import resources

    from bayes_rescue.outputs.report import prior_specs
    from bayes_rescue.priors.spec import load_prior, robustify

    specs = [load_prior(n) for n in ("skeptical", "enthusiastic")]
    attrs = {
        f"{s.name}/posterior.nc": {"bayes_rescue_prior_name": s.name, "bayes_rescue_prior_spec": s.to_json()}
        for s in specs
    }
    manifest = {"priors": [{"name": "enthusiastic"}, {"name": "skeptical"}]}
    got = prior_specs(tmp_path, manifest, attrs)
    assert [d["name"] for d, _ in got] == ["enthusiastic", "skeptical"]
    for (d, where), spec in zip(got, specs[::-1], strict=True):
        assert "bayes_rescue_prior_spec" in where
        assert d["effect"]["mrs_0_2"]["components"][0]["mean"] == spec.effects["mrs_0_2"].components[0].mean

    # a robust prior keeps its file's sha256 under a new name: the report shows the fitted (robust) spec,
    # not the file in inputs/ with that sha256
    robust = robustify(specs[0], 0.2)
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "skeptical.toml").write_bytes(
        (resources.files("bayes_rescue") / "priors" / "skeptical.toml").read_bytes()
    )
    attrs = {"bayes_rescue_prior_name": robust.name, "bayes_rescue_prior_spec": robust.to_json()}
    manifest = {"priors": [{"name": robust.name, "sha256": robust.sha256}]}
    assert robust.sha256 == specs[0].sha256
    [(d, where)] = prior_specs(tmp_path, manifest, {"posterior.nc": attrs})
    assert [c["name"] for c in d["effect"]["mrs_0_2"]["components"]][-1] == "robust_vague"


def test_sensitivity_folder(tmp_path):
    """A sensitivity folder (grid.csv, tipping.csv, manifest.json, heat maps in the folder itself) gets
    Data (the package's copy of the bundled counts, matched by sha256), Sensitivity, Figures,
    Diagnostics with the manifest's worst diagnostics and a banner when a grid point failed the gate."""
    import matplotlib.pyplot as plt

    from bayes_rescue.data.counts import load_counts

    d = tmp_path / "sens"
    d.mkdir()
    data = load_counts("bundled:chen2025")
    pd.DataFrame(
        [{"centre_benefit": 0.0, "sd": 0.5, "robust": 0.0, "outcome": "mortality", "subgroup": "overall",
          "p_benefit": 0.654, "diagnostics_passed": False, "method": "nuts"}]
    ).to_csv(d / "grid.csv", index=False)  # fmt: skip
    pd.DataFrame([{"outcome": "mortality", "tipping_sd": float("nan")}]).to_csv(d / "tipping.csv", index=False)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(d / "heatmap_p_benefit_robust0.png")
    plt.close(fig)
    worst = {"max_rhat": 1.02, "min_ess": 300.0, "max_divergences": 2, "points_failing_gate": 1}
    manifest = {"command": "bayes-rescue sensitivity --sds 0.5", "data": {"source": data.source, "sha256": data.sha256},
                "worst_diagnostics": worst}  # fmt: skip
    (d / "manifest.json").write_text(json.dumps(manifest))
    html = build_report(d)
    page = parse(html)
    assert {"data", "sensitivity", "figures", "diagnostics", "reproduce"} <= set(page.sections)
    assert not set(page.sections) & {"summary", "results", "priors"}
    assert "0.654" in page.cells("sensitivity") and "P(benefit) over the prior grid" in page.sections["figures"]
    assert 'id="diagnostics-failed"' in html and "1 sensitivity grid point(s) failed" in html
    assert "15/20" in page.cells("data")
    assert "--rerun" not in page.sections["reproduce"]


# ------------------------------------------------------------------------- the report as a reanalysis report

RAW_NAMES = ("mrs_0_2", "mild_anterior", "sub_a")


def _visible(page: Page, section: str) -> str:
    return " ".join(page.sections.get(section, "").split())


def test_labels_not_raw_names_in_report_and_figures(run, html):
    """The conclusion, data, results, headline and E-values sections show the data file's labels (counts
    file: 'mRS 0-2 at 90 days', 'mild anterior circulation'), never the raw names; so does the text of every
    figure the run drew (SVG text elements, written as text)."""
    page = parse(html)
    for section in ("summary", "data", "results", "evalues"):
        text = _visible(page, section)
        assert "mRS 0-2 at 90 days" in text, section
        assert not [n for n in RAW_NAMES if n in text], section
    assert "mild anterior circulation" in _visible(page, "summary")
    for svg in (run / "figures").glob("*.svg"):
        texts = " ".join(re.findall(r"<text[^>]*>(.*?)</text>", svg.read_text("utf-8"), re.S))
        assert texts and not [n for n in RAW_NAMES if n in texts], svg.name


def test_prior_probability_of_benefit_from_the_prior_draws(run, html):
    """The at-a-glance table shows, beside each posterior P(benefit), the prior's own P(benefit) of that
    estimand: counted here from the prior group of posterior.nc (xarray, share of prior RD draws on the
    better side); for the skeptical prior (centred on no effect) each is near 0.5, within 4 Monte Carlo
    standard errors of 4000 draws."""
    import xarray as xr

    tree = xr.open_datatree(run / "posterior.nc")
    prior = tree["prior"].to_dataset()
    summary = pd.read_csv(run / "summary.csv")
    glance = page_cells = parse(html).cells("summary")
    assert "prior P(benefit)" in html
    for _, r in summary.iterrows():
        rd = prior["rd"].sel(outcome=r["outcome"], subgroup=r["subgroup"]).to_numpy().ravel()
        rd = rd[np.isfinite(rd)]
        sign = 1 if r["direction"] == "higher" else -1
        p = float(np.mean(sign * rd > 0))
        assert prob_text(p) in glance
        assert abs(p - 0.5) < 4 * 0.5 / np.sqrt(rd.size)
    assert page_cells is glance


def test_conclusion_first_then_warnings(run, html, tmp_path):
    """The page opens with the conclusion and the at-a-glance table, then the warnings box: counts derived
    from percentages (the bundled counts' provenance), the non-randomised comparison (the source's
    description says retrospective) with the advice to refit with --bias, and the E-values of evalues.csv
    (formatted here). A power-scaling prior-data conflict in summary.csv is a warning naming the estimand
    by its label, and only when summary.csv flags one (both states written here)."""
    page = parse(html)
    order = [i for i in page.ids if i in ("summary", "warnings", "data", "results")]
    assert order == ["summary", "warnings", "data", "results"]
    warn = _visible(page, "warnings")
    assert "derived from percentages" in warn and "mild anterior circulation" in warn
    assert "Non-randomised comparison" in warn and "--bias" in warn
    ev = pd.read_csv(run / "evalues.csv")
    cohort = ev[(ev["outcome"] == "mrs_0_2") & (ev["level"] == "cohort")].iloc[0]
    assert f"E-value {cohort['data_evalue']:.2f}" in warn
    for flagged in (True, False):
        d = copy_run(run, tmp_path, f"c{flagged}")
        s = pd.read_csv(d / "summary.csv")
        s["rd_psense_diagnosis"] = "-"
        if flagged:
            s.loc[(s["subgroup"] == "other"), "rd_psense_diagnosis"] = "potential prior-data conflict"
        s.to_csv(d / "summary.csv", index=False)
        warn = _visible(parse(build_report(d)), "warnings")
        assert ("prior-data conflict for mRS 0-2 at 90 days, other patients" in warn) is flagged


def test_marginal_diagnostics_are_a_warning(run, tmp_path):
    """A fit that passes the gate (ESS >= 1000, R-hat <= 1.01) but with a smallest ESS under 1.5 x 1000 is
    'close to the gate' in the warnings box; with ESS 5000 and R-hat 1.001 it is not (both written here)."""
    for ess, close in ((1200.0, True), (5000.0, False)):
        d = copy_run(run, tmp_path, f"ess{ess:.0f}")
        s = pd.read_csv(d / "summary.csv")
        s["ess_bulk_min"], s["ess_tail_min"], s["rhat_max"], s["diagnostics_passed"] = ess, ess, 1.001, True
        s.to_csv(d / "summary.csv", index=False)
        m = json.loads((d / "manifest.json").read_text())
        m["all_diagnostics_passed"] = True
        (d / "manifest.json").write_text(json.dumps(m))
        warn = _visible(parse(build_report(d)), "warnings")
        assert ("Diagnostics close to the gate for skeptical" in warn) is close
        assert ("smallest ESS 1200" in warn) is close


def test_no_point_nnt_when_the_interval_passes_through_no_effect(run, html):
    """NNT rule (issue 21): the results show a point NNT only where the RD's 95% interval excludes 0;
    where it includes 0 the cell is Altman's interval alone."""
    summary = pd.read_csv(run / "summary.csv")
    cells = parse(html).cells("results")
    for _, r in summary.iterrows():
        crosses = r["rd_eti95_lb"] <= 0 <= r["rd_eti95_ub"]
        point = f"{r['nnt_kind']} {r['nnt_median']:.1f} ({r['nnt_eti95']})"
        assert (point in cells) is (not crosses)
        assert (r["nnt_eti95"] in cells) is crosses


def test_checklist_points_to_sections_that_exist(html):
    """The reporting checklist lists ROBUST items 1-7 and BARG items, each linked to a section present in
    the page, and lists what a run cannot answer (posterior predictive check, prior predictive check)."""
    page = parse(html)
    text = _visible(page, "checklist")
    for item in range(1, 8):
        assert f"ROBUST {item}" in text
    assert "BARG 2B" in text and "BARG 5A" in text
    raw = re.search(r'<section id="checklist".*?</section>', html, re.S).group(0)
    links = re.findall(r'href="#([^"]+)"', raw)
    assert links and set(links) <= set(page.ids)
    unanswered = text.split("Not answered by a run", 1)[1]
    assert "posterior predictive check" in unanswered and "prior predictive check" in unanswered


def _fourteen_fits(run: Path, tmp_path: Path) -> Path:
    """A copy of the run whose summary.csv holds 14 fits (the 7 bundled priors, each also with a bias
    model), the rows of the real fit relabelled: the width of a --prior all --bias report."""
    d = copy_run(run, tmp_path, "fourteen")
    s = pd.read_csv(d / "summary.csv")
    names = ["neutral", "skeptical", "enthusiastic", "pessimistic", "map_early", "map_late", "map_pooled"]
    parts = [s.assign(prior=n, bias=b) for b in ("none", "observational") for n in names]
    pd.concat(parts, ignore_index=True).to_csv(d / "summary.csv", index=False)
    return d


def _measure(path: Path, tmp_path: Path, width: int = 1280, *, print_layout: bool = False) -> dict:
    """Load ``path`` in headless Chromium at ``width`` x 900 with every table-wrap's scrolling turned off
    (a wide table then widens the page) and a measuring script added (the copy drops the page's CSP to run
    it): the page's scroll width, the right edge of every table and the top of the first at-a-glance table.
    ``print_layout``: the page's print
    styles applied on screen (``@media print`` made ``@media all``), to measure the printed layout."""
    html = path.read_text("utf-8")
    if print_layout:
        html = html.replace("@media print {", "@media all {")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    html = html.replace(".table-wrap { overflow-x: auto;", ".table-wrap { overflow: visible;")
    js = (
        "<script>window.addEventListener('load',function(){var w=[];document.querySelectorAll('table')"
        ".forEach(function(t){w.push(t.getBoundingClientRect().right)});var g=document.querySelector('table.glance');"
        "document.body.setAttribute('data-sw',JSON.stringify({page:document.documentElement.scrollWidth,tables:w,"
        "glance_top:g?g.getBoundingClientRect().top:null}))});</script>"
    )
    probe = tmp_path / f"{path.stem}.measure.html"
    probe.write_text(html.replace("</body>", js + "</body>"), "utf-8")
    proc = subprocess.run(
        [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", f"--window-size={width},900",
         "--virtual-time-budget=5000", "--dump-dom", probe.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'data-sw="([^"]+)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    return json.loads(html_lib.unescape(found.group(1)))


def test_no_table_wider_than_a_1280_window(run, tmp_path):
    """In headless Chromium at 1280 x 900, the page's scroll width is <= 1280 and every table ends inside
    the window, and the at-a-glance table starts on the first screen (its top above 900 - 150 px, room for
    its header and a row), for the one-prior report and a 14-fit one that passed the gate (a failure banner
    would come first); control: a report with a 2000-px
    table added measures wider, so the check can fail."""
    if _chromium() is None:
        pytest.skip("chromium not installed")
    for d in (copy_run(run, tmp_path, "one"), _fourteen_fits(run, tmp_path)):
        summary = pd.read_csv(d / "summary.csv")  # a run that passed the gate: no failure banner above
        summary.assign(diagnostics_passed=True).to_csv(d / "summary.csv", index=False)
        m = json.loads((d / "manifest.json").read_text())
        (d / "manifest.json").write_text(json.dumps({**m, "all_diagnostics_passed": True}))
        page = write_report(d, tmp_path / f"{d.name}.html")
        got = _measure(page, tmp_path)
        assert got["page"] <= 1280 and max(got["tables"]) <= 1280, (d.name, got["page"], max(got["tables"]))
        assert got["glance_top"] is not None and got["glance_top"] < 900 - 150, (d.name, got["glance_top"])
    wide = tmp_path / "wide.html"
    wide.write_text(
        page.read_text("utf-8").replace(
            '<section id="data"', '<div class="table-wrap"><table><tr><td style="min-width:2000px">x</td></tr></table>'
            '</div><section id="data"', 1
        ),
        "utf-8",
    )  # fmt: skip
    assert _measure(wide, tmp_path)["page"] > 1280


def test_fourteen_fits_at_a_glance_and_bias_section(run, tmp_path):
    """With 14 fits (7 priors, each also bias-adjusted) the conclusion gives the range of P(benefit) over
    the unadjusted priors and over the bias-adjusted fits apart, the at-a-glance tables have one column
    group per fit (unadjusted first), and a Bias analysis section is there (it is not without --bias)."""
    d = _fourteen_fits(run, tmp_path)
    page = parse(build_report(d))
    text = _visible(page, "summary")
    assert "under the 7 priors" in text and "under the 7 bias-adjusted fits" in text
    groups = re.findall(r'<th colspan="\d+" class="group">([^<]+)</th>', build_report(d))
    assert len(groups) == 14 and groups[0] == "neutral"
    assert groups[7] == "neutral, adjusted for bias model observational"
    assert "bias" in page.sections


def test_prints_to_pdf_with_pages(run, tmp_path):
    """chromium --headless --print-to-pdf writes a PDF of the report (A4 landscape, from the page's print
    styles) with several pages, whose text (pdftotext, if installed) holds the conclusion and the labels; in
    the print layout (measured in Chromium) no table is wider than the printed line."""
    if _chromium() is None:
        pytest.skip("chromium not installed")
    page = write_report(run, tmp_path / "report.html")
    pdf = tmp_path / "report.pdf"
    proc = subprocess.run(
        [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0 and pdf.is_file(), proc.stderr[-2000:]
    raw = pdf.read_bytes()
    assert raw.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", raw))
    assert pages >= 3
    # legible: every table fits the printed line, A4 landscape less 12 mm margins = 273 mm = 1032 CSS px
    got = _measure(page, tmp_path, 1032, print_layout=True)
    assert got["page"] <= 1032 and max(got["tables"]) <= 1032, (got["page"], max(got["tables"]))
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, timeout=60).stdout
        assert "Conclusion" in text and "mRS 0-2 at 90 days" in text


def test_heat_maps_with_dots_are_each_in_the_report(tmp_path):
    """A sensitivity folder with the heat maps of P(benefit >= 5 points) and >= 10 points at robust weights 0
    and 0.2 (drawn here with plot_heatmaps; their names have dots): four figures, four captions."""
    from bayes_rescue.outputs.figures import plot_heatmaps

    d = tmp_path / "sens"
    d.mkdir()
    grid = pd.DataFrame(
        [{"centre_benefit": c, "sd": 0.5, "robust": w, "outcome": "mortality", "subgroup": "overall",
          "p_benefit": 0.6, "p_benefit_ge_0.05": 0.3, "p_benefit_ge_0.1": 0.1, "diagnostics_passed": True}
         for c in (-0.5, 0.5) for w in (0.0, 0.2)]
    )  # fmt: skip
    grid.to_csv(d / "grid.csv", index=False)
    for w in (0.0, 0.2):
        for col in ("p_benefit_ge_0.05", "p_benefit_ge_0.1"):
            plot_heatmaps(grid, d / f"heatmap_{col}_robust{w:g}", col, robust=w, formats=("png",))
    html = build_report(d)
    assert len(parse(html).figures) == 4
    html = html_lib.unescape(html)
    for points in ("5 points", "10 points"):
        for w in ("0", "0.2"):
            assert f"P(benefit >= {points}) over the prior grid (centre x sd), robust weight {w}." in html
