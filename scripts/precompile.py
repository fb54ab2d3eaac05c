"""Thin entry point: `python scripts/precompile.py` compiles the bundled model structures into the on-disk
caches and builds matplotlib's font cache (run once by scripts/setup.sh; see bayes_rescue.inference.precompile)."""

import sys
import warnings

from bayes_rescue.inference.precompile import main

if __name__ == "__main__":
    warnings.simplefilter("ignore", RuntimeWarning)
    code = main()
    from bayes_rescue.outputs.figures import warm_up

    warm_up()  # matplotlib's font cache, built on its first use
    sys.exit(code)
