"""The result of one fitted prior (:class:`FitResult`) and the gate on a fitted tree, in a module light enough
for helper processes (:mod:`bayes_rescue.workers`) to receive one, or to complete and gate a prior's tree,
without importing PyMC or nutpie."""

from __future__ import annotations

from dataclasses import dataclass

import xarray as xr

from bayes_rescue.inference.derived import EFFECT_VARS, complete_tree, grid_effects
from bayes_rescue.inference.diagnostics import Diagnostics, diagnose_effects
from bayes_rescue.inference.settings import SamplerSettings
from bayes_rescue.model.spec import ModelSpec


def gate(tree: xr.DataTree, eff: xr.Dataset, target_accept: float) -> Diagnostics:
    """The diagnostics gate on a fit's effects, every sampled parameter of its posterior (every variable but
    the derived effects) and its sampler statistics."""
    post = tree["posterior"].to_dataset()
    params = post[[n for n in post.data_vars if n not in EFFECT_VARS]]
    return diagnose_effects(eff, tree["sample_stats"].to_dataset(), target_accept, posterior=params)


def complete_and_gate(
    posterior: xr.Dataset, sample_stats: xr.Dataset, attrs: dict, spec: ModelSpec, settings: SamplerSettings, gate_fn
) -> tuple[xr.DataTree, xr.Dataset, Diagnostics]:
    """One prior's full DataTree and effects from its draws of a stacked run
    (:func:`~bayes_rescue.inference.derived.complete_tree`) and ``gate_fn(tree, effects, target_accept)``: a
    helper process's task for several priors."""
    tree, eff = complete_tree(posterior, sample_stats, attrs, spec, settings)
    return tree, eff, gate_fn(tree, eff, settings.target_accept)


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
