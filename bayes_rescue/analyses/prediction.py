"""The coming trial: exact power of a two-arm binary-outcome trial and its probability of success
(assurance) under the posterior of a fitted run.

**Trial outcome space.** A trial randomises ``n_t`` patients to treatment and ``n_c`` to control and observes
``y_t ~ Binomial(n_t, p_t)`` and ``y_c ~ Binomial(n_c, p_c)`` independently. Its analysis is a function of
``(y_t, y_c)`` only, so it is a *rejection region*: a boolean table ``R`` of shape ``(n_t + 1, n_c + 1)``,
True where the trial declares benefit (:func:`rejection_region`).

**Exact power** (:func:`power`): with ``f_t(i) = Binom(i; n_t, p_t)`` and ``f_c(j) = Binom(j; n_c, p_c)``,

    power(p_c, p_t) = sum_i sum_j f_t(i) R[i, j] f_c(j) = f_t' R f_c,

a finite sum, no simulation (as in RBesT's ``oc2S`` and ``pos2S``; Weber et al., J Stat Softw 2021;100(19),
doi 10.18637/jss.v100.i19).

**Assurance** (:func:`assurance`; O'Hagan, Stevens & Campbell, Pharm Stat 2005;4:187-201,
doi 10.1002/pst.175): the probability of success is the power averaged over the current belief about the
true rates,

    PoS = E[power(p_c, p_t)] = integral power(p_c, p_t) pi(p_c, p_t | data) d(p_c, p_t),

estimated by the mean of the exact power over the posterior draws (no simulation of trials). Its Monte Carlo
standard error is ``sd(power_s) / sqrt(ESS)`` with the ESS of the per-draw power (ArviZ's ESS for the mean,
over chains and draws). The *conditional power* is the power at a single point, the posterior median effect:
``p_c = median(p_c)`` and ``logit p_t = logit p_c + median(log OR)``; the gap between the two shows how much the
uncertainty about the effect costs.

**Another control rate** (:func:`with_control_rate`): the coming trial's control patients need not resemble
the cohort's, so the posterior odds ratio is kept and the control rate is replaced by a fixed value ``c``:
``p_c = c`` and ``p_t = expit(logit(c) + log OR)``.

**Tests** (``test=``), each at one-sided level ``a`` in the beneficial direction (``direction='higher'``: more
events is better, the trial succeeds when the treatment arm has *more* events; ``'lower'``: fewer), with
``M = n_t + n_c``, ``K = y_t + y_c`` events in all, ``p^_t = y_t / n_t``, ``p^_c = y_c / n_c``, ``p^ = K / M``:

``z``
    One-sided pooled two-proportion z-test: ``Z = (p^_t - p^_c) / sqrt(p^ (1 - p^) (1/n_t + 1/n_c))``;
    benefit when ``Phi(-s Z) <= a`` (``s = +1`` for 'higher', -1 for 'lower').
``chisq``
    Pearson's chi-square without continuity correction,
    ``X^2 = M (y_t (n_c - y_c) - y_c (n_t - y_t))^2 / (n_t n_c K (M - K))``, two-sided at ``2a``, and the
    observed difference on the beneficial side. As ``X^2 = Z^2`` this is the z-test's region (it is offered
    because it is how such trials are often described).
``yates``
    As ``chisq`` with Yates' continuity correction, ``X^2_Y = M max(|ad - bc| - M/2, 0)^2 / (n_t n_c K (M - K))``
    (the convention of ``scipy.stats.chi2_contingency(correction=True)``: each ``|O - E|`` is reduced by 0.5
    but not below 0), two-sided at ``2a``, effect on the beneficial side.
``fisher``
    One-sided Fisher exact test: conditional on ``K``, ``y_t`` is hypergeometric (``M`` patients, ``K`` events,
    ``n_t`` drawn); 'higher': ``P(Y_t >= y_t | K) <= a``, 'lower': ``P(Y_t <= y_t | K) <= a``.

Tables with ``K = 0`` or ``K = M`` (zero variance) are never significant. ``sided='two'`` reads ``alpha`` as the
level of a two-sided test and declares benefit when that test rejects with the effect on the beneficial side,
i.e. the one-sided test at ``a = alpha / 2`` (for Fisher's test this is the doubled one-sided P value
convention, not the two-sided "sum of small probabilities" P value).

**Design files** (:func:`load_design`; bundled: ``analyses/designs/<name>.toml``): a trial's registered facts
and the analysis used for its assurance, every analysis value either registered (``[analysis.source]``) or an
assumption (``[analysis.assumption]``)::

    name = "rescue-end-low"
    registry = "NCT06155032"
    citation = "..."
    [[facts]]                     # any number; each with fact, value, source, confidence (high/medium/low)
    fact = "sample size"
    value = "about 272 patients"
    source = "..."
    confidence = "high"
    [analysis]
    outcome = "mrs_0_2"           # the run's outcome
    subgroup = "overall"          # the run's subgroup (estimand) whose posterior is used; optional, 'overall'
    n_treatment = 136
    n_control = 136
    alpha = 0.025                 # 0 < alpha < 0.5
    sided = "one"                 # "one" or "two"
    test = "z"                    # z, chisq, yates or fisher
    control_rate = 0.3478         # optional: fixed control rate in (0, 1); absent = the posterior's
    [analysis.source]             # registered values: key = where it was read
    n_treatment = "..."
    [analysis.assumption]         # assumed values: key = why
    alpha = "..."
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from bayes_rescue.analyses.trial_design import SIDES, TESTS
from bayes_rescue.errors import InputError

#: What each test is, in words (printed and written to the CSV).
TEST_LABELS = {
    "z": "one-sided pooled two-proportion z-test",
    "chisq": "Pearson chi-square without continuity correction, two-sided at 2 alpha, benefit side",
    "yates": "chi-square with Yates' continuity correction, two-sided at 2 alpha, benefit side",
    "fisher": "one-sided Fisher exact test",
}
DIRECTIONS = ("higher", "lower")
#: Draws per block in :func:`power` (bounds the memory of the binomial pmf tables).
_BLOCK = 2048


def _check_common(n_t: int, n_c: int, alpha: float, test: str, direction: str, sided: str) -> None:
    for name, n in (("n_treatment", n_t), ("n_control", n_c)):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InputError(f"must be a whole number >= 1, got {n!r}", field=name)
    if not (isinstance(alpha, int | float) and 0 < alpha < 0.5):
        raise InputError(f"must be in (0, 0.5), got {alpha!r}", field="alpha")
    if test not in TESTS:
        raise InputError(f"unknown test {test!r}; one of {', '.join(TESTS)}", field="test")
    if direction not in DIRECTIONS:
        raise InputError(f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}", field="direction")
    if sided not in SIDES:
        raise InputError(f"must be one of {', '.join(SIDES)}, got {sided!r}", field="sided")


def one_sided_level(alpha: float, sided: str = "one") -> float:
    """The one-sided level ``a`` of a test at ``alpha``: ``alpha`` (``sided='one'``) or ``alpha / 2`` (``'two'``)."""
    return alpha if sided == "one" else alpha / 2


def rejection_region(
    n_t: int, n_c: int, *, alpha: float, test: str = "z", direction: str = "higher", sided: str = "one"
) -> np.ndarray:
    """Where a trial of ``n_t`` treated and ``n_c`` control patients declares benefit.

    Parameters
    ----------
    n_t, n_c
        Patients per arm (>= 1).
    alpha
        The test's level, in (0, 0.5); one-sided unless ``sided='two'``.
    test
        ``'z'``, ``'chisq'``, ``'yates'`` or ``'fisher'`` (the module docstring gives each statistic).
    direction
        ``'higher'`` (more events is better) or ``'lower'`` (fewer events is better).
    sided
        ``'one'`` or ``'two'``: a two-sided test at ``alpha`` with the effect on the beneficial side, i.e. the
        one-sided test at ``alpha / 2``.

    Returns
    -------
    numpy.ndarray
        Boolean, shape ``(n_t + 1, n_c + 1)``: element ``[y_t, y_c]`` is True when the trial that observes
        ``y_t`` events among the treated and ``y_c`` among the controls declares benefit. Tables with no events
        or only events (zero variance) are False.

    Raises
    ------
    InputError
        Arm sizes < 1, alpha outside (0, 0.5), or an unknown test, direction or side.
    """
    _check_common(n_t, n_c, alpha, test, direction, sided)
    a = one_sided_level(alpha, sided)
    s = 1.0 if direction == "higher" else -1.0
    y_t = np.arange(n_t + 1, dtype=float)[:, None]
    y_c = np.arange(n_c + 1, dtype=float)[None, :]
    m = n_t + n_c
    k = y_t + y_c
    ok = (k > 0) & (k < m)
    diff = y_t / n_t - y_c / n_c
    beneficial = s * diff > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "z":
            pbar = k / m
            z = diff / np.sqrt(pbar * (1 - pbar) * (1 / n_t + 1 / n_c))
            p = stats.norm.sf(s * np.where(ok, z, 0.0))
            return ok & (p <= a)
        if test in ("chisq", "yates"):
            cross = np.abs(y_t * (n_c - y_c) - y_c * (n_t - y_t))
            if test == "yates":
                cross = np.maximum(cross - m / 2, 0.0)
            x2 = m * cross**2 / (n_t * n_c * k * (m - k))
            p = stats.chi2.sf(np.where(ok, x2, 0.0), 1)
            return ok & beneficial & (p <= 2 * a)
    # fisher: y_t | K ~ Hypergeom(M, K, n_t)
    kk = (y_t + y_c).astype(int)
    yt = np.broadcast_to(y_t.astype(int), kk.shape)
    p = stats.hypergeom.sf(yt - 1, m, kk, n_t) if direction == "higher" else stats.hypergeom.cdf(yt, m, kk, n_t)
    return ok & (p <= a)


def power(p_c, p_t, region: np.ndarray) -> np.ndarray:
    """Exact power of the trial whose rejection region is ``region`` at true rates ``(p_c, p_t)``.

    ``power = sum_i sum_j Binom(i; n_t, p_t) region[i, j] Binom(j; n_c, p_c)``, with ``n_t, n_c`` read from
    ``region.shape = (n_t + 1, n_c + 1)``: a finite sum over every possible trial result, no simulation.

    Parameters
    ----------
    p_c, p_t
        True event rates of the control and treatment arms (broadcastable arrays, values in [0, 1]).
    region
        Boolean table from :func:`rejection_region`.

    Returns
    -------
    numpy.ndarray
        The power, with the broadcast shape of ``p_c`` and ``p_t`` (a 0-d array for scalars).
    """
    region = np.asarray(region, dtype=float)
    n_t, n_c = region.shape[0] - 1, region.shape[1] - 1
    p_c, p_t = np.broadcast_arrays(np.asarray(p_c, float), np.asarray(p_t, float))
    shape = p_c.shape
    pc, pt = p_c.ravel(), p_t.ravel()
    if np.any(~np.isfinite(pc) | ~np.isfinite(pt) | (pc < 0) | (pc > 1) | (pt < 0) | (pt > 1)):
        raise InputError("event rates must be in [0, 1]", field="p_c/p_t")
    it, ic = np.arange(n_t + 1), np.arange(n_c + 1)
    out = np.empty(pc.size)
    for lo in range(0, pc.size, _BLOCK):
        hi = min(lo + _BLOCK, pc.size)
        f_t = stats.binom.pmf(it[None, :], n_t, pt[lo:hi, None])
        f_c = stats.binom.pmf(ic[None, :], n_c, pc[lo:hi, None])
        out[lo:hi] = ((f_t @ region) * f_c).sum(axis=1)
    return np.clip(out, 0.0, 1.0).reshape(shape)


def with_control_rate(log_or_draws, control_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the posterior odds ratio, replace the control rate.

    ``p_c = control_rate`` and ``p_t = expit(logit(control_rate) + log_or)`` for every draw.

    Parameters
    ----------
    log_or_draws
        Posterior draws of the log odds ratio of the event (any shape, usually ``(chain, draw)``).
    control_rate
        The coming trial's control event rate, in (0, 1).

    Returns
    -------
    tuple of numpy.ndarray
        ``(p_c, p_t)``, each of the shape of ``log_or_draws``.

    Raises
    ------
    InputError
        ``control_rate`` outside (0, 1).
    """
    if isinstance(control_rate, bool) or not isinstance(control_rate, int | float) or not 0 < control_rate < 1:
        raise InputError(f"must be in (0, 1), got {control_rate!r}", field="--control-rate")
    log_or = np.asarray(log_or_draws, float)
    p_c = np.full(log_or.shape, float(control_rate))
    p_t = special.expit(special.logit(control_rate) + log_or)
    return p_c, p_t


# assurance and design files live in their own modules; their names stay importable from here (the
# assurance names lazily, PEP 562: that module imports this one)
from bayes_rescue.analyses.trial_design import (  # noqa: E402, F401
    ANALYSIS_KEYS,
    Design,
    Fact,
    bundled_design_names,
    load_design,
    parse_design,
)

_ASSURANCE_NAMES = ("Assurance", "assurance", "assurance_curve", "mcse_of_mean", "median_effect", "split_total")


def __getattr__(name: str):
    if name in _ASSURANCE_NAMES:
        from bayes_rescue.analyses import assurance as _assurance

        return getattr(_assurance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
