"""``bayes-rescue fit``: fit the model under one or more priors and write a run folder; ``--rerun``."""

from __future__ import annotations

import json
import shlex
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

from bayes_rescue.cli._args import (
    EXIT_DIAGNOSTICS,
    EXIT_NOT_REPRODUCED,
    _discount,
    _figure_formats,
    _positive_int,
    _prob,
    _seed,
    _target_dir,
    _unit,
)
from bayes_rescue.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="fit the model under one or more priors and write a run directory",
        description="Fit the model under one or more priors; print the table and write models/<run>/.",
    )
    p.add_argument(
        "--rerun",
        type=Path,
        default=None,
        metavar="MANIFEST",
        help="rerun the run recorded in this manifest.json into a new folder and compare summary and draws"
        " (default: off)",
    )
    p.add_argument(
        "--data",
        default="bundled:chen2025",
        help="counts CSV, or bundled:<name> (default: bundled:chen2025, the Chen 2025 cohort)",
    )
    p.add_argument(
        "--prior",
        default="skeptical",
        help="bundled prior name, path to a .toml, comma-separated list, or 'all' (default: skeptical)",
    )
    p.add_argument(
        "--model",
        default="hierarchical",
        choices=["hierarchical", "independent"],
        help="hierarchical: subgroups partially pooled; independent: a 2x2 analysis per subgroup"
        " (default: hierarchical)",
    )
    p.add_argument("--draws", type=_positive_int("--draws"), default=1000, help="draws per chain (default: 1000)")
    p.add_argument("--tune", type=_positive_int("--tune"), default=1000, help="tuning steps per chain (default: 1000)")
    p.add_argument("--chains", type=_positive_int("--chains"), default=4, help="chains (default: 4)")
    p.add_argument("--seed", type=_seed("--seed"), default=20250531, help="random seed (default: 20250531)")
    p.add_argument(
        "--target-accept",
        type=_prob("--target-accept", 0.5, 1.0),
        default=0.95,
        help="NUTS target acceptance rate; a failed fit is retried at 0.99 (default: 0.95)",
    )
    p.add_argument(
        "--prior-draws",
        type=_positive_int("--prior-draws"),
        default=4000,
        help="draws from the prior, for the prior-posterior figure and the prior sensitivity (default: 4000)",
    )
    p.add_argument(
        "--mcid",
        type=_prob("--mcid"),
        nargs="+",
        default=[0.05, 0.10],
        help="benefit thresholds on the risk difference, as proportions (default: 0.05 0.1 = 5 and 10 points)",
    )
    p.add_argument(
        "--rope", type=_prob("--rope"), default=0.02, help="ROPE half-width on the risk difference (default: 0.02)"
    )
    p.add_argument("--out", type=Path, default=None, help="run directory (default: models/<name>)")
    p.add_argument("--name", default=None, help="run name (default: <data>-<prior>-<model>-<UTC time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory (default: off)")
    p.add_argument(
        "--keep-going", action="store_true", help="write results even if the diagnostics fail (default: off)"
    )
    p.add_argument("--no-figures", action="store_true", help="skip the figures (default: figures are drawn)")
    p.add_argument(
        "--figure-format",
        type=_figure_formats("--figure-format"),
        default=("png", "svg"),
        metavar="png,svg|pdf",
        help="comma-separated figure formats: png (300 dpi), svg (editable text), pdf (default: png,svg)",
    )
    p.add_argument(
        "--robust",
        type=_unit("--robust"),
        nargs="?",
        const=0.2,
        default=0.0,
        help="mix each prior with N(0, 1.5285) at this weight (default: 0 = off; --robust alone = 0.2)",
    )
    p.add_argument(
        "--discount",
        type=_discount("--discount"),
        default=1.0,
        help="multiply every prior sd by this factor >= 1 (default: 1)",
    )
    p.add_argument(
        "--bias",
        nargs="?",
        const="",
        default=None,
        metavar="NAME|FILE.toml",
        help="also fit every prior adjusted for the bias of a non-randomised comparison (bundled: mild,"
        " observational, severe; alone: observational); default: no adjustment",
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

    from bayes_rescue.api import command_line, fit, make_specs
    from bayes_rescue.data.counts import load_counts

    logging.getLogger("pymc").setLevel(logging.WARNING)  # our own progress lines say what is sampled
    data = load_counts(args.data)
    # validate the priors, bias model and their coverage of the data before any sampling
    specs = make_specs(
        data, args.prior, model=args.model, bias=args.bias, robust=args.robust, discount_factor=args.discount
    )
    target = _target_dir(args, _run_name(args))
    if target.exists() and not args.overwrite:
        raise InputError("run directory already exists; choose another --name or pass --overwrite", source=target)
    names = ", ".join(f"'{s.name}'" for s in specs)
    print(f"fitting {names} ({args.model}) ...", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reported below, loudly
        result = fit(
            data,
            [s.prior for s in specs if s.bias is None],
            model=args.model,
            bias=specs[-1].bias,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=args.seed,
            target_accept=args.target_accept,
            prior_draws=args.prior_draws,
            mcid=args.mcid,
            rope=args.rope,
        )
    for r in result.failed:
        print(
            f"WARNING: '{r.name}': sampler diagnostics FAILED after {r.attempts} attempts: "
            + "; ".join(r.diagnostics.problems()),
            file=sys.stderr,
        )
    if result.failed and not args.keep_going:
        print(
            "ERROR: not writing results from a sampler that did not converge (use --keep-going to"
            " write them with the failure recorded)",
            file=sys.stderr,
        )
        return EXIT_DIAGNOSTICS
    written = result.save(
        target,
        overwrite=args.overwrite,
        figures=not args.no_figures,
        figure_formats=args.figure_format,
        command=command_line(argv),
    )
    print()
    print(result.describe())
    if result.failed:
        print(
            f"\nWARNING: diagnostics FAILED for {', '.join(r.name for r in result.failed)};"
            " these numbers are not reliable.",
            file=sys.stderr,
        )
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in written.iterdir())
    print(f"\nresults written to {target}/ ({', '.join(files)})")
    return 0  # failures were written only because --keep-going asked for it


def run(args, argv: list[str]) -> int:
    if args.rerun is not None:
        return cmd_rerun(args.rerun)
    return cmd_fit(args, argv)
