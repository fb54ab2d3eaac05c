"""Sensitivity grid and reverse-Bayes tipping points, checked against quadrature (independent model).

Reference: ``tests/quadrature.py`` gives the exact posterior P(benefit) of one 2x2 cell under a normal
prior; for the independent model every grid point and every tipping point can be checked against it.
Tolerance: 4 Monte Carlo standard errors of a proportion at the run's ESS (>= 1000 by the gate), i.e.
4 * sqrt(p (1 - p) / 1000) + 1e-3.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from quadrature import reference_summary
from scipy import optimize

from bayes_rescue.analyses.sensitivity import sensitivity_grid, tipping_points
from bayes_rescue.data.counts import load_counts
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.outputs.figures import heatmap_data

SETTINGS = SamplerSettings(draws=1000, tune=500, chains=4, seed=3, prior_draws=1)
MILD = dict(y_t=13, n_t=17, y_c=6, n_c=19)


def _p_quad(centre: float, sd: float) -> float:
    return reference_summary(**MILD, direction="higher", weights=[1.0], means=[centre], sds=[sd])["p_benefit"]


def _tol(p: float) -> float:
    return 4 * math.sqrt(p * (1 - p) / 1000) + 1e-3


@pytest.fixture(scope="module")
def data():
    return load_counts("bundled:chen2025")


@pytest.mark.parametrize("method", ["auto", "nuts"])
def test_grid_matches_quadrature_independent_model(data, method):
    """Both ways of computing a grid point (PSIS reweighting of the reference fit, or its own NUTS fit)
    agree with quadrature at every point; with ``auto`` at least one point is reweighted."""
    grid = sensitivity_grid(
        data, kind="independent", centres=(-0.5, 0.5), sds=(0.3, 1.0), settings=SETTINGS, method=method
    )
    assert len(grid) == 4 * 4  # points x (2 mrs subgroups + mrs overall + mortality overall)
    assert (grid["method"] == "psis").any() if method == "auto" else (grid["method"] == "nuts").all()
    assert (grid["diagnostics_passed"]).all() and (grid["ess_min"] >= 1000).all()
    psis = grid[grid["method"] == "psis"]
    assert (psis["pareto_k"] <= 0.7).all() and (psis["attempts"] == 0).all()
    mild = grid[grid["subgroup"] == "mild_anterior"]
    for r in mild.itertuples():
        ref = _p_quad(r.centre_benefit, r.sd)
        assert abs(r.p_benefit - ref) <= _tol(ref), (r.centre_benefit, r.sd, r.p_benefit, ref)
    tables = heatmap_data(grid)
    assert tables[("mrs_0_2", "mild_anterior")].shape == (2, 2)
    # mortality: centre on the benefit scale means a negative log OR prior (fewer deaths)
    mort = grid[grid["outcome"] == "mortality"].set_index(["centre_benefit", "sd"])["p_benefit"]
    assert mort[(0.5, 0.3)] > mort[(-0.5, 0.3)]


def test_tipping_sd_matches_quadrature_root(data):
    """The tipping sd found over fits gives, by quadrature, P(benefit) = 0.95 within MC tolerance; and
    it is close to the quadrature root itself."""
    tips = tipping_points(data, kind="independent", levels=(0.95,), settings=SETTINGS)
    row = tips[(tips["subgroup"] == "mild_anterior")].iloc[0]
    assert row["sd_status"] == "found"
    assert abs(_p_quad(0.0, row["tipping_sd"]) - 0.95) <= _tol(0.95)
    root = math.exp(optimize.brentq(lambda x: _p_quad(0.0, math.exp(x)) - 0.95, math.log(0.02), math.log(10)))
    assert row["tipping_sd"] == pytest.approx(root, rel=0.15)
    assert row["tipping_sd_ess_patients"] > 0
    mort = tips[tips["outcome"] == "mortality"].iloc[0]
    assert mort["sd_status"].startswith("not reached") and np.isnan(mort["tipping_sd"])


def test_dask_local_cluster_gives_the_serial_result(data):
    """A real dask.distributed LocalCluster (scheduler and worker processes on loopback) runs the grid
    points as independent tasks; with the same seeds the table equals the serial one exactly."""
    from bayes_rescue.analyses.parallel import dask_map

    kwargs = dict(kind="independent", centres=(0.0, 0.5), sds=(0.5,), settings=SETTINGS, method="nuts")
    serial = sensitivity_grid(data, **kwargs)
    with dask_map("local") as mapper:
        distributed = sensitivity_grid(data, map_fn=mapper, **kwargs)
    pd.testing.assert_frame_equal(serial, distributed)


def test_reweighting_to_the_reference_prior_is_the_reference_fit(data):
    """Reweighted to its own prior, the reference fit has equal weights (k-hat 0): every probability is the
    plain share of reference draws, computed here by counting."""
    from bayes_rescue.analyses.sensitivity import REFERENCE_SD, ImportanceReweighter, grid_prior
    from bayes_rescue.model.estimands import benefit_sign

    ref = ImportanceReweighter(data, "independent", settings=SamplerSettings(draws=1500, tune=500, chains=4, seed=4))
    rows = ref.rows(grid_prior(data, 0.0, REFERENCE_SD), (0.05,))
    assert rows is not None
    for i, (row, e) in enumerate(zip(rows, ref.est.itertuples(), strict=True)):
        rdb = benefit_sign(e.direction) * ref.rd[:, i]
        assert row["p_benefit"] == pytest.approx(np.count_nonzero(rdb > 0) / rdb.size, abs=1e-12)
        assert row["p_benefit_ge_0.05"] == pytest.approx(np.count_nonzero(rdb >= 0.05) / rdb.size, abs=1e-12)
        assert row["pareto_k"] == 0.0 and row["ess_min"] == pytest.approx(ref.ref_ess[i])


def test_psense_matches_arviz_summary(data):
    """Reference: ArviZ's own psense_summary (rounded to 3 decimals) on the same DataTree groups."""
    import xarray as xr
    from arviz_stats import psense_summary

    from bayes_rescue.inference.psense import power_scaling
    from bayes_rescue.inference.sampling import fit
    from bayes_rescue.model.spec import ModelSpec
    from bayes_rescue.priors.spec import load_prior

    result = fit(ModelSpec(data, load_prior("map_late"), "hierarchical"), SETTINGS, retry=False)
    ours = power_scaling(result.tree, result.effects).set_index("estimand")
    eff = result.effects[["rd"]].drop_vars(["estimand_outcome", "estimand_subgroup"])
    tree = xr.DataTree.from_dict(
        {
            "posterior": eff,
            "log_prior": result.tree["log_prior"].to_dataset(),
            "log_likelihood": result.tree["log_likelihood"].to_dataset(),
        }
    )
    ref = psense_summary(tree)
    for label, r in ref.iterrows():
        est = str(label).split("[", 1)[1].rstrip("]")
        assert round(ours.loc[est, "rd_prior_sensitivity"], 3) == pytest.approx(r["prior"], abs=1e-9)
        assert round(ours.loc[est, "rd_likelihood_sensitivity"], 3) == pytest.approx(r["likelihood"], abs=1e-9)
        expected = "ok" if r["diagnosis"] == "✓" else r["diagnosis"]
        assert ours.loc[est, "rd_psense_diagnosis"] == expected


