"""The Diagnostics, Bias analysis and E-values, Sensitivity and Reproduce sections."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bayes_rescue.outputs.report.basics import (
    Table,
    _finite,
    _read_csv,
    _truthy,
    fmt_cell,
    fmt_interval,
    fmt_pp,
    fmt_prob,
    frame_table,
)

EVALUE_TEXT = (
    "The E-value (VanderWeele & Ding, Ann Intern Med 2017;167:268-274, doi 10.7326/M16-2509) is the minimum"
    " strength of association, on the risk-ratio scale, that an unmeasured confounder would need to have with"
    " both the treatment and the outcome, beyond the measured covariates, to fully explain away the observed"
    " risk ratio; the E-value of the interval is the same for the interval limit closest to no effect (1 when"
    " the interval already includes no effect). Large E-values mean that only strong confounding could"
    " explain the association away."
)


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


def sensitivity_section(run_dir: Path, labels=None) -> dict | None:
    """P(benefit) pivots (sd x prior centre) per outcome, subgroup and robust weight from ``grid.csv``,
    the grid's diagnostics, and ``tipping.csv`` as it is."""
    grid_path, tip_path = run_dir / "grid.csv", run_dir / "tipping.csv"
    if not grid_path.is_file() and not tip_path.is_file():
        return None
    pivots, grid_note, tipping = [], "", None
    from bayes_rescue.outputs.wording import estimand_label

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
                        caption=f"{estimand_label(outcome, subgroup, labels)}, robust weight {w:g}: P(benefit)",
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


def bias_section(summary: pd.DataFrame | None, labels=None) -> dict | None:
    """Only for a run with bias-adjusted fits (``--bias``): per prior and outcome (whole cohort), the RD
    (95% ETI) and P(benefit) unadjusted beside those adjusted for each bias model."""
    from bayes_rescue.outputs.wording import outcome_label

    if summary is None or "bias" not in summary.columns or not (summary["bias"] != "none").any():
        return None
    rows = summary[summary["level"] == "cohort"] if "level" in summary.columns else summary
    models = [b for b in dict.fromkeys(rows["bias"]) if b != "none"]
    out = []
    for _, r in rows[rows["bias"] == "none"].iterrows():
        cells: list = [str(r["prior"]), outcome_label(r["outcome"], labels)]
        for b in ["none", *models]:
            m = rows[(rows["prior"] == r["prior"]) & (rows["outcome"] == r["outcome"]) & (rows["bias"] == b)]
            if m.empty:
                cells += ["–", "–"]
                continue
            q = m.iloc[0]
            cells.append((fmt_pp(q["rd_median"]), f"({fmt_pp(q['rd_eti95_lb'])} to {fmt_pp(q['rd_eti95_ub'])})"))
            cells.append(fmt_prob(q["p_benefit"]))
        out.append(cells)
    cols = ["prior", "outcome"]
    for b in ["unadjusted", *[f"bias model {m}" for m in models]]:
        cols += [f"RD, points (95% ETI), {b}", f"P(benefit), {b}"]
    return {"by_bias": Table(cols, out, [False, False, *[True] * (len(cols) - 2)]), "models": models}


def evalues_section(run_dir: Path, labels=None) -> dict | None:
    """The E-values of ``evalues.csv`` (unadjusted fits): per estimand, the observed RR with its 95% CI and
    their E-values, and the E-value of the posterior median RR (its range over the priors)."""
    from bayes_rescue.outputs.wording import outcome_label, subgroup_label

    path = run_dir / "evalues.csv"
    if not path.is_file():
        return None
    ev = _read_csv(path)
    need = {"outcome", "subgroup", "data_rr", "data_evalue", "data_evalue_ci"}
    if not need <= set(ev.columns):
        return {"table": frame_table(ev), "text": EVALUE_TEXT}
    if "bias" in ev.columns:
        ev = ev[ev["bias"] == "none"]
    rows = []
    for (o, sg), g in ev.groupby(["outcome", "subgroup"], sort=False):
        r = g.iloc[0]
        lo, hi = fmt_cell("", r.get("data_rr_ci95_lb")), fmt_cell("", r.get("data_rr_ci95_ub"))
        post = [float(x) for x in g.get("post_evalue", pd.Series(dtype=float)) if _finite(x)]
        post_text = "–" if not post else f"{min(post):.2f}" + ("" if len(post) == 1 else f" to {max(post):.2f}")
        rows.append(
            [
                outcome_label(o, labels),
                subgroup_label(o, sg, labels),
                fmt_interval(f"{float(r['data_rr']):.2f}", lo, hi),
                f"{float(r['data_evalue']):.2f}",
                f"{float(r['data_evalue_ci']):.2f}",
                post_text,
            ]
        )
    cols = ["outcome", "subgroup", "observed RR (95% CI)", "E-value", "E-value of the CI", "posterior E-value"]
    return {"table": Table(cols, rows, [False, False, True, True, True, True]), "text": EVALUE_TEXT}


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


def meta_analysis_section(run_dir: Path) -> dict | None:
    """What a meta-analyst should pool from ``likelihood.csv`` (one outcome, one measure, one level), as
    metafor lines (:func:`bayes_rescue.outputs.escalc.rma_subset_code`); ``None`` without the file."""
    from bayes_rescue.outputs.escalc import LIKELIHOOD_SUBSET_NOTE, rma_subset_code

    path = run_dir / "likelihood.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"outcome", "level"} <= set(table.columns):
        return None
    lines = []
    for outcome in dict.fromkeys(table["outcome"]):
        rows = table[table["outcome"] == outcome]
        n_sub = int((rows["level"] == "subgroup").sum() // max(rows["measure"].nunique(), 1))
        lines.append(f"# {outcome}, OR: this cohort's one estimate (k = 1), to add to other studies' rows")
        lines.append(rma_subset_code(outcome, measure="OR", level="cohort"))
        if n_sub > 1:
            lines.append(f"# {outcome}, OR: its {n_sub} subgroups (k = {n_sub}, disjoint patients)")
            lines.append(rma_subset_code(outcome, measure="OR", level="subgroup"))
    return {"note": LIKELIHOOD_SUBSET_NOTE, "lines": lines}
