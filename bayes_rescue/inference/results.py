"""The result of one fitted prior (:class:`FitResult`), in a module light enough for helper processes
(:mod:`bayes_rescue.workers`) to receive one without importing PyMC or nutpie."""

from __future__ import annotations

from dataclasses import dataclass

import xarray as xr

from bayes_rescue.inference.derived import grid_effects
from bayes_rescue.inference.diagnostics import Diagnostics
from bayes_rescue.model.spec import ModelSpec


@dataclass
class FitResult:
    """One fitted prior: the DataTree, the effects per estimand (dims chain, draw, estimand; see
    :func:`~bayes_rescue.inference.derived.effects`), its diagnostics and how many attempts it took."""

    spec: ModelSpec
    tree: xr.DataTree
    effects: xr.Dataset
    diagnostics: Diagnostics
    attempts: int

    @property
    def passed(self) -> bool:
        return self.diagnostics.passed

    @property
    def name(self) -> str:
        """The prior's name, with ``+bias-<model>`` when the fit is bias-adjusted."""
        return self.spec.name

    @property
    def prior_effects(self) -> xr.Dataset:
        """The effects per estimand under the prior (from the tree's prior group)."""
        return grid_effects(self.tree["prior"].to_dataset(), self.spec)
