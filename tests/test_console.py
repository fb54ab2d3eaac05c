"""The console: the fit table within 100 characters, probabilities never printed as certainties, and a
command line whose every option says what it does and its default.

References: the 100-character limit and the ">0.999" / "<0.001" rule are the requirements themselves;
the probabilities in the describe test are counted here from synthetic draws (all draws positive gives
P = 1 exactly, which must print as ">0.999"); the version is importlib.metadata's."""

from __future__ import annotations

import argparse
import importlib.metadata
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_rescue.cli import COMMANDS, build_parser, main
from bayes_rescue.cli.sensitivity import probability_grid_text, tipping_text
from bayes_rescue.data.counts import load_counts, parse_counts
from bayes_rescue.model.estimands import estimands
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.outputs.tables import describe, format_probability, summarize_draws
from bayes_rescue.priors.spec import resolve_priors

LONG = "mild_anterior_circulation_with_nihss_at_most_5_and_onset_to_door_under_24h"


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (1.0, ">0.999"),
        (0.9996, ">0.999"),
        (0.9994, "0.999"),
        (0.5, "0.500"),
        (0.0004, "<0.001"),
        (0.0, "<0.001"),
        (0.0006, "0.001"),
        (math.nan, "n/a"),
        (None, "n/a"),
    ],
)
def test_format_probability(p, text):
    """Three decimals unless they would round to 1.000 or 0.000 (boundaries 0.9995 and 0.0005)."""
    assert format_probability(p) == text


def _summary_all_priors() -> pd.DataFrame:
    """The bundled cohort with a long subgroup name, every bundled prior (7), from synthetic draws: the
    mild subgroup's RD draws are all positive (P(benefit) = 1 exactly)."""
    text = load_counts("bundled:chen2025").to_csv_text().replace("mild_anterior,", f"{LONG},")
    data = parse_counts(text, source="long.csv")
    priors = resolve_priors("all")
    assert len(priors) == 7
    rng = np.random.default_rng(3)
    frames = []
    for prior in priors:
        est = estimands(ModelSpec(data, prior, "hierarchical"))
        n = len(est)
        rd = rng.normal(0.1, 0.1, (2, 500, n))
        rd[..., 0] = np.abs(rd[..., 0]) + 0.2  # all positive
        pc = rng.uniform(0.2, 0.4, (2, 500, n))
        pt = np.clip(pc + rd, 1e-6, 1 - 1e-6)
        ds = xr.Dataset(
            {
                "rd": (("chain", "draw", "estimand"), pt - pc),
                "p_control": (("chain", "draw", "estimand"), pc),
                "p_treatment": (("chain", "draw", "estimand"), pt),
                "rr": (("chain", "draw", "estimand"), pt / pc),
                "odds_ratio": (("chain", "draw", "estimand"), pt / (1 - pt) / (pc / (1 - pc))),
                "log_or": (("chain", "draw", "estimand"), np.log(pt / (1 - pt) / (pc / (1 - pc)))),
            },
            coords={"estimand": est["estimand"].to_numpy()},
        )
        table = summarize_draws(ds, est)
        table.insert(0, "model", "hierarchical")
        table.insert(0, "prior", prior.name)
        table["rhat_max"], table["ess_bulk_min"], table["ess_tail_min"] = 1.001, 3000.0, 2500.0
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def test_fit_table_fits_100_columns():
    """Every line of the console output is at most 100 characters; long names end in an ellipsis; a
    probability of exactly 1 prints as >0.999 and no probability prints as 1.000 or 0.000."""
    summary = _summary_all_priors()
    assert (summary.loc[summary["subgroup"] == LONG, "p_benefit"] == 1.0).all()
    text = describe(summary, treatment="rescue EVT")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "\u2026" in text and LONG not in text
    assert ">0.999" in text and " 1.000" not in text and " 0.000" not in text
    for prior in resolve_priors("all"):  # every prior has its rows
        assert sum(line.startswith(prior.name + " ") for line in lines) == 2 * 4  # two tables x 4 estimands


def _options():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            yield name, action


def test_every_option_has_help_with_its_default():
    """Every option of every command has help text, and the help names its default value."""
    seen = set()
    for command, action in _options():
        seen.add(command)
        where = f"{command} {action.option_strings}"
        assert action.help and action.help.strip(), where
        assert "default" in action.help, where
        default = action.default
        if default in (None, False) or default is argparse.SUPPRESS:
            continue
        values = default if isinstance(default, list | tuple) else [default]
        for v in values:
            shown = f"{v:g}" if isinstance(v, float) else str(v)
            assert shown in action.help, (where, shown)
    assert seen == set(COMMANDS)


def test_version(capsys):
    """--version prints the installed package version (importlib.metadata)."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"bayes-rescue {importlib.metadata.version('bayes_rescue')}"


@pytest.mark.parametrize(("text", "ok"), [("png,svg", True), ("pdf", True), ("PNG, pdf", True), ("jpg", False)])
def test_figure_format_option(text, ok, capsys):
    """--figure-format takes a comma list of png, svg, pdf; anything else is a one-line input error (2)."""
    if ok:
        args = build_parser().parse_args(["fit", "--figure-format", text])
        assert set(args.figure_format) <= {"png", "svg", "pdf"}
    else:
        assert main(["fit", "--figure-format", text]) == 2
        assert "--figure-format must be" in capsys.readouterr().err


def test_sensitivity_tables_print_no_raw_nan():
    """The sensitivity printout: a missing point is 'n/a', certainties are '>0.999' / '<0.001', never NaN."""
    grid = pd.DataFrame([[1.0, np.nan], [0.25, 0.0]], index=[0.5, 1.0], columns=[-0.5, 0.5])
    text = probability_grid_text(grid)
    assert "nan" not in text.lower().replace("n/a", "") and "n/a" in text
    assert ">0.999" in text and "<0.001" in text and "0.250" in text
    tips = pd.DataFrame(
        [
            {
                "outcome": "mortality",
                "subgroup": "overall",
                "level": 0.95,
                "tipping_sd": np.nan,
                "tipping_sd_ess_patients": np.nan,
                "tipping_centre_or": 0.8,
                "sd_status": "not reached",
            }
        ]
    )
    out = tipping_text(tips)
    assert "NaN" not in out and "nan" not in out and out.count("n/a") == 2
