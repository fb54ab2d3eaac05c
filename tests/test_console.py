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
from bayes_rescue.data.counts import parse_counts
from bayes_rescue.model.estimands import estimands
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.outputs.tables import describe, summarize_draws
from bayes_rescue.priors.spec import resolve_priors

#: A user's own counts file with labels (README "Your own data"): raw names that must not reach the console
#: except once, in parentheses, after their label. The long subgroup label is 80 characters (the cap) with a
#: 30-character word, so it must wrap (and fold) rather than be cut.
LONG_LABEL = "patients treated under the extended-window protocol with pre-stroke-disability-s"
LONG_LABEL += "c" * (80 - len(LONG_LABEL))
OWN = f"""outcome,subgroup,arm,events,total,outcome_label,subgroup_label,arm_label
mrs_0_2,sub_a,treatment,13,17,functional independence (mRS 0-2),{LONG_LABEL},drug X
mrs_0_2,sub_a,control,6,19,,,placebo
mrs_0_2,sub_b,treatment,2,3,,older patients,drug X
mrs_0_2,sub_b,control,2,4,,older patients,placebo
mortality,all,treatment,1,20,death within 90 days,all enrolled,drug X
mortality,all,control,2,23,death within 90 days,all enrolled,placebo
"""
RAW = ("mrs_0_2", "sub_a", "sub_b", "mortality")  # 'all' is a plain word, not checked


def _own(tmp_path=None):
    data = parse_counts(OWN, source="own.csv")
    if tmp_path is None:
        return data
    path = tmp_path / "own.csv"
    path.write_text(OWN, encoding="utf-8")
    return data, path


def _assert_reader_text(text: str, *, width: int = 100) -> None:
    """Every line within ``width``; no name cut (no ellipsis; every word of the long label drawn); every raw
    name at most once, and then in parentheses after its label."""
    import re

    lines = text.splitlines()
    assert max(len(x) for x in lines) <= width, max(lines, key=len)
    assert "\u2026" not in text
    words = " ".join(x.strip() for x in lines)
    *whole, long_word = LONG_LABEL.split()
    assert all(word in words for word in whole)
    # a word longer than its column is broken after a hyphen (or folded), never cut
    assert all(piece in words for piece in re.split("(?<=-)", long_word))
    for name in RAW:
        hits = [m.start() for m in re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text)]
        assert len(hits) <= 1, (name, len(hits))
        assert all(text[h - 1] == "(" for h in hits), name


def _synthetic_summary(data, priors, *, bias: str = "none", seed: int = 3) -> pd.DataFrame:
    """Summary rows of ``data`` under ``priors`` from synthetic draws: the first estimand's RD draws are all
    positive (P(benefit) = 1 exactly), so it must print as >0.999."""
    rng = np.random.default_rng(seed)
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
        table.insert(0, "bias", bias)
        table.insert(0, "prior", prior.name)
        table["rhat_max"], table["ess_bulk_min"], table["ess_tail_min"] = 1.001, 3000.0, 2500.0
        table["rd_psense_diagnosis"] = "ok"
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def test_fit_console_all_priors_with_bias_in_the_users_labels():
    """``--prior all --bias``: 7 priors x (unadjusted, bias-adjusted) = 14 fits from synthetic draws, printed
    as Result.describe prints them (per bias group, ADJUSTED heading) with the user's labels: every line <= 100
    columns, no name cut, raw names only once in parentheses; a probability of exactly 1 prints as >0.999 and
    none as 1.000 / 0.000; the headings say min bulk / min tail ESS; every prior has its rows."""
    data = _own()
    priors = resolve_priors("all")
    assert len(priors) == 7
    summary = pd.concat([_synthetic_summary(data, priors), _synthetic_summary(data, priors, bias="observational")])
    assert (summary.groupby("prior").head(1)["p_benefit"] == 1.0).all()
    parts = []
    for bias, table in summary.groupby("bias", sort=False):
        if bias != "none":
            parts.append(f"ADJUSTED for the bias model '{bias}' (a non-randomised comparison; see Bias):")
        parts.append(describe(table, labels=data.labels))
    text = "\n\n".join(parts)
    for part in parts[::2]:  # each describe call on its own: raw names once, the long label whole
        _assert_reader_text(part)
    assert max(len(x) for x in text.splitlines()) <= 100
    assert ">0.999" in text and " 1.000" not in text and " 0.000" not in text
    assert "min tail" in text and "min bulk" in text and "ESS" in text
    assert "drug X - placebo" in text and "functional independence (mRS 0-2) (mrs_0_2)" in text
    flat = " ".join(text.split())
    assert "Under the map_late prior, functional independence (mRS 0-2), whole cohort" in flat
    assert "Under the map_late prior, adjusted for the bias model observational, death within 90 days" in flat
    for prior in priors:  # every prior: rows in both tables of both outcomes, twice (unadjusted and adjusted)
        assert sum(line.startswith(prior.name + " ") for line in text.splitlines()) >= 2 * 2 * 4


