"""``bayes-rescue report``: write a run folder's self-contained ``report.html``."""

from __future__ import annotations

from pathlib import Path

from bayes_rescue.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a run folder")
    p.add_argument("run_dir", type=Path, metavar="RUN", help="a run folder (models/<run>)")
    p.add_argument("--out", type=Path, default=None, help="the HTML file to write (default: RUN/report.html)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report file (default: refuse)")
    p.set_defaults(run=run)


def cmd_report(args) -> int:
    from bayes_rescue.outputs.console import wrap_text
    from bayes_rescue.outputs.report import write_report

    target = args.out if args.out is not None else args.run_dir / "report.html"
    if target.suffix.lower() not in (".html", ".htm"):
        raise InputError("must name an .html file", source=target, field="--out")
    if target.is_dir():
        raise InputError("is a directory", source=target, field="--out")
    if target.exists() and not args.overwrite:
        raise InputError("already exists; pass --overwrite to replace it", source=target, field="--out")
    path = write_report(args.run_dir, target)
    print(wrap_text(f"report written to {path}"))
    return 0


def run(args, argv: list[str]) -> int:
    return cmd_report(args)
