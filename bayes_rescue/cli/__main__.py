"""``python -m bayes_rescue.cli <command> [options]`` = ``bayes-rescue <command> [options]``."""

from bayes_rescue.cli import console_main

if __name__ == "__main__":
    console_main()
