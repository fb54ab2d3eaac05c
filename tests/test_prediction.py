"""The coming trial (bayes_rescue.analyses.prediction and ``bayes-rescue predict``): rejection regions, exact
power, assurance and its Monte Carlo error, the design file, and the command end to end.

Every reference below is computed independently of the module: the tests' decisions come from scipy's own
tests (``scipy.stats.chi2_contingency``, ``scipy.stats.fisher_exact``) or from formulas written out here,
powers from brute-force simulation of trials or the normal-approximation formula, and assurances from
quadrature or the beta-binomial closed form."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from bayes_rescue.analyses.prediction import (
    assurance,
    assurance_curve,
    bundled_design_names,
    load_design,
    power,
    rejection_region,
    split_total,
    with_control_rate,
)
from bayes_rescue.errors import InputError

ALPHA = 0.025


# ---------------------------------------------------------------------------------------------------------------
# independent references
# ---------------------------------------------------------------------------------------------------------------


def reference_region(n_t: int, n_c: int, test: str, direction: str = "higher", a: float = ALPHA) -> np.ndarray:
    """Decision of every 2x2 table from scipy's tests, one table at a time. z: the signed square root of
    scipy's Pearson statistic (X^2 = Z^2) against the normal quantile; chisq / yates: scipy's P value at 2a with
    the effect on the beneficial side; fisher: scipy's one-sided fisher_exact at a."""
    s = 1 if direction == "higher" else -1
    out = np.zeros((n_t + 1, n_c + 1), bool)
    for yt in range(n_t + 1):
        for yc in range(n_c + 1):
            table = [[yt, n_t - yt], [yc, n_c - yc]]
            if yt + yc in (0, n_t + n_c):
                continue
            diff = yt / n_t - yc / n_c
            if test == "fisher":
                p = stats.fisher_exact(table, alternative="greater" if s == 1 else "less").pvalue
                out[yt, yc] = p <= a
                continue
            res = stats.chi2_contingency(table, correction=(test == "yates"))
            if test == "z":
                out[yt, yc] = s * np.sign(diff) * math.sqrt(res.statistic) > stats.norm.isf(a)
            else:
                out[yt, yc] = s * diff > 0 and res.pvalue <= 2 * a
    return out


