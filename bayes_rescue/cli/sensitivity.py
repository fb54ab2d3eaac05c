"""``bayes-rescue sensitivity``: prior-sensitivity grid, heat maps and reverse-Bayes tipping points."""

from __future__ import annotations

import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bayes_rescue.cli._args import (
    MIN_DRAWS,
    _centre,
    _figure_formats,
    _positive_float,
    _positive_int,
    _prob,
    _scheduler,
    _seed,
    _target_dir,
    _unit,
    check_total_draws,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sensitivity",
        help="prior sensitivity grid, heat maps and reverse-Bayes tipping points",
        description="Fit a grid of normal priors on every outcome's log OR; write grid.csv, heat maps and tipping.csv.",
    )
    p.add_argument(
        "--data",
        default="bundled:chen2025",
        help="counts CSV, or bundled:<name> (default: bundled:chen2025, the Chen 2025 cohort)",
    )
    p.add_argument(
        "--model",
        default="hierarchical",
        choices=["hierarchical", "independent"],
        help="model structure (default: hierarchical)",
    )
    p.add_argument(
        "--centres",
        type=_centre("--centres"),
        nargs="+",
        default=[-0.5, 0.0, 0.5, 1.0],
        help="prior centres, log OR in the benefit direction (default: -0.5 0 0.5 1)",
    )
    p.add_argument(
        "--sds",
        type=_positive_float("--sds"),
        nargs="+",
        default=[0.25, 0.5, 1.0, 2.0],
        help="prior standard deviations of the log OR (default: 0.25 0.5 1 2)",
    )
    p.add_argument(
        "--robust",
        type=_unit("--robust"),
        nargs="+",
        default=[0.0],
        help="weights of the robust N(0, 1.5285) component to sweep (default: 0)",
    )
    p.add_argument(
        "--mcid",
        type=_prob("--mcid"),
        nargs="+",
        default=[0.05, 0.10],
        help="benefit thresholds on the risk difference, as proportions (default: 0.05 0.1)",
    )
    p.add_argument(
        "--levels",
        type=_prob("--levels"),
        nargs="+",
        default=[0.95, 0.5],
        help="posterior probabilities of benefit whose tipping points are searched (default: 0.95 0.5)",
    )
    p.add_argument(
        "--no-tipping", action="store_true", help="skip the tipping-point search (default: tipping points searched)"
    )
    p.add_argument(
        "--method",
        default="auto",
        choices=["auto", "nuts"],
        help="'auto': reweight one long reference fit by Pareto-smoothed importance sampling where"
        " that passes the diagnostics gate, NUTS elsewhere; 'nuts': fit every point (default: auto)",
    )
    p.add_argument(
        "--draws", type=_positive_int("--draws", MIN_DRAWS), default=1000, help="draws per chain (default: 1000)"
    )
    p.add_argument("--tune", type=_positive_int("--tune"), default=500, help="tuning steps per chain (default: 500)")
    p.add_argument("--chains", type=_positive_int("--chains"), default=4, help="chains (default: 4)")
    p.add_argument("--seed", type=_seed("--seed"), default=20250531, help="random seed (default: 20250531)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: models/<name>)")
    p.add_argument("--name", default=None, help="run name (default: sensitivity-<data>-<model>-<UTC time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory (default: off)")
    p.add_argument(
        "--scheduler",
        type=_scheduler,
        default="serial",
        help="'serial' (this process; nutpie's chains already use every core), 'local' (a Dask"
        " LocalCluster on this machine's cores, no set-up) or a dask.distributed scheduler address"
        " (default: serial)",
    )
    p.add_argument(
        "--figure-format",
        type=_figure_formats("--figure-format"),
        default=("png", "svg"),
        metavar="png,svg|pdf",
        help="comma-separated formats of the heat maps: png (300 dpi), svg, pdf (default: png,svg)",
    )
    p.set_defaults(run=run)


