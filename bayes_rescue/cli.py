"""Command line: ``bayes-rescue fit | check | priors`` (also ``scripts/fit.py``, ``scripts/check.py``).

Exit codes: 0 success; 2 bad input (one-line message, nothing written); 3 sampler diagnostics failed
after a retry (nothing written unless ``--keep-going``); 4 ``--rerun`` did not reproduce the recorded
summary and draws; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from bayes_rescue.errors import InputError

EXIT_INPUT = 2
EXIT_DIAGNOSTICS = 3
DEFAULT_MODELS_DIR = Path("models")


def _arg(name: str, cast: type, ok, describe: str):
    """An argparse type: ``cast`` the text, then require ``ok(value)``; messages name the option."""

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            kind = "a whole number" if cast is int else "a number"
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{name} must be {describe}, got {v}")
        return v

    return parse


def _positive_int(name: str):
    return _arg(name, int, lambda v: v >= 1, ">= 1")


def _prob(name: str, lo: float = 0.0, hi: float = 1.0):
    return _arg(name, float, lambda v: lo < v < hi, f"in ({lo}, {hi})")


def _positive_float(name: str):
    return _arg(name, float, lambda v: 0 < v < 1e3, "in (0, 1000)")


def _unit(name: str):
    return _arg(name, float, lambda v: 0 <= v <= 1, "in [0, 1]")


def _seed(name: str):
    return _arg(name, int, lambda v: 0 <= v < 2**63, "in [0, 2^63)")


def _centre(name: str):
    return _arg(name, float, lambda v: -20 <= v <= 20, "in [-20, 20] (log OR)")


def _discount(name: str):
    return _arg(name, float, lambda v: 1 <= v <= 100, "in [1, 100]")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        raise InputError(message.replace("\n", " "), source=self.prog)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bayes-rescue", description="Bayesian reanalysis of two-arm subgrouped binary outcomes.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    f = sub.add_parser("fit", help="fit the model under one or more priors and write a run directory")
    f.add_argument(
        "--rerun",
        type=Path,
        default=None,
        help="rerun the run recorded in this manifest.json into a new folder and compare summary and draws",
    )
    f.add_argument("--data", default="bundled:chen2025", help="counts CSV (default: the bundled Chen 2025 cohort)")
    f.add_argument("--prior", default="skeptical", help="bundled name, path to a .toml, comma list, or 'all'")
    f.add_argument("--model", default="hierarchical", choices=["hierarchical", "independent"])
    f.add_argument("--draws", type=_positive_int("--draws"), default=1000, help="draws per chain (1000)")
    f.add_argument("--tune", type=_positive_int("--tune"), default=1000, help="tuning steps per chain (1000)")
    f.add_argument("--chains", type=_positive_int("--chains"), default=4, help="chains (4)")
    f.add_argument("--seed", type=_seed("--seed"), default=20250531, help="random seed (20250531)")
    f.add_argument("--target-accept", type=_prob("--target-accept", 0.5, 1.0), default=0.95)
    f.add_argument("--prior-draws", type=_positive_int("--prior-draws"), default=4000)
    f.add_argument(
        "--mcid",
        type=_prob("--mcid"),
        nargs="+",
        default=[0.05, 0.10],
        help="benefit thresholds on the risk difference (0.05 0.10 = 5 and 10 points)",
    )
    f.add_argument("--rope", type=_prob("--rope"), default=0.02, help="ROPE half-width on the RD (0.02)")
    f.add_argument("--out", type=Path, default=None, help="run directory (default: models/<name>)")
    f.add_argument("--name", default=None, help="run name (default: <data>-<prior>-<model>-<UTC time>)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    f.add_argument("--keep-going", action="store_true", help="write results even if diagnostics fail")
    f.add_argument("--no-figures", action="store_true", help="skip the figures")
    f.add_argument(
        "--robust",
        type=_unit("--robust"),
        nargs="?",
        const=0.2,
        default=0.0,
        help="mix each prior with N(0, 1.5285) at this weight (0 = off; --robust alone = 0.2)",
    )
    f.add_argument(
        "--discount", type=_discount("--discount"), default=1.0, help="multiply every prior sd by this factor >= 1 (1)"
    )

    v = sub.add_parser("sensitivity", help="prior sensitivity grid, heat maps and reverse-Bayes tipping points")
    v.add_argument("--data", default="bundled:chen2025")
    v.add_argument("--model", default="hierarchical", choices=["hierarchical", "independent"])
    v.add_argument(
        "--centres",
        type=_centre("--centres"),
        nargs="+",
        default=[-0.5, 0.0, 0.5, 1.0],
        help="prior centres, log OR in the benefit direction",
    )
    v.add_argument("--sds", type=_positive_float("--sds"), nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    v.add_argument("--robust", type=_unit("--robust"), nargs="+", default=[0.0], help="robust weights to sweep")
    v.add_argument("--mcid", type=_prob("--mcid"), nargs="+", default=[0.05, 0.10])
    v.add_argument("--levels", type=_prob("--levels"), nargs="+", default=[0.95, 0.5], help="tipping levels")
    v.add_argument("--no-tipping", action="store_true", help="skip the tipping-point search")
    v.add_argument(
        "--method",
        default="auto",
        choices=["auto", "nuts"],
        help="'auto' (default): reweight one long reference fit by Pareto-smoothed importance sampling where"
        " that passes the diagnostics gate, NUTS elsewhere; 'nuts': fit every point",
    )
    v.add_argument("--draws", type=_positive_int("--draws"), default=1000)
    v.add_argument("--tune", type=_positive_int("--tune"), default=500)
    v.add_argument("--chains", type=_positive_int("--chains"), default=4)
    v.add_argument("--seed", type=_seed("--seed"), default=20250531)
    v.add_argument("--out", type=Path, default=None, help="output directory (default models/<name>)")
    v.add_argument("--name", default=None)
    v.add_argument("--overwrite", action="store_true")
    v.add_argument(
        "--scheduler",
        default="serial",
        help="'serial' (default: this process; nutpie's chains already use every core), 'local' (a Dask"
        " LocalCluster on this machine's cores, no set-up) or a dask.distributed scheduler address",
    )

    c = sub.add_parser("check", help="reproduce the source's frequentist P values from the counts")
    c.add_argument("--data", default="bundled:chen2025")
    c.add_argument("--out", type=Path, default=None, help="also write the table as CSV here")

    q = sub.add_parser("priors", help="where every prior came from: sources, centre, spread, implied RD, ESS")
    q.add_argument("--prior", default="all", help="bundled name, path, comma list, or all")
    q.add_argument("--data", default="bundled:chen2025", help="counts whose control risks the implied RD uses")
    q.add_argument("--robust", type=_unit("--robust"), default=0.0, help="also show robust versions (weight)")
    q.add_argument("--plot", type=Path, default=None, help="draw the priors into this PNG file")
    q.add_argument("--out", type=Path, default=None, help="write the table as CSV here")
    q.add_argument("--verbose", action="store_true", help="print every distribution and every source")
    q.add_argument(
        "--refit",
        action="store_true",
        help="refit the MAP priors from the trial table (fixed seed) and rewrite bayes_rescue/priors/map_*.toml",
    )
    return p


def _run_name(args) -> str:
    data = Path(str(args.data).removeprefix("bundled:")).stem
    prior = args.prior if args.prior == "all" or "," in args.prior else Path(args.prior).stem
    prior = prior.replace(",", "+")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{data}-{prior}-{args.model}-{stamp}"


def _target_dir(args, default_name: str) -> Path:
    """``--out``, or ``models/<--name or default_name>``; a ``--name`` must be a plain folder name."""
    if args.name is not None and (
        "/" in args.name or "\\" in args.name or args.name.startswith(".") or not args.name.strip()
    ):
        raise InputError("must be a plain folder name", field="--name")
    return args.out if args.out is not None else DEFAULT_MODELS_DIR / (args.name or default_name)


EXIT_NOT_REPRODUCED = 4


def cmd_rerun(manifest_path: Path) -> int:
    """Rerun a recorded fit into ``<run>-rerun-<time>`` and compare summary.csv and draws.csv hashes."""
    from bayes_rescue import io

    if not manifest_path.is_file():
        raise InputError("no such manifest file", source=manifest_path, field="--rerun")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
        argv = [str(a) for a in manifest["argv"]]
        recorded = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(f"is not a bayes_rescue manifest ({exc})", source=manifest_path, field="--rerun") from None
    drop_value, drop_flag = {"--out", "--name", "--rerun"}, {"--overwrite"}
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in drop_value:
            skip = True
            continue
        if a in drop_flag or any(a.startswith(f"{d}=") for d in drop_value):
            continue
        kept.append(a)
    run_dir = manifest_path.parent
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = run_dir.parent / f"{run_dir.name}-rerun-{stamp}"
    print(f"rerunning: bayes-rescue fit {shlex.join(kept)} --out {out}")
    rc = main(["fit", *kept, "--out", str(out)])
    if rc != 0:
        return rc
    differ = [f for f in ("summary.csv", "draws.csv") if io.sha256_file(out / f) != recorded.get(f)]
    if differ:
        print(f"NOT REPRODUCED: {', '.join(differ)} differ from the recorded run", file=sys.stderr)
        return EXIT_NOT_REPRODUCED
    print("reproduced: summary.csv and draws.csv are bit-identical to the recorded run")
    return 0


def cmd_fit(args, argv: list[str]) -> int:
    import logging

    import pandas as pd

    from bayes_rescue import io
    from bayes_rescue.data import load_counts
    from bayes_rescue.fit import SamplerSettings, fit_many, package_versions
    from bayes_rescue.model import ModelSpec
    from bayes_rescue.plots import make_figures
    from bayes_rescue.priors import discount, resolve_priors, robustify
    from bayes_rescue.summary import describe, draws_table, summarize

    logging.getLogger("pymc").setLevel(logging.WARNING)  # our own progress lines say what is sampled
    data = load_counts(args.data)
    priors = [discount(robustify(p, args.robust), args.discount) for p in resolve_priors(args.prior)]
    specs = [ModelSpec(data, p, args.model) for p in priors]  # validates prior coverage before sampling
    target = _target_dir(args, _run_name(args))
    if target.exists() and not args.overwrite:
        raise InputError("run directory already exists; choose another --name or pass --overwrite", source=target)
    settings = SamplerSettings(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        target_accept=args.target_accept,
        prior_draws=args.prior_draws,
    )
    mcids = tuple(sorted(set(args.mcid)))
    t0 = time.perf_counter()
    names = ", ".join(f"'{s.prior.name}'" for s in specs)
    print(f"fitting prior{'s' if len(specs) > 1 else ''} {names} ({args.model}) ...", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reported below, loudly
        results = fit_many(specs, settings)
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(
            f"WARNING: prior '{r.spec.prior.name}': sampler diagnostics FAILED after {r.attempts} attempts: "
            + "; ".join(r.diagnostics.problems()),
            file=sys.stderr,
        )
    if failed and not args.keep_going:
        print(
            "ERROR: not writing results from a sampler that did not converge (use --keep-going to"
            " write them with the failure recorded)",
            file=sys.stderr,
        )
        return EXIT_DIAGNOSTICS
    summary = pd.concat([summarize(r, mcids=mcids, rope=args.rope) for r in results], ignore_index=True)
    single = len(results) == 1
    with io.atomic_run_dir(target, overwrite=args.overwrite) as tmp:
        for r in results:
            r.tree.attrs["bayes_rescue_command"] = shlex.join(["bayes-rescue", "fit", *argv])
        trees = [r.tree for r in results]
        tree = trees[0] if single else io.stack_trees(trees, [r.spec.prior.name for r in results])
        io.save_tree(tree, tmp / "posterior.nc")
        if not args.no_figures:
            make_figures(results, summary, tmp / "figures")
        summary.to_csv(tmp / "summary.csv", index=False)
        io.write_csv(pd.concat([draws_table(r) for r in results], ignore_index=True), tmp / "draws.csv")
        meta = {
            "command": shlex.join(["bayes-rescue", "fit", *argv]),
            "argv": argv,
            "created_utc": datetime.now(UTC).isoformat(),
            "data": {"source": data.source, "sha256": data.sha256},
            "priors": [
                {"name": r.spec.prior.name, "origin": r.spec.prior.origin, "sha256": r.spec.prior.sha256}
                for r in results
            ],
            "model": args.model,
            "settings": json.loads(results[0].tree.attrs["bayes_rescue_settings"]),
            "mcids": list(mcids),
            "rope": args.rope,
            "versions": package_versions(),
            "diagnostics": {
                r.spec.prior.name: {
                    **r.diagnostics.to_dict(),
                    "attempts": r.attempts,
                    "sampled_with": json.loads(r.tree.attrs.get("bayes_rescue_sampled_with", "null"))
                    or [r.spec.prior.name],
                }
                for r in results
            },
            "all_diagnostics_passed": not failed,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        io.write_json(tmp / "summary.json", {"meta": meta, "rows": json.loads(summary.to_json(orient="records"))})
        io.write_json(tmp / "manifest.json", {**meta, "files": io.file_hashes(tmp)})
    print()
    print(describe(summary, mcids=mcids))
    if failed:
        print(
            f"\nWARNING: diagnostics FAILED for {', '.join(r.spec.prior.name for r in failed)};"
            " these numbers are not reliable.",
            file=sys.stderr,
        )
    where = "posterior.nc" if single else "posterior.nc (a 'prior' dimension)"
    print(f"\nresults written to {target}/ (summary.csv, summary.json, draws.csv, {where}, figures/, manifest.json)")
    return 0  # failures were written only because --keep-going asked for it


def cmd_sensitivity(args, argv: list[str]) -> int:
    import logging

    from bayes_rescue import io
    from bayes_rescue.data import load_counts
    from bayes_rescue.fit import SamplerSettings, package_versions
    from bayes_rescue.parallel import dask_map
    from bayes_rescue.sensitivity import plot_heatmaps, points_failing_gate, sensitivity_grid, tipping_points
    from bayes_rescue.summary import prob_column

    logging.getLogger("pymc").setLevel(logging.WARNING)
    data = load_counts(args.data)
    default = f"sensitivity-{Path(str(args.data).removeprefix('bundled:')).stem}-{args.model}-" + datetime.now(
        UTC
    ).strftime("%Y%m%dT%H%M%SZ")
    target = _target_dir(args, default)
    if target.exists() and not args.overwrite:
        raise InputError("output directory already exists; pass --overwrite or another --name", source=target)
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
    with io.atomic_run_dir(target, overwrite=args.overwrite) as tmp:
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
            "command": shlex.join(["bayes-rescue", "sensitivity", *argv]),
            "data": {"source": data.source, "sha256": data.sha256},
            "settings": {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed},
            "grid_points": n,
            "scheduler": args.scheduler,
            "grid_seconds": round(t_grid, 2),
            "worst_diagnostics": worst,
            "versions": package_versions(),
        }
        io.write_json(tmp / "manifest.json", {**meta, "files": io.file_hashes(tmp)})
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


def cmd_check(args) -> int:
    from bayes_rescue.check import check_table, describe_check
    from bayes_rescue.data import load_counts

    table = check_table(load_counts(args.data))
    print(describe_check(table))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"\ntable written to {args.out}")
    return 0


def cmd_priors(args) -> int:
    from bayes_rescue.data import load_counts
    from bayes_rescue.prior_report import describe_priors, plot_priors, prior_table
    from bayes_rescue.priors import resolve_priors, robustify

    if args.refit:
        return _refit_map_priors()
    data = load_counts(args.data)
    specs = resolve_priors(args.prior)
    if args.robust > 0:
        specs = specs + [robustify(s, args.robust) for s in specs]
    table = prior_table(specs, data)
    print(describe_priors(table))
    if args.verbose:
        for spec in specs:
            print(f"\n{spec!r}\n  origin: {spec.origin}\n  rationale: {spec.rationale}")
            for o, e in spec.effects.items():
                for c in e.components:
                    print(f"  [{o}/{c.name}] {c.source}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"table written to {args.out}")
    if args.plot is not None:
        print(f"figure written to {plot_priors(specs, data, args.plot)}")
    return 0


def _refit_map_priors() -> int:
    from importlib import resources

    from bayes_rescue.map_prior import LITERATURE_SETS, map_prior_toml

    root = Path(str(resources.files("bayes_rescue") / "priors"))
    for name in LITERATURE_SETS:
        text = map_prior_toml(name)
        tmp = root / f".{name}.toml.partial"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(root / f"{name}.toml")
        print(f"wrote {root / name}.toml")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "fit":
            if args.rerun is not None:
                return cmd_rerun(args.rerun)
            return cmd_fit(args, argv[1:])
        if args.command == "check":
            return cmd_check(args)
        if args.command == "sensitivity":
            return cmd_sensitivity(args, argv[1:])
        return cmd_priors(args)
    except InputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
