"""``bayes-rescue priors``: where every prior came from; ``--refit`` refits the MAP priors."""

from __future__ import annotations

from pathlib import Path

from bayes_rescue.cli._args import _unit

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _figure_path(text: str) -> Path:
    """``--plot``: a file name ending in a figure format (the format is taken from it; none is added)."""
    import argparse

    p = Path(text)
    if p.suffix.lower() not in FIGURE_SUFFIXES:
        raise argparse.ArgumentTypeError(f"--plot must end in {', '.join(FIGURE_SUFFIXES)}, got {text!r}")
    return p


def add_parser(sub) -> None:
    p = sub.add_parser("priors", help="where every prior came from: sources, centre, spread, implied RD, ESS")
    p.add_argument(
        "--prior",
        default="all",
        help="bundled prior name, path to a .toml, comma-separated list, or all (default: all)",
    )
    p.add_argument(
        "--data",
        default="bundled:chen2025",
        help="counts whose control risks the implied RD uses (default: bundled:chen2025)",
    )
    p.add_argument(
        "--robust",
        type=_unit("--robust"),
        default=0.0,
        help="also show the robust versions at this weight (default: 0 = off)",
    )
    p.add_argument(
        "--plot",
        type=_figure_path,
        default=None,
        help="draw the priors into this file; its suffix (.png, .svg, .pdf) is the format (default: off)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the table as CSV here (default: off)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --out / --plot files (default: off)")
    p.add_argument("--verbose", action="store_true", help="print every distribution and every source (default: off)")
    p.add_argument(
        "--refit",
        action="store_true",
        help="refit the MAP priors from the trial table (fixed seed) and rewrite bayes_rescue/priors/map_*.toml"
        " (default: off)",
    )
    p.set_defaults(run=run)


def cmd_priors(args) -> int:
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.outputs import rundir
    from bayes_rescue.priors.report import describe_priors, prior_table
    from bayes_rescue.priors.spec import bundled_priors_text, resolve_priors, robustify

    if args.refit:
        return _refit_map_priors()
    for path, field in ((args.out, "--out"), (args.plot, "--plot")):
        if path is not None:  # before any work
            rundir.refuse_existing(path, overwrite=args.overwrite, field=field, probe=True)
    data = load_counts(args.data)
    specs = resolve_priors(args.prior)
    if args.robust > 0:
        specs = specs + [robustify(s, args.robust) for s in specs]
    table = prior_table(specs, data)
    print(describe_priors(table))
    print("\n" + bundled_priors_text())
    if args.verbose:
        for spec in specs:
            print(f"\n{spec!r}\n  origin: {spec.origin}\n  rationale: {spec.rationale}")
            for o, e in spec.effects.items():
                for c in e.components:
                    print(f"  [{o}/{c.name}] {c.source}")
    if args.out is not None:
        out = rundir.atomic_write(
            args.out, rundir.neutralise_frame(table).to_csv(index=False), overwrite=args.overwrite, field="--out"
        )
        print(f"table written to {out}")
    if args.plot is not None:
        from bayes_rescue.outputs.figures import plot_priors  # matplotlib only when a figure is drawn

        written = rundir.atomic_write(
            args.plot, lambda tmp: plot_priors(specs, data, tmp), overwrite=args.overwrite, field="--plot"
        )
        print(f"figure written to {written}")
    return 0


def _refit_map_priors() -> int:
    from importlib import resources

    from bayes_rescue.analyses.map_prior import LITERATURE_SETS, map_prior_toml
    from bayes_rescue.outputs import rundir

    root = Path(str(resources.files("bayes_rescue") / "priors"))
    for name in LITERATURE_SETS:
        written = rundir.atomic_write(root / f"{name}.toml", map_prior_toml(name), overwrite=True, field="--refit")
        print(f"wrote {written}")
    return 0


def run(args, argv: list[str]) -> int:
    return cmd_priors(args)