def test_fit_console_direction_phrases_and_prior_data_conflict():
    """The sentences say what benefit is in the outcome's own words ("more patients with ...", "fewer deaths
    within 90 days", not "more events"), and a power-scaling "potential prior-data conflict" in the summary
    (as summary.csv has it for mRS 0-2 under the skeptical prior) is a WARNING line naming prior and estimand."""
    data = _own()
    table = _synthetic_summary(data, resolve_priors("skeptical"))
    cohort = (table["outcome"] == "mrs_0_2") & (table["subgroup"] == "overall")
    table.loc[cohort, "rd_psense_diagnosis"] = "potential prior-data conflict"
    text = describe(table, labels=data.labels)
    flat = " ".join(x.strip() for x in text.splitlines())
    assert "more patients with functional independence (mRS 0-2) with drug X than with placebo" in flat
    assert "fewer deaths within 90 days with drug X than with placebo" in flat
    assert "events" not in flat
    warning = [x for x in text.split("\nWARNING")[1:]]
    assert len(warning) == 1 and "note:" not in text  # "ok" rows say nothing
    assert "skeptical prior: potential prior-data conflict" in " ".join(warning[0].split())
    assert "functional independence (mRS 0-2), whole cohort" in " ".join(warning[0].split())
    assert max(len(x) for x in text.splitlines()) <= 100


def test_fit_console_nnt_has_no_point_through_no_effect():
    """A null effect's NNT column is the interval alone (no 'NNTB 285.7' point); an effect whose interval
    excludes 0 has its point NNT first (values from the synthetic draws: checked against nnt_display)."""
    from bayes_rescue.outputs.wording import nnt_display

    data = _own()
    table = _synthetic_summary(data, resolve_priors("neutral"))
    text = describe(table, labels=data.labels)
    for _, r in table.iterrows():
        shown = nnt_display(r)
        crossing = r["rd_eti95_lb"] < 0 < r["rd_eti95_ub"]
        assert ("(" in shown) is not crossing and ("inf" in shown) is crossing
        assert shown.split(" (")[0] in text


def test_tipping_bias_table_in_labels_within_100_columns():
    """The tipping-bias table (fit --bias) for 14 rows: labels, raw names once, <= 100 columns, n/a for NaN."""
    from bayes_rescue.outputs.tables import tipping_bias_text

    data = _own()
    rows = []
    for prior in ("enthusiastic", "map_pooled"):
        for outcome, subgroup in (("mrs_0_2", "sub_a"), ("mrs_0_2", "sub_b"), ("mortality", "all")):
            for level in (0.95, 0.5):
                rows.append(
                    {
                        "prior": prior,
                        "outcome": outcome,
                        "subgroup": subgroup,
                        "level": level,
                        "tipping_bias_mean": 0.4 if level > 0.9 else math.nan,
                        "tipping_ror": 1.49 if level > 0.9 else math.nan,
                        "model_bias_mean": 0.3,
                        "status": "found" if level > 0.9 else "below grid",
                    }
                )
    text = tipping_bias_text(pd.DataFrame(rows), labels=data.labels)
    _assert_reader_text(text)
    assert "older patients" in text and "death within 90 days" in text and "n/a" in text and "nan" not in text


def test_check_console_in_the_users_labels(tmp_path, capsys):
    """``check --data own.csv``: the statements use the file's labels and arm labels, each raw name once in
    parentheses, every line within 100 columns (exit 0)."""
    _, path = _own(tmp_path)
    assert main(["check", "--data", str(path)]) == 0
    out = capsys.readouterr().out
    _assert_reader_text(out)
    assert "drug X 13/17" in out and "placebo 6/19" in out and "older patients (sub_b)" in out


