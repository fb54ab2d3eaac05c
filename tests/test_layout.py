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


#: The one module allowed to touch private names of the sampler stack.
BACKEND = "bayes_rescue.inference.backend"
#: Libraries whose private API lives only in the backend, and what the rest of the package may use of them: these
#: modules (imported as a whole or from) and, after ``nutpie.``, these attributes.
SAMPLER_LIBS = ("nutpie", "numba", "pytensor", "llvmlite")
PUBLIC_MODULES = {"nutpie", "pytensor", "pytensor.tensor"}
PUBLIC_NUTPIE = {"sample", "compile_pymc_model"}
#: Attributes of nutpie's compiled models and traces that are private in all but name.
PRIVATE_ATTRIBUTES = {"user_data", "jit_fn", "get_arrow_trace", "vm", "_n_dim", "_coords", "_shapes"}
#: A ``_private`` name may be shared by the modules of one package (``bayes_rescue.cli.fit`` importing
#: ``bayes_rescue.cli._args._arg``; the modules of ``outputs.figures``), never across packages (an analysis
#: importing a sampling helper: issue 22).


def _same_package(module: str, source: str) -> bool:
    """True if ``source`` lives in the package of ``module`` (or ``module`` is that package's ``__init__``)."""
    parent = source.rpartition(".")[0]
    return parent == module.rpartition(".")[0] or parent == module


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path, module: str) -> list[str]:
    """Every use in ``path`` (module ``module``) of a private name: a sampler library's module other than
    :data:`PUBLIC_MODULES`, a ``_name`` imported from one, a name of ``nutpie`` other than
    :data:`PUBLIC_NUTPIE`, an attribute in :data:`PRIVATE_ATTRIBUTES`, or another module's ``_name`` imported
    from this package."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in SAMPLER_LIBS and a.name not in PUBLIC_MODULES:
                    bad.append(f"{module}:{node.lineno} imports {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in SAMPLER_LIBS:
                names = [a.name for a in node.names]
                public = (lambda n: n in PUBLIC_NUTPIE) if node.module == "nutpie" else (lambda n: not _private(n))
                if node.module not in PUBLIC_MODULES or not all(public(n) for n in names):
                    bad.append(f"{module}:{node.lineno} imports {', '.join(names)} from {node.module}")
            elif root == "bayes_rescue" and node.module != module:
                for a in node.names:
                    if _private(a.name) and not _same_package(module, node.module):
                        bad.append(f"{module}:{node.lineno} imports {a.name} from {node.module}")
        elif isinstance(node, ast.Attribute):
            if node.attr in PRIVATE_ATTRIBUTES:
                bad.append(f"{module}:{node.lineno} uses .{node.attr}")
            elif isinstance(node.value, ast.Name) and node.value.id == "nutpie" and node.attr not in PUBLIC_NUTPIE:
                bad.append(f"{module}:{node.lineno} uses nutpie.{node.attr}")
    return bad


def test_private_names_only_in_the_backend():
    """No module but the backend (bayes_rescue.inference.backend) imports or uses a private name of nutpie,
    numba, PyTensor or llvmlite, and no module imports a ``_private`` helper of another package. Reference: the
    rule of issue 22; the checker itself is tested on known offending source below."""
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        if module != BACKEND:
            bad += private_uses(path, module)
    for path in sorted((ROOT.parent / "scripts").glob("*.py")):
        bad += private_uses(path, f"scripts.{path.stem}")
    assert not bad, "\n".join(bad)


def test_the_private_name_checker_finds_each_kind(tmp_path):
    """The checker flags each kind of private use in a sample of the code this package had before issue 22
    (compile.py's numba import, sampling.py's user_data and vm.jit_fn, validation.py's private helpers), and
    nothing in public uses."""
    source = tmp_path / "sample.py"
    source.write_text(
        "import numba\n"
        "from numba.core.imputils import impl_ret_borrowed\n"
        "from nutpie import compile_pymc\n"
        "from pytensor.link.numba import cache\n"
        "from bayes_rescue.inference.sampling import _with_data, fit\n"
        "x = compiled.user_data.copy()\n"
        "f = logp_fn.vm.jit_fn\n"
        "m = nutpie.compile_pymc._make_functions\n"
        "# public uses, not flagged:\n"
        "import nutpie\nimport pytensor\nimport pytensor.tensor as pt\nfrom pytensor.tensor import sum\n"
        "t = nutpie.sample(nutpie.compile_pymc_model(model))\n"
    )
    bad = private_uses(source, "bayes_rescue.sample")
    assert len(bad) == 9, bad
    for fragment in ("imports numba", "numba.core.imputils", "nutpie", "pytensor.link.numba", "_with_data"):
        assert any(fragment in b for b in bad), fragment
    assert sum(".user_data" in b or ".jit_fn" in b or ".vm" in b or "nutpie.compile_pymc" in b for b in bad) == 4


def test_no_module_over_400_lines():
    """The project's layout rule: no module of the package over 400 lines (one concern per module)."""
    long = {
        str(p.relative_to(ROOT.parent)): n
        for p in sorted(ROOT.rglob("*.py"))
        if (n := len(p.read_text("utf-8").splitlines())) > 400
    }
    assert not long, long