def reference_z_region(n_t: int, n_c: int, direction: str = "higher", a: float = ALPHA) -> np.ndarray:
    """The z-test's decisions, vectorised for large trials: Pearson's X^2 = sum over the four cells of
    (O - E)^2 / E with E from the margins, Z = sign(p^_t - p^_c) sqrt(X^2) against the normal quantile (checked
    against scipy's per-table decisions in test_reference_z_region_matches_scipy)."""
    s = 1 if direction == "higher" else -1
    yt = np.arange(n_t + 1.0)[:, None]
    yc = np.arange(n_c + 1.0)[None, :]
    m, k = n_t + n_c, yt + yc
    x2 = np.zeros(np.broadcast_shapes(yt.shape, yc.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        for obs, row, col in (
            (yt, n_t, k),
            (n_t - yt, n_t, m - k),
            (yc, n_c, k),
            (n_c - yc, n_c, m - k),
        ):
            e = row * col / m
            x2 = x2 + np.where(e > 0, (obs - e) ** 2 / e, 0.0)
    z = np.sign(yt / n_t - yc / n_c) * np.sqrt(x2)
    return (k > 0) & (k < m) & (s * z > stats.norm.isf(a))


def reference_power(p_c, p_t, region: np.ndarray) -> np.ndarray:
    """sum_ij Binom(i; n_t, p_t) R[i, j] Binom(j; n_c, p_c), written as an explicit outer product."""
    n_t, n_c = region.shape[0] - 1, region.shape[1] - 1
    p_c, p_t = np.broadcast_arrays(np.atleast_1d(np.asarray(p_c, float)), np.atleast_1d(np.asarray(p_t, float)))
    f_t = stats.binom.pmf(np.arange(n_t + 1)[None, :], n_t, p_t.ravel()[:, None])
    f_c = stats.binom.pmf(np.arange(n_c + 1)[None, :], n_c, p_c.ravel()[:, None])
    return np.einsum("si,sj,ij->s", f_t, f_c, region.astype(float), optimize=True).reshape(p_c.shape)


# ---------------------------------------------------------------------------------------------------------------
# rejection regions
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("test", ["z", "chisq", "yates", "fisher"])
@pytest.mark.parametrize("direction", ["higher", "lower"])
@pytest.mark.parametrize(("n_t", "n_c"), [(20, 23), (9, 31)])
def test_rejection_region_matches_scipy(test, direction, n_t, n_c):
    """Reference: scipy.stats.chi2_contingency (without / with Yates' correction) and scipy.stats.fisher_exact
    applied to each of the (n_t + 1)(n_c + 1) tables (reference_region); the z-test as the signed root of
    Pearson's statistic."""
    got = rejection_region(n_t, n_c, alpha=ALPHA, test=test, direction=direction)
    want = reference_region(n_t, n_c, test, direction)
    assert got.shape == (n_t + 1, n_c + 1)
    assert got.any()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("direction", ["higher", "lower"])
def test_reference_z_region_matches_scipy(direction):
    """Reference: scipy.stats.chi2_contingency per table (reference_region) for the vectorised helper that the
    large-trial tests below use."""
    np.testing.assert_array_equal(reference_z_region(17, 26, direction), reference_region(17, 26, "z", direction))


def test_two_sided_alpha_is_one_sided_at_half():
    """Reference: the definition (module docstring): a two-sided test at 0.05 with the effect on the beneficial
    side is the one-sided test at 0.025; compared with scipy's decisions at a = 0.025 (reference_region)."""
    for test in ("z", "fisher"):
        got = rejection_region(25, 25, alpha=0.05, sided="two", test=test)
        np.testing.assert_array_equal(got, reference_region(25, 25, test, a=0.025))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 0.5}, "alpha"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.025, "test": "t"}, "test"),
        ({"alpha": 0.025, "direction": "up"}, "direction"),
        ({"alpha": 0.025, "sided": "both"}, "sided"),
    ],
)
def test_rejection_region_refuses_bad_input(kwargs, field):
    """Reference: the documented domain (alpha in (0, 0.5), the listed tests, directions and sides)."""
    with pytest.raises(InputError) as exc:
        rejection_region(10, 10, **kwargs)
    assert exc.value.field == field
    with pytest.raises(InputError):
        rejection_region(0, 10, alpha=ALPHA)


# ---------------------------------------------------------------------------------------------------------------
# exact power
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("test", ["z", "fisher"])
@pytest.mark.parametrize(
    ("p_c", "p_t", "n_t", "n_c", "direction"),
    [
        (0.35, 0.55, 40, 40, "higher"),
        (0.30, 0.30, 25, 30, "higher"),
        (0.10, 0.35, 30, 20, "higher"),
        (0.30, 0.12, 45, 40, "lower"),
    ],
)
def test_exact_power_matches_simulated_trials(test, p_c, p_t, n_t, n_c, direction):
    """Reference: 250,000 simulated trials (numpy binomial draws of both arms); each is decided by the z
    statistic computed here from the simulated counts, or by scipy.stats.fisher_exact (looked up per table).
    The exact power must lie within 4 Monte Carlo standard errors of the simulated rejection rate."""
    rng = np.random.default_rng(20261130)
    sims = 250_000
    yt = rng.binomial(n_t, p_t, sims)
    yc = rng.binomial(n_c, p_c, sims)
    if test == "z":
        pbar = (yt + yc) / (n_t + n_c)
        var = pbar * (1 - pbar) * (1 / n_t + 1 / n_c)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (yt / n_t - yc / n_c) / np.sqrt(var)
        s = 1 if direction == "higher" else -1
        reject = (var > 0) & (s * np.nan_to_num(z) > stats.norm.isf(ALPHA))
    else:
        reject = reference_region(n_t, n_c, "fisher", direction)[yt, yc]
    rate = reject.mean()
    exact = float(power(p_c, p_t, rejection_region(n_t, n_c, alpha=ALPHA, test=test, direction=direction)))
    se = math.sqrt(max(rate * (1 - rate), 1e-6) / sims)
    assert abs(exact - rate) < 4 * se, (exact, rate, se)