def cmd_sensitivity(args, argv: list[str]) -> int:
    """Check the inputs and the target, then run and write under the run lock."""
    import logging

    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.outputs import rundir

    logging.getLogger("pymc").setLevel(logging.WARNING)
    data = load_counts(args.data)
    default = f"sensitivity-{Path(str(args.data).removeprefix('bundled:')).stem}-{args.model}-" + datetime.now(
        UTC
    ).strftime("%Y%m%dT%H%M%SZ")
    target = _target_dir(args, default)
    check_total_draws(args.chains, args.draws)
    field = "--out" if args.out is not None else "--name"
    with rundir.claim_run_dir(target, overwrite=args.overwrite, field=field):
        return _grid_and_write(args, argv, data, target)


def _grid_and_write(args, argv: list[str], data, target: Path) -> int:
    """Run the grid and the tipping points, then write ``target`` (the caller holds its lock)."""
    from bayes_rescue.analyses.parallel import dask_map
    from bayes_rescue.analyses.sensitivity import points_failing_gate, sensitivity_grid, tipping_points
    from bayes_rescue.inference.settings import SamplerSettings
    from bayes_rescue.model.estimands import prob_column
    from bayes_rescue.outputs import rundir
    from bayes_rescue.outputs.console import written_line
    from bayes_rescue.outputs.figures import plot_heatmaps
    from bayes_rescue.versions import package_versions

    settings = SamplerSettings(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed, prior_draws=1)
    mcids = tuple(sorted(set(args.mcid)))
    t0 = time.perf_counter()
    n = len(args.centres) * len(args.sds) * len(args.robust)
    print(f"sensitivity grid: {n} points x {len(data.outcomes)} outcomes ...", flush=True)
    with dask_map(args.scheduler) as mapper:
        grid = sensitivity_grid(
            data,
            kind=args.model,
            centres=args.centres,
            sds=args.sds,
            robust=args.robust,
            settings=settings,
            mcids=mcids,
            map_fn=mapper,
            method=args.method,
        )
    t_grid = time.perf_counter() - t0
    tips = (
        None
        if args.no_tipping
        else tipping_points(data, kind=args.model, levels=args.levels, settings=settings, method=args.method)
    )
    with rundir.atomic_run_dir(target, overwrite=args.overwrite) as tmp:
        grid.to_csv(tmp / "grid.csv", index=False)
        if tips is not None:
            tips.to_csv(tmp / "tipping.csv", index=False)
        for r in args.robust:
            for col in ("p_benefit", *(prob_column("benefit", m) for m in mcids)):
                plot_heatmaps(
                    grid,
                    tmp / f"heatmap_{col}_robust{r:g}",
                    col,
                    robust=r,
                    labels=data.labels,
                    formats=args.figure_format,
                )
        worst = {
            "max_rhat": float(grid["rhat_max"].max()),
            "min_ess": float(grid["ess_min"].min()),
            "max_divergences": int(grid["divergences"].max()),
            "points_failing_gate": points_failing_gate(grid),
        }
        meta = {
            "tool": "bayes_rescue",
            "command": shlex.join(["bayes-rescue", "sensitivity", *argv]),
            "data": {"source": data.source, "sha256": data.sha256},
            "settings": {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed},
            "grid_points": n,
            "scheduler": args.scheduler,
            "grid_seconds": round(t_grid, 2),
            "worst_diagnostics": worst,
            "versions": package_versions(),
        }
        rundir.write_json(tmp / "manifest.json", {**meta, "files": rundir.file_hashes(tmp)})
    print(sensitivity_text(grid, tips, data, robust=args.robust[0], worst=worst))
    if worst["points_failing_gate"]:
        print(
            "WARNING: some grid points failed the diagnostics gate; see grid.csv (diagnostics_passed)", file=sys.stderr
        )
    figs = ", ".join(f"heatmap_*.{f}" for f in args.figure_format)
    files = f"grid.csv, {figs}, manifest.json" if tips is None else f"grid.csv, tipping.csv, {figs}, manifest.json"
    print("\n" + written_line(target, files.split(", ")))
    return 0


