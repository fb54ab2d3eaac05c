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

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats

from bayes_rescue.errors import InputError

#: The tests :func:`rejection_region` knows (see the module docstring).
TESTS = ("z", "chisq", "yates", "fisher")
#: What each test is, in words (printed and written to the CSV).
TEST_LABELS = {
    "z": "one-sided pooled two-proportion z-test",
    "chisq": "Pearson chi-square without continuity correction, two-sided at 2 alpha, benefit side",
    "yates": "chi-square with Yates' continuity correction, two-sided at 2 alpha, benefit side",
    "fisher": "one-sided Fisher exact test",
}
DIRECTIONS = ("higher", "lower")
SIDES = ("one", "two")
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


def _as_chain_draw(x) -> np.ndarray:
    x = np.asarray(x, float)
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2:
        raise InputError(f"draws must be an array (chain, draw), got shape {x.shape}", field="draws")
    return x


def mcse_of_mean(values: np.ndarray) -> tuple[float, float]:
    """Monte Carlo standard error of the mean of ``values`` (chain, draw): ``sd / sqrt(ESS)``, with the ESS
    for the mean from :func:`arviz_stats.ess` (``method='mean'``). Returns ``(mcse, ess)``; a constant array
    has MCSE 0 and ESS equal to the number of draws."""
    from arviz_stats import ess

    values = _as_chain_draw(values)
    sd = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    if sd == 0.0:
        return 0.0, float(values.size)
    e = float(ess(values, method="mean"))
    return sd / math.sqrt(e), e


@dataclass(frozen=True)
class Assurance:
    """The probability of success of one trial design under posterior draws.

    Attributes
    ----------
    pos, pos_mcse, ess
        Mean exact power over the draws, its Monte Carlo standard error and the ESS behind it.
    conditional_power
        The power at the posterior median effect (``p_c_median``, ``p_t_median``).
    power_sd
        The sd of the per-draw power over the draws.
    n_t, n_c, alpha, sided, test, direction
        The design.
    power_draws
        The exact power of each draw, shape (chain, draw).
    """

    pos: float
    pos_mcse: float
    ess: float
    conditional_power: float
    power_sd: float
    p_c_median: float
    p_t_median: float
    n_t: int
    n_c: int
    alpha: float
    sided: str
    test: str
    direction: str
    power_draws: np.ndarray = field(repr=False)

    def row(self) -> dict:
        """The design's sizes and the probability of success, as one row of :func:`assurance_curve`'s table."""
        return {
            "n_total": self.n_t + self.n_c,
            "n_t": self.n_t,
            "n_c": self.n_c,
            "pos": self.pos,
            "pos_mcse": self.pos_mcse,
            "ess": self.ess,
            "conditional_power": self.conditional_power,
        }


def assurance(
    p_c_draws,
    p_t_draws,
    *,
    n_t: int,
    n_c: int,
    alpha: float = 0.025,
    test: str = "z",
    direction: str = "higher",
    sided: str = "one",
) -> Assurance:
    """Probability of success (assurance) of a trial with ``n_t`` and ``n_c`` patients under posterior draws.

    ``PoS = (1/S) sum_s power(p_c[s], p_t[s])`` with the exact power of :func:`power` at each draw;
    ``pos_mcse = sd(power_s) / sqrt(ESS)`` (ESS for the mean over chains and draws); the conditional power is
    ``power(median p_c, expit(logit(median p_c) + median log OR))``.

    Parameters
    ----------
    p_c_draws, p_t_draws
        Posterior draws of the arms' event rates, arrays (chain, draw) (a 1-D array is one chain).
    n_t, n_c
        The coming trial's patients per arm.
    alpha, test, direction, sided
        As in :func:`rejection_region`.

    Returns
    -------
    Assurance
    """
    p_c = _as_chain_draw(p_c_draws)
    p_t = _as_chain_draw(p_t_draws)
    if p_c.shape != p_t.shape:
        raise InputError(f"p_c draws {p_c.shape} and p_t draws {p_t.shape} differ in shape", field="draws")
    region = rejection_region(n_t, n_c, alpha=alpha, test=test, direction=direction, sided=sided)
    pw = power(p_c, p_t, region)
    mcse, e = mcse_of_mean(pw)
    pc_med, pt_med = median_effect(p_c, p_t)
    return Assurance(
        pos=float(pw.mean()),
        pos_mcse=mcse,
        ess=e,
        conditional_power=float(power(pc_med, pt_med, region)),
        power_sd=float(pw.std(ddof=1)) if pw.size > 1 else 0.0,
        p_c_median=pc_med,
        p_t_median=pt_med,
        n_t=int(n_t),
        n_c=int(n_c),
        alpha=float(alpha),
        sided=sided,
        test=test,
        direction=direction,
        power_draws=pw,
    )


