"""Thin entry point: `python scripts/export.py [options]` = `bayes-rescue export [options]`."""

import sys

from bayes_rescue.cli import main as cli_main
from bayes_rescue.cli import run_as_script


def main(argv: list[str] | None = None) -> int:
    return cli_main(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    run_as_script(main)  # no Dask import; no interpreter tear-down once every file is written
