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
    p = sub.add_parser("sensitivity", help="prior sensitivity grid, heat maps and reverse-Bayes tipping points")
    p.add_argument("--data", default="bundled:chen2025")
    p.add_argument("--model", default="hierarchical", choices=["hierarchical", "independent"])
    p.add_argument(
        "--centres",
        type=_centre("--centres"),
        nargs="+",
        default=[-0.5, 0.0, 0.5, 1.0],
        help="prior centres, log OR in the benefit direction",
    )
    p.add_argument("--sds", type=_positive_float("--sds"), nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    p.add_argument("--robust", type=_unit("--robust"), nargs="+", default=[0.0], help="robust weights to sweep")
    p.add_argument("--mcid", type=_prob("--mcid"), nargs="+", default=[0.05, 0.10])
    p.add_argument("--levels", type=_prob("--levels"), nargs="+", default=[0.95, 0.5], help="tipping levels")
    p.add_argument("--no-tipping", action="store_true", help="skip the tipping-point search")
    p.add_argument(
        "--method",
        default="auto",
        choices=["auto", "nuts"],
        help="'auto' (default): reweight one long reference fit by Pareto-smoothed importance sampling where"
        " that passes the diagnostics gate, NUTS elsewhere; 'nuts': fit every point",
    )
    p.add_argument("--draws", type=_positive_int("--draws", MIN_DRAWS), default=1000)
    p.add_argument("--tune", type=_positive_int("--tune"), default=500)
    p.add_argument("--chains", type=_positive_int("--chains"), default=4)
    p.add_argument("--seed", type=_seed("--seed"), default=20250531)
    p.add_argument("--out", type=Path, default=None, help="output directory (default models/<name>)")
    p.add_argument("--name", default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--scheduler",
        type=_scheduler,
        default="serial",
        help="'serial' (default: this process; nutpie's chains already use every core), 'local' (a Dask"
        " LocalCluster on this machine's cores, no set-up) or a dask.distributed scheduler address",
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
                plot_heatmaps(grid, tmp / f"heatmap_{col}_robust{r:g}.png", col, robust=r)
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
    overall = grid[grid["subgroup"] == "overall"]
    for outcome, part in overall.groupby("outcome", sort=False):
        print(f"\n{outcome} (cohort): P(benefit) by prior sd (rows) x centre (columns), robust weight 0")
        print(
            part[part["robust"] == args.robust[0]]
            .pivot(index="sd", columns="centre_benefit", values="p_benefit")
            .round(3)
        )
    if tips is not None:
        print("\nreverse-Bayes tipping points:")
        cols = [
            "outcome",
            "subgroup",
            "level",
            "tipping_sd",
            "tipping_sd_ess_patients",
            "tipping_centre_or",
            "sd_status",
        ]
        print(tips[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(
        f"\nworst diagnostics over the grid: max R-hat {worst['max_rhat']:.4f}, min ESS {worst['min_ess']:.0f},"
        f" max divergences {worst['max_divergences']}, points failing the gate {worst['points_failing_gate']}"
    )
    if worst["points_failing_gate"]:
        print(
            "WARNING: some grid points failed the diagnostics gate; see grid.csv (diagnostics_passed)", file=sys.stderr
        )
    files = (
        "grid.csv, heatmap_*.png, manifest.json"
        if tips is None
        else "grid.csv, tipping.csv, heatmap_*.png, manifest.json"
    )
    print(f"\nresults written to {target}/ ({files})")
    return 0


def run(args, argv: list[str]) -> int:
    return cmd_sensitivity(args, argv)