@pytest.mark.parametrize(
    ("p_c", "p_t", "direction"),
    [(0.30, 0.34, "higher"), (0.35, 0.40, "higher"), (0.10, 0.125, "higher"), (0.20, 0.165, "lower")],
)
def test_z_power_matches_normal_approximation_at_large_n(p_c, p_t, direction):
    """Reference: the normal-approximation power of the pooled one-sided z-test with n per arm (Fleiss, Levin &
    Paik, Statistical Methods for Rates and Proportions, 3rd ed. 2003, eq. 4.14 solved for power):
    Phi((|p_t - p_c| - z_a sqrt(2 pbar qbar / n)) / sqrt((p_t q_t + p_c q_c) / n)), pbar = (p_t + p_c) / 2;
    at n = 2000 per arm the exact power must be within 0.01."""
    n = 2000
    pbar = (p_t + p_c) / 2
    approx = stats.norm.cdf(
        (abs(p_t - p_c) - stats.norm.isf(ALPHA) * math.sqrt(2 * pbar * (1 - pbar) / n))
        / math.sqrt((p_t * (1 - p_t) + p_c * (1 - p_c)) / n)
    )
    exact = float(power(p_c, p_t, rejection_region(n, n, alpha=ALPHA, direction=direction)))
    assert 0.2 < approx < 0.99
    assert exact == pytest.approx(approx, abs=0.01)


def test_size_at_equal_rates():
    """Reference: Fisher's test is exact conditionally on the margins, so its unconditional size is <= alpha at
    every common rate (Lehmann & Romano, Testing Statistical Hypotheses, 3rd ed., sec. 4.5); the pooled z-test
    is approximate: its size is checked against alpha + 0.005 at 50-200 per arm. Rates 0.02..0.98; powers
    computed with reference_power."""
    p = np.linspace(0.02, 0.98, 97)
    for n in (50, 100, 200):
        fisher = power(p, p, rejection_region(n, n, alpha=ALPHA, test="fisher"))
        z = power(p, p, rejection_region(n, n, alpha=ALPHA, test="z"))
        assert fisher.max() <= ALPHA
        assert z.max() <= ALPHA + 0.005
        assert z.max() > fisher.max()  # the check bites: z is the less conservative test
    np.testing.assert_allclose(
        power(p[:5], p[:5], rejection_region(30, 30, alpha=ALPHA)),
        reference_power(p[:5], p[:5], reference_region(30, 30, "z")),
        rtol=1e-12,
        atol=1e-15,
    )


def test_with_control_rate_keeps_the_odds_ratio():
    """Reference: closed form p_t = c OR / (1 - c + c OR) for odds ratio OR = exp(log_or) at control rate c."""
    lor = np.array([[-1.0, 0.0, 0.5], [1.2, 2.0, -0.3]])
    p_c, p_t = with_control_rate(lor, 0.3478)
    odds = np.exp(lor)
    np.testing.assert_allclose(p_t, 0.3478 * odds / (1 - 0.3478 + 0.3478 * odds), rtol=1e-12)
    assert p_c.shape == lor.shape and np.all(p_c == 0.3478)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(InputError):
            with_control_rate(lor, bad)


# ---------------------------------------------------------------------------------------------------------------
# assurance
# ---------------------------------------------------------------------------------------------------------------