def sensitivity_text(grid, tips, data, *, robust: float, worst: dict) -> str:
    """The console output of ``sensitivity``: per outcome, the cohort's P(benefit) over the grid, the
    tipping points and the worst diagnostics, in the data file's labels within 100 columns."""
    from bayes_rescue.outputs import wording
    from bayes_rescue.outputs.console import Names, wrap

    names = Names(data.labels)
    lines = []
    overall = grid[grid["subgroup"] == "overall"]
    for outcome, part in overall.groupby("outcome", sort=False):
        label = names.outcome(outcome, raw=False)
        direction = wording.direction_phrase(data.directions[outcome], label)
        lines += ["", *wrap(f"{names.outcome(outcome)}, whole cohort: P(benefit), robust weight {robust:g}")]
        lines += wrap(f"rows: prior SD; columns: prior centre (log OR towards benefit: {direction})")
        table = part[part["robust"] == robust].pivot(index="sd", columns="centre_benefit", values="p_benefit")
        lines.append(probability_grid_text(table))
    if tips is not None:
        lines += ["", "Reverse-Bayes tipping points:", tipping_text(tips, names=names)]
    worst_text = (
        f"worst diagnostics over the grid: max R-hat {worst['max_rhat']:.4f}, min ESS (bulk or tail)"
        f" {worst['min_ess']:.0f}, max divergences {worst['max_divergences']}, points failing the gate"
        f" {worst['points_failing_gate']}"
    )
    lines += ["", *wrap(worst_text)]
    return "\n".join(lines)


def probability_grid_text(table) -> str:
    """A pivot table of probabilities (rows: prior SD; columns: prior centre) as text, every cell by
    :func:`~bayes_rescue.outputs.tables.format_probability` (``n/a`` where a point has no value)."""
    from bayes_rescue.outputs.console import render_table
    from bayes_rescue.outputs.wording import format_probability

    first = "SD \\ centre"
    rows = [
        {first: f"{idx:g}", **{f"{c:g}": format_probability(v) for c, v in zip(table.columns, row, strict=True)}}
        for idx, row in table.iterrows()
    ]
    right = set(rows[0]) - {first} if rows else set()
    return "\n".join(render_table(rows, keys=[first], right=right, wrap_widths={first: len(first)}))


def tipping_text(tips, *, labels=None, names=None) -> str:
    """The tipping-point table as text, per estimand in the data file's labels (a raw name once, in
    parentheses, unless ``names``, the output's :class:`~bayes_rescue.outputs.console.Names`, showed it
    already); a point that was not found is ``n/a`` (its status says why)."""
    from bayes_rescue.outputs.console import Names, block_heading, render_table, wrap

    names = names if names is not None else Names(labels)

    def num(x, spec: str) -> str:
        return "n/a" if x != x else format(x, spec)

    right = {"level", "skeptical sd", "ESS (patients)", "centre OR"}
    wraps = {"subgroup": 22, "sd status": 20}
    lines = wrap(
        "skeptical sd: the sd of the N(0, sd) prior under which P(benefit) falls to the level; ESS (patients):"
        " its prior effective sample size; centre OR: the most pessimistic prior centre (as an odds ratio) that"
        " still reaches the level (tipping.csv)",
        indent="",
    )
    for outcome, part in tips.groupby("outcome", sort=False):
        rows = [
            {
                "subgroup": names.subgroup(outcome, r["subgroup"], raw=False),
                "level": f"{r['level']:g}",
                "skeptical sd": num(r.get("tipping_sd", float("nan")), ".3g"),
                "ESS (patients)": num(r.get("tipping_sd_ess_patients", float("nan")), ".3g"),
                "centre OR": num(r.get("tipping_centre_or", float("nan")), ".3g"),
                "sd status": str(r.get("sd_status", "")),
            }
            for _, r in part.iterrows()
        ]
        lines += ["", *block_heading(names, outcome, part["subgroup"])]
        lines += render_table(rows, keys=["subgroup"], right=right, wrap_widths=wraps)
    return "\n".join(lines)


def run(args, argv: list[str]) -> int:
    return cmd_sensitivity(args, argv)
