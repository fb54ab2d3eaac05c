"""Build ``report.html`` from a run folder (:func:`build_report`) and write it atomically (:func:`write_report`)."""

from __future__ import annotations

import re
from pathlib import Path

from bayes_rescue.data.counts import Labels
from bayes_rescue.errors import InputError
from bayes_rescue.outputs.report.basics import (
    _finite,
    _points,
    _read_csv,
    _read_json,
    _truthy,
    mcid_columns,
    tree_attrs,
)
from bayes_rescue.outputs.report.checks import checklist, warnings_box
from bayes_rescue.outputs.report.data import data_section, prior_specs, prior_view
from bayes_rescue.outputs.report.results import conclusion, glance_tables, prior_benefit, results_table
from bayes_rescue.outputs.report.sections import (
    bias_section,
    diagnostics_tables,
    evalues_section,
    meta_analysis_section,
    reproduce_section,
    sensitivity_section,
)
from bayes_rescue.outputs.report.svg import collect_figures

#: Headings of the sections the checklist points to.
SECTION_NAMES = {
    "glance": "Conclusion (at a glance)",
    "priors": "Priors",
    "results": "Results",
    "sensitivity": "Sensitivity",
    "diagnostics": "Diagnostics",
    "reproduce": "Reproduce",
}


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
    labels = (data or {}).get("labels") or Labels()
    outcomes = list(dict.fromkeys(summary["outcome"])) if summary is not None and "outcome" in summary else []
    title_source = (data or {}).get("citation") or (manifest.get("data") or {}).get("source", "")
    prior_p = prior_benefit(run_dir, summary) if summary is not None else None
    evalues = _read_csv(run_dir / "evalues.csv") if (run_dir / "evalues.csv").is_file() else None
    figures = collect_figures(run_dir)
    headline = next((f for f in figures if f.name == "figures/headline"), None)
    settings = manifest.get("settings") if isinstance(manifest.get("settings"), dict) else {}
    fits = (
        summary.drop_duplicates([c for c in ("prior", "bias") if c in summary.columns]) if summary is not None else []
    )
    context = {
        "title": f"bayes_rescue report: {run_name(run_dir)}",
        "subtitle": title_source,
        "command_kind": str(manifest.get("command", "")).split(" ")[1] if manifest.get("command") else "",
        "failures": failures,
        "conclusion": conclusion(summary, labels, prior_p) if summary is not None else [],
        "glance": glance_tables(summary, labels, prior_p) if summary is not None else [],
        "has_prior_p": prior_p is not None,
        "warnings": warnings_box(summary, failures, data, evalues, labels),
        "headline": headline,
        "model": ", ".join(map(str, summary["model"].unique())) if summary is not None and "model" in summary else "",
        "data": data,
        "priors": [prior_view(d, where, outcomes, labels) for d, where in prior_specs(run_dir, manifest, attrs)],
        "results": results_table(summary, labels) if summary is not None else None,
        "figures": [f for f in figures if f is not headline],
        "bias": bias_section(summary, labels),
        "evalues": evalues_section(run_dir, labels),
        "sensitivity": sensitivity_section(run_dir, labels),
        "diagnostics": diag_table,
        "manifest_diagnostics": manifest.get("worst_diagnostics") if isinstance(manifest, dict) else None,
        "reproduce": reproduce_section(manifest, attrs),
        "meta_analysis": meta_analysis_section(run_dir),
        "mcid_text": ", ".join(_points(m) for _, m in mcid_columns(summary.columns)) if summary is not None else "",
        "rope_text": _points(float(settings["rope"])) if _finite(settings.get("rope")) else "",
        "several_fits": len(fits) > 1,
        "arms_text": f"{labels.arm('treatment')} minus {labels.arm('control')}",
        "section_names": SECTION_NAMES,
    }
    answered, unanswered = checklist(context)
    context["checklist"] = {"answered": answered, "unanswered": unanswered}
    return _environment().get_template("report.html.j2").render(**context)


def write_report(run_dir: Path, path: Path | None = None) -> Path:
    """Write :func:`build_report`'s HTML to ``path`` (default ``run_dir/report.html``) atomically: to a
    temporary file beside it, then renamed into place, so a reader never sees half a report."""
    run_dir = Path(run_dir)
    path = run_dir / "report.html" if path is None else Path(path)
    html = build_report(run_dir)
    from bayes_rescue.outputs.rundir import atomic_write

    return atomic_write(path, html, overwrite=True, field="--out")
