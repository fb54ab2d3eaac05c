"""E-values for the risk ratios of a run (VanderWeele & Ding, Ann Intern Med 2017;167:268-274,
doi 10.7326/M16-2607).

The E-value of a risk ratio is the minimum strength of association, on the risk-ratio scale, that an
unmeasured confounder would need with both the treatment and the outcome to explain away the association:

    E(RR) = RR + sqrt(RR (RR - 1))          for RR >= 1,
    E(RR) = E(1 / RR)                        for RR < 1.

For an interval (lo, hi) it is the E-value of the limit nearer 1, and 1 if the interval contains 1.

Conventions used here:

- The E-value concerns the **observed association** of treatment with the outcome's own event (the event
  counted in the data: for mortality, death), whichever direction is beneficial. ``side`` says whether the
  point estimate lies on the benefit or the harm side of 1 for that outcome (``higher``: RR > 1 is a
  benefit; ``lower``: RR < 1 is a benefit), or ``none`` at exactly 1.
- Data risk ratios and their 95% confidence intervals use the log (Katz) method,
  var(log RR) = 1/a - 1/n1 + 1/c - 1/n2 (a, c the events of the treated and control arms of sizes n1, n2).
  A table with a zero cell (a, n1 - a, c or n2 - c) gets 0.5 added to each of its four cells first
  (so n1 and n2 grow by 1), the usual correction (metafor's ``escalc`` default, add = 1/2, to = "only0");
  the column ``zero_cell_correction`` holds the amount added (0 or 0.5).
- Posterior E-values apply the same formulas to the posterior median RR and its 95% equal-tailed credible
  interval from ``summary.csv``: they are an analogue (the confounding that would move the posterior
  summary to 1), not a frequentist quantity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

#: Amount added to every cell of a 2x2 table that has a zero cell.
ZERO_CELL_ADD = 0.5
#: Identification columns of summary.csv carried into the E-value table when present.
ID_COLUMNS = ("prior", "bias", "model", "outcome", "subgroup", "level", "direction", "y_t", "n_t", "y_c", "n_c")


def evalue(rr):
    """E-value of a risk ratio (VanderWeele & Ding 2017, eq. in their Table / Appendix).

    Mathematics: for RR >= 1, E = RR + sqrt(RR (RR - 1)); for RR < 1, RR is replaced by 1/RR first, so
    E(RR) = E(1/RR) and E(1) = 1.

    Parameters
    ----------
    rr
        Risk ratio(s) > 0 (scalar or array).

    Returns
    -------
    float or numpy.ndarray
        The E-value(s), >= 1 (NaN where ``rr`` is NaN).

    Raises
    ------
    ValueError
        If any risk ratio is <= 0 or infinite.
    """
    r = np.asarray(rr, dtype=float)
    if np.any(r[~np.isnan(r)] <= 0) or np.any(np.isinf(r)):
        raise ValueError("a risk ratio must be finite and > 0")
    r = np.where(r < 1, 1 / r, r)
    e = r + np.sqrt(r * (r - 1))
    return float(e) if e.ndim == 0 else e


def evalue_interval(lo, hi):
    """E-value of an interval (lo, hi) of the risk ratio: that of the limit nearer 1.

    Mathematics: E = 1 if lo <= 1 <= hi (the interval contains the null); E = E(lo) if lo > 1;
    E = E(hi) = E(1/hi) if hi < 1 (VanderWeele & Ding 2017: "the limit of the confidence interval closest
    to the null").

    Parameters
    ----------
    lo, hi
        Interval limits, 0 < lo <= hi (scalars or arrays of one shape).

    Returns
    -------
    float or numpy.ndarray
        The E-value(s) of the interval.

    Raises
    ------
    ValueError
        If a limit is <= 0 or lo > hi.
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    if np.any(lo > hi):
        raise ValueError("the lower limit of an interval exceeds the upper limit")
    nearer = np.where(lo > 1, lo, np.where(hi < 1, hi, 1.0))
    return evalue(nearer)


def data_risk_ratios(cells: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Risk ratio (treatment / control) of each 2x2 table and its confidence interval by the log method.

    Mathematics: with a = y_t events of n1 = n_t treated and c = y_c of n2 = n_c controls,
    RR = (a / n1) / (c / n2), var(log RR) = 1/a - 1/n1 + 1/c - 1/n2 (Katz et al., Biometrics
    1978;34:469-474), interval exp(log RR -+ z var^(1/2)) with z = Phi^-1((1 + level) / 2). A table with any
    zero cell (a, n1 - a, c, n2 - c) has 0.5 added to all four cells first: a -> a + 0.5, n1 -> n1 + 1,
    c -> c + 0.5, n2 -> n2 + 1.

    Parameters
    ----------
    cells
        Columns ``y_t, n_t, y_c, n_c`` (other columns are kept).
    level
        Confidence level of the interval.

    Returns
    -------
    pandas.DataFrame
        ``cells`` with ``rr``, ``rr_lb``, ``rr_ub`` and ``zero_cell_correction`` (0 or 0.5) added.
    """
    if not (0 < level < 1):
        raise ValueError("level must be in (0, 1)")
    out = cells.copy()
    a = out["y_t"].to_numpy(float)
    n1 = out["n_t"].to_numpy(float)
    c = out["y_c"].to_numpy(float)
    n2 = out["n_c"].to_numpy(float)
    zero = (a == 0) | (a == n1) | (c == 0) | (c == n2)
    add = np.where(zero, ZERO_CELL_ADD, 0.0)
    a, c, n1, n2 = a + add, c + add, n1 + 2 * add, n2 + 2 * add
    log_rr = np.log(a / n1) - np.log(c / n2)
    se = np.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    z = stats.norm.ppf((1 + level) / 2)
    out["rr"] = np.exp(log_rr)
    out["rr_lb"] = np.exp(log_rr - z * se)
    out["rr_ub"] = np.exp(log_rr + z * se)
    out["zero_cell_correction"] = add
    return out


def _side(rr: np.ndarray, direction: pd.Series) -> np.ndarray:
    """``benefit`` / ``harm`` / ``none``: where the RR lies relative to 1, in the outcome's direction."""
    sign = np.where(direction.to_numpy() == "higher", 1.0, -1.0)
    s = np.sign(np.log(rr)) * sign
    return np.where(s > 0, "benefit", np.where(s < 0, "harm", "none"))


def evalues_table(summary: pd.DataFrame) -> pd.DataFrame:
    """E-values of every row of a run's ``summary.csv`` (one per prior x outcome x subgroup).

    Mathematics: see :func:`evalue`, :func:`evalue_interval` and :func:`data_risk_ratios`; the data columns
    come from the row's counts, the posterior columns from ``rr_median`` and ``rr_eti95_lb/ub``.

    Parameters
    ----------
    summary
        Rows of summary.csv: at least ``outcome, subgroup, level, direction, y_t, n_t, y_c, n_c,
        rr_median, rr_eti95_lb, rr_eti95_ub``; ``prior``, ``bias`` and ``model`` are carried when present.

    Returns
    -------
    pandas.DataFrame
        The identification columns, then ``data_rr, data_rr_ci95_lb, data_rr_ci95_ub,
        zero_cell_correction, data_side, data_evalue, data_evalue_ci`` (the data's RR, its 95% log-method
        CI, the 0.5 correction applied, benefit/harm side, E-value of the RR and of the CI), and
        ``post_rr_median, post_rr_eti95_lb, post_rr_eti95_ub, post_side, post_evalue, post_evalue_ci``.
    """
    need = ["outcome", "subgroup", "level", "direction", "y_t", "n_t", "y_c", "n_c", "rr_median"]
    need += ["rr_eti95_lb", "rr_eti95_ub"]
    missing = [c for c in need if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks the columns {', '.join(missing)}")
    ids = [c for c in ID_COLUMNS if c in summary.columns]
    rr = data_risk_ratios(summary[ids].reset_index(drop=True))
    out = summary[ids].reset_index(drop=True).copy()
    out["data_rr"] = rr["rr"]
    out["data_rr_ci95_lb"] = rr["rr_lb"]
    out["data_rr_ci95_ub"] = rr["rr_ub"]
    out["zero_cell_correction"] = rr["zero_cell_correction"]
    out["data_side"] = _side(rr["rr"].to_numpy(), out["direction"])
    out["data_evalue"] = evalue(rr["rr"].to_numpy())
    out["data_evalue_ci"] = evalue_interval(rr["rr_lb"].to_numpy(), rr["rr_ub"].to_numpy())
    post = summary.reset_index(drop=True)
    out["post_rr_median"] = post["rr_median"].to_numpy(float)
    out["post_rr_eti95_lb"] = post["rr_eti95_lb"].to_numpy(float)
    out["post_rr_eti95_ub"] = post["rr_eti95_ub"].to_numpy(float)
    out["post_side"] = _side(out["post_rr_median"].to_numpy(), out["direction"])
    out["post_evalue"] = evalue(out["post_rr_median"].to_numpy())
    out["post_evalue_ci"] = evalue_interval(out["post_rr_eti95_lb"].to_numpy(), out["post_rr_eti95_ub"].to_numpy())
    return out
