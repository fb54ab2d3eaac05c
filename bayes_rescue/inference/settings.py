"""NUTS settings shared by fits, sweeps and validation."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings (nutpie). The defaults meet the diagnostics gate on the bundled cohort."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 20250531
    target_accept: float = 0.95
    retry_target_accept: float = 0.99
    prior_draws: int = 4000

    def __post_init__(self) -> None:
        for name in ("draws", "tune", "chains", "prior_draws"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not (0.5 <= self.target_accept < 1 and 0.5 <= self.retry_target_accept < 1):
            raise ValueError("target acceptance must be in [0.5, 1)")


#: The most a retry multiplies a sweep point's draws by.
RETRY_MAX_FACTOR = 8


def retry_settings(
    settings: SamplerSettings, ess_min: float | None = None, *, max_factor: int = RETRY_MAX_FACTOR
) -> SamplerSettings:
    """The settings of a second attempt after a failed gate (fits and sweep points alike): more draws and
    warm-up, the retry target acceptance, the same seed.

    The draws are multiplied by 2, or, when the first attempt's smallest ESS ``ess_min`` fell short of the
    gate's minimum, by enough to reach it with a quarter to spare (ESS grows in proportion to the draws:
    ``ceil(1.25 * ESS_MIN / ess_min)``), at most ``max_factor``. Measured on the bench's 200-point grid: a point
    (centre -1, sd 0.2, robust 0.2) had a bulk ESS of 410 at 1000 draws per chain; a flat doubling left it
    short again (906), four times the draws gave 1970."""
    from bayes_rescue.inference.diagnostics import ESS_MIN

    factor = 2
    if ess_min is not None and math.isfinite(ess_min) and ess_min < ESS_MIN:
        factor = max(2, min(max_factor, math.ceil(1.25 * ESS_MIN / max(ess_min, 1.0))))
    return dataclasses.replace(
        settings,
        draws=factor * settings.draws,
        tune=2 * settings.tune,
        target_accept=settings.retry_target_accept,
    )
