"""Thin entry point: `python scripts/precompile.py` compiles the bundled model structures into the on-disk
caches (run by scripts/setup.sh; see bayes_rescue.inference.precompile)."""

import sys
import warnings

from bayes_rescue.inference.precompile import main

if __name__ == "__main__":
    warnings.simplefilter("ignore", RuntimeWarning)
    sys.exit(main())
