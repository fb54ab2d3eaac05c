"""Run directories: written in a temporary sibling folder and moved into place only when complete.

Layout of ``models/<run>/``::

    manifest.json        what was run (command line, versions, data and prior hashes, seed, settings,
                         diagnostics) and the sha256 of every file below
    summary.csv          one row per prior x outcome x estimand (columns: bayes_rescue.summary)
    summary.json         the same rows as JSON records, plus the run's metadata
    draws.csv            per-draw rd / log_or / arm risks per prior x outcome x estimand
    posterior.nc         the ArviZ DataTree; with several priors, one tree whose variables carry a
                         ``prior`` dimension where they differ between priors
                         (``load_tree(path, prior="skeptical")`` gives one prior's tree)
    figures/*.png        prior_posterior, forest, benefit_curve, rank (several priors: one comparison
                         set; rank.png then shows every prior's effect parameters)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import xarray as xr

from bayes_rescue.errors import InputError


def save_tree(tree: xr.DataTree, path: Path) -> Path:
    """Write a DataTree to netCDF (h5netcdf). Object-typed variables (nutpie's divergence messages)
    are stored as strings."""
    tree = tree.copy()
    for node in tree.subtree:
        ds = node.to_dataset()
        changed = False
        for name, var in ds.data_vars.items():
            if var.dtype == object:
                ds[name] = var.astype(str)
                changed = True
        if changed:
            tree[node.path] = xr.DataTree(ds)
    tree.to_netcdf(path, engine="h5netcdf")
    return path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a table as CSV with Arrow's writer: about ten times faster than ``DataFrame.to_csv`` on draw
    tables, and floats are written in their shortest round-trip form (reading the file back gives the
    identical doubles). Strings are quoted only where needed."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed", quoting_header="none"))
    return path


PER_PRIOR_ATTRS = "bayes_rescue_per_prior"


def plain_value(value):
    """An attribute value as plain JSON-able Python (NumPy scalars and arrays included)."""
    return value.tolist() if hasattr(value, "tolist") else value


def stack_trees(trees: list[xr.DataTree], names: list[str]) -> xr.DataTree:
    """Several priors' DataTrees (same data and structure) as one, along a new ``prior`` dimension.

    Each group's variables are concatenated along ``prior`` only where they differ between priors (the
    observed counts, and the sampler statistics of priors sampled in one joint run, are stored once).
    Root attributes equal for every prior stay as they are; the others are kept per prior, as JSON
    ``{attribute: {prior: value}}`` in the root attribute ``bayes_rescue_per_prior``.
    :func:`load_tree` with ``prior=`` undoes both.
    """
    index = pd.Index(names, name="prior")
    groups = {}
    for node in trees[0].subtree:
        if node.path == "/":
            continue
        parts = [t[node.path].to_dataset(inherit=False) for t in trees]
        groups[node.path] = xr.concat(
            parts,
            dim=index,
            data_vars="different",
            coords="different",
            compat="equals",
            join="exact",
            combine_attrs="drop_conflicts",
        )
    out = xr.DataTree.from_dict(groups)
    keys = dict.fromkeys(k for t in trees for k in t.attrs)
    per_prior = {}
    for k in keys:
        values = [plain_value(t.attrs.get(k)) for t in trees]
        if all(v == values[0] for v in values):
            out.attrs[k] = trees[0].attrs[k]
        else:
            per_prior[k] = dict(zip(names, values, strict=True))
    out.attrs[PER_PRIOR_ATTRS] = json.dumps(per_prior, sort_keys=True)
    return out


def select_prior(tree: xr.DataTree, prior: str, *, source: str | Path = "") -> xr.DataTree:
    """One prior's DataTree out of a :func:`stack_trees` tree (variables and root attributes)."""
    names = next((node["prior"].to_numpy().tolist() for node in tree.subtree if "prior" in node.coords), None)
    if names is None:
        raise InputError("holds a single prior's fit; open it without prior=", source=source or None)
    if prior not in names:
        raise InputError(f"has no prior '{prior}'; it holds {', '.join(names)}", source=source or None)
    groups = {}
    for node in tree.subtree:
        if node.path == "/":
            continue
        ds = node.to_dataset(inherit=False)
        groups[node.path] = (
            ds.sel(prior=prior, drop=True) if "prior" in ds.dims else ds.drop_vars("prior", errors="ignore")
        )
    out = xr.DataTree.from_dict(groups)
    per_prior = json.loads(tree.attrs.get(PER_PRIOR_ATTRS, "{}"))
    out.attrs.update({k: v for k, v in tree.attrs.items() if k != PER_PRIOR_ATTRS})
    out.attrs.update({k: v[prior] for k, v in per_prior.items() if v.get(prior) is not None})
    return out


def load_tree(path: str | Path, *, prior: str | None = None) -> xr.DataTree:
    """Open a saved posterior DataTree (fully loaded into memory); with ``prior``, one prior's tree out
    of a several-prior run's ``posterior.nc`` (see :func:`stack_trees`)."""
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        tree = tree.load()
    return tree if prior is None else select_prior(tree, prior, source=path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove ``.<name>.partial-<pid>-*`` folders left by runs that were killed (their pid is gone)."""
    removed = []
    for p in Path(target).parent.glob(f".{Path(target).name}.partial-*"):
        parts = p.name.rsplit(".partial-", 1)[1].split("-", 1)
        if parts[0].isdigit() and not _pid_alive(int(parts[0])):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_run_dir(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success move it to ``target``.

    On any exception (including KeyboardInterrupt) the temporary directory is removed and an existing
    ``target`` is left untouched. An existing ``target`` is replaced only with ``overwrite=True``. A run
    killed outright (SIGKILL) cannot clean up: its hidden ``.partial-<pid>-`` folder is removed by the next
    run of the same name, and the previous results stay intact.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise InputError(
            "run directory already exists; choose another --name or pass --overwrite",
            source=target,
            field="--name",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a run directory is an ordinary folder
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "run")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
