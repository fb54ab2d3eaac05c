"""``python -m bayes_rescue.cli`` = ``bayes-rescue`` (for a source tree without the installed entry point)."""

import sys

from bayes_rescue.cli import main

sys.exit(main())