def test_flat_prior_assurance_matches_quadrature():
    """Reference: the flat-prior posterior of Chen's 2x2 table (15/20 vs 8/23): p_t ~ Beta(16, 6) and
    p_c ~ Beta(9, 16) independent. Assurance of a 50 + 50 trial (z-test, one-sided 0.025) by 2-D Gauss-Legendre
    quadrature (300 x 300 nodes) of the exact power (reference_z_region, reference_power) against the two Beta
    densities, and by the beta-binomial closed form sum_ij R_ij BetaBinom_t(i) BetaBinom_c(j). `assurance` on
    4 x 25,000 independent Beta draws must be within 4 of its own MCSEs, and its MCSE within 10% of
    sd(power)/sqrt(100,000)."""
    n = 50
    region = reference_z_region(n, n)
    x, w = np.polynomial.legendre.leggauss(300)
    u, wu = (x + 1) / 2, w / 2
    wt = wu * stats.beta.pdf(u, 16, 6)
    wc = wu * stats.beta.pdf(u, 9, 16)
    grid_power = reference_power(u[None, :], u[:, None], region)  # [k, l]: p_t = u[k], p_c = u[l]
    quad = float(wt @ grid_power @ wc)
    closed = float(
        stats.betabinom.pmf(np.arange(n + 1), n, 16, 6) @ region @ stats.betabinom.pmf(np.arange(n + 1), n, 9, 16)
    )
    assert quad == pytest.approx(closed, abs=1e-8)
    rng = np.random.default_rng(5)
    p_t = rng.beta(16, 6, (4, 25_000))
    p_c = rng.beta(9, 16, (4, 25_000))
    a = assurance(p_c, p_t, n_t=n, n_c=n, alpha=ALPHA, test="z")
    assert abs(a.pos - closed) < 4 * a.pos_mcse, (a.pos, closed, a.pos_mcse)
    assert a.pos_mcse == pytest.approx(a.power_draws.std(ddof=1) / math.sqrt(100_000), rel=0.1)
    assert a.pos_mcse < 0.002


def test_skeptical_prior_assurance_matches_1d_quadrature():
    """Reference: a normal belief on the log OR, N(0.6, 0.5296) (the bundled skeptical sd for mRS 0-2, shifted
    to a plausible posterior centre), and the control rate fixed at 8/23. Assurance of a 136 + 136 trial by
    scipy.integrate.quad over the log OR of power(expit(logit c + x)) x normal pdf, the power from
    reference_region and reference_power; `assurance` on 4 x 10,000 normal draws through with_control_rate
    must be within 4 MCSEs. The conditional power is the power at the median log OR 0.6."""
    n, c, mu, sd = 136, 8 / 23, 0.6, 0.5296
    region = reference_z_region(n, n)

    def integrand(x):
        return float(reference_power(c, special.expit(special.logit(c) + x), region)[0]) * stats.norm.pdf(x, mu, sd)

    quad, err = integrate.quad(integrand, mu - 9 * sd, mu + 9 * sd, limit=200, epsabs=1e-10)
    assert err < 1e-7
    draws = np.random.default_rng(11).normal(mu, sd, (4, 10_000))
    p_c, p_t = with_control_rate(draws, c)
    a = assurance(p_c, p_t, n_t=n, n_c=n, alpha=ALPHA, test="z")
    assert abs(a.pos - quad) < 4 * a.pos_mcse, (a.pos, quad, a.pos_mcse)
    lor_med = float(np.median(draws))
    want_cond = float(reference_power(c, special.expit(special.logit(c) + lor_med), region)[0])
    assert a.conditional_power == pytest.approx(want_cond, abs=1e-12)
    assert a.conditional_power > a.pos  # averaging over the effect costs power here


def test_mcse_of_correlated_draws():
    """Reference: for an AR(1) Gaussian chain with coefficient rho, any monotone function f has lag-k
    autocorrelation between 0 and rho^k (Hermite expansion), so the MCSE of mean f lies between the
    independent-draws value sd/sqrt(N) and sd sqrt((1 + rho) / (1 - rho) / N). Here f is the exact power as a
    function of the log OR (4 chains x 5000 draws, rho = 0.8; 10% slack for the ESS estimate)."""
    rng = np.random.default_rng(3)
    rho, chains, draws = 0.8, 4, 5000
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + math.sqrt(1 - rho**2) * rng.normal(size=chains)
    p_c, p_t = with_control_rate(0.6 + 0.5 * x, 0.35)
    a = assurance(p_c, p_t, n_t=60, n_c=60, alpha=ALPHA)
    sd = a.power_draws.std(ddof=1)
    n = chains * draws
    assert sd / math.sqrt(n) * 1.5 < a.pos_mcse <= 1.1 * sd * math.sqrt((1 + rho) / (1 - rho) / n)