def median_effect(p_c_draws, p_t_draws) -> tuple[float, float]:
    """The posterior median effect as a pair of rates: ``p_c = median(p_c)`` and
    ``p_t = expit(logit(median p_c) + median(logit p_t - logit p_c))`` (medians commute with the monotone
    logit, so this is the median control rate shifted by the median log OR)."""
    p_c = np.asarray(p_c_draws, float)
    p_t = np.asarray(p_t_draws, float)
    with np.errstate(divide="ignore"):
        lor = special.logit(p_t) - special.logit(p_c)
    pc_med = float(np.median(p_c))
    return pc_med, float(special.expit(special.logit(pc_med) + np.median(lor)))


def split_total(n_total: int) -> tuple[int, int]:
    """A 1:1 split of ``n_total`` patients: ``(n_t, n_c)`` with ``n_c = n_total // 2`` and the odd patient, if
    any, in the treatment arm.

    Raises
    ------
    InputError
        ``n_total < 2``.
    """
    if isinstance(n_total, bool) or not isinstance(n_total, int | np.integer) or n_total < 2:
        raise InputError(f"the total sample size must be a whole number >= 2, got {n_total!r}", field="--n")
    n_c = int(n_total) // 2
    return int(n_total) - n_c, n_c


def assurance_curve(
    p_c_draws,
    p_t_draws,
    *,
    n_values,
    alpha: float = 0.025,
    test: str = "z",
    direction: str = "higher",
    sided: str = "one",
) -> pd.DataFrame:
    """Assurance over total sample sizes, each randomised 1:1 (:func:`split_total`).

    Parameters
    ----------
    p_c_draws, p_t_draws
        Posterior draws (chain, draw) of the arms' event rates.
    n_values
        Total sample sizes (each >= 2).
    alpha, test, direction, sided
        As in :func:`rejection_region`.

    Returns
    -------
    pandas.DataFrame
        One row per total: ``n_total``, ``n_t``, ``n_c``, ``pos``, ``pos_mcse``, ``ess``, ``conditional_power``
        (see :func:`assurance`).
    """
    rows = []
    for n in n_values:
        n_t, n_c = split_total(n)
        a = assurance(p_c_draws, p_t_draws, n_t=n_t, n_c=n_c, alpha=alpha, test=test, direction=direction, sided=sided)
        rows.append(a.row())
    return pd.DataFrame(rows, columns=["n_total", "n_t", "n_c", "pos", "pos_mcse", "ess", "conditional_power"])


# --------------------------------------------------------------------------------------------------------------
# Design files
# --------------------------------------------------------------------------------------------------------------

#: Keys of the [analysis] table that are analysis values (each needs a source or an assumption).
ANALYSIS_KEYS = ("outcome", "subgroup", "n_treatment", "n_control", "alpha", "sided", "test", "control_rate")
_TOP_KEYS = {"name", "registry", "citation", "description", "facts", "analysis"}
_FACT_KEYS = {"fact", "value", "source", "confidence"}
_CONFIDENCE = ("high", "medium", "low")
_REQUIRED = ("outcome", "n_treatment", "n_control", "alpha", "test")


