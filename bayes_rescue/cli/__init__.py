"""Command line: ``bayes-rescue <command>`` (also ``scripts/<command>.py``).

Each command lives in its own module of this package, with ``add_parser(sub)`` (its options) and
``run(args, argv) -> int``; :data:`COMMANDS` lists them in the order ``--help`` shows them.

Exit codes: 0 success; 2 bad input (one-line message, nothing written); 3 sampler diagnostics failed
after a retry (nothing written unless ``--keep-going``); 4 ``--rerun`` did not reproduce the recorded
summary and draws; 130 interrupted by SIGINT (Ctrl-C); 143 terminated by SIGTERM. An interrupted or
terminated run writes nothing and leaves the previous run of its name intact.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NoReturn

from bayes_rescue.cli._args import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED, _Parser
from bayes_rescue.errors import InputError, Terminated, install_signal_handlers, mark_handled, received_signal

COMMANDS = ("fit", "sensitivity", "check", "priors", "validate", "predict", "export", "report")


def package_version() -> str:
    """The installed version of the package (``importlib.metadata``), or ``unknown`` when it runs from a
    source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bayes_rescue")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> _Parser:
    """The ``bayes-rescue`` parser with every command of :data:`COMMANDS`."""
    p = _Parser(prog="bayes-rescue", description="Bayesian reanalysis of two-arm subgrouped binary outcomes.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"bayes_rescue.cli.{name}").add_parser(sub)
    for parser in sub.choices.values():
        parser.add_argument(
            "--quiet", action="store_true", help="no progress display (default: shown on a terminal only)"
        )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    import signal

    restore = install_signal_handlers()  # SIGTERM -> Terminated, a KeyboardInterrupt: the same clean-up
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = build_parser().parse_args(argv)
            from bayes_rescue import progress

            progress.configure(enabled=not args.quiet)
            return args.run(args, argv[1:])
        except InputError as exc:
            print(f"error: {exc.one_line()}", file=sys.stderr)
            return EXIT_INPUT
        except KeyboardInterrupt as exc:
            return _interrupted(exc)
        except Exception as exc:
            cause = _interrupt_behind(exc)
            if cause is None:
                raise
            return _interrupted(cause)
    except KeyboardInterrupt:  # a second signal during the clean-up above
        return EXIT_TERMINATED if received_signal() == signal.SIGTERM else EXIT_INTERRUPTED
    finally:
        restore()


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (our signal handlers' SIGINT or SIGTERM) that ``exc`` was raised from, if any: a
    signal that lands while a C extension module initialises surfaces as ``ImportError: initialization
    failed`` caused by it, and must end the run as the interruption it is."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Report an interruption (SIGINT, or SIGTERM as :class:`Terminated`) and return its exit code."""
    import signal

    mark_handled()
    terminated = isinstance(exc, Terminated) or received_signal() == signal.SIGTERM
    what = "terminated" if terminated else "interrupted"
    print(f"{what}: no partial output left (a run folder is only ever complete or absent)", file=sys.stderr)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def exit_fast(rc: int) -> NoReturn:
    """End the process with exit code ``rc`` without the interpreter's tear-down.

    For script entry points only, once :func:`main` has returned: every output file has been written,
    closed and renamed into place by then, so the only work left at a normal exit is freeing modules and
    objects (1-1.5 s after a fit, with PyMC, PyTensor, numba and matplotlib loaded). Standard output and
    error and the logging handlers are flushed first; ``atexit`` handlers do not run.
    """
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written anyway
            pass
    os._exit(rc)


def without_dask(argv: list[str]) -> None:
    """In a command-line process that will not use Dask (no ``--scheduler`` in ``argv``), make ``import
    dask`` fail, as if it were not installed (:func:`bayes_rescue.workers.no_dask`). Only for script entry
    points, before anything is imported; never in the library or in :func:`main`, which a Python session may
    call with Dask in use.
    """
    if not any(a == "--scheduler" or a.startswith("--scheduler=") for a in argv):
        from bayes_rescue.workers import no_dask

        no_dask()


def run_as_script(entry) -> NoReturn:
    """The ``__main__`` of every script and of the console script: :func:`without_dask`, ``entry()`` (which
    returns the exit code), then :func:`exit_fast`."""
    without_dask(sys.argv[1:])
    exit_fast(entry())


def console_main() -> NoReturn:
    """The ``bayes-rescue`` console script: :func:`main` with the command line, then :func:`exit_fast`."""
    run_as_script(main)


if __name__ == "__main__":
    console_main()
