"""The fitting machinery agrees with PyMC itself: NumPy prior draws, log likelihood, data swapping."""

from __future__ import annotations

import json

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import stats
from test_exactness import MIXTURE_PRIOR

from bayes_rescue.data.counts import load_counts
from bayes_rescue.inference.derived import log_likelihood, prior_draws
from bayes_rescue.inference.sampling import ModelCache, diagnose, fit, fit_many, sample_posterior
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.build import build_model, build_stacked_model
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.priors.spec import load_prior, parse_prior

SMALL = SamplerSettings(draws=300, tune=300, chains=2, seed=5, prior_draws=200)


@pytest.fixture(scope="module")
def data():
    return load_counts("bundled:chen2025")


@pytest.mark.parametrize("kind", ["hierarchical", "independent"])
def test_numpy_prior_matches_pymc_prior(data, kind):
    """Reference: PyMC's own forward sampler (pm.sample_prior_predictive) of the same model.
    Two-sample KS test per variable and coordinate at alpha = 1e-3 (Bonferroni-safe for ~20 tests);
    a wrong sd, mixture weight or transform gives p-values far below that with 4000 draws."""
    spec = ModelSpec(data, parse_prior(MIXTURE_PRIOR, origin="test"), kind)
    ours = prior_draws(spec, 4000, np.random.default_rng(1))
    with build_model(spec):
        theirs = pm.sample_prior_predictive(draws=4000, random_seed=2)["prior"].to_dataset()
    tested = 0
    for name in ours.data_vars:
        a, b = ours[name], theirs[name]
        dim = next(d for d in a.dims if d not in ("chain", "draw"))
        for label in a[dim].to_numpy():
            x = a.sel({dim: label}).to_numpy().ravel()
            y = b.sel({dim: label}).to_numpy().ravel()
            assert stats.ks_2samp(x, y).pvalue > 1e-3, (name, label)
            tested += 1
    assert tested >= 6


@pytest.mark.parametrize("bias", [False, True])
def test_log_likelihood_matches_pymc(data, bias):
    """Reference: pm.compute_log_likelihood on the same posterior draws, the binomial log likelihood per cell
    and arm. Our per-patient Bernoulli terms, summed over each cell and arm's patients, plus the log binomial
    coefficient log C(n, y), must equal it (exact to 1e-9); with and without a bias model."""
    from scipy import special

    from bayes_rescue.inference.derived import patients
    from bayes_rescue.priors.bias import load_bias

    spec = ModelSpec(data, load_prior("neutral"), "hierarchical", bias=load_bias("observational") if bias else None)
    result = fit(spec, SMALL, retry=False)
    posterior = result.tree["posterior"].to_dataset()
    ours = log_likelihood(posterior, spec)
    with build_model(spec):
        idata = pm.compute_log_likelihood(
            xr.DataTree.from_dict({"posterior": posterior}), extend_inferencedata=False, progressbar=False
        )
    pts = patients(spec)
    cells = data.cells()
    for name, arm, y, n in (("y_control", "control", "y_c", "n_c"), ("y_treatment", "treatment", "y_t", "n_t")):
        ref = idata[name].transpose("chain", "draw", "cell").to_numpy()
        for c, r in cells.iterrows():
            mine = pts[(pts["outcome"] == r["outcome"]) & (pts["cell"] == c) & (pts["arm"] == arm)]["patient"]
            total = ours[r["outcome"]].isel(patient=mine.to_numpy()).sum("patient").to_numpy()
            log_binom = special.gammaln(r[n] + 1) - special.gammaln(r[y] + 1) - special.gammaln(r[n] - r[y] + 1)
            np.testing.assert_allclose(total + log_binom, ref[..., c], atol=1e-9)
    assert sum(ours.sizes["patient"] for _ in ours.data_vars) == 43 * len(data.outcomes)


def test_reused_compiled_model_equals_fresh_compile(data):
    """Swapping a prior into a compiled model must give the draws a fresh compile gives (same seed):
    this catches nutpie's with_data silently keeping old data."""
    shared, fresh = ModelCache(), ModelCache()
    fit(ModelSpec(data, load_prior("skeptical"), "independent"), SMALL, cache=shared, retry=False)
    swapped = fit(ModelSpec(data, load_prior("enthusiastic"), "independent"), SMALL, cache=shared, retry=False)
    direct = fit(ModelSpec(data, load_prior("enthusiastic"), "independent"), SMALL, cache=fresh, retry=False)
    assert shared.compilations == 1
    np.testing.assert_array_equal(
        swapped.tree["posterior"]["delta"].to_numpy(), direct.tree["posterior"]["delta"].to_numpy()
    )


