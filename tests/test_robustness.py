"""Edge-case data, reproducibility, rerun from a manifest, and runs that are interrupted or concurrent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import fit as fit_script

from bayes_rescue.data.counts import load_counts
from bayes_rescue.inference.sampling import fit
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.outputs.rundir import sha256_file
from bayes_rescue.priors.spec import load_prior

TINY = ["--draws", "100", "--tune", "100", "--chains", "2", "--prior-draws", "100", "--keep-going", "--no-figures"]

EDGE = """outcome,subgroup,arm,events,total,direction
zero_all,s1,treatment,0,10,lower
zero_all,s1,control,5,10,lower
zero_all,one_patient,treatment,1,1,lower
zero_all,one_patient,control,0,1,lower
all_events,all,treatment,11,11,higher
all_events,all,control,7,11,higher
"""
BIG = """outcome,subgroup,arm,events,total,direction
big,all,treatment,12000,30000,higher
big,all,control,10000,30000,higher
"""


def test_edge_case_counts_fit_cleanly(tmp_path):
    """0/n and n/n arms, a 1-patient-per-arm subgroup, a single subgroup: the default settings meet the
    diagnostics gate (with at most the one documented retry) and the answers are sensible."""
    p = tmp_path / "edge.csv"
    p.write_text(EDGE)
    result = fit(ModelSpec(load_counts(p), load_prior("neutral"), "hierarchical"))
    assert result.passed and result.diagnostics.divergences == 0, result.diagnostics.problems()
    rd = result.effects["rd"].median(("chain", "draw")).to_series()
    assert rd["zero_all/s1"] < -0.15  # 0/10 vs 5/10
    assert rd["all_events/overall"] > 0.1  # 11/11 vs 7/11


def test_very_large_counts():
    """Tens of thousands of patients: the posterior RD sits on the observed 0.0667 with a tight interval.
    Reference: the observed risk difference 12000/30000 - 10000/30000 and its binomial standard error
    (0.0039); a neutral prior cannot move it by more than a small fraction of that."""

    from bayes_rescue.data.counts import parse_counts

    data = parse_counts(BIG, source="big")
    result = fit(ModelSpec(data, load_prior("neutral"), "independent"))
    assert result.passed, result.diagnostics.problems()
    rd = result.effects["rd"].sel(estimand="big/overall").to_numpy().ravel()
    assert abs(rd.mean() - 2000 / 30000) < 0.002 and 0.003 < rd.std() < 0.005


def test_same_seed_bit_identical_outputs_and_rerun(tmp_path, capsys):
    """Two runs with the same data, prior, seed and settings write bit-identical summary.csv and
    draws.csv; `fit.py --rerun manifest.json` reproduces a run and says so."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert fit_script.main(["--prior", "skeptical", "--out", str(a), *TINY]) == 0
    assert fit_script.main(["--prior", "skeptical", "--out", str(b), *TINY]) == 0
    for f in ("summary.csv", "draws.csv"):
        assert sha256_file(a / f) == sha256_file(b / f), f
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["rerun"]["model"] == "hierarchical" and manifest["inputs"]["data"] == manifest["data"]["sha256"]
    assert fit_script.main(["--rerun", str(a / "manifest.json")]) == 0
    assert "reproduced: summary.csv and draws.csv are bit-identical" in capsys.readouterr().out
    other = fit_script.main(["--prior", "skeptical", "--seed", "7", "--out", str(tmp_path / "c"), *TINY])
    assert other == 0 and sha256_file(tmp_path / "c" / "draws.csv") != sha256_file(a / "draws.csv")


def test_rerun_rejects_a_bad_manifest(tmp_path, capsys):
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json")
    assert fit_script.main(["--rerun", str(bad)]) == 2
    assert "is not a bayes_rescue manifest" in capsys.readouterr().err


def _spawn(args, env=None):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "fit.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGKILL, marks=pytest.mark.slow)])
def test_interrupted_run_keeps_previous_results(tmp_path, sig):
    """A real subprocess is interrupted mid-run (Ctrl-C, and a kill) while a second run with another name
    runs at the same time: the previous results of the interrupted run's name are intact, the other run
    completes, and nothing half-written is left in place of a run."""
    target, other = tmp_path / "run", tmp_path / "other"
    assert fit_script.main(["--prior", "neutral", "--out", str(target), *TINY]) == 0
    before = {f: sha256_file(target / f) for f in ("summary.csv", "draws.csv", "posterior.nc")}
    # the victim samples long enough (seconds) to be caught mid-run even when its compiled model is cached
    victim = _spawn(["--prior", "all", "--out", str(target), "--overwrite", *TINY, "--draws", "20000"])
    bystander = _spawn(["--prior", "skeptical", "--out", str(other), *TINY])
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and "fitting" not in line:
        line = victim.stdout.readline()
    assert "fitting" in line, "the run never started sampling"
    time.sleep(1.0)
    victim.send_signal(sig)
    victim.wait(timeout=60)
    assert victim.returncode != 0
    assert bystander.wait(timeout=300) == 0, bystander.stderr.read()
    assert {f: sha256_file(target / f) for f in before} == before
    assert pd.read_csv(other / "summary.csv")["prior"].eq("skeptical").all()
    if sig == signal.SIGINT:
        assert not list(tmp_path.glob(".run.partial-*"))
        assert "interrupted" in victim.stderr.read()
    # the next run of the same name clears what a killed run could not
    assert fit_script.main(["--prior", "neutral", "--out", str(target), "--overwrite", *TINY]) == 0
    assert not list(tmp_path.glob(".run.partial-*"))


def test_sbc_uniformity_test_detects_bias():
    """The SBC chi-square test accepts exactly uniform ranks and rejects ranks piled at one end
    (closed form: perfectly flat counts give chi2 = 0, p = 1)."""
    from bayes_rescue.analyses.validation import uniformity

    flat = pd.DataFrame({"sim": range(200), "divergences": 0, "q": list(range(100)) * 2})
    biased = flat.assign(q=[r // 4 for r in flat["q"]])
    assert uniformity(flat).loc[0, "p_value"] == pytest.approx(1.0)
    assert uniformity(biased).loc[0, "p_value"] < 1e-10
