"""Assurance (probability of success) of a coming trial: the exact power of :mod:`bayes_rescue.analyses.prediction`
averaged over posterior draws, with its Monte Carlo error, and the curve over trial sizes. See the
:mod:`~bayes_rescue.analyses.prediction` docstring for the definitions; every name here is importable from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from bayes_rescue.analyses.prediction import power, rejection_region
from bayes_rescue.errors import InputError


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
