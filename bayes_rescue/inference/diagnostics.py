"""The diagnostics gate: R-hat (rank-normalised), bulk and tail ESS of every sampled parameter and every
reported risk difference and log OR, and divergences.

A fit is accepted only if every gated quantity has R-hat <= 1.01, bulk and tail ESS >= 1000 and there are no
divergences (:data:`RHAT_MAX`, :data:`ESS_MIN`). The gated quantities are every element of every parameter of
the posterior (``mu_baseline``, ``sigma_baseline``, ``tau_log_or``, the per-cell ``baseline`` and ``delta``, ...)
and the reported RD and log OR of every estimand; a failure names the worst quantity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import ess, rhat

#: The reported quantities the diagnostics gate checks (and the summary reports), beside every parameter.
REPORTED = ("rd", "log_or")


RHAT_MAX = 1.01


ESS_MIN = 1000


@dataclass
class Diagnostics:
    """Sampler diagnostics over the gated quantities (module docstring); ``worst_*`` name the quantity of the
    largest R-hat and of the smallest bulk and tail ESS, e.g. ``tau_log_or[mrs_0_2]``."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    target_accept: float
    rhat_max: float = RHAT_MAX
    ess_min: float = ESS_MIN
    worst_rhat: str = ""
    worst_ess_bulk: str = ""
    worst_ess_tail: str = ""
    per_estimand: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    per_quantity: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def passed(self) -> bool:
        return (
            self.max_rhat <= self.rhat_max
            and self.min_ess_bulk >= self.ess_min
            and self.min_ess_tail >= self.ess_min
            and self.divergences == 0
        )

    def problems(self) -> list[str]:
        def of(name: str) -> str:
            return f" ({name})" if name else ""

        out = []
        if self.max_rhat > self.rhat_max:
            out.append(f"max R-hat {self.max_rhat:.4f} > {self.rhat_max}{of(self.worst_rhat)}")
        if self.min_ess_bulk < self.ess_min:
            out.append(f"min bulk ESS {self.min_ess_bulk:.0f} < {self.ess_min}{of(self.worst_ess_bulk)}")
        if self.min_ess_tail < self.ess_min:
            out.append(f"min tail ESS {self.min_ess_tail:.0f} < {self.ess_min}{of(self.worst_ess_tail)}")
        if self.divergences:
            out.append(f"{self.divergences} divergent transitions")
        return out

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("per_estimand", "per_quantity")}
        d["passed"] = self.passed
        return d


def _label(name: str, da: xr.DataArray, index: tuple) -> str:
    if not da.dims:
        return name
    labels = [str(da[d].values[i]) if d in da.coords else str(i) for d, i in zip(da.dims, index, strict=True)]
    return f"{name}[{','.join(labels)}]"


def quantity_table(draws: xr.Dataset) -> pd.DataFrame:
    """R-hat, bulk and tail ESS of every element of every variable of ``draws`` (dims chain, draw, ...): one
    row per element, ``quantity`` named ``variable[coordinate, ...]``; elements whose draws are all NaN (a
    combination the data do not have) are left out."""
    r_hat, ess_b, ess_t = rhat(draws), ess(draws, method="bulk"), ess(draws, method="tail")
    rows = []
    for name in draws.data_vars:
        da = r_hat[name]
        values = [da.to_numpy(), ess_b[name].to_numpy(), ess_t[name].to_numpy()]
        missing = draws[name].isnull().all(["chain", "draw"]).to_numpy()
        for index in np.ndindex(da.shape):
            if not missing[index]:
                rows.append((_label(name, da, index), *(float(v[index]) for v in values)))
    return pd.DataFrame(rows, columns=["quantity", "rhat", "ess_bulk", "ess_tail"])


def _worst(table: pd.DataFrame, column: str, largest: bool) -> tuple[float, str]:
    values = table[column].to_numpy(dtype=float)
    if not np.isfinite(values).any():
        return float("nan"), ""
    i = int(np.nanargmax(values) if largest else np.nanargmin(values))
    return float(values[i]), str(table["quantity"].iloc[i])


def diagnose_effects(
    effects_ds: xr.Dataset, sample_stats: xr.Dataset, target_accept: float, *, posterior: xr.Dataset | None = None
) -> Diagnostics:
    """The gate: R-hat, bulk and tail ESS of every reported RD and log OR of ``effects_ds`` and, when given,
    of every element of every variable of ``posterior`` (the sampled parameters), and the divergences of
    ``sample_stats``."""
    post = effects_ds[list(REPORTED)]
    r_hat, ess_b, ess_t = rhat(post), ess(post, method="bulk"), ess(post, method="tail")
    per = pd.DataFrame(
        {
            "estimand": post["estimand"].to_numpy(),
            **{f"rhat_{n}": r_hat[n].to_numpy() for n in REPORTED},
            **{f"ess_bulk_{n}": ess_b[n].to_numpy() for n in REPORTED},
            **{f"ess_tail_{n}": ess_t[n].to_numpy() for n in REPORTED},
        }
    )
    per = per[
        ["estimand", "rhat_rd", "rhat_log_or", "ess_bulk_rd", "ess_bulk_log_or", "ess_tail_rd", "ess_tail_log_or"]
    ]
    reported = pd.DataFrame(
        {
            "quantity": [f"{n}[{e}]" for n in REPORTED for e in per["estimand"]],
            **{
                c: np.concatenate([per[f"{c}_{n}"].to_numpy() for n in REPORTED])
                for c in ("rhat", "ess_bulk", "ess_tail")
            },
        }
    )
    table = reported if posterior is None else pd.concat([quantity_table(posterior), reported], ignore_index=True)
    return _gate(table, sample_stats, target_accept, per_estimand=per)


def diagnose_draws(posterior: xr.Dataset, sample_stats: xr.Dataset, target_accept: float) -> Diagnostics:
    """The same gate on a model without effects per estimand (the meta-analysis of the MAP priors): every
    element of every variable of ``posterior``, and the divergences."""
    return _gate(quantity_table(posterior), sample_stats, target_accept)


def _gate(table: pd.DataFrame, sample_stats: xr.Dataset, target_accept: float, **extra) -> Diagnostics:
    max_rhat, worst_rhat = _worst(table, "rhat", largest=True)
    min_bulk, worst_bulk = _worst(table, "ess_bulk", largest=False)
    min_tail, worst_tail = _worst(table, "ess_tail", largest=False)
    return Diagnostics(
        max_rhat=max_rhat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        divergences=int(sample_stats["diverging"].sum()),
        target_accept=target_accept,
        worst_rhat=worst_rhat,
        worst_ess_bulk=worst_bulk,
        worst_ess_tail=worst_tail,
        per_quantity=table,
        **extra,
    )
