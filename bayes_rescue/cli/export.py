"""``bayes-rescue export``: one estimand's posterior log OR as a prior file (TOML for ``fit --prior``, or JSON
in RBesT's mixture layout), and optionally its tidy draws (parquet or CSV).

The posterior draws of the log OR are fitted by a normal mixture (EM; the number of components, 1..K, by
BIC), and the fit's accuracy (Kolmogorov-Smirnov distance, largest error of the 2.5/50/97.5% quantiles) is
printed and written into the file. Every component's ``source`` cites the run: its manifest and hashes, the
data, the prior, the model and the command.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bayes_rescue.cli._args import _arg
from bayes_rescue.errors import InputError

PRIOR_SUFFIXES = (".toml", ".json")
DRAWS_SUFFIXES = (".parquet", ".csv")
MAX_COMPONENTS = 6


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export one estimand's posterior log OR as a prior file (TOML/JSON) and draws")
    p.add_argument("run_path", metavar="RUN", type=Path, help="a run folder (models/<run>) or its posterior.nc")
    p.add_argument("--outcome", required=True, help="the estimand's outcome")
    p.add_argument("--subgroup", default="overall", help="the estimand's subgroup (default: overall)")
    p.add_argument("--prior", default=None, help="the prior, in a several-prior run (default: the only one)")
    p.add_argument("--to", type=Path, required=True, help="the prior file to write: FILE.toml or FILE.json")
    p.add_argument("--draws", type=Path, default=None, help="also write tidy draws: FILE.parquet|.csv (default: none)")
    p.add_argument(
        "--max-components",
        type=_arg("--max-components", int, lambda v: 1 <= v <= MAX_COMPONENTS, f"in 1..{MAX_COMPONENTS}"),
        default=3,
        help="largest number of mixture components tried; chosen by BIC (default: 3)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (default: refuse)")
    p.set_defaults(run=run)


def _check_target(path: Path, suffixes: tuple[str, ...], option: str, overwrite: bool) -> None:
    if path.suffix.lower() not in suffixes:
        raise InputError(f"must end in {' or '.join(suffixes)}", source=path, field=option)
    if path.is_dir():
        raise InputError("is a folder, not a file", source=path, field=option)
    if not path.parent.is_dir():
        raise InputError("its folder does not exist", source=path, field=option)
    if path.exists() and not overwrite:
        raise InputError("already exists; pass --overwrite to replace it", source=path, field=option)


def _read_manifest(run_path: Path) -> tuple[Path, dict]:
    folder = run_path.parent if run_path.suffix == ".nc" else run_path
    path = folder / "manifest.json"
    if not path.is_file():
        raise InputError("is not a complete bayes_rescue run folder (no manifest.json)", source=folder)
    try:
        manifest = json.loads(path.read_text("utf-8"))
        ok = isinstance(manifest.get("data"), dict) and all("name" in p for p in manifest.get("priors") or [None])
    except (ValueError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise InputError("is not a bayes_rescue manifest (no 'data' and 'priors' entries)", source=path)
    return path, manifest


def cmd_export(args) -> int:
    """Fit the estimand's posterior log OR draws by a normal mixture and write it as a prior file (and the draws).

    Every output path is checked before any work (suffix, folder, no silent overwrite); the files are
    written atomically. The TOML text is parsed by the package's prior parser before it is written.
    """
    import dataclasses
    import tomllib

    from bayes_rescue.outputs import exports, rundir
    from bayes_rescue.outputs.console import export_heading, wrap_text
    from bayes_rescue.outputs.trees import load_run_draws, run_labels, run_tree_path
    from bayes_rescue.priors.mixture import approximate
    from bayes_rescue.priors.spec import load_prior, parse_prior

    _check_target(args.to, PRIOR_SUFFIXES, "--to", args.overwrite)
    if args.draws is not None:
        _check_target(args.draws, DRAWS_SUFFIXES, "--draws", args.overwrite)
        if args.draws.resolve() == args.to.resolve():
            raise InputError("is the same file as --to", source=args.draws, field="--draws")
    manifest_path, manifest = _read_manifest(args.run_path)
    from bayes_rescue.data.names import check_name

    # a tampered manifest's names never reach a path or a file: the name rule, as where they were first read
    priors = {check_name(p["name"], source=manifest_path, field="priors.name"): p for p in manifest["priors"]}
    if args.prior is not None and args.prior not in priors:
        raise InputError(f"the run has no prior '{args.prior}'; it has {', '.join(priors)}", field="--prior")
    if len(priors) == 1:
        prior_name, select = next(iter(priors)), None
    else:
        prior_name, select = args.prior, args.prior
    if prior_name is None:
        raise InputError(
            f"holds several priors ({', '.join(priors)}); choose one with --prior",
            source=args.run_path,
            field="--prior",
        )
    tree_path = run_tree_path(args.run_path, prior=select)
    draws = load_run_draws(args.run_path, outcome=args.outcome, subgroup=args.subgroup, prior=select)
    x = draws["log_or"].ravel()
    mixture, accuracy = approximate(x, max_k=args.max_components)
    prior_meta = priors[prior_name]
    prov = exports.ExportProvenance(
        run=str(manifest_path.parent.resolve()),
        outcome=args.outcome,
        subgroup=args.subgroup,
        prior=prior_name,
        prior_origin=str(prior_meta.get("origin", "")),
        prior_sha256=str(prior_meta.get("sha256", "")),
        data_source=str(manifest["data"].get("source", "")),
        data_sha256=str(manifest["data"].get("sha256", "")),
        model=str(manifest.get("model", "")),
        command=str(manifest.get("command", "")),
        manifest=str(manifest_path.resolve()),
        manifest_sha256=rundir.sha256_file(manifest_path),
        posterior_sha256=rundir.sha256_file(tree_path),
        n_draws=int(x.size),
        max_components=args.max_components,
        ks=accuracy["ks"],
        max_quantile_error=accuracy["max_quantile_error"],
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if args.to.suffix.lower() == ".toml":
        neutral = load_prior("neutral").effects["default"].components
        note = "bundled prior 'neutral' (bayes_rescue/priors/neutral.toml): "
        defaults = [dataclasses.replace(c, source=note + c.source) for c in neutral]
        text = exports.prior_toml(mixture, prov, default_components=defaults)
        parse_prior(tomllib.loads(text), origin=str(args.to))  # what fit --prior will accept
    else:
        text = exports.prior_json(mixture, prov)
    exports.write_atomic(
        args.to, lambda p: p.write_text(text, encoding="utf-8"), overwrite=args.overwrite, field="--to"
    )
    written = [str(args.to)]
    if args.draws is not None:
        frame = exports.tidy_draws(draws, prior=prior_name, outcome=args.outcome, subgroup=args.subgroup)
        if args.draws.suffix.lower() == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            def write(p: Path) -> None:
                pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), p)
        else:

            def write(p: Path) -> None:
                rundir.write_csv(frame, p)

        exports.write_atomic(args.draws, write, overwrite=args.overwrite, field="--draws")
        written.append(str(args.draws))
    k = len(mixture.weights)
    print(export_heading(args.outcome, args.subgroup, labels=run_labels(tree_path), prior=prior_name, n_draws=x.size))
    for j, (w, m, s) in enumerate(zip(mixture.weights, mixture.means, mixture.sds, strict=True)):
        print(f"  comp{j + 1}: weight {w:.4f}  mean {m:+.4f}  sd {s:.4f}")
    print(f"{k} component{'s' if k > 1 else ''}, chosen by {exports.CRITERION.format(k=args.max_components)}")
    if args.to.suffix.lower() == ".json":
        print(f"RBesT reference scale sigma = {exports.RBEST_SIGMA:g} (set sigma(mix) in R for another unit)")
        if k == 3:
            print("written to the JSON as 4 components (the lightest split in two halves): RBesT cannot read 3")
    print(
        f"accuracy: Kolmogorov-Smirnov distance {accuracy['ks']:.4f}; largest error of the 2.5/50/97.5% quantiles"
        f" {accuracy['max_quantile_error']:.4f} (log OR)"
    )
    print("note: this posterior includes the run's prior and data; do not reuse it on the same evidence")
    print(wrap_text(f"written: {', '.join(written)}"))
    return 0


def run(args, argv: list[str]) -> int:
    return cmd_export(args)
