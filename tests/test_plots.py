"""Figure data and the draws table, from synthetic draws pushed through the real ``effects`` (no sampling).

Reference values are computed here by brute force from the same draws (counting, differencing), which is
independent of the vectorised code under test; the kernel densities are checked against
``scipy.stats.gaussian_kde`` (the exact sum over draws) and its reflected version near a bound.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import GOOD_CSV
from scipy import stats

from bayes_rescue.data.counts import parse_counts
from bayes_rescue.inference.derived import effects
from bayes_rescue.model.spec import ModelSpec
from bayes_rescue.outputs.figures import benefit_curve_data, kde, prior_posterior_data, rank_data, rank_data_many
from bayes_rescue.outputs.rundir import write_csv
from bayes_rescue.outputs.tables import draws_table
from bayes_rescue.priors.spec import load_prior


def _fake_result(prior: str, seed: int, shift: float = 0.0):
    """A stand-in for a fit result: a real spec and effects computed from normal draws of alpha/log_or."""
    data = parse_counts(GOOD_CSV, source="test.csv")
    spec = ModelSpec(data, load_prior(prior), "hierarchical")
    rng = np.random.default_rng(seed)
    cells = spec.coords()["cell"]

    def group(n_chain: int, n_draw: int, centre: float) -> xr.Dataset:
        dims = ("chain", "draw", "cell")
        shape = (n_chain, n_draw, len(cells))
        return xr.Dataset(
            {"alpha": (dims, rng.normal(-0.3, 0.4, shape)), "log_or": (dims, rng.normal(centre, 0.6, shape))},
            coords={"chain": np.arange(n_chain), "draw": np.arange(n_draw), "cell": cells},
        )

    post, prior_g = group(3, 400, 0.8 + shift), group(1, 1200, 0.0)
    outcomes = spec.coords()["outcome"]
    per_outcome = ("chain", "draw", "outcome")
    post = post.assign(
        mu_delta=(per_outcome, rng.normal(0.8, 0.5, (3, 400, len(outcomes)))),
        tau=(per_outcome, np.abs(rng.normal(0, 0.3, (3, 400, len(outcomes))))),
    ).assign_coords(outcome=outcomes)
    tree = xr.DataTree.from_dict(
        {"posterior": post, "effects": effects(post, spec), "prior_effects": effects(prior_g, spec)}
    )
    return SimpleNamespace(spec=spec, tree=tree)


def test_benefit_curve_matches_counting():
    """P(benefit >= t) per prior x estimand equals the share of draws with benefit-scale RD >= t."""
    results = [_fake_result("neutral", 1), _fake_result("skeptical", 2, shift=-0.5)]
    t = np.array([0.0, 0.05, 0.1, 0.2])
    data = benefit_curve_data(results, thresholds=t)
    assert list(dict.fromkeys(data["prior"])) == ["neutral", "skeptical"]
    for res in results:
        eff = res.tree["effects"].to_dataset()
        for est, direction in [("mrs_0_2/a", 1), ("mortality/overall", -1)]:
            rdb = direction * eff["rd"].sel(estimand=est).to_numpy().ravel()
            outcome, subgroup = est.split("/")
            got = data[
                (data["prior"] == res.spec.prior.name) & (data["outcome"] == outcome) & (data["subgroup"] == subgroup)
            ]
            expected = [sum(1 for x in rdb if x >= thr) / rdb.size for thr in t]
            np.testing.assert_allclose(got["p_benefit_ge"].to_numpy(), expected, rtol=0, atol=1e-12)


def test_prior_posterior_densities_integrate_to_one():
    """Kernel densities on [-1, 1] integrate to 1 (risk differences cannot leave that range; the kernel's
    spill-over past +-1 is small for these draws), per prior x outcome; one curve per cohort estimand."""
    data = prior_posterior_data([_fake_result("neutral", 3), _fake_result("skeptical", 4)])
    assert set(data.groupby(["prior", "outcome"]).groups) == {
        (p, o) for p in ("neutral", "skeptical") for o in ("mrs_0_2", "mortality")
    }
    for _, g in data.groupby(["prior", "outcome"]):
        for col in ("prior_density", "posterior_density"):
            assert np.trapezoid(g[col], g["rd"]) == pytest.approx(1.0, abs=0.02)


def _scott(x: np.ndarray) -> float:
    """scipy's Scott bandwidth: sd(x, ddof=1) * n**(-1/5)."""
    return float(np.std(x, ddof=1) * x.size ** (-1 / 5))


