"""The package's layers: data -> priors -> model -> inference -> (analyses | outputs) -> (cli, api).

No module imports from a layer above its own, and analyses and outputs do not import each other (the
command line and the API join them). Reference: the layer order stated in README.md ("Package layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import bayes_rescue

ROOT = Path(bayes_rescue.__file__).parent
RANK = {
    "errors": 0,
    "_memo": 0,
    "versions": 0,
    "progress": 0,
    "workers": 0,
    "data": 1,
    "priors": 2,
    "model": 3,
    "inference": 4,
    "analyses": 5,
    "outputs": 5,
    "api": 6,
    "cli": 6,
    "__init__": 7,
    "__main__": 7,
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayes_rescue"):
            if node.module == "bayes_rescue":
                out += [f"bayes_rescue.{a.name}" for a in node.names]
            else:
                out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("bayes_rescue")]
    return out


def test_no_import_runs_back_up():
    """Every bayes_rescue import of every module points to its own layer or one below (ranks above)."""
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts)
        own = _layer(module) if len(rel.parts) > 1 else "__init__"
        if own not in RANK:
            bad.append(f"{module}: unknown layer {own}")
            continue
        for target in _imports(path):
            layer = _layer(target)
            if layer not in RANK:
                bad.append(f"{module} imports {target}: unknown layer")
            elif RANK[layer] > RANK[own] or (RANK[layer] == RANK[own] == 5 and layer != own):
                bad.append(f"{module} ({own}) imports {target} ({layer})")
    assert not bad, "\n".join(bad)


def test_missing_dask_is_a_clear_input_error(monkeypatch):
    """Dask is an optional extra: without it, asking for a Dask scheduler is exit-2 input, naming the extra."""
    import sys

    import pytest

    from bayes_rescue.analyses.parallel import dask_map
    from bayes_rescue.errors import InputError

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails as if not installed
    with pytest.raises(InputError, match=r"bayes_rescue\[parallel\]"):
        with dask_map("local"):
            pass
    with dask_map("serial") as mapper:  # the default needs no Dask
        assert list(mapper(abs, [-1, 2])) == [1, 2]
