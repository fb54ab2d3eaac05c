"""Shared pieces of the command line: argument types whose messages name the option, the parser that
turns argparse errors into one-line input errors (exit 2), exit codes and run-folder names."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from bayes_rescue.errors import InputError

EXIT_INPUT = 2
EXIT_DIAGNOSTICS = 3
EXIT_NOT_REPRODUCED = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
#: Largest values of the sampling options a user could mean (larger ones start allocating memory for
#: draws nobody will read); messages give the cap.
CAPS = {
    "--draws": 100_000,
    "--tune": 100_000,
    "--chains": 64,
    "--prior-draws": 100_000,
    "--sims": 100_000,
}
#: Largest chains x draws of one fit (a 2e6-draw trace of the bundled model is about 1 GB with its groups).
MAX_TOTAL_DRAWS = 2_000_000
#: Fewest draws per chain: R-hat and ESS need at least 4 draws per chain.
MIN_DRAWS = 4
DEFAULT_MODELS_DIR = Path("models")


def _arg(name: str, cast: type, ok, describe: str):
    """An argparse type: ``cast`` the text, then require ``ok(value)``; messages name the option."""

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            kind = "a whole number" if cast is int else "a number"
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{name} must be {describe}, got {v}")
        return v

    return parse


def _positive_int(name: str, lo: int = 1):
    """A whole number in [lo, cap] with the cap of :data:`CAPS` for ``name`` (no cap if it has none)."""
    hi = CAPS.get(name)
    if hi is None:
        return _arg(name, int, lambda v: v >= lo, f">= {lo}")
    return _arg(name, int, lambda v: lo <= v <= hi, f">= {lo} and <= {hi}")


def check_total_draws(chains: int, draws: int) -> None:
    """Refuse more than :data:`MAX_TOTAL_DRAWS` draws in all (``--chains`` x ``--draws``)."""
    if chains * draws > MAX_TOTAL_DRAWS:
        raise InputError(
            f"--chains x --draws = {chains * draws} is more than {MAX_TOTAL_DRAWS} draws in all",
            field="--draws",
        )


def _prob(name: str, lo: float = 0.0, hi: float = 1.0):
    return _arg(name, float, lambda v: lo < v < hi, f"in ({lo}, {hi})")


def _positive_float(name: str):
    return _arg(name, float, lambda v: 0 < v < 1e3, "in (0, 1000)")


def _unit(name: str):
    return _arg(name, float, lambda v: 0 <= v <= 1, "in [0, 1]")


def _seed(name: str):
    return _arg(name, int, lambda v: 0 <= v < 2**63, "in [0, 2^63)")


def _centre(name: str):
    return _arg(name, float, lambda v: -20 <= v <= 20, "in [-20, 20] (log OR)")


def _discount(name: str):
    return _arg(name, float, lambda v: 1 <= v <= 100, "in [1, 100]")


def _scheduler(text: str) -> str:
    """``--scheduler``: ``serial``, ``local`` or a Dask scheduler address (``[tcp|tls]://host:port`` or
    ``host:port``); anything else is refused at once instead of after a 30 s connection timeout."""
    import re

    if text in ("serial", "local") or re.fullmatch(r"((tcp|tls)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", text):
        return text
    raise argparse.ArgumentTypeError(
        f"--scheduler must be 'serial', 'local' or a scheduler address such as tcp://host:8786, got {text!r}"
    )


#: Figure file formats (see bayes_rescue.outputs.figures.FORMATS; repeated here so that parsing the
#: command line does not import matplotlib).
FIGURE_FORMATS = ("png", "svg", "pdf")


def _figure_formats(name: str):
    """An argparse type: a comma-separated list of figure formats (``png,svg``), each at most once."""

    def parse(text: str) -> tuple[str, ...]:
        items = [t.strip().lower() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in FIGURE_FORMATS]
        if not items or bad:
            raise argparse.ArgumentTypeError(
                f"{name} must be a comma-separated list of {', '.join(FIGURE_FORMATS)}, got {text!r}"
            )
        return tuple(dict.fromkeys(items))

    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        raise InputError(message.replace("\n", " "), source=self.prog)


def _target_dir(args, default_name: str) -> Path:
    """``--out``, or ``models/<--name or default_name>``; a ``--name`` must follow the name rule
    (:mod:`bayes_rescue.data.names`): no path separator, no control character, nothing outside ASCII."""
    from bayes_rescue.data.names import check_name, safe_name

    if args.name is not None:
        check_name(args.name, field="--name")
    return args.out if args.out is not None else DEFAULT_MODELS_DIR / (args.name or safe_name(default_name))


def utc_stamp() -> str:
    """The current UTC time as used in default run names (``20261130T031500Z``)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