def test_assurance_curve_matches_beta_binomial():
    """Reference: the beta-binomial closed form of the flat-prior assurance (as in
    test_flat_prior_assurance_matches_quadrature) at each total, split 1:1 with the odd patient treated; each
    row within 4 of its MCSEs; columns as documented."""
    rng = np.random.default_rng(8)
    p_t = rng.beta(16, 6, (2, 20_000))
    p_c = rng.beta(9, 16, (2, 20_000))
    table = assurance_curve(p_c, p_t, n_values=[21, 40, 81], alpha=ALPHA, test="fisher")
    assert list(table.columns) == ["n_total", "n_t", "n_c", "pos", "pos_mcse", "ess", "conditional_power"]
    assert table[["n_t", "n_c"]].to_numpy().tolist() == [[11, 10], [20, 20], [41, 40]]
    for r in table.itertuples():
        region = reference_region(r.n_t, r.n_c, "fisher")
        closed = (
            stats.betabinom.pmf(np.arange(r.n_t + 1), r.n_t, 16, 6)
            @ region
            @ stats.betabinom.pmf(np.arange(r.n_c + 1), r.n_c, 9, 16)
        )
        assert abs(r.pos - closed) < 4 * r.pos_mcse, (r.n_total, r.pos, closed)
    with pytest.raises(InputError):
        split_total(1)


# ---------------------------------------------------------------------------------------------------------------
# design files
# ---------------------------------------------------------------------------------------------------------------


def test_bundled_design_rescue_end_low():
    """Reference: the registry record of NCT06155032 as read in its mirrors (design file [[facts]]): about 272
    patients randomised 1:1, so 136 per arm, registered; every other analysis value is an assumption; control
    rate = Chen 2025's medical arm 8/23 (PMID 40535629)."""
    assert "rescue-end-low" in bundled_design_names()
    d = load_design("rescue-end-low")
    assert (d.registry, d.n_treatment, d.n_control, d.test, d.sided) == ("NCT06155032", 136, 136, "z", "one")
    assert d.control_rate == pytest.approx(8 / 23, abs=5e-5)
    assert d.basis("n_treatment") == d.basis("n_control") == "registered"
    for key in ("outcome", "subgroup", "alpha", "sided", "test", "control_rate"):
        assert d.basis(key) == "assumed", key
    assert any("overlap" in f.fact for f in d.facts)


GOOD = """name = "t"
citation = "c"
[analysis]
outcome = "mrs_0_2"
n_treatment = 50
n_control = 50
alpha = 0.025
test = "z"
[analysis.source]
n_treatment = "registry"
n_control = "registry"
[analysis.assumption]
outcome = "why"
alpha = "why"
test = "why"
"""


@pytest.mark.parametrize(
    ("old", "new", "field", "line"),
    [
        ('test = "z"\n[analysis.source]', 'test = "z"\npower = 0.8\n[analysis.source]', "analysis.power", 9),
        ("alpha = 0.025\n", "alpha = 0.6\n", "analysis.alpha", 7),
        ('test = "why"\n', "", "analysis.test", 8),
        ('outcome = "why"\n', 'outcome = "why"\nn_control = "also assumed"\n', "analysis.n_control", 6),
        ('test = "z"\n', 'test = "t"\n', "analysis.test", 8),
        ("n_control = 50\n", "n_control = 0\n", "analysis.n_control", 6),
        ('name = "t"\n', 'name = "t"\nsponsor = "x"\n', "sponsor", 2),
    ],
)
def test_bad_design_file_names_file_line_and_field(tmp_path, old, new, field, line):
    """Reference: the file format of the module docstring; each broken file is refused with one line naming the
    file, the line of the offending key and the field."""
    path = tmp_path / "d.toml"
    path.write_text(GOOD)
    assert load_design(path).n_treatment == 50
    assert old in GOOD
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as exc:
        load_design(path)
    assert exc.value.field == field and exc.value.source == str(path) and exc.value.line == line
    assert "\n" not in str(exc.value)
    with pytest.raises(InputError):
        load_design("no-such-design")


# ---------------------------------------------------------------------------------------------------------------
# the command, on a real small run
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from bayes_rescue.cli import main

    out = tmp_path_factory.mktemp("predict") / "run"
    argv = ["fit", "--draws", "300", "--tune", "300", "--chains", "2", "--keep-going", "--no-figures"]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def _predict(*argv) -> int:
    from bayes_rescue.cli import main

    return main(["predict", *map(str, argv)])