@pytest.mark.parametrize(("centre", "sd"), [(0.2, 0.1), (-0.1, 0.04), (0.0, 0.25)])
def test_kde_matches_exact_kde_away_from_the_bounds(centre, sd):
    """Reference: scipy.stats.gaussian_kde with the same bandwidth (the exact sum over draws). Far from
    -1 and 1 the reflection adds nothing, so the binned library density agrees to 1% of its peak."""
    rng = np.random.default_rng(11)
    x = rng.normal(centre, sd, 4000)
    h = _scott(x)
    grid, dens = kde(x, bounds=(-1, 1), bw=h, grid_len=2048)
    exact = stats.gaussian_kde(x, bw_method=h / np.std(x, ddof=1))(grid)
    assert grid[0] > -1 and grid[-1] < 1 and len(grid) == 2048
    assert np.max(np.abs(dens - exact)) < 0.01 * exact.max()


def test_kde_is_the_reflected_kde_near_a_bound():
    """Reference: the reflection estimator f(x) = g(x) + g(2a - x) + g(2b - x) on [a, b] = [-1, 1], with g
    scipy's exact Gaussian KDE of the draws (same bandwidth). Draws piled against -1 (a risk difference
    near its bound): the library density matches it within 1.5% of the peak, while the uncorrected KDE
    is about half as high at the bound and leaks mass below -1."""
    rng = np.random.default_rng(12)
    x = -1 + 2 * rng.beta(1.0, 12.0, 4000)
    h = _scott(x)
    grid, dens = kde(x, bounds=(-1, 1), bw=h, grid_len=2048)
    g = stats.gaussian_kde(x, bw_method=h / np.std(x, ddof=1))
    reflected = g(grid) + g(-2 - grid) + g(2 - grid)
    assert np.max(np.abs(dens - reflected)) < 0.015 * reflected.max()
    assert g(np.array([-1.0]))[0] < 0.6 * reflected[0]  # the uncorrected estimate at the bound
    # all the mass inside [-1, 1] (grid points are bin centres: close the half bins at the ends)
    assert np.trapezoid(np.r_[dens[0], dens, dens[-1]], np.r_[-1, grid, 1]) == pytest.approx(1.0, abs=2e-3)


def test_kde_of_a_constant_is_zero_not_an_error():
    """A degenerate sample (every draw equal) has no bandwidth: a zero density on the bounds' grid."""
    grid, dens = kde(np.full(100, 0.3), bounds=(-1, 1), grid_len=128)
    assert grid[0] == -1 and grid[-1] == 1 and not dens.any()


def test_rank_data_many_has_each_priors_effect_parameters():
    """Several priors: a rank table per prior of its effect parameters only (hierarchical: mu_delta and
    tau per outcome), each chain's counts adding up to its draws (400)."""
    data = rank_data_many([_fake_result("neutral", 5), _fake_result("skeptical", 6)])
    assert list(dict.fromkeys(data["prior"])) == ["neutral", "skeptical"]
    assert set(data["parameter"]) == {f"{v}[{o}]" for v in ("mu_delta", "tau") for o in ("mrs_0_2", "mortality")}
    assert (data.groupby(["prior", "parameter", "chain"])["count"].sum() == 400).all()


def test_rank_counts_sum_to_draws_per_chain():
    """Rank histograms: per parameter and chain the bin counts add up to the chain's draws (400)."""
    data = rank_data(_fake_result("neutral", 5))
    sums = data.groupby(["parameter", "chain"])["count"].sum()
    assert (sums == 400).all() and set(data["bin"]) == set(range(20))


def test_draws_table_round_trips_exactly(tmp_path):
    """draws.csv holds every draw of every estimand, in chain, draw, estimand order, and reading the
    written file back gives the identical doubles (Arrow writes shortest round-trip floats)."""
    res = _fake_result("neutral", 6)
    table = draws_table(res)
    eff = res.tree["effects"].to_dataset()
    assert len(table) == 3 * 400 * eff.sizes["estimand"]
    row = table.iloc[7]  # chain 0, draw 1, estimand 3 (4 estimands)
    est = eff["estimand"].to_numpy()[3]
    assert (row["chain"], row["draw"], f"{row['outcome']}/{row['subgroup']}") == (0, 1, est)
    assert row["rd"] == eff["rd"].sel(chain=0, draw=1, estimand=est).item()
    back = pd.read_csv(write_csv(table, tmp_path / "draws.csv"))
    for col in ("rd", "log_or", "p_control", "p_treatment"):
        assert np.array_equal(back[col].to_numpy(), table[col].to_numpy())
    assert back[["prior", "outcome", "subgroup"]].equals(table[["prior", "outcome", "subgroup"]])
    assert io.StringIO((tmp_path / "draws.csv").read_text()).readline().strip() == ",".join(table.columns)
