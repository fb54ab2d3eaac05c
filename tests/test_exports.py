"""Exports: likelihood.csv in metafor's escalc layout, and ``bayes-rescue export`` (a posterior as a prior file
in TOML or RBesT JSON, tidy draws)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_rescue.cli import main
from bayes_rescue.data.counts import load_bundled, parse_counts
from bayes_rescue.outputs.exports import escalc_table, rbest_components, toml_str, write_atomic
from bayes_rescue.outputs.trees import load_run_draws
from bayes_rescue.priors.spec import load_prior

# ----------------------------------------------------------------------------------------------------------
# escalc layout


def _counts(rows: list[tuple[str, str, int, int, int, int]], direction: str = "lower"):
    lines = ["outcome,subgroup,arm,events,total,direction"]
    for outcome, sg, y_t, n_t, y_c, n_c in rows:
        lines += [
            f"{outcome},{sg},treatment,{y_t},{n_t},{direction}",
            f"{outcome},{sg},control,{y_c},{n_c},{direction}",
        ]
    return parse_counts("\n".join(lines) + "\n", source="<test>")


def _row(table: pd.DataFrame, outcome: str, subgroup: str, measure: str) -> pd.Series:
    sel = table[(table["outcome"] == outcome) & (table["subgroup"] == subgroup) & (table["measure"] == measure)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_escalc_bundled_overall_mrs():
    """Issue 15's numbers for 15/20 vs 8/23 (ai 15, bi 5, ci 8, di 15; no zero cell, nothing added), by hand:
    OR: yi = log(15 * 15 / (5 * 8)) = log(5.625) = 1.727221, vi = 1/15 + 1/5 + 1/8 + 1/15 = 0.458333;
    RR: yi = log((15/20) / (8/23)) = log(2.15625) = 0.768371, vi = 1/15 - 1/20 + 1/8 - 1/23 = 0.098188;
    RD: yi = 0.75 - 0.347826 = 0.402174, vi = 0.75 * 0.25 / 20 + 0.347826 * 0.652174 / 23 = 0.009375 + 0.009863
    = 0.019238."""
    t = escalc_table(load_bundled())
    expect = {"OR": (1.727221, 0.458333), "RR": (0.768371, 0.098188), "RD": (0.402174, 0.019238)}
    for measure, (yi, vi) in expect.items():
        r = _row(t, "mrs_0_2", "overall", measure)
        assert (r["level"], r["ai"], r["bi"], r["ci"], r["di"], r["n1i"], r["n2i"]) == ("cohort", 15, 5, 8, 15, 20, 23)
        assert r["yi"] == pytest.approx(yi, abs=1e-6) and r["vi"] == pytest.approx(vi, abs=1e-6)
        assert r["zero_cell_correction"] == 0.0
    names = "outcome subgroup level measure yi vi ai bi ci di n1i n2i".split()
    assert list(t.columns) == [*names, "zero_cell_correction"]
    # mild subgroup 13/17 vs 6/19 is a subgroup row; mortality (one subgroup 'all') has both levels
    assert _row(t, "mrs_0_2", "mild_anterior", "OR")["level"] == "subgroup"
    assert set(t.loc[t["outcome"] == "mortality", "level"]) == {"subgroup", "cohort"}


def test_escalc_metafor_published_rr_aronson():
    """metafor's own check (tests/testthat/test_misc_escalc.r and README, github.com/cran/metafor):
    escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg), study 1 (Aronson 1948: 4/123 vaccinated,
    11/139 controls) gives yi -0.8893, vi 0.3256."""
    t = escalc_table(_counts([("tb", "aronson", 4, 123, 11, 139)]))
    r = _row(t, "tb", "aronson", "RR")
    assert r["yi"] == pytest.approx(-0.8893, abs=5e-5) and r["vi"] == pytest.approx(0.3256, abs=5e-5)


def test_escalc_rd_normand_table_iii():
    """Risk differences of the six lidocaine trials (Hine et al. 1989), Normand, Stat Med 1999;18:321, Table III
    (checked in metafor's tests/testthat/test_analysis_example_normand1999.r): yi x 100 = 2.8026, 0.0000,
    1.9711, 1.7961, 3.5334, 4.4031 and vi x 100^2 = 17.7575, 37.5657, 8.1323, 10.8998, 8.0114, 6.1320."""
    trials = [(2, 39, 1, 43), (4, 44, 4, 44), (6, 107, 4, 110), (7, 103, 5, 100), (7, 110, 3, 106), (11, 154, 4, 146)]
    data = _counts([("death", f"s{i}", *t) for i, t in enumerate(trials)])
    rd = escalc_table(data).query("measure == 'RD' and level == 'subgroup'")
    np.testing.assert_allclose(rd["yi"] * 100, [2.8026, 0.0, 1.9711, 1.7961, 3.5334, 4.4031], atol=5e-5)
    np.testing.assert_allclose(rd["vi"] * 100**2, [17.7575, 37.5657, 8.1323, 10.8998, 8.0114, 6.1320], atol=5e-4)
    pooled = _row(escalc_table(data), "death", "overall", "RD")  # crude pooled table: column sums
    assert (pooled["ai"], pooled["n1i"], pooled["ci"], pooled["n2i"]) == (37, 557, 21, 549)


def test_escalc_zero_cell_rule():
    """escalc's defaults (add = 1/2, to = "only0"; metafor R/escalc.r): 0/12 vs 3/10 has a zero cell, so 0.5 is
    added to all four cells, a 0.5, b 12.5, c 3.5, d 7.5 (n1 13, n2 11), for OR, RR and RD alike; by hand:
    OR yi = log(0.5 * 7.5 / (12.5 * 3.5)) = log(3/35), vi = 1/0.5 + 1/12.5 + 1/3.5 + 1/7.5;
    RR yi = log((0.5/13) / (3.5/11)) = log(11/91), vi = 1/0.5 - 1/13 + 1/3.5 - 1/11;
    RD yi = 0.5/13 - 3.5/11, vi = p1 (1 - p1) / 13 + p2 (1 - p2) / 11 with p1 = 1/26, p2 = 7/22.
    The counts columns stay the observed ones (0, 12, 3, 7)."""
    t = escalc_table(_counts([("sich", "all", 0, 12, 3, 10)]))
    p1, p2 = 1 / 26, 7 / 22
    expect = {
        "OR": (math.log(3 / 35), 1 / 0.5 + 1 / 12.5 + 1 / 3.5 + 1 / 7.5),
        "RR": (math.log(11 / 91), 1 / 0.5 - 1 / 13 + 1 / 3.5 - 1 / 11),
        "RD": (p1 - p2, p1 * (1 - p1) / 13 + p2 * (1 - p2) / 11),
    }
    for measure, (yi, vi) in expect.items():
        r = _row(t, "sich", "all", measure)
        assert r["yi"] == pytest.approx(yi, rel=1e-12) and r["vi"] == pytest.approx(vi, rel=1e-12)
        assert (r["ai"], r["bi"], r["ci"], r["di"], r["zero_cell_correction"]) == (0, 12, 3, 7, 0.5)


# ----------------------------------------------------------------------------------------------------------
# bayes-rescue export


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real small run of the bundled cohort (default prior, hierarchical model)."""
    out = tmp_path_factory.mktemp("export") / "run"
    argv = [
        "fit",
        "--draws",
        "300",
        "--tune",
        "300",
        "--chains",
        "2",
        "--keep-going",
        "--no-figures",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    return out


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_toml_round_trip_and_refit(run_dir, tmp_path, capsys):
    """The exported TOML loads as it is; the loaded mixture's 2.5/50/97.5% quantiles (root of its CDF) match the
    draws' empirical quantiles within the error the file states (plus 0.002 for the grid the statement is
    computed on), and the KS distance the file states equals scipy's ``kstest`` of the draws against the loaded
    prior's CDF (an independent computation) to its printed rounding. Every component cites the run's manifest
    and data by their sha256 (hashed here), and ``fit --prior FILE.toml`` on the same data runs."""
    target = tmp_path / "post.toml"
    assert main(["export", str(run_dir), "--outcome", "mrs_0_2", "--to", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "BIC" in printed and "Kolmogorov-Smirnov" in printed
    prior = load_prior(str(target))
    effect = prior.effect_for("mrs_0_2")
    x = load_run_draws(run_dir, outcome="mrs_0_2", subgroup="overall")["log_or"].ravel()
    text = target.read_text("utf-8")
    ks_stated = float(re.search(r"Kolmogorov-Smirnov distance ([0-9.]+)", text).group(1))
    q_stated = float(re.search(r"quantiles ([0-9.]+)", text).group(1))
    assert q_stated < 0.3
    for q in (0.025, 0.5, 0.975):
        assert abs(effect.ppf(q) - np.quantile(x, q)) <= q_stated + 0.002
    assert stats.kstest(x, effect.cdf).statistic == pytest.approx(ks_stated, abs=6e-5)
    manifest = json.loads((run_dir / "manifest.json").read_text("utf-8"))
    for c in effect.components:
        assert _sha(run_dir / "manifest.json") in c.source and manifest["data"]["sha256"] in c.source
        assert _sha(run_dir / "posterior.nc") in c.source and "model hierarchical" in c.source
    assert "includes the original prior" in prior.rationale
    assert prior.effect_for("mortality").sds.tolist() == [1.5285]  # [effect.default]: the neutral prior
    refit = tmp_path / "refit"
    argv = ["fit", "--prior", str(target), "--draws", "200", "--tune", "200", "--chains", "2", "--keep-going"]
    assert main([*argv, "--no-figures", "--out", str(refit)]) == 0
    assert pd.read_csv(refit / "summary.csv")["prior"].unique().tolist() == [prior.name]


def test_export_json_layout_and_draws(run_dir, tmp_path, capsys):
    """JSON in RBesT's write_mix_json layout (RBesT 1.8-2, R/mixjson.R and R/mixnorm.R, github.com/cran/RBesT):
    ``meta`` (dim 3 x K, dimnames w/m/s and comp1..compK, class normMix/mix, reference scale sigma 2) and
    ``comp`` (rows w, m, s); the same mixture as the TOML export of the same estimand (with K = 3 written as 4).
    The tidy draws equal the run's draws."""
    j, t, d = tmp_path / "p.json", tmp_path / "p.toml", tmp_path / "d.parquet"
    base = [str(run_dir), "--outcome", "mrs_0_2", "--subgroup", "mild_anterior"]
    assert main(["export", *base, "--to", str(j), "--draws", str(d)]) == 0
    assert "RBesT reference scale sigma = 2" in capsys.readouterr().out
    assert main(["export", *base, "--to", str(t)]) == 0
    doc = json.loads(j.read_text("utf-8"))
    k = doc["meta"]["dim"][1]
    assert doc["meta"]["dim"] == [3, k] and doc["meta"]["dimnames"] == [
        ["w", "m", "s"],
        [f"comp{i + 1}" for i in range(k)],
    ]
    assert doc["meta"]["class"] == ["normMix", "mix"] and len(doc["comp"]) == 3
    assert doc["mixnorm"]["matrix"] == doc["comp"] and doc["mixnorm"]["rownames"] == ["w", "m", "s"]
    w, m, s = (np.array(r) for r in doc["comp"])
    effect = load_prior(str(t)).effect_for("mrs_0_2")
    tw, tm, ts = rbest_components(effect)  # the TOML's components; K = 3 is written as 4 for RBesT
    np.testing.assert_array_equal(w, tw)
    np.testing.assert_array_equal(m, tm)
    np.testing.assert_array_equal(s, ts)
    assert doc["meta"]["sigma"] == [2.0]
    assert doc["bayes_rescue"]["subgroup"] == "mild_anterior" and "BIC" in doc["bayes_rescue"]["criterion"]
    frame = pd.read_parquet(d)
    cols = ["prior", "outcome", "subgroup", "chain", "draw", "log_or", "rd", "rr", "odds_ratio", "p_control"]
    assert list(frame.columns) == [*cols, "p_treatment"]
    ref = load_run_draws(run_dir, outcome="mrs_0_2", subgroup="mild_anterior")
    np.testing.assert_array_equal(frame["log_or"].to_numpy(), ref["log_or"].ravel())
    np.testing.assert_array_equal(frame["p_control"].to_numpy(), ref["p_control"].ravel())
    # 2 chains x 300 draws, or the retry's longer run (the small fit may fail the gate; see sampling.fit)
    chains, draws = ref["log_or"].shape
    assert chains == 2 and draws in (300, 600, 900, 1200)
    assert len(frame) == chains * draws and frame["chain"].max() == 1 and frame["draw"].max() == draws - 1


def test_export_refuses_to_overwrite_and_bad_input(run_dir, tmp_path, capsys):
    """An existing file is kept unless --overwrite; a bad suffix, K outside 1..6 or an unknown outcome is exit 2
    with a one-line message, and nothing is written."""
    target = tmp_path / "p.toml"
    target.write_text("keep me\n")
    assert main(["export", str(run_dir), "--outcome", "mrs_0_2", "--to", str(target)]) == 2
    assert target.read_text() == "keep me\n"
    assert main(["export", str(run_dir), "--outcome", "mrs_0_2", "--to", str(target), "--overwrite"]) == 0
    assert load_prior(str(target)).effect_for("mrs_0_2")
    capsys.readouterr()
    bad = [
        ["--outcome", "mrs_0_2", "--to", str(tmp_path / "p.yaml")],
        ["--outcome", "mrs_0_2", "--to", str(tmp_path / "q.toml"), "--draws", str(tmp_path / "d.xlsx")],
        ["--outcome", "mrs_0_2", "--to", str(tmp_path / "q.toml"), "--max-components", "0"],
        ["--outcome", "mrs_0_2", "--to", str(tmp_path / "q.toml"), "--max-components", "7"],
        ["--outcome", "nihss", "--to", str(tmp_path / "q.toml")],
        ["--outcome", "mrs_0_2", "--to", str(tmp_path / "q.toml"), "--prior", "enthusiastic"],
    ]
    for args in bad:
        assert main(["export", str(run_dir), *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]
    assert main(["export", str(tmp_path), "--outcome", "mrs_0_2", "--to", str(tmp_path / "q.toml")]) == 2


def test_write_atomic_leaves_no_partial(tmp_path):
    """A failing writer leaves neither the target nor a temporary file; a successful one leaves exactly the
    target."""

    def boom(p):
        p.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "a.toml", boom)
    assert list(tmp_path.iterdir()) == []
    write_atomic(tmp_path / "a.toml", lambda p: p.write_text("x"))
    assert [p.name for p in tmp_path.iterdir()] == ["a.toml"]


@pytest.mark.parametrize("text", ['a "quoted" \\ back', "line\nbreak\ttab", "unicode é ✓ 😀", "del\x7f ctrl\x01"])
def test_toml_str_round_trips(text):
    """tomllib (the standard library's TOML parser) reads back exactly the string that was quoted."""
    assert tomllib.loads(f"k = {toml_str(text)}")["k"] == text


def test_builders_multi_component_and_dotted_outcome():
    """A bimodal sample (half N(-1, 0.3), half N(1.5, 0.4), 4000 draws, seed 1) needs more than one component
    by BIC; the TOML text for an outcome whose name has a dot (a quoted key) parses with the package's own
    prior parser into exactly the fitted mixture, and the JSON holds the same numbers in rows w, m, s."""
    from bayes_rescue.outputs.exports import ExportProvenance, prior_json, prior_toml
    from bayes_rescue.priors.mixture import approximate
    from bayes_rescue.priors.spec import parse_prior

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-1, 0.3, 2000), rng.normal(1.5, 0.4, 2000)])
    mix, acc = approximate(x, max_k=4)
    assert len(mix.weights) >= 2
    prov = ExportProvenance(
        *("run", "m.rs", "all", "p", "bundled:p", "", "data.csv", "abc", "independent", "cmd", "m.json", "1", "2"),
        n_draws=x.size,
        max_components=4,
        ks=acc["ks"],
        max_quantile_error=acc["max_quantile_error"],
        created_utc="now",
    )
    spec = parse_prior(tomllib.loads(prior_toml(mix, prov)), origin="<t>")
    assert list(spec.effects) == ["m.rs"]
    np.testing.assert_allclose(spec.effects["m.rs"].weights, mix.weights / mix.weights.sum(), rtol=1e-15)
    np.testing.assert_array_equal(spec.effects["m.rs"].means, mix.means)
    doc = json.loads(prior_json(mix, prov))
    np.testing.assert_array_equal(doc["comp"][2], rbest_components(mix)[2])
    assert doc["meta"]["dim"] == [3, len(rbest_components(mix)[0])]


def test_export_from_a_several_prior_run(tmp_path, capsys):
    """A run of two priors: without --prior the export is refused (exit 2, one line naming --prior); with
    --prior it exports that prior's posterior (the tidy draws equal that prior's run draws, read by
    load_run_draws) and cites that prior by name."""
    run = tmp_path / "two"
    argv = ["fit", "--prior", "skeptical,neutral", "--draws", "200", "--tune", "200", "--chains", "2"]
    assert main([*argv, "--keep-going", "--no-figures", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--outcome", "mortality", "--to", str(tmp_path / "a.json")]) == 2
    assert "--prior" in capsys.readouterr().err and not (tmp_path / "a.json").exists()
    d = tmp_path / "d.csv"
    base = ["export", str(run), "--outcome", "mortality", "--prior", "neutral"]
    assert main([*base, "--to", str(tmp_path / "a.json"), "--draws", str(d)]) == 0
    ref = load_run_draws(run, outcome="mortality", prior="neutral")["log_or"].ravel()
    frame = pd.read_csv(d)
    np.testing.assert_array_equal(frame["log_or"].to_numpy(), ref)
    assert set(frame["prior"]) == {"neutral"}
    assert json.loads((tmp_path / "a.json").read_text())["bayes_rescue"]["prior"] == "neutral"
