"""The package's cited trial table and pooled effects computed from it.

``priors/trials.csv`` holds arm-level counts from the thrombectomy trials (copied from checked
literature figures; rows of low confidence are left out). Every row carries its citation, whether the
count was printed or back-calculated from a printed percentage, and a confidence grade.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

#: The five 2015 early-window RCTs of stent-retriever thrombectomy (HERMES trials with arm counts here).
EARLY_WINDOW_RCTS = ("MR CLEAN", "ESCAPE", "EXTEND-IA", "SWIFT PRIME", "REVASCAT")
#: The late-window RCTs.
LATE_WINDOW_RCTS = ("DAWN", "DEFUSE 3")


def trial_table() -> pd.DataFrame:
    """The cited trial table, one row per trial x outcome x arm (a copy: the caller may change it)."""
    return _read_trial_table().copy()


@functools.cache
def _read_trial_table() -> pd.DataFrame:
    """trials.csv, read once per process (the priors derived from it read it once per component)."""
    path = resources.files("bayes_rescue") / "priors" / "trials.csv"
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype={"events": int, "total": int})


@dataclass(frozen=True)
class Pooled:
    """An inverse-variance pooled log odds ratio."""

    log_or: float
    se: float
    tau2: float
    q: float
    k: int
    method: str

    def ci(self, z: float = 1.959963984540054) -> tuple[float, float]:
        return self.log_or - z * self.se, self.log_or + z * self.se


def pooled_log_or(trials: tuple[str, ...], outcome: str, table: pd.DataFrame | None = None) -> Pooled:
    """DerSimonian-Laird random-effects pooled log OR of ``outcome`` over ``trials``.

    Per trial: log OR = log(a d / (b c)) with Woolf variance 1/a + 1/b + 1/c + 1/d (no zero cells occur in
    the bundled table; a 0.5 correction is applied where one does). tau^2 by the DerSimonian-Laird moment
    estimator (DerSimonian & Laird, Control Clin Trials 1986;7:177-188).
    """
    t = trial_table() if table is None else table
    ys, vs = [], []
    for trial in trials:
        rows = t[(t["source"] == trial) & (t["outcome"] == outcome)].set_index("arm")
        if set(rows.index) != {"treatment", "control"}:
            raise KeyError(f"trial table has no two-arm {outcome!r} counts for {trial!r}")
        a, n1 = rows.loc["treatment", ["events", "total"]]
        c, n0 = rows.loc["control", ["events", "total"]]
        cells = np.array([a, n1 - a, c, n0 - c], dtype=float)
        if (cells == 0).any():
            cells += 0.5
        ys.append(np.log(cells[0] * cells[3] / (cells[1] * cells[2])))
        vs.append((1 / cells).sum())
    y, v = np.array(ys), np.array(vs)
    w = 1 / v
    fixed = (w * y).sum() / w.sum()
    q = float((w * (y - fixed) ** 2).sum())
    k = len(y)
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w**2).sum() / w.sum())) if k > 1 else 0.0
    ws = 1 / (v + tau2)
    return Pooled(float((ws * y).sum() / ws.sum()), float(1 / np.sqrt(ws.sum())), tau2, q, k, "DerSimonian-Laird")
