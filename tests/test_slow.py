"""Long validations, run with `pytest -m slow` (CI runs them after the fast suite)."""

from __future__ import annotations

from importlib import resources

import pytest

from bayes_rescue.map_prior import LITERATURE_SETS, map_prior_toml


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LITERATURE_SETS))
def test_stored_map_priors_are_what_refit_writes(name):
    """The bundled map_*.toml files are exactly what `scripts/priors.py --refit` produces from the trial
    table with the fixed seed: no fit run refits them, and a refit cannot drift silently."""
    stored = (resources.files("bayes_rescue") / "priors" / f"{name}.toml").read_text("utf-8")
    assert map_prior_toml(name) == stored
