"""``python -m bayes_rescue.cli <command>`` = ``bayes-rescue <command>``."""

import sys

from bayes_rescue.cli import main

sys.exit(main())
