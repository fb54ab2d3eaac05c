"""``bayes-rescue fit``: fit the model under one or more priors and write a run folder; ``--rerun``."""

from __future__ import annotations

import json
import shlex
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from bayes_rescue.cli._args import (
    EXIT_DIAGNOSTICS,
    EXIT_NOT_REPRODUCED,
    _discount,
    _positive_int,
    _prob,
    _seed,
    _target_dir,
    _unit,
)
from bayes_rescue.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit the model under one or more priors and write a run directory")
    p.add_argument(
        "--rerun",
        type=Path,
        default=None,
        help="rerun the run recorded in this manifest.json into a new folder and compare summary and draws",
    )
    p.add_argument("--data", default="bundled:chen2025", help="counts CSV (default: the bundled Chen 2025 cohort)")
    p.add_argument("--prior", default="skeptical", help="bundled name, path to a .toml, comma list, or 'all'")
    p.add_argument("--model", default="hierarchical", choices=["hierarchical", "independent"])
    p.add_argument("--draws", type=_positive_int("--draws"), default=1000, help="draws per chain (1000)")
    p.add_argument("--tune", type=_positive_int("--tune"), default=1000, help="tuning steps per chain (1000)")
    p.add_argument("--chains", type=_positive_int("--chains"), default=4, help="chains (4)")
    p.add_argument("--seed", type=_seed("--seed"), default=20250531, help="random seed (20250531)")
    p.add_argument("--target-accept", type=_prob("--target-accept", 0.5, 1.0), default=0.95)
    p.add_argument("--prior-draws", type=_positive_int("--prior-draws"), default=4000)
    p.add_argument(
        "--mcid",
        type=_prob("--mcid"),
        nargs="+",
        default=[0.05, 0.10],
        help="benefit thresholds on the risk difference (0.05 0.10 = 5 and 10 points)",
    )
    p.add_argument("--rope", type=_prob("--rope"), default=0.02, help="ROPE half-width on the RD (0.02)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default: models/<name>)")
    p.add_argument("--name", default=None, help="run name (default: <data>-<prior>-<model>-<UTC time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--keep-going", action="store_true", help="write results even if diagnostics fail")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument(
        "--robust",
        type=_unit("--robust"),
        nargs="?",
        const=0.2,
        default=0.0,
        help="mix each prior with N(0, 1.5285) at this weight (0 = off; --robust alone = 0.2)",
    )
    p.add_argument(
        "--discount", type=_discount("--discount"), default=1.0, help="multiply every prior sd by this factor >= 1 (1)"
    )
    p.set_defaults(run=run)


def _run_name(args) -> str:
    data = Path(str(args.data).removeprefix("bundled:")).stem
    prior = args.prior if args.prior == "all" or "," in args.prior else Path(args.prior).stem
    prior = prior.replace(",", "+")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{data}-{prior}-{args.model}-{stamp}"


def cmd_rerun(manifest_path: Path) -> int:
    """Rerun a recorded fit into ``<run>-rerun-<time>`` and compare summary.csv and draws.csv hashes."""
    from bayes_rescue.cli import main as cli_main
    from bayes_rescue.outputs import rundir

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
    rc = cli_main(["fit", *kept, "--out", str(out)])
    if rc != 0:
        return rc
    differ = [f for f in ("summary.csv", "draws.csv") if rundir.sha256_file(out / f) != recorded.get(f)]
    if differ:
        print(f"NOT REPRODUCED: {', '.join(differ)} differ from the recorded run", file=sys.stderr)
        return EXIT_NOT_REPRODUCED
    print("reproduced: summary.csv and draws.csv are bit-identical to the recorded run")
    return 0


def cmd_fit(args, argv: list[str]) -> int:
    import logging

    import pandas as pd

    from bayes_rescue import progress
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.inference.sampling import fit_many
    from bayes_rescue.inference.settings import SamplerSettings
    from bayes_rescue.model.spec import ModelSpec
    from bayes_rescue.outputs import rundir
    from bayes_rescue.outputs import trees as tree_io
    from bayes_rescue.outputs.tables import describe, draws_table, summarize
    from bayes_rescue.priors.spec import discount, resolve_priors, robustify
    from bayes_rescue.versions import package_versions

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
    summaries = progress.track(results, "summarising priors") if len(results) > 1 else results
    summary = pd.concat([summarize(r, mcids=mcids, rope=args.rope) for r in summaries], ignore_index=True)
    single = len(results) == 1
    with progress.task("writing results"), rundir.atomic_run_dir(target, overwrite=args.overwrite) as tmp:
        for r in results:
            r.tree.attrs["bayes_rescue_command"] = shlex.join(["bayes-rescue", "fit", *argv])
        trees = [r.tree for r in results]
        tree = trees[0] if single else tree_io.stack_trees(trees, [r.spec.prior.name for r in results])
        tree_io.save_tree(tree, tmp / "posterior.nc")
        if not args.no_figures:
            from bayes_rescue.outputs.figures import make_figures  # matplotlib only when figures are drawn

            make_figures(results, summary, tmp / "figures")
        summary.to_csv(tmp / "summary.csv", index=False)
        rundir.write_csv(pd.concat([draws_table(r) for r in results], ignore_index=True), tmp / "draws.csv")
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
        rundir.write_json(tmp / "summary.json", {"meta": meta, "rows": json.loads(summary.to_json(orient="records"))})
        rundir.write_json(tmp / "manifest.json", {**meta, "files": rundir.file_hashes(tmp)})
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


def run(args, argv: list[str]) -> int:
    if args.rerun is not None:
        return cmd_rerun(args.rerun)
    return cmd_fit(args, argv)
