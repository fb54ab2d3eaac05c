"""Thin entry point: `python scripts/predict.py [options]` = `bayes-rescue predict [options]`."""

import sys

from bayes_rescue.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(["predict", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