@dataclass(frozen=True)
class Fact:
    """One registered fact of a trial, with where it was read and how sure that is."""

    fact: str
    value: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Design:
    """A coming trial's design, as used for its assurance (see the module docstring for the file format).

    ``sources[key]`` says where a registered analysis value was read; ``assumptions[key]`` why an assumed one
    was chosen. Every analysis value present has exactly one of the two.
    """

    name: str
    registry: str
    citation: str
    facts: tuple[Fact, ...]
    outcome: str
    subgroup: str
    n_treatment: int
    n_control: int
    alpha: float
    sided: str
    test: str
    control_rate: float | None
    sources: dict[str, str]
    assumptions: dict[str, str]
    origin: str = ""
    sha256: str = ""

    def basis(self, key: str) -> str:
        """``'registered'``, ``'assumed'`` or ``'default'`` (a key the file leaves out)."""
        if key in self.sources:
            return "registered"
        if key in self.assumptions:
            return "assumed"
        return "default"


def _line_of(text: str, dotted: str) -> int | None:
    """The 1-based line where ``dotted`` (``table.key`` or ``key``) is set in a TOML text, if it can be found."""
    parts = dotted.split(".")
    table, key = ".".join(parts[:-1]), parts[-1]
    lines = text.splitlines()
    start = 0
    if table:
        header = re.compile(rf"^\s*\[{re.escape(table)}\]\s*(#.*)?$")
        found = [i for i, line in enumerate(lines) if header.match(line)]
        if not found:
            return None
        start = found[0] + 1
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, len(lines)):
        if table and lines[i].lstrip().startswith("["):
            break
        if pattern.match(lines[i]):
            return i + 1
    return None


