"""``bayes-rescue fit``: fit the model under one or more priors and write a run folder; ``--rerun``."""

from __future__ import annotations

import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

from bayes_rescue.cli._args import (
    EXIT_DIAGNOSTICS,
    MIN_DRAWS,
    _discount,
    _figure_formats,
    _positive_int,
    _prob,
    _seed,
    _target_dir,
    _unit,
    check_total_draws,
)


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser(
        "fit",
        help="fit the model under one or more priors and write a run directory",
        description="Fit the model under one or more priors; print the table and write models/<run>/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _epilog_on_help(p)
    p.add_argument(
        "--rerun",
        type=Path,
        default=None,
        metavar="MANIFEST",
        help="rerun the run recorded in this manifest.json from the inputs and settings kept in its folder, into"
        " <run>-rerun-<UTC time> or --out (no other option is allowed), and compare summary and draws"
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
        help="bundled prior name (listed below with the outcomes each covers), path to a .toml, comma-separated"
        " list, or 'all' (default: skeptical)",
    )
    p.add_argument(
        "--model",
        default="hierarchical",
        choices=["hierarchical", "independent"],
        help="hierarchical: subgroups partially pooled; independent: a 2x2 analysis per subgroup"
        " (default: hierarchical)",
    )
    p.add_argument(
        "--draws",
        type=_positive_int("--draws", MIN_DRAWS),
        default=1000,
        help="draws per chain, 4 to 100000 (default: 1000)",
    )
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
    p.add_argument(
        "--levels",
        type=_prob("--levels"),
        nargs="+",
        default=[0.95, 0.5],
        help="with --bias: P(benefit) levels whose tipping bias is searched (default: 0.95 0.5)",
    )
    p.add_argument(
        "--no-tipping", action="store_true", help="with --bias: skip the tipping-bias search (default: search)"
    )
    p.set_defaults(run=run)


def _epilog_on_help(parser) -> None:
    """Give ``fit --help`` the list of bundled priors and the outcomes each covers, read only when help is
    shown (building the parser for every other command reads no prior file)."""
    plain = parser.format_help

    def format_help() -> str:
        if parser.epilog is None:
            from bayes_rescue.priors.spec import bundled_priors_text

            parser.epilog = bundled_priors_text()
        return plain()

    parser.format_help = format_help


def _run_name(args) -> str:
    data = Path(str(args.data).removeprefix("bundled:")).stem
    prior = args.prior if args.prior == "all" or "," in args.prior else Path(args.prior).stem
    prior = prior.replace(",", "+")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{data}-{prior}-{args.model}-{stamp}"


def _rerun_settings(args) -> dict:
    """The settings a rerun needs, as typed data (the manifest's ``rerun`` table)."""
    return {
        "model": args.model,
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "seed": args.seed,
        "target_accept": args.target_accept,
        "prior_draws": args.prior_draws,
        "mcid": sorted(set(args.mcid)),
        "rope": args.rope,
        "robust": args.robust,
        "discount": args.discount,
        "keep_going": args.keep_going,
        "no_figures": args.no_figures,
    }


def fit_checked(args, argv, data, priors, bias, inputs, target: Path) -> int:
    """Check everything that can fail before any heavy import (PyMC, the plotting stack) and before any
    sampling: the draw budget, the priors' and the bias model's coverage of the data (the model specs, built
    from the parsed files alone), and the run folder and its lock (held for the whole fit). Then fit
    (:func:`_fit_and_write`).

    Helper processes (:mod:`bayes_rescue.workers`) start once the folder is held and load the plotting stack
    while this process imports PyMC and fits. One prior: one helper draws half the figures while this process
    writes the other files and then draws the other half (two helpers were no faster on two cores and took
    the run's memory, summed over its processes, past 600 MB). Several priors: two helpers also build the
    priors' DataTrees, then draw the figures."""
    from bayes_rescue.outputs import rundir
    from bayes_rescue.priors.coverage import bundled_content_notes

    check_total_draws(args.chains, args.draws)
    specs = _model_specs(args, data, priors, bias)
    field = "--out" if args.out is not None else "--name"
    with rundir.claim_run_dir(target, overwrite=args.overwrite, field=field):
        for note in bundled_content_notes(data, priors, bias):  # said once the run goes ahead
            print(note, file=sys.stderr)
        from bayes_rescue.workers import Workers

        several = len(priors) > 1 or bias is not None
        helpers = 2 if several else (0 if args.no_figures else 1)
        preload = ["bayes_rescue.outputs.figures:warm_up"] if not args.no_figures else []
        if several:  # the helpers also complete the priors' DataTrees
            preload += ["bayes_rescue.inference.results"]
        with Workers(helpers, preload=preload, share=not several):  # the current helpers of fit and save
            return _fit_and_write(args, argv, data, specs, target, inputs)


def _model_specs(args, data, priors, bias) -> list:
    """The fits of the run: each prior (with ``--robust``/``--discount``), and with a bias model each prior
    again, bias-adjusted. Building a :class:`~bayes_rescue.model.spec.ModelSpec` checks a prior's and a bias
    model's coverage of the data and every number's domain without importing PyMC;
    :func:`~bayes_rescue.priors.coverage.check_coverage` adds the subgroup offsets of ``[effect.default]``."""
    from bayes_rescue.model.spec import ModelSpec
    from bayes_rescue.priors.coverage import check_coverage
    from bayes_rescue.priors.spec import discount, robustify

    check_coverage(data, priors, bias)
    adjusted = [discount(robustify(p, args.robust), args.discount) for p in priors]
    specs = [ModelSpec(data, p, args.model) for p in adjusted]
    if bias is not None:
        specs += [ModelSpec(data, p, args.model, bias=bias) for p in adjusted]
    return specs


def cmd_fit(args, argv: list[str]) -> int:
    """Load and check the inputs (keeping their bytes for ``inputs/``), then fit and write under the run
    lock."""
    import logging

    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.outputs import manifest as mf
    from bayes_rescue.priors.bias import resolve_bias
    from bayes_rescue.priors.spec import resolve_priors

    logging.getLogger("pymc").setLevel(logging.WARNING)  # our own progress lines say what is sampled
    data = load_counts(args.data)
    priors = resolve_priors(args.prior)
    bias = resolve_bias(args.bias)
    inputs = (
        mf.source_bytes(data.source, data.sha256, what="counts file", field="--data"),
        [mf.source_bytes(p.origin, p.sha256, what="prior file", field="--prior") for p in priors],
        None if bias is None else mf.source_bytes(bias.origin, bias.sha256, what="bias model file", field="--bias"),
    )
    target = _target_dir(args, _run_name(args))
    return fit_checked(args, argv, data, priors, bias, inputs, target)


def _fit_and_write(args, argv: list[str], data, specs, target: Path, inputs) -> int:
    """Sample, check the diagnostics and write the run folder (the caller holds ``target``'s lock)."""
    from bayes_rescue.api import command_line, fit
    from bayes_rescue.outputs.console import fitting_line, tipping_bias_text, wrap_text, written_line

    print(fitting_line([s.name for s in specs], args.model), flush=True)
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
            tipping_levels=() if args.no_tipping else args.levels,
        )
    for r in result.failed:
        print(
            wrap_text(
                f"WARNING: '{r.name}': sampler diagnostics FAILED after {r.attempts} attempts: "
                + "; ".join(r.diagnostics.problems())
            ),
            file=sys.stderr,
        )
    if result.failed and not args.keep_going:
        print(
            wrap_text(
                "ERROR: not writing results from a sampler that did not converge (use --keep-going to"
                " write them with the failure recorded)"
            ),
            file=sys.stderr,
        )
        return EXIT_DIAGNOSTICS
    written = result.save(
        target,
        overwrite=args.overwrite,
        figures=not args.no_figures,
        figure_formats=args.figure_format,
        command=command_line(argv),
        rerun={"inputs": inputs, "settings": _rerun_settings(args)},
    )
    print()
    print(result.describe())
    if result.bias_tipping is not None:
        print("\n" + tipping_bias_text(result.bias_tipping, labels=data.labels))
    if result.failed:
        print(
            "\n"
            + wrap_text(
                f"WARNING: diagnostics FAILED for {', '.join(r.name for r in result.failed)};"
                " these numbers are not reliable."
            ),
            file=sys.stderr,
        )
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in written.iterdir())
    print("\n" + written_line(target, files))
    return 0  # failures were written only because --keep-going asked for it


def run(args, argv: list[str]) -> int:
    if args.rerun is not None:
        from bayes_rescue.cli._rerun import cmd_rerun

        return cmd_rerun(args)
    return cmd_fit(args, argv)
