"""The diagnostics gate: R-hat (rank-normalised), bulk and tail ESS of every reported risk difference and
log OR, and divergences.

A fit is accepted only if every reported quantity has R-hat <= 1.01, bulk and tail ESS >= 1000 and there
are no divergences (:data:`RHAT_MAX`, :data:`ESS_MIN`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import ess, rhat

#: The quantities the diagnostics gate checks (and the summary reports).
REPORTED = ("rd", "log_or")


RHAT_MAX = 1.01


ESS_MIN = 1000


@dataclass
class Diagnostics:
    """Sampler diagnostics over the reported quantities."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    target_accept: float
    rhat_max: float = RHAT_MAX
    ess_min: float = ESS_MIN
    per_estimand: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def passed(self) -> bool:
        return (
            self.max_rhat <= self.rhat_max
            and self.min_ess_bulk >= self.ess_min
            and self.min_ess_tail >= self.ess_min
            and self.divergences == 0
        )

    def problems(self) -> list[str]:
        out = []
        if self.max_rhat > self.rhat_max:
            out.append(f"max R-hat {self.max_rhat:.4f} > {self.rhat_max}")
        if self.min_ess_bulk < self.ess_min:
            out.append(f"min bulk ESS {self.min_ess_bulk:.0f} < {self.ess_min}")
        if self.min_ess_tail < self.ess_min:
            out.append(f"min tail ESS {self.min_ess_tail:.0f} < {self.ess_min}")
        if self.divergences:
            out.append(f"{self.divergences} divergent transitions")
        return out

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "per_estimand"}
        d["passed"] = self.passed
        return d


def diagnose_effects(effects_ds: xr.Dataset, sample_stats: xr.Dataset, target_accept: float) -> Diagnostics:
    """R-hat (rank-normalised), bulk and tail ESS of every reported RD and log OR, and divergences."""
    post = effects_ds[["rd", "log_or"]]
    r_hat = rhat(post)
    ess_b = ess(post, method="bulk")
    ess_t = ess(post, method="tail")
    per = pd.DataFrame(
        {
            "estimand": post["estimand"].to_numpy(),
            "rhat_rd": r_hat["rd"].to_numpy(),
            "rhat_log_or": r_hat["log_or"].to_numpy(),
            "ess_bulk_rd": ess_b["rd"].to_numpy(),
            "ess_bulk_log_or": ess_b["log_or"].to_numpy(),
            "ess_tail_rd": ess_t["rd"].to_numpy(),
            "ess_tail_log_or": ess_t["log_or"].to_numpy(),
        }
    )
    return Diagnostics(
        max_rhat=float(np.nanmax(per[["rhat_rd", "rhat_log_or"]].to_numpy())),
        min_ess_bulk=float(np.nanmin(per[["ess_bulk_rd", "ess_bulk_log_or"]].to_numpy())),
        min_ess_tail=float(np.nanmin(per[["ess_tail_rd", "ess_tail_log_or"]].to_numpy())),
        divergences=int(sample_stats["diverging"].sum()),
        target_accept=target_accept,
        per_estimand=per,
    )