def parse_design(doc: dict, *, origin: str, text: str = "", sha256: str = "") -> Design:
    """Validate a parsed design TOML document (format: the module docstring).

    Raises
    ------
    InputError
        Unknown or missing keys, values out of range, an analysis value with neither a source nor an
        assumption (or both); the message names the file, the line where it can be found and the field.
    """

    def fail(message: str, fld: str):
        raise InputError(message, source=origin, line=_line_of(text, fld) if text else None, field=fld)

    def text_value(table: dict, key: str, where: str, *, required: bool = True) -> str:
        fld = f"{where}.{key}" if where else key
        v = table.get(key)
        if v is None:
            if required:
                fail("is required", fld)
            return ""
        if not isinstance(v, str) or (required and not v.strip()):
            fail(f"must be non-blank text, got {v!r}", fld)
        return v

    for key in doc:
        if key not in _TOP_KEYS:
            fail(f"unknown key; allowed here: {', '.join(sorted(_TOP_KEYS))}", key)
    name = text_value(doc, "name", "")
    registry = text_value(doc, "registry", "", required=False)
    citation = text_value(doc, "citation", "")
    facts = []
    raw_facts = doc.get("facts", [])
    if not isinstance(raw_facts, list):
        fail("must be an array of tables ([[facts]])", "facts")
    for i, f in enumerate(raw_facts):
        where = f"facts[{i}]"
        if not isinstance(f, dict):
            fail("must be a table", where)
        for key in f:
            if key not in _FACT_KEYS:
                raise InputError(
                    f"unknown key; allowed here: {', '.join(sorted(_FACT_KEYS))}", source=origin, field=f"{where}.{key}"
                )
        for key in _FACT_KEYS:
            if not isinstance(f.get(key), str) or not f[key].strip():
                raise InputError("is required (non-blank text)", source=origin, field=f"{where}.{key}")
        if f["confidence"] not in _CONFIDENCE:
            raise InputError(
                f"must be one of {', '.join(_CONFIDENCE)}, got {f['confidence']!r}",
                source=origin,
                field=f"{where}.confidence",
            )
        facts.append(Fact(f["fact"], f["value"], f["source"], f["confidence"]))

    analysis = doc.get("analysis")
    if not isinstance(analysis, dict):
        fail("is required: a table [analysis]", "analysis")
    allowed = {*ANALYSIS_KEYS, "source", "assumption"}
    for key in analysis:
        if key not in allowed:
            fail(f"unknown key; allowed here: {', '.join(sorted(allowed))}", f"analysis.{key}")
    for key in _REQUIRED:
        if key not in analysis:
            fail("is required", f"analysis.{key}")
    notes = {}
    for table in ("source", "assumption"):
        t = analysis.get(table, {})
        if not isinstance(t, dict):
            fail("must be a table", f"analysis.{table}")
        for key, v in t.items():
            if key not in ANALYSIS_KEYS:
                fail(f"unknown key; allowed here: {', '.join(ANALYSIS_KEYS)}", f"analysis.{table}.{key}")
            if key not in analysis:
                fail(f"notes a value that [analysis] does not set ({key})", f"analysis.{table}.{key}")
            if not isinstance(v, str) or not v.strip():
                fail("must be non-blank text", f"analysis.{table}.{key}")
        notes[table] = dict(t)
    for key in ANALYSIS_KEYS:
        if key not in analysis:
            continue
        n_notes = (key in notes["source"]) + (key in notes["assumption"])
        if n_notes != 1:
            fail(
                "needs exactly one note: [analysis.source] if registered or [analysis.assumption] if assumed"
                + (" (it has both)" if n_notes == 2 else ""),
                f"analysis.{key}",
            )

    def integer(key: str) -> int:
        v = analysis[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            fail(f"must be a whole number >= 1, got {v!r}", f"analysis.{key}")
        return v

    def number(key: str, lo: float, hi: float) -> float:
        v = analysis[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo < v < hi:
            fail(f"must be a number in ({lo}, {hi}), got {v!r}", f"analysis.{key}")
        return float(v)

    def choice(key: str, options: tuple[str, ...], default: str) -> str:
        v = analysis.get(key, default)
        if v not in options:
            fail(f"must be one of {', '.join(options)}, got {v!r}", f"analysis.{key}")
        return v

    outcome = text_value(analysis, "outcome", "analysis")
    subgroup = text_value(analysis, "subgroup", "analysis", required=False) or "overall"
    control_rate = number("control_rate", 0.0, 1.0) if "control_rate" in analysis else None
    return Design(
        name=name,
        registry=registry,
        citation=citation,
        facts=tuple(facts),
        outcome=outcome,
        subgroup=subgroup,
        n_treatment=integer("n_treatment"),
        n_control=integer("n_control"),
        alpha=number("alpha", 0.0, 0.5),
        sided=choice("sided", SIDES, "one"),
        test=choice("test", TESTS, "z"),
        control_rate=control_rate,
        sources=notes["source"],
        assumptions=notes["assumption"],
        origin=origin,
        sha256=sha256,
    )


def _design_dir():
    return resources.files("bayes_rescue.analyses") / "designs"


def bundled_design_names() -> list[str]:
    """Names of the design files shipped with the package (``analyses/designs/*.toml``), sorted."""
    return sorted(p.name.removesuffix(".toml") for p in _design_dir().iterdir() if p.name.endswith(".toml"))


def load_design(name_or_path: str | Path) -> Design:
    """Load a bundled design by name (``rescue-end-low``), or a design TOML file by path.

    Raises
    ------
    InputError
        Unknown name, unreadable or malformed file, unknown key or impossible value (naming file and field).
    """
    spec = str(name_or_path)
    if not (spec.endswith(".toml") or "/" in spec or "\\" in spec):
        if spec not in bundled_design_names():
            raise InputError(
                f"unknown design '{spec}'; bundled: {', '.join(bundled_design_names())} (or give a path to a .toml)",
                field="--design",
            )
        raw = (_design_dir() / f"{spec}.toml").read_bytes()
        origin = f"bundled:designs/{spec}"
    else:
        path = Path(spec)
        if not path.exists():
            raise InputError("no such design file", source=path, field="--design")
        if path.is_dir():
            raise InputError("is a directory, not a design file", source=path, field="--design")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror})", source=path, field="--design") from None
        origin = str(path)
    try:
        text = raw.decode("utf-8-sig")
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", source=origin, field="--design") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"is not valid TOML ({exc})", source=origin, field="--design") from None
    return parse_design(doc, origin=origin, text=text, sha256=hashlib.sha256(raw).hexdigest())