def test_same_seed_is_bit_identical_and_other_seed_differs(data):
    spec = ModelSpec(data, load_prior("skeptical"), "hierarchical")
    a = fit(spec, SMALL, retry=False)
    b = fit(spec, SMALL, retry=False)
    c = fit(spec, SamplerSettings(draws=300, tune=300, chains=2, seed=6, prior_draws=200), retry=False)
    np.testing.assert_array_equal(a.effects["rd"].to_numpy(), b.effects["rd"].to_numpy())
    np.testing.assert_array_equal(a.tree["prior"]["delta"].to_numpy(), b.tree["prior"]["delta"].to_numpy())
    assert not np.array_equal(a.effects["rd"].to_numpy(), c.effects["rd"].to_numpy())
    # the sweep path (nutpie's raw Arrow trace, no DataTree) gives the very same draws and divergences
    eff, sample_stats = sample_posterior(spec, SMALL)
    for v in ("rd", "log_or", "p_control", "p_treatment"):
        np.testing.assert_array_equal(eff[v].to_numpy(), a.effects[v].to_numpy())
    np.testing.assert_array_equal(sample_stats["diverging"].to_numpy(), a.tree["sample_stats"]["diverging"].to_numpy())


def test_diagnostics_gate_fails_on_short_chains(data):
    """50 draws per chain cannot give ESS >= 1000: the gate must say so (and fit must warn)."""
    spec = ModelSpec(data, load_prior("neutral"), "hierarchical")
    with pytest.warns(RuntimeWarning, match="diagnostics FAILED"):
        result = fit(spec, SamplerSettings(draws=50, tune=50, chains=2, seed=1, prior_draws=50), retry=True)
    assert not result.passed
    assert result.attempts == 2
    assert any("ESS" in p for p in result.diagnostics.problems())
    assert diagnose(result.tree, result.effects, 0.99).min_ess_bulk < 1000


def _bundled_specs(data, kind: str) -> list[ModelSpec]:
    from bayes_rescue.priors.spec import bundled_prior_names

    return [ModelSpec(data, load_prior(name), kind) for name in bundled_prior_names()]


def test_bundled_cohort_clean_under_every_bundled_prior(data):
    """Issue acceptance: zero divergences, R-hat <= 1.01, bulk and tail ESS >= 1000 under every bundled
    prior with the default settings, in both model structures. The priors are sampled as ``--prior all``
    samples them (one joint run of the stacked model), and every prior must pass on its draws from that
    run, with no refit alone."""
    for kind in ("hierarchical", "independent"):
        for result in fit_many(_bundled_specs(data, kind)):
            d = result.diagnostics
            name = result.spec.prior.name
            assert result.attempts == 1 and d.divergences == 0, (kind, name, d.problems())
            assert d.max_rhat <= 1.01 and d.min_ess_bulk >= 1000 and d.min_ess_tail >= 1000, (kind, name)
            assert name in json.loads(result.tree.attrs["bayes_rescue_sampled_with"])


@pytest.mark.parametrize("kind", ["hierarchical", "independent"])
def test_stacked_log_density_is_the_sum_of_the_priors_log_densities(data, kind):
    """Reference: each prior's own model (build_model), compiled by PyMC. At random points of the
    unconstrained space, the stacked model's log density (Jacobians included) equals the sum over priors
    of each single-prior model's log density at that prior's slice of the point: the copies are
    independent and each has its own prior and the full likelihood."""
    specs = [*_bundled_specs(data, kind)[:3], ModelSpec(data, parse_prior(MIXTURE_PRIOR, origin="test"), kind)]
    stacked = build_stacked_model(specs)
    logp_stacked = stacked.compile_logp()
    singles = [build_model(s) for s in specs]
    logps = [m.compile_logp() for m in singles]
    rng = np.random.default_rng(3)
    for _ in range(5):
        point = {k: rng.normal(0, 1.5, np.shape(v)) for k, v in stacked.initial_point().items()}
        parts = [f({k: v[i] for k, v in point.items()}) for i, f in enumerate(logps)]
        assert float(logp_stacked(point)) == pytest.approx(float(np.sum(parts)), rel=1e-10, abs=1e-9)


