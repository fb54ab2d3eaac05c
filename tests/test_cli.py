"""The command line end to end, into temporary directories."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import GOOD_CSV, ROOT

from bayes_rescue.errors import InputError
from bayes_rescue.outputs.rundir import sha256_file
from bayes_rescue.outputs.trees import load_tree, run_tree_path
from bayes_rescue.priors.spec import load_prior

sys.path.insert(0, str(ROOT / "scripts"))
import check as check_script
import fit as fit_script

TINY = ["--draws", "100", "--tune", "100", "--chains", "2", "--prior-draws", "100", "--keep-going"]


def test_skeptical_default_settings_full_run(tmp_path, capsys):
    """README's main command, default sampler settings: clean diagnostics, every output present."""
    out = tmp_path / "run"
    assert fit_script.main(["--prior", "skeptical", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "P(benefit)" in text and f"results written to {out}" in text
    for name in ("summary.csv", "summary.json", "draws.csv", "posterior.nc", "manifest.json"):
        assert (out / name).is_file(), name
    for fig in ("prior_posterior", "forest", "benefit_curve", "rank"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 10_000
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["subgroup"]) == ["mild_anterior", "other", "overall", "overall"]
    for col in (
        "rd_median",
        "rd_eti95_lb",
        "rd_eti95_ub",
        "rr_median",
        "or_median",
        "nnt_eti95",
        "p_benefit",
        "p_benefit_ge_0.05",
        "p_benefit_ge_0.1",
        "p_harm",
        "p_rope",
        "rhat_max",
        "ess_bulk_min",
        "ess_tail_min",
        "divergences",
        "diagnostics_passed",
    ):
        assert col in summary.columns, col
    assert summary["diagnostics_passed"].all() and (summary["rhat_max"] <= 1.01).all()
    assert (summary[["ess_bulk_min", "ess_tail_min"]] >= 1000).all().all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["all_diagnostics_passed"] and manifest["settings"]["seed"] == 20250531
    for rel, digest in manifest["files"].items():
        assert sha256_file(out / rel) == digest, rel


def test_posterior_round_trip(tmp_path):
    """The saved DataTree has every group and carries the exact prior spec and data."""
    out = tmp_path / "run"
    assert fit_script.main(["--prior", "enthusiastic", "--out", str(out), "--no-figures", *TINY]) == 0
    tree = load_tree(out / "posterior.nc")
    for group in (
        "posterior",
        "prior",
        "observed_data",
        "constant_data",
        "sample_stats",
        "log_likelihood",
        "posterior_predictive",
        "prior_predictive",
        "log_prior",
    ):
        assert group in tree.children, group
    assert json.loads(tree.attrs["bayes_rescue_prior_spec"]) == json.loads(load_prior("enthusiastic").to_json())
    assert "mrs_0_2,mild_anterior,treatment,higher,13,17" in tree.attrs["bayes_rescue_data_csv"]
    draws = pd.read_csv(out / "draws.csv")
    rd = tree["posterior"]["rd"].sel(outcome="mrs_0_2", subgroup="overall").to_numpy().ravel()
    got = draws[(draws["outcome"] == "mrs_0_2") & (draws["subgroup"] == "overall")]["rd"].to_numpy()
    assert got.shape == rd.shape and abs(got - rd).max() < 1e-12


@pytest.mark.slow  # 14 s: a full --prior all CLI fit
def test_prior_all_gives_one_comparison_table(tmp_path, capsys):
    """``--prior all`` at the default sampler settings: one joint run of the stacked model serves every
    prior (each passes the gate on its own draws), one ArviZ-ready ``<prior>/posterior.nc`` per prior, and
    one comparison figure set and summary table."""
    out = tmp_path / "all"
    assert fit_script.main(["--prior", "all", "--out", str(out), "--prior-draws", "500"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    names = ["neutral", "skeptical", "enthusiastic", "pessimistic", "map_early", "map_late", "map_pooled"]
    assert list(dict.fromkeys(summary["prior"])) == names
    manifest = json.loads((out / "manifest.json").read_text())
    for p in names:
        assert manifest["diagnostics"][p]["sampled_with"] == names and manifest["diagnostics"][p]["attempts"] == 1
    draws = pd.read_csv(out / "draws.csv")
    for p in names:
        one = load_tree(out / p / "posterior.nc")
        assert one["posterior"]["mu_log_or"].dims == ("chain", "draw", "outcome")
        assert json.loads(one.attrs["bayes_rescue_prior_spec"]) == json.loads(load_prior(p).to_json())
        rd = one["posterior"]["rd"].sel(outcome="mrs_0_2", subgroup="overall").to_numpy().ravel()
        got = draws[(draws["prior"] == p) & (draws["outcome"] == "mrs_0_2") & (draws["subgroup"] == "overall")]
        assert abs(got["rd"].to_numpy() - rd).max() < 1e-12
    with pytest.raises(InputError, match="has no prior 'nope'"):
        run_tree_path(out, prior="nope")
    # one comparison figure set for all priors, and one rank figure
    for fig in ("forest", "benefit_curve", "prior_posterior", "rank"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 10_000
    files = {f.name for f in out.iterdir()}
    assert files == {"draws.csv", "evalues.csv", "figures", "inputs", "likelihood.csv", "manifest.json"} | {
        "report.html",
        "summary.csv",
        "summary.json",
        *names,
    }
    # the enthusiastic prior pulls the favourable-outcome effect up, the pessimistic one down
    rd = summary[summary["subgroup"] == "overall"].set_index(["prior", "outcome"])["rd_median"]
    assert rd[("enthusiastic", "mrs_0_2")] > rd[("neutral", "mrs_0_2")] * 0.5 > 0
    assert rd[("pessimistic", "mrs_0_2")] < rd[("skeptical", "mrs_0_2")]


def test_failed_diagnostics_exit_3_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "fail"
    args = ["--prior", "neutral", "--out", str(out), "--draws", "50", "--tune", "50", "--chains", "2"]
    assert fit_script.main(args) == 3
    err = capsys.readouterr().err
    assert "diagnostics FAILED" in err and "not writing results" in err
    assert not out.exists() and not list(tmp_path.glob(".fail*"))


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--prior", "sceptical"], "unknown prior 'sceptical'"),
        (["--prior", "missing.toml"], "no such prior file"),
        (["--draws", "0"], "--draws must be >= 4"),
        (["--mcid", "2"], "--mcid must be in"),
        (["--model", "pooled"], "invalid choice"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_one_line_exit_2(tmp_path, capsys, args, fragment):
    out = tmp_path / "x"
    assert fit_script.main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1 and not out.exists()


def test_bad_data_file_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD_CSV.replace("13,17", "18,17"))
    assert fit_script.main(["--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: line 2, field 'events': 18 events exceed the total of 17" in err
    assert not (tmp_path / "o").exists()


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    """An existing run is replaced only with --overwrite; a folder that is not a run of this tool (no
    manifest.json saying so) is never replaced, and the message does not suggest --overwrite for it."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert fit_script.main(["--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert "--overwrite cannot replace it" in err and "pass --overwrite" not in err and (out / "keep.txt").exists()
    assert fit_script.main(["--out", str(out), "--overwrite", *TINY]) == 2
    assert "not a bayes_rescue run" in capsys.readouterr().err and (out / "keep.txt").exists()
    (out / "manifest.json").write_text('{"tool": "bayes_rescue"}')
    assert fit_script.main(["--out", str(out), "--overwrite", "--no-figures", *TINY]) == 0
    assert not (out / "keep.txt").exists() and (out / "summary.csv").exists()


def test_user_data_with_unknown_outcome_and_own_prior(tmp_path):
    """Any similar dataset: a new outcome with a direction, and a user prior file."""
    data = tmp_path / "mine.csv"
    data.write_text(
        "outcome,subgroup,arm,events,total,direction\n"
        "readmission,young,treatment,3,30,lower\nreadmission,young,control,8,31,lower\n"
        "readmission,old,treatment,6,20,lower\nreadmission,old,control,9,22,lower\n"
    )
    prior = tmp_path / "p.toml"
    prior.write_text(
        'name = "mine"\ndescription = "d"\n[[effect.readmission.components]]\nmean = 0\nsd = 1\nsource = "me"\n'
    )
    out = tmp_path / "run"
    assert fit_script.main(["--data", str(data), "--prior", str(prior), "--out", str(out), "--no-figures", *TINY]) == 0
    s = pd.read_csv(out / "summary.csv")
    assert list(s["subgroup"]) == ["young", "old", "overall"] and (s["prior"] == "mine").all()


def test_robust_and_discount_options(tmp_path):
    out = tmp_path / "rob"
    args = ["--prior", "map_early", "--robust", "0.2", "--discount", "1.5", "--out", str(out), "--no-figures", *TINY]
    assert fit_script.main(args) == 0
    tree = load_tree(out / "posterior.nc")
    spec = json.loads(tree.attrs["bayes_rescue_prior_spec"])
    assert spec["name"] == "map_early_robust0.2_disc1.5"
    comps = spec["effect"]["mrs_0_2"]["components"]
    assert comps[-1]["name"] == "robust_vague" and comps[-1]["weight"] == 0.2 and comps[-1]["sd"] == 1.5 * 1.5285


def test_priors_script_lists_sources_and_plots(tmp_path, capsys):
    import priors as priors_script

    png = tmp_path / "p.png"
    assert priors_script.main(["--plot", str(png), "--out", str(tmp_path / "p.csv")]) == 0
    text = capsys.readouterr().out
    assert "map_late" in text and "DAWN, DEFUSE 3" in text and "ESS" in text
    assert png.stat().st_size > 10_000 and len(pd.read_csv(tmp_path / "p.csv")) == 14


def test_check_command(tmp_path, capsys):
    out = tmp_path / "check.csv"
    assert check_script.main(["--out", str(out)]) == 0
    assert "reported P=0.031 DOES NOT match" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 4


def test_console_script_entry_point():
    """The installed `bayes-rescue` entry point runs (priors listing)."""
    exe = ROOT / ".venv" / "bin" / "bayes-rescue"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bayes_rescue.cli"]
    res = subprocess.run([*cmd, "priors", "--verbose"], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and "log_or[mrs_0_2] ~ 1 x Normal(mean=0, sd=0.5296)" in res.stdout


def test_sensitivity_command_writes_grid_and_heatmaps(tmp_path, capsys):
    import sensitivity as sensitivity_script

    out = tmp_path / "sens"
    args = [
        "--centres",
        "0",
        "0.5",
        "--sds",
        "0.5",
        "--no-tipping",
        "--out",
        str(out),
        "--draws",
        "300",
        "--tune",
        "300",
    ]
    assert sensitivity_script.main(args) == 0
    text = capsys.readouterr().out
    assert "tipping.csv" not in text and "worst diagnostics over the grid" in text
    grid = pd.read_csv(out / "grid.csv")
    assert len(grid) == 2 * 4 and set(grid["centre_benefit"]) == {0.0, 0.5}
    assert (out / "heatmap_p_benefit_robust0.png").is_file() and not (out / "tipping.csv").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["grid_points"] == 2 and "points_failing_gate" in manifest["worst_diagnostics"]


def test_fit_help_and_priors_list_the_bundled_priors_and_their_outcomes(capsys):
    """Issue 21 item 3: ``fit --help`` listed no prior names or the outcomes they cover. Reference: each
    bundled prior loaded in full (load_prior) and the outcomes of its effect priors; both ``fit --help`` and
    ``priors`` must show each name on a line with exactly those outcomes."""
    from bayes_rescue.cli import main
    from bayes_rescue.priors.spec import bundled_prior_names

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    helptext = capsys.readouterr().out
    assert main(["priors"]) == 0
    listing = capsys.readouterr().out
    for text in (helptext, listing):
        lines = {ln.split()[0]: ln for ln in text.splitlines() if ln.startswith("  ") and ln.split()}
        for name in bundled_prior_names():
            outcomes = list(load_prior(name).effects)
            line = lines[name]
            if outcomes == ["default"]:
                assert "any outcome" in line, line
            else:
                assert line.split(None, 1)[1] == ", ".join(outcomes), line
