"""Issue 22: the model's equations written once, and likelihood groups that cost cells, not patients.

References: PyMC's own log density of the model (``Model.compile_logp``) and its own pointwise log likelihood
(``pm.compute_log_likelihood``, the binomial per cell and arm); raw importance-sampling LOO computed by hand
(elpd_i = -log mean_s exp(-log p(y_i | theta_s)), which PSIS smooths: with every Pareto k below 0.7 the two
agree closely); the patient and cell counts of the data themselves."""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import special
from test_exactness import MIXTURE_PRIOR

from bayes_rescue.data.counts import load_counts, parse_counts
from bayes_rescue.inference import pointwise
from bayes_rescue.inference.psense import log_prior, power_scaling
from bayes_rescue.inference.sampling import fit
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model import equations
from bayes_rescue.model.build import build_model
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.bias import load_bias
from bayes_rescue.priors.spec import load_prior, parse_prior

TINY = SamplerSettings(draws=200, tune=200, chains=2, seed=7, prior_draws=100)
LOO = SamplerSettings(draws=500, tune=400, chains=2, seed=8, prior_draws=100)


def _subgroups_csv(n_sub: int, scale: int = 1) -> str:
    """``n_sub`` subgroups of one outcome with 30-60 patients per arm (times ``scale``), event rates
    between 0.3 and 0.6: a table of more than PATIENT_POINTS_MAX patients."""
    rng = np.random.default_rng(n_sub)
    lines = ["outcome,subgroup,arm,events,total,direction"]
    for s in range(n_sub):
        for arm, rate in (("treatment", 0.5), ("control", 0.4)):
            n = int(rng.integers(30, 61))
            y = int(rng.binomial(n, rate))
            lines.append(f"mrs_0_2,s{s},{arm},{y * scale},{n * scale},higher")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def bundled():
    return load_counts("bundled:chen2025")


@pytest.fixture(scope="module")
def large():
    """Ten subgroups, about 900 patients: above the patient limit, so the points are the subgroups' arms."""
    return parse_counts(_subgroups_csv(10), source="ten.csv")


@pytest.fixture(scope="module")
def large_fit(large):
    return fit(ModelSpec(large, load_prior("neutral"), "hierarchical"), LOO, retry=False)


