"""``bayes-rescue check``: recompute the source's frequentist P values from the counts."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="reproduce the source's frequentist P values from the counts")
    p.add_argument(
        "--data",
        default="bundled:chen2025",
        help="counts CSV, or bundled:<name> (default: bundled:chen2025, the Chen 2025 cohort)",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the table as CSV here (default: off)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file (default: refuse)")
    p.set_defaults(run=run)


def cmd_check(args) -> int:
    from bayes_rescue.data.check import check_table
    from bayes_rescue.data.counts import load_counts
    from bayes_rescue.outputs import rundir
    from bayes_rescue.outputs.console import check_text, wrap_text

    if args.out is not None:  # before any work
        rundir.refuse_existing(args.out, overwrite=args.overwrite, field="--out", probe=True)
    data = load_counts(args.data)
    table = check_table(data)
    print(check_text(table, labels=data.labels))
    if args.out is not None:
        out = rundir.atomic_write(args.out, table.to_csv(index=False), overwrite=args.overwrite, field="--out")
        print("\n" + wrap_text(f"table written to {out}"))
    return 0


def run(args, argv: list[str]) -> int:
    return cmd_check(args)