def test_predict_design_end_to_end(run_dir, tmp_path, capsys):
    """Reference: the run's own mrs_0_2/overall log-OR draws (load_run_draws) pushed through the closed form
    p_t = c OR / (1 - c + c OR) at c = 0.3478, and the exact power of a 136 + 136 z-test from Pearson's
    statistic written out cell by cell (reference_z_region, reference_power); the CSV's pos must equal their
    mean to 1e-9."""
    from bayes_rescue.outputs.trees import load_run_draws

    out = tmp_path / "pos.csv"
    assert _predict(run_dir, "--design", "rescue-end-low", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "probability of success" in printed and "ASSUMED" in printed and "Anhui" in printed
    t = pd.read_csv(out)
    assert len(t) == 1
    for col in ("n_total", "n_t", "n_c", "pos", "pos_mcse", "conditional_power", "assumed", "basis", "test"):
        assert col in t.columns
    r = t.iloc[0]
    assert (r.n_t, r.n_c, r.test, r.alpha, r.outcome, r.subgroup) == (136, 136, "z", 0.025, "mrs_0_2", "overall")
    assert "alpha" in r.assumed and "n: registered" in r.basis
    lor = load_run_draws(run_dir, outcome="mrs_0_2", subgroup="overall")["log_or"]
    odds = np.exp(lor)
    p_t = 0.3478 * odds / (1 - 0.3478 + 0.3478 * odds)
    want = reference_power(np.full(p_t.shape, 0.3478), p_t, reference_z_region(136, 136)).mean()
    assert r.pos == pytest.approx(want, abs=1e-9)
    assert 0 < r.pos_mcse < 0.05


def test_predict_options_override_the_design(run_dir, tmp_path):
    """Reference: the documented precedence (command line > design > default): --n 60 40, --test fisher and
    --control-rate posterior replace the design's values, and the CSV says so; pos equals the mean exact power
    of the run's own arm-risk draws (reference_region for Fisher at 60 + 40, reference_power)."""
    from bayes_rescue.outputs.trees import load_run_draws

    out = tmp_path / "o.csv"
    argv = ["--design", "rescue-end-low", "--n", "60", "40", "--test", "fisher", "--control-rate", "posterior"]
    assert _predict(run_dir, *argv, "--out", out) == 0
    r = pd.read_csv(out).iloc[0]
    assert (r.n_t, r.n_c, r.test) == (60, 40, "fisher") and np.isnan(r.control_rate)
    assert "test: command line" in r.basis and "alpha: assumed" in r.basis
    d = load_run_draws(run_dir, outcome="mrs_0_2", subgroup="overall")
    want = reference_power(d["p_control"], d["p_treatment"], reference_region(60, 40, "fisher")).mean()
    assert r.pos == pytest.approx(want, abs=1e-9)


def test_predict_range_writes_curve_and_figure(run_dir, tmp_path):
    """Reference: the range syntax START:STOP:STEP with STOP included (20:60:20 -> 20, 40, 60, split 1:1); the
    figure is a real PNG (its signature bytes) or SVG next to the CSV; mortality's 'lower' direction comes from
    the run's summary.csv."""
    out = tmp_path / "curve.csv"
    assert _predict(run_dir, "--outcome", "mortality", "--n", "20:60:20", "--out", out) == 0
    t = pd.read_csv(out)
    assert t["n_total"].tolist() == [20, 40, 60] and set(t["direction"]) == {"lower"}
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "c.svg"
    args = ["--outcome", "mrs_0_2", "--n", "50:100:50", "--out", tmp_path / "c2.csv", "--figure", svg]
    assert _predict(run_dir, *args) == 0
    assert b"<svg" in svg.read_bytes()[:500]


def test_predict_bad_input_and_overwrite(run_dir, tmp_path, capsys):
    """Reference: the command's contract: bad input exits 2 with one line and writes nothing; an existing CSV is
    not replaced without --overwrite; no temporary file is left beside it."""
    out = tmp_path / "x.csv"
    bad = [
        ["--outcome", "mrs_0_2", "--n", "1"],
        ["--outcome", "mrs_0_2", "--n", "100", "--alpha", "0.6"],
        ["--outcome", "nope", "--n", "100"],
        ["--outcome", "mrs_0_2", "--n", "400:50"],
        ["--outcome", "mrs_0_2", "--n", "100", "--control-rate", "1.2"],
        ["--n", "100"],
        ["--design", "no-such-trial"],
        ["--outcome", "mrs_0_2", "--subgroup", "severe", "--n", "100"],
    ]
    for argv in bad:
        assert _predict(run_dir, *argv, "--out", out) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, argv
    assert not out.exists()
    assert _predict(run_dir, "--outcome", "mrs_0_2", "--n", "100", "--out", out) == 0
    before = out.read_bytes()
    assert _predict(run_dir, "--outcome", "mrs_0_2", "--n", "120", "--out", out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert _predict(run_dir, "--outcome", "mrs_0_2", "--n", "120", "--out", out, "--overwrite") == 0
    assert pd.read_csv(out)["n_total"].tolist() == [120]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_predict_bias_uses_the_bias_adjusted_fit(tmp_path):
    """A run fitted with --bias holds the unadjusted and the adjusted fit; predict --bias NAME reads the adjusted
    one. Reference: the adjusted posterior shifts the mRS 0-2 log OR towards no effect (the bias model's mean is
    towards benefit), so the probability of success must be lower than the unadjusted fit's; an unknown bias
    model exits 2."""
    import pandas as pd

    from bayes_rescue.cli import main

    run = tmp_path / "biased"
    args = ["fit", "--draws", "300", "--tune", "300", "--chains", "2", "--keep-going", "--no-figures"]
    assert main([*args, "--bias", "--no-tipping", "--out", str(run)]) == 0
    common = ("--outcome", "mrs_0_2", "--n", "200")
    assert _predict(run, *common, "--out", tmp_path / "plain.csv") == 0
    assert _predict(run, *common, "--bias", "observational", "--out", tmp_path / "adj.csv") == 0
    plain, adjusted = pd.read_csv(tmp_path / "plain.csv"), pd.read_csv(tmp_path / "adj.csv")
    assert adjusted["pos"].iloc[0] < plain["pos"].iloc[0]
    assert _predict(run, *common, "--bias", "nope", "--out", tmp_path / "x.csv") == 2


def test_bundled_design_on_another_study_uses_the_runs_control_rate(run_dir, tmp_path, capsys):
    """Issue 21 item 3: ``--design rescue-end-low`` on a run of other data silently used Chen's control rate
    (8/23) and printed the caveat about Chen's hospital. A copy of the run whose manifest names other data:
    one note line, no caveat, the control rate is the run's posterior (the CSV's control_rate is empty) and
    pos equals the mean exact power of the run's own arm-risk draws (reference_z_region, reference_power)."""
    import json
    import shutil

    from bayes_rescue.outputs.trees import load_run_draws

    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["data"] = {"source": "mine.csv", "sha256": "0" * 64}
    (other / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "pos.csv"
    assert _predict(other, "--design", "rescue-end-low", "--out", out) == 0
    captured = capsys.readouterr()
    assert captured.err.count("note: bundled design 'rescue-end-low'") == 1 and "Anhui" not in captured.out
    r = pd.read_csv(out).iloc[0]
    assert np.isnan(r.control_rate) and "control_rate: default (the run's posterior)" in r.basis
    d = load_run_draws(other, outcome="mrs_0_2", subgroup="overall")
    want = reference_power(d["p_control"], d["p_treatment"], reference_z_region(136, 136)).mean()
    assert r.pos == pytest.approx(want, abs=1e-9)


def test_predict_never_replaces_a_file_that_appeared_after_its_check(run_dir, tmp_path, capsys, monkeypatch):
    """Issue 22: the output is checked up front, then written by an exclusive hard link; a file that appears
    between the two (here: made while the draws are read) is left byte-identical and the command exits 2."""
    import bayes_rescue.cli.predict as predict_cli

    out = tmp_path / "pos.csv"
    real = predict_cli._load_draws

    def racing(args, values):
        out.write_text("the user's file")
        return real(args, values)

    monkeypatch.setattr(predict_cli, "_load_draws", racing)
    assert _predict(run_dir, "--outcome", "mrs_0_2", "--n", "100", "--out", out) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "the user's file"
    assert [p.name for p in tmp_path.iterdir()] == ["pos.csv"]
