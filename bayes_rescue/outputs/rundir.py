"""Run directories: written in a temporary sibling folder and moved into place only when complete.

Layout of ``models/<run>/``::

    manifest.json        what was run (command line, versions, data and prior hashes, seed, settings,
                         diagnostics) and the sha256 of every file below
    summary.csv          one row per prior x outcome x estimand (columns: bayes_rescue.outputs.tables)
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

from bayes_rescue.errors import InputError


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a table as CSV with Arrow's writer: about ten times faster than ``DataFrame.to_csv`` on draw
    tables, and floats are written in their shortest round-trip form (reading the file back gives the
    identical doubles). Strings are quoted only where needed."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed", quoting_header="none"))
    return path


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
