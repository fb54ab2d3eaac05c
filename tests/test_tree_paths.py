"""Tree paths inside a run folder."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["", ".", "..", "../victim", "a/b", "a\\b", "a\nb"])
def test_a_tree_path_is_never_built_from_a_path_like_fit_name(name):
    """Second line of defence behind the name rule (issue 20, item 1): a fit name that could leave the run
    folder never becomes a tree path, even if it reached ``tree_relpath`` unchecked."""
    from bayes_rescue.outputs.trees import tree_relpath

    assert tree_relpath(name, single=True) == "posterior.nc"
    with pytest.raises(ValueError, match="not a fit name"):
        tree_relpath(name, single=False)