def test_sensitivity_console_in_the_users_labels():
    """``sensitivity``'s printout (grid per outcome, tipping table, worst diagnostics) from a synthetic grid:
    labels, raw names once, direction words, <= 100 columns, "min ESS (bulk or tail)"."""
    from bayes_rescue.cli.sensitivity import sensitivity_text

    data = _own()
    grid = pd.DataFrame(
        [
            {"outcome": o, "subgroup": "overall", "robust": 0.0, "sd": sd, "centre_benefit": c, "p_benefit": 0.9}
            for o in ("mrs_0_2", "mortality")
            for sd in (0.25, 0.5, 1.0, 2.0)
            for c in np.linspace(-1, 1, 15)
        ]
    )
    tips = pd.DataFrame(
        [
            {
                "outcome": o,
                "subgroup": s,
                "level": lv,
                "tipping_sd": 0.3 if lv > 0.5 else math.nan,
                "tipping_sd_ess_patients": 40.0 if lv > 0.5 else math.nan,
                "tipping_centre_or": 0.8,
                "sd_status": "found" if lv > 0.5 else "not applicable: a prior centred on 0 keeps P(benefit) above 0.5",
            }
            for o, s in (("mrs_0_2", "sub_a"), ("mrs_0_2", "overall"), ("mortality", "all"))
            for lv in (0.95, 0.5)
        ]
    )
    worst = {"max_rhat": 1.002, "min_ess": 1234.0, "max_divergences": 0, "points_failing_gate": 0}
    text = sensitivity_text(grid, tips, data, robust=0.0, worst=worst)
    _assert_reader_text(text)
    flat = " ".join(text.split())
    assert "towards benefit: fewer deaths within 90 days" in flat and "min ESS (bulk or tail) 1234" in flat


def test_validate_console_in_labels():
    """``validate``'s uniformity table names each quantity by its label, the ranks.csv column once after it."""
    from bayes_rescue.cli.validate import uniformity_text

    data = _own()
    tests = pd.DataFrame(
        [
            {"quantity": "mu_log_or[mrs_0_2]", "chi2": 8.1, "df": 9, "p_value": 0.52},
            {"quantity": "delta[mrs_0_2/sub_a]", "chi2": 12.3, "df": 9, "p_value": 0.2},
        ]
    )
    text = uniformity_text(tests, data.labels)
    lines = text.splitlines()
    assert lines[2].startswith("mean log OR, functional independence (mRS 0-2) (mu_log_or[mrs_0_2])")
    assert lines[3].startswith("log OR, functional independence (mRS 0-2), patients treated under the")
    assert text.count("(delta[mrs_0_2/sub_a])") == 1 and "0.52" in lines[2]
    assert max(len(x) for x in lines) <= 100


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
        if not action.option_strings or action.required:
            continue  # positional or required: there is no default to name
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
    assert "mortality" in out and "whole cohort" in out


def test_status_lines_of_all_priors_with_bias_within_100_columns(tmp_path):
    """``fit --prior all --bias``: the 'fitting ...' line of 14 fits (222 columns before) and the 'results
    written to' line wrap within 100 columns and keep every fit name and file name whole."""
    from bayes_rescue.outputs.console import export_heading, fitting_line, written_line

    names = [p.name for p in resolve_priors("all")]
    names += [f"{n}+bias-observational" for n in names]
    text = fitting_line(names, "hierarchical")
    assert max(len(x) for x in text.splitlines()) <= 100 and text.startswith("fitting 14 fits (hierarchical):")
    assert all(f"'{n}'" in text.split() or f"'{n}'," in text.split() for n in names)
    files = ["bias_curve.csv", "bias_tipping.csv", "draws.csv", "figures/", "manifest.json", "report.html"] * 3
    out = written_line(tmp_path / "chen2025-all-hierarchical-20260101T000000Z", files)
    assert max(len(x) for x in out.splitlines()) <= 100 and "report.html)" in out
    head = export_heading("mrs_0_2", "sub_b", labels=_own().labels, prior="skeptical", n_draws=4000)
    assert head == (
        "posterior log OR of functional independence (mRS 0-2), older patients (mrs_0_2/sub_b) (prior"
        "\n    'skeptical', 4000 draws):"
    )
