"""The saved files work in ArviZ as they are (issue 15), and the Python API writes what the CLI writes.

References: importance-sampling LOO computed by hand from the per-patient log likelihood (the raw
harmonic-mean estimator elpd_i = -log mean_s exp(-log p(y_i | theta_s)), which PSIS smooths; with every Pareto
k below 0.7 the two agree closely), the patient counts of the data, and the CLI's own run folder."""

from __future__ import annotations

import arviz as az
import matplotlib
import numpy as np
import pytest
from scipy import special

import bayes_rescue as br
from bayes_rescue.outputs.trees import load_tree

matplotlib.use("Agg")

SMALL = {"draws": 500, "tune": 400, "chains": 2, "prior_draws": 200}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("arviz") / "run"
    result = br.fit(prior="skeptical,enthusiastic", **SMALL)
    result.save(out, figures=False, report=False)
    return result, out


def test_one_arviz_ready_file_per_prior(run):
    """Several priors: one complete DataTree per prior in <run>/<prior>/posterior.nc, no combined tree, no
    non-standard groups, no variable named like an ArviZ argument (alpha)."""
    _, out = run
    assert not (out / "posterior.nc").exists()
    for prior in ("skeptical", "enthusiastic"):
        tree = load_tree(out / prior / "posterior.nc")
        assert set(tree.children) >= {"posterior", "log_likelihood", "observed_data", "prior", "sample_stats"}
        assert "effects" not in tree.children and "prior_effects" not in tree.children
        for group in tree.children.values():
            assert "alpha" not in group.data_vars
        post = tree["posterior"]
        assert post["rd"].dims == ("chain", "draw", "outcome", "subgroup")
        assert "prior" not in post.dims


@pytest.mark.parametrize("outcome", ["mrs_0_2", "mortality"])
def test_loo_has_one_point_per_patient_and_agrees_with_a_hand_computation(run, outcome):
    """az.loo on the saved file: 43 points (20 + 23 patients), k-hat good, and elpd_loo equal to the raw
    importance-sampling LOO computed here from the log likelihood (within 0.05 per patient, 0.3 in total);
    the group's attrs say its points are patients (the bundled cohort is below the patient limit)."""
    _, out = run
    tree = load_tree(out / "skeptical" / "posterior.nc")
    assert tree["log_likelihood"].attrs["point"] == "patient"
    loo = az.loo(tree, var_name=outcome, pointwise=True)
    assert loo.n_data_points == 43
    assert float(np.max(loo.pareto_k)) < 0.7
    ll = tree["log_likelihood"][outcome].stack(s=("chain", "draw")).transpose("patient", "s").to_numpy()
    by_hand = -(special.logsumexp(-ll, axis=1) - np.log(ll.shape[1]))
    np.testing.assert_allclose(np.asarray(loo.elpd_i), by_hand, atol=0.05)
    assert abs(loo.elpd - by_hand.sum()) < 0.3


def test_compare_ranks_the_priors(run):
    """az.compare on two priors' files: both rows, and each elpd equal to that file's own az.loo (the
    comparison table rounds elpd to one decimal; tolerance 0.05 plus rounding)."""
    _, out = run
    trees = {p: load_tree(out / p / "posterior.nc") for p in ("skeptical", "enthusiastic")}
    table = az.compare(trees, var_name="mrs_0_2")
    assert set(table.index) == set(trees)
    for p, t in trees.items():
        assert abs(float(table.loc[p, "elpd"]) - az.loo(t, var_name="mrs_0_2").elpd) <= 0.55


def test_arviz_functions_run_with_var_names_only(run):
    """az.summary, az.plot_forest, az.plot_trace and the arviz-stats power-scaling functions run on the file
    with no argument beyond var_names; the summary's RD rows equal the summary table's (same draws)."""
    import arviz_stats

    result, out = run
    tree = load_tree(out / "skeptical" / "posterior.nc")
    table = az.summary(tree, var_names=["rd"], ci_prob=0.95, ci_kind="eti")
    ours = result.summary[(result.summary["prior"] == "skeptical")]
    row = ours[(ours["outcome"] == "mrs_0_2") & (ours["subgroup"] == "overall")].iloc[0]
    assert float(table.loc["rd[mrs_0_2, overall]", "mean"]) == pytest.approx(row["rd_mean"], abs=1e-2)
    az.plot_forest(tree, var_names=["rd"])
    az.plot_trace(tree, var_names=["mu_log_or"])
    arviz_stats.psense_summary(tree, var_names=["mu_log_or"])
    az.plot_psense_dist(tree, var_names=["mu_log_or"])


def test_api_save_writes_the_cli_run_folder(run, tmp_path):
    """br.fit(...).save(folder) writes the files `bayes-rescue fit` writes (same names), and the result
    object exposes the summary table and the tree."""
    from bayes_rescue.cli import main

    result, out = run
    assert {"prior", "outcome", "subgroup", "rd_median", "p_benefit"} <= set(result.summary.columns)
    assert result.tree is result.fits[0].tree and set(result.trees) == {"skeptical", "enthusiastic"}
    cli_out = tmp_path / "cli"
    args = ["fit", "--prior", "skeptical,enthusiastic", "--draws", "500", "--tune", "400", "--chains", "2"]
    assert main([*args, "--prior-draws", "200", "--no-figures", "--keep-going", "--out", str(cli_out)]) == 0
    names = {p.name for p in cli_out.iterdir()} - {"report.html", "inputs"}  # the CLI also keeps its input files
    assert names == {p.name for p in out.iterdir()}