def _random_point(model: pm.Model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {k: rng.normal(0, 1.2, np.shape(v)) for k, v in model.initial_point().items()}


def _constrained(model: pm.Model, point: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The free parameters' values (their own scale) at an unconstrained point (only log transforms here)."""
    out = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        out[rv.name] = np.exp(point[value.name]) if value.name.endswith("_log__") else point[value.name]
    return out


@pytest.mark.parametrize(
    ("table", "kind", "bias", "prior"),
    [
        ("bundled", "hierarchical", None, "mixture"),
        ("bundled", "independent", None, "mixture"),
        ("bundled", "hierarchical", "observational", "map_late"),
        ("large", "hierarchical", None, "skeptical"),
        ("large", "independent", "observational", "skeptical"),
    ],
)
def test_log_prior_equals_pymc_log_prior(request, table, kind, bias, prior):
    """Reference: PyMC's log density of the model's free variables without Jacobian (``compile_logp(
    vars=model.free_RVs, jacobian=False)``) at random points. The NumPy log prior of the equations module
    (the ``log_prior`` group's two terms) equals it to 1e-9: mixture prior with padded components, bias
    model, pooled and unpooled outcomes (bundled cohort), ten pooled subgroups (``large``)."""
    p = parse_prior(MIXTURE_PRIOR, origin="test") if prior == "mixture" else load_prior(prior)
    spec = ModelSpec(request.getfixturevalue(table), p, kind, bias=load_bias(bias) if bias else None)
    model = build_model(spec)
    logp = model.compile_logp(vars=model.free_RVs, jacobian=False)
    rng = np.random.default_rng(4)
    for _ in range(4):
        point = _random_point(model, rng)
        values = _constrained(model, point)
        assert set(values) == set(equations.free_parameter_names(spec))
        terms = equations.log_prior_terms(values, spec)
        total = float(terms["effect_prior"] + terms["other_priors"])
        assert total == pytest.approx(float(logp(point)), rel=1e-10, abs=1e-9)


@pytest.mark.parametrize("kind", ["hierarchical", "independent"])
def test_numpy_cell_parameters_equal_the_graphs(large, kind):
    """Reference: the PyMC graph's own ``baseline`` and ``delta`` (its Deterministics, compiled by PyTensor)
    at random points: the equations evaluated in NumPy give the same values (the graph calls the same
    function with pytensor.tensor)."""
    spec = ModelSpec(large, load_prior("neutral"), kind)
    model = build_model(spec)
    outs = model.replace_rvs_by_values([model["baseline"], model["delta"]])
    f = model.compile_fn(outs, inputs=model.value_vars, point_fn=True)
    rng = np.random.default_rng(5)
    for _ in range(3):
        point = _random_point(model, rng)
        graph_b, graph_d = f(point)
        b, d = equations.cell_parameters(_constrained(model, point), spec.arrays(), kind)
        np.testing.assert_allclose(b, graph_b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(d, graph_d, rtol=1e-12, atol=1e-12)


def test_point_kind_follows_the_patient_count(bundled, large):
    """The bundled cohort (43 patients, at most PATIENT_POINTS_MAX) has one point per patient; the ten-
    subgroup table (over 200 patients) one per subgroup and arm; and the group attrs say which."""
    assert pointwise.point_kind(ModelSpec(bundled, load_prior("neutral"))) == "patient"
    spec = ModelSpec(large, load_prior("neutral"))
    assert large.cells()[["n_t", "n_c"]].to_numpy().sum() > pointwise.PATIENT_POINTS_MAX
    assert pointwise.point_kind(spec) == "cell_arm"
    obs = pointwise.observed(spec)
    assert obs.attrs["point"] == "cell_arm" and "subgroup and arm" in obs.attrs["point_description"]
    assert obs["mrs_0_2"].sizes == {"mrs_0_2_cell_arm": 20}
    cells = large.cells()
    np.testing.assert_array_equal(obs["mrs_0_2"].to_numpy(), np.r_[cells["y_t"], cells["y_c"]])
    np.testing.assert_array_equal(obs["mrs_0_2_cell_arm_total"].to_numpy(), np.r_[cells["n_t"], cells["n_c"]])


@pytest.mark.parametrize("bias", [False, True])
def test_cell_arm_log_likelihood_is_pymcs(bundled, bias):
    """Reference: ``pm.compute_log_likelihood`` on the same draws (the binomial log pmf per cell and arm):
    each cell-arm point of ours equals PyMC's exactly (1e-9), with and without a bias model; and the
    per-patient points of the same draws sum, per arm, to the same value less log C(n, y)."""
    spec = ModelSpec(bundled, load_prior("neutral"), bias=load_bias("observational") if bias else None)
    posterior = fit(spec, TINY, retry=False).tree["posterior"].to_dataset()
    ours = pointwise.log_likelihood(posterior, spec, kind="cell_arm")
    per_patient = pointwise.log_likelihood(posterior, spec, kind="patient")
    with build_model(spec):
        ref = pm.compute_log_likelihood(
            xr.DataTree.from_dict({"posterior": posterior}), extend_inferencedata=False, progressbar=False
        )
    pts = pointwise.patients(spec)
    for o in bundled.outcomes:
        arms = pointwise.cell_arms(spec, o)
        for i, r in arms.iterrows():
            name = "y_treatment" if r["treated"] else "y_control"
            theirs = ref[name].isel(cell=int(r["cell"])).transpose("chain", "draw").to_numpy()
            mine = ours[o].isel({f"{o}_cell_arm": i}).transpose("chain", "draw").to_numpy()
            np.testing.assert_allclose(mine, theirs, atol=1e-9)
            rows = pts[(pts["outcome"] == o) & (pts["cell"] == r["cell"]) & (pts["arm"] == r["arm"])]
            summed = per_patient[o].isel(patient=rows["patient"].to_numpy()).sum("patient").to_numpy()
            n, y = r["total"], r["events"]
            log_binom = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
            np.testing.assert_allclose(summed + log_binom, theirs, atol=1e-9)


def test_loo_on_cell_arm_points_agrees_with_a_hand_computation(large_fit, tmp_path):
    """az.loo on the saved file of a 900-patient table: 20 points (10 subgroups x 2 arms), the attrs say
    so, and elpd_loo equals raw importance-sampling LOO computed here from the log likelihood (within 0.05
    per point where Pareto k < 0.7); az.compare of two fits gives each its own az.loo."""
    from bayes_rescue.outputs.trees import load_tree, save_tree

    tree = load_tree(save_tree(large_fit.tree, tmp_path / "posterior.nc"))
    assert tree["log_likelihood"].attrs["point"] == "cell_arm"
    loo = az.loo(tree, var_name="mrs_0_2", pointwise=True)
    assert loo.n_data_points == 20
    ll = tree["log_likelihood"]["mrs_0_2"].stack(s=("chain", "draw")).transpose("mrs_0_2_cell_arm", "s").to_numpy()
    by_hand = -(special.logsumexp(-ll, axis=1) - np.log(ll.shape[1]))
    good_k = np.asarray(loo.pareto_k) < 0.7
    assert good_k.sum() >= 15
    np.testing.assert_allclose(np.asarray(loo.elpd_i)[good_k], by_hand[good_k], atol=0.05)
    other = fit(ModelSpec(large_fit.spec.data, load_prior("skeptical"), "hierarchical"), LOO, retry=False)
    table = az.compare({"neutral": tree, "skeptical": other.tree}, var_name="mrs_0_2")
    assert abs(float(table.loc["neutral", "elpd"]) - loo.elpd) <= 0.55


def test_power_scaling_is_the_same_on_either_grain(large_fit):
    """Power-scaling uses the likelihood's sum; the two grains differ by the constant sum of log C(n, y),
    which the normalised importance weights cancel: the prior and likelihood sensitivities on per-patient
    points equal those on cell-arm points (to 1e-9), and the log prior group is the equations' own."""
    tree, spec = large_fit.tree, large_fit.spec
    posterior = tree["posterior"].to_dataset()
    assert tree["log_likelihood"].attrs["point"] == "cell_arm"
    on_cells = power_scaling(tree, large_fit.effects)
    swapped = tree.copy()
    swapped["log_likelihood"] = xr.DataTree(pointwise.log_likelihood(posterior, spec, kind="patient"))
    on_patients = power_scaling(swapped, large_fit.effects)
    for col in ("rd_prior_sensitivity", "rd_likelihood_sensitivity", "log_or_likelihood_sensitivity"):
        np.testing.assert_allclose(on_cells[col], on_patients[col], atol=1e-9)
    xr.testing.assert_allclose(log_prior(posterior, spec), tree["log_prior"].to_dataset())


def test_tree_size_grows_with_cells_not_patients():
    """Reference: the data's own sizes. The same ten-subgroup table with 20 times the patients in every arm
    (about 18,000 patients) gives a DataTree of the same size: the same bytes in every group, and the same
    number of values in the predictive groups (whose integer type widens from int8 to int16 with arms of over
    127 patients). Twenty subgroups of the same arm sizes (twice the cells) grow it by less than 2.2x."""
    sizes, values = {}, {}
    for name, csv in (("ten", _subgroups_csv(10)), ("ten_x20", _subgroups_csv(10, 20)), ("twenty", _subgroups_csv(20))):
        data = parse_counts(csv, source=f"{name}.csv")
        tree = fit(ModelSpec(data, load_prior("neutral")), TINY, retry=False).tree
        assert tree["posterior_predictive"].attrs["point"] == "cell_arm"
        groups = {node.path: node.to_dataset() for node in tree.subtree}
        predictive = ("/posterior_predictive", "/prior_predictive")
        sizes[name] = sum(ds.nbytes for path, ds in groups.items() if path not in predictive)
        values[name] = sum(v.size for path in predictive for v in groups[path].data_vars.values())
    assert sizes["ten_x20"] == sizes["ten"] and values["ten_x20"] == values["ten"]
    assert sizes["twenty"] < 2.2 * sizes["ten"] and values["twenty"] == 2 * values["ten"]


def test_cell_arm_replicates_are_binomial_draws(large_fit):
    """Reference: the binomial's own mean and variance. Each arm's replicated counts lie in 0..n, and their
    mean over the 1000 draws equals the mean of n * p (p the arm's risk at each draw, computed here from the
    saved baseline and delta, arms at baseline -/+ delta / 2) within 5 standard errors of the binomial noise
    sqrt(mean(n p (1 - p)) / draws)."""
    tree, spec = large_fit.tree, large_fit.spec
    rep = tree["posterior_predictive"]["mrs_0_2"].transpose("chain", "draw", ...).to_numpy().reshape(-1, 20)
    arms = pointwise.cell_arms(spec, "mrs_0_2")
    n = arms["total"].to_numpy()
    base = tree["posterior"]["baseline"].transpose("chain", "draw", "cell").to_numpy().reshape(-1, 10)
    delta = tree["posterior"]["delta"].transpose("chain", "draw", "cell").to_numpy().reshape(-1, 10)
    sign = np.where(arms["treated"], 0.5, -0.5)
    p = special.expit(base[:, arms["cell"]] + sign * delta[:, arms["cell"]])
    assert rep.min() >= 0 and (rep <= n).all()
    se = np.sqrt((n * p * (1 - p)).mean(0) / rep.shape[0])
    assert np.all(np.abs(rep.mean(0) - (n * p).mean(0)) < 5 * se)
