"""Progress display (``bayes_rescue.progress``): shown only on a terminal and when enabled, silent otherwise.

Reference behaviour: the brief of issue 14 (progress on standard error, nothing when the stream is not a
terminal or with ``--quiet``); the expected texts are the labels passed in and the step counts the tests
make, not output recorded from the module.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from bayes_rescue import progress
from bayes_rescue.cli import COMMANDS, build_parser


@pytest.fixture(autouse=True)
def _reset_progress():
    progress.reset()
    yield
    progress.reset()


def _terminal() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=120), buf


def test_nothing_is_printed_to_a_stream_that_is_not_a_terminal():
    """A rich Console on a StringIO is not a terminal: tasks, nested tasks and track print nothing."""
    buf = io.StringIO()
    progress.configure(console=Console(file=buf))
    assert not progress.active() and not progress.sampler_bar()
    with progress.task("sensitivity grid", total=3) as advance:
        with progress.task("compiling model ..."):
            pass
        for _ in range(3):
            advance()
    assert list(progress.track([1, 2, 3], "SBC replicates")) == [1, 2, 3]
    assert buf.getvalue() == ""


def test_a_forced_terminal_shows_the_label_and_the_count():
    """On a (forced) terminal the task's label and its final count ``3/3`` (three advances) are drawn."""
    console, buf = _terminal()
    progress.configure(console=console)
    assert progress.active()
    with progress.task("sensitivity grid", total=3) as advance:
        for _ in range(3):
            advance()
    text = buf.getvalue()
    assert "sensitivity grid" in text and "3/3" in text


def test_track_counts_each_item_and_nested_tasks_share_one_display():
    """track advances once per item (5 items -> ``5/5``); a task opened inside another is drawn too."""
    console, buf = _terminal()
    progress.configure(console=console)
    seen = []
    with progress.task("outer work"):
        for x in progress.track(iter(range(5)), "SBC replicates", total=5):
            seen.append(x)
            with progress.task("compiling model ..."):
                pass
    text = buf.getvalue()
    assert seen == [0, 1, 2, 3, 4]
    assert "outer work" in text and "SBC replicates" in text and "5/5" in text


def test_disabled_prints_nothing_even_on_a_terminal():
    """``configure(enabled=False)`` (the CLI's --quiet) silences a terminal too."""
    console, buf = _terminal()
    progress.configure(console=console, enabled=False)
    assert not progress.active() and not progress.sampler_bar()
    with progress.task("compiling model ...") as advance:
        advance()
    assert buf.getvalue() == ""


def test_nutpie_bar_only_when_none_of_ours_is_on_screen():
    """nutpie's own table is asked for on a terminal, but not inside one of our tasks (a grid)."""
    console, _ = _terminal()
    progress.configure(console=console)
    assert progress.sampler_bar()
    with progress.task("sensitivity grid", total=1):
        assert not progress.sampler_bar()
    assert progress.sampler_bar()


def test_an_exception_inside_a_task_closes_the_display():
    """An error (or Ctrl-C) inside a task ends the live display, so the next task starts cleanly."""
    console, buf = _terminal()
    progress.configure(console=console)
    with pytest.raises(KeyboardInterrupt), progress.task("sampling"):
        raise KeyboardInterrupt
    assert progress.sampler_bar()  # no task left open
    with progress.task("next task", total=1) as advance:
        advance()
    assert "next task" in buf.getvalue()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_quiet(command):
    """Every command accepts --quiet, off by default (the option as the command's parser defines it)."""
    import argparse

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    action = sub._option_string_actions.get("--quiet")
    assert action is not None and action.dest == "quiet" and action.default is False
    assert action.const is True  # store_true


def test_cli_quiet_switches_progress_off(tmp_path, capsys):
    """``main([... '--quiet'])`` leaves progress disabled; without it, enabled."""
    from bayes_rescue.cli import main

    assert main(["check", "--quiet"]) == 0
    assert progress._enabled is False
    assert main(["check"]) == 0
    assert progress._enabled is True
    capsys.readouterr()


def test_a_progress_line_stays_within_100_columns_and_keeps_its_label():
    """On a 160-column terminal every drawn line is at most 100 columns (issue 21), and a label longer than
    its column wraps: every word of it is drawn, none cut (no ellipsis)."""
    import re

    buf = io.StringIO()
    progress.configure(console=Console(file=buf, force_terminal=True, width=160, color_system=None))
    label = "tipping bias (" + ", ".join(f"enthusiastic+bias-observational-{i}" for i in range(4)) + ")"
    with progress.task(label, total=12345) as advance:
        advance(12000)
    lines = [x.rstrip() for x in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", buf.getvalue()))]
    lines = [x for x in lines if x.strip()]
    assert lines and max(len(x) for x in lines) <= 100
    drawn = " ".join(lines)
    assert all(word in drawn for word in label.split()) and "\u2026" not in drawn
    assert "12000/12345" in drawn