def test_prior_failing_in_the_joint_run_is_refitted_alone(data, monkeypatch, tmp_path):
    """A prior whose draws from the joint run fail the gate is refitted alone (its own fit, same seed):
    forced here by reporting a divergence for 'skeptical' in the joint run. Its result is then the same
    as fitting that prior alone, bit for bit; the others keep their joint draws. The several-prior
    posterior file of each prior gives its tree back exactly (save_tree/load_tree)."""
    from bayes_rescue.inference import sampling as fit_module
    from bayes_rescue.outputs.trees import load_tree, save_tree

    real = fit_module.diagnose

    def flaky(tree, eff, target_accept):
        d = real(tree, eff, target_accept)
        if "bayes_rescue_sampled_with" in tree.attrs and tree["constant_data"]["prior_mu"].values[0, 0] == 0.0:
            d.divergences = 1  # neutral/skeptical centre 0; only the joint run is affected
        return d

    monkeypatch.setattr(fit_module, "diagnose", flaky)
    specs = _bundled_specs(data, "hierarchical")  # as --prior all: the stacked model compiled once
    centred = [s.prior.name for s in specs if s.arrays()["prior_mu"][0, 0] == 0.0]
    results = fit_many(specs)
    monkeypatch.setattr(fit_module, "diagnose", real)
    for r in results:
        if r.spec.prior.name in centred:
            assert r.attempts == 2 and "bayes_rescue_sampled_with" not in r.tree.attrs
            assert "divergent" in r.tree.attrs["bayes_rescue_joint_run_problems"]
            alone = fit(r.spec)
            xr.testing.assert_equal(alone.tree["posterior"].to_dataset(), r.tree["posterior"].to_dataset())
        else:
            assert r.attempts == 1 and "bayes_rescue_sampled_with" in r.tree.attrs
    assert centred and len(centred) < len(specs)
    for r in results[:2]:
        back = load_tree(save_tree(r.tree, tmp_path / r.name / "posterior.nc"))
        for group in ("posterior", "sample_stats", "prior", "constant_data", "observed_data", "log_likelihood"):
            ref = r.tree[group].to_dataset()
            ref = ref.assign({v: ref[v].astype(str) for v in ref.data_vars if ref[v].dtype == object})  # as saved
            xr.testing.assert_equal(back[group].to_dataset(), ref)


def test_partial_trace_from_an_interrupted_sampler_is_an_interruption(data, monkeypatch):
    """nutpie returns the draws made so far when sampling is interrupted (Ctrl-C); such a short trace
    must raise KeyboardInterrupt, never flow on as a result."""
    import nutpie

    from bayes_rescue.inference import sampling as fit_module

    real = nutpie.sample

    def short(*args, **kwargs):
        return real(*args, **{**kwargs, "draws": kwargs["draws"] // 2})

    monkeypatch.setattr(fit_module.nutpie, "sample", short)
    with pytest.raises(KeyboardInterrupt, match="sampling was interrupted"):
        fit(ModelSpec(data, load_prior("neutral"), "hierarchical"), SMALL, retry=False)


def _with_component(prior, outcome: str, **change):
    """``prior`` with the first component of ``outcome``'s effect prior changed (a programmatic prior,
    which bypasses the file loader's checks)."""
    from dataclasses import replace

    eff = prior.effect_for(outcome)
    comps = (replace(eff.components[0], **change), *eff.components[1:])
    return replace(prior, effects={**prior.effects, outcome: replace(eff, components=comps)})


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"sd": 0.0}, "effect.mrs_0_2", "sd > 0"),
        ({"sd": -1.0}, "effect.mrs_0_2", "sd > 0"),
        ({"mean": float("nan")}, "effect.mrs_0_2", "finite mean"),
        ({"weight": 0.5}, "effect.mrs_0_2", "sum to 0.5"),
    ],
)
def test_out_of_domain_prior_made_in_code_is_refused(data, change, field, words):
    """The model's log density skips its parameter checks (``check_bounds=False``), so a prior built in
    code with an sd <= 0, a non-finite mean or weights not summing to 1 must be refused when the spec is
    made, with the field named, instead of sampling a meaningless density."""
    from bayes_rescue.errors import InputError

    bad = _with_component(load_prior("skeptical"), "mrs_0_2", **change)
    with pytest.raises(InputError, match=words) as err:
        ModelSpec(data, bad)
    assert field in str(err.value)


def test_out_of_domain_hyperparameter_is_refused(data):
    """As above for the hyperpriors: a scale of 0 is refused, naming ``hyper.<name>``."""
    from dataclasses import replace

    from bayes_rescue.errors import InputError

    prior = load_prior("skeptical")
    with pytest.raises(InputError, match=r"hyper\.effect_tau_sd"):
        ModelSpec(data, replace(prior, hyper={**prior.hyper, "effect_tau_sd": 0.0}))
