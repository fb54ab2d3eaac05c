"""NUTS settings shared by fits, sweeps and validation."""

from __future__ import annotations

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