def test_mixture_log_density_matches_scipy():
    """Reference: scipy.stats.norm.logpdf and scipy.special.logsumexp (the textbook mixture density),
    on padded mixtures (zero-weight components), far tails and a single component."""
    from scipy import special, stats

    from bayes_rescue.priors.spec import mixture_logpdf as _mixture_logpdf

    rng = np.random.default_rng(11)
    w = np.array([[0.2, 0.5, 0.3, 0.0], [1.0, 0.0, 0.0, 0.0]])
    mu = np.array([[-1.0, 0.0, 2.0, 0.0], [0.3, 0.0, 0.0, 0.0]])
    sd = np.array([[0.3, 1.5, 0.7, 1.0], [0.05, 1.0, 1.0, 1.0]])
    x = np.concatenate([rng.normal(0, 3, (500, 2)), [[40.0, -40.0], [-25.0, 3.0]]])
    with np.errstate(divide="ignore"):
        ref = special.logsumexp(np.log(w) + stats.norm.logpdf(x[..., None], mu, sd), axis=-1)
    np.testing.assert_allclose(_mixture_logpdf(x, w, mu, sd), ref, rtol=1e-12, atol=1e-12)


def test_reference_fit_failing_the_gate_is_retried_at_the_higher_target_accept(data, monkeypatch):
    """A reference fit that fails the diagnostics gate (here: the first attempt is made to fail) is refitted
    once at ``retry_target_accept``, as :func:`bayes_rescue.inference.sampling.fit` does, and PSIS then
    serves the points.
    Without the retry one divergence in the reference run sent every grid point to NUTS."""
    from bayes_rescue.analyses.sensitivity import REFERENCE_SD, ImportanceReweighter, grid_prior
    from bayes_rescue.inference import diagnostics

    seen: list[float] = []
    real = diagnostics.diagnose_effects

    def failing_first(eff, stats_, target_accept, **kw):
        seen.append(target_accept)
        diag = real(eff, stats_, target_accept, **kw)
        if len(seen) == 1:
            stats_ = stats_.copy(deep=True)
            stats_["diverging"][0, 0] = True  # one divergence: the gate fails
            diag = real(eff, stats_, target_accept, **kw)
            assert not diag.passed
        return diag

    monkeypatch.setattr(diagnostics, "diagnose_effects", failing_first)
    settings = SamplerSettings(draws=1500, tune=500, chains=4, seed=4)
    ref = ImportanceReweighter(data, "independent", settings=settings)
    assert seen == [settings.target_accept, settings.retry_target_accept]
    assert ref.diagnostics.passed
    assert ref.rows(grid_prior(data, 0.0, REFERENCE_SD), (0.05,)) is not None


@pytest.mark.parametrize(
    ("ess_min", "factor"),
    [(None, 2), (1500.0, 2), (800.0, 2), (410.0, 4), (100.0, 8), (3.0, 8)],
)
def test_retry_draws_scale_with_the_ess_shortfall(ess_min, factor):
    """Reference: the rule in ``retry_settings``' docstring, by hand: factor = 2, or
    ceil(1.25 * 1000 / ess_min) when ess_min < 1000, kept within 2..8 (e.g. 1250 / 410 = 3.05 -> 4;
    1250 / 800 = 1.56 -> 2; 1250 / 100 = 12.5 -> 8). Warm-up doubles; the seed stays."""
    from bayes_rescue.analyses.sensitivity import retry_settings

    base = SamplerSettings(draws=1000, tune=500, chains=4, seed=9)
    r = retry_settings(base, ess_min)
    assert (r.draws, r.tune, r.seed, r.chains) == (factor * 1000, 1000, 9, 4)
    assert r.target_accept == base.retry_target_accept
