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
    inputs/              the counts CSV and every prior TOML used, byte for byte (``--rerun`` reads these)

Guarantees (each has a test):

- one run at a time per folder: :func:`claim_run_dir` takes an exclusive ``flock`` on ``.<name>.lock``
  beside the folder for the whole run; a second run of that name fails at once (exit 2, naming the pid);
- a folder is replaced (``--overwrite``) only if it is a run of this tool (:func:`is_tool_run`);
- the replacement is two renames with SIGINT/SIGTERM deferred until both are done; a run killed outright between
  them leaves ``.<name>.old-*``, which the next run into the same parent folder renames back
  (:func:`recover_orphans`);
- a killed run's hidden ``.<name>.partial-<pid>-*`` folder or file, and a lock file no live run holds, are
  removed by the next run into the same parent folder, and reported in one line (:func:`remove_stale`);
- the target is checked before any work (:func:`~bayes_rescue.outputs.safewrite.check_target`); single
  files, CSV cells and hashes: :mod:`bayes_rescue.outputs.safewrite` (their names are importable from here).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bayes_rescue.data.files import read_input_bytes
from bayes_rescue.errors import InputError, signals_deferred

# single files, CSV cells and hashes live in safewrite; their names stay importable from here
from bayes_rescue.outputs.safewrite import (  # noqa: F401
    ENV_ERRNOS,
    FORMULA_PREFIXES,
    MAX_NAME_BYTES,
    atomic_write,
    check_target,
    env_error,
    file_hashes,
    fsync_dir,
    neutralise_cell,
    neutralise_frame,
    path_inside,
    refuse_existing,
    remove_empty,
    sha256_file,
    write_csv,
    write_json,
)

#: The value of ``"tool"`` in every manifest this package writes: what marks a folder as one of its runs.
TOOL = "bayes_rescue"


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (before it is renamed into place)."""
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(dirpath))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(parent: Path, *, report=None) -> list[Path]:
    """Remove what killed runs left in ``parent``: every ``.<name>.partial-<pid>-*`` folder or file whose
    pid is gone, and every ``.<name>.lock`` that no live run holds (its ``flock`` can be taken). Reported in
    one line (to ``report``, default: stderr) when anything was removed.

    Returns
    -------
    The paths removed.
    """
    report = report or (lambda msg: print(msg, file=sys.stderr))
    removed = []
    try:
        entries = [p for p in Path(parent).iterdir() if p.name.startswith(".")]
    except OSError:
        return removed
    for p in sorted(entries):
        if ".partial-" in p.name:
            name, tail = p.name[1:].rsplit(".partial-", 1)
            pid = tail.split("-", 1)[0]
            if not pid.isdigit() or _pid_alive(int(pid)) or p.is_symlink() or _lock_held(p.parent / name):
                continue  # a live run's (even one whose pid this process cannot see: it holds its lock)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
            removed.append(p)
        elif p.name.endswith(".lock") and len(p.name) > len("..lock") and not p.is_symlink():
            target = p.parent / p.name[1 : -len(".lock")]
            if os.path.abspath(target) in _HELD:
                continue
            try:
                fd = _try_lock(p, create=False)
            except OSError:
                continue
            if fd is None:
                continue  # a live run holds it
            try:
                with contextlib.suppress(OSError):
                    os.unlink(p)
                removed.append(p)
            finally:
                os.close(fd)
    if removed:
        names = ", ".join(p.name for p in removed[:5]) + (f" and {len(removed) - 5} more" if len(removed) > 5 else "")
        report(f"note: removed {len(removed)} leftover(s) of killed runs in {parent}: {names}")
    return removed


def _lock_held(target: Path) -> bool:
    """True if another process holds the run lock of ``target`` right now."""
    if os.path.abspath(target) in _HELD:
        return False
    try:
        fd = _try_lock(_lock_path(target), create=False)
    except OSError:
        return True
    if fd is None:
        return os.path.lexists(_lock_path(target))
    os.close(fd)
    return False


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove the leftovers of killed runs beside ``target`` (:func:`remove_stale` of its parent)."""
    return remove_stale(Path(target).parent)


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters escaped."""
    import glob

    return glob.escape(name)


def is_tool_run(folder: Path) -> bool:
    """True if ``folder`` has a ``manifest.json`` saying that it is a run of this tool: ``"tool":
    "bayes_rescue"`` (or, for runs written before that key, a ``"command"`` starting ``bayes-rescue`` and a
    ``"files"`` table)."""
    manifest = Path(folder) / "manifest.json"
    try:
        doc = json.loads(read_input_bytes(manifest, what="manifest").decode("utf-8"))
    except (InputError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(doc, dict):
        return False
    if doc.get("tool") == TOOL:
        return True
    command = doc.get("command")
    return isinstance(command, str) and command.startswith("bayes-rescue ") and isinstance(doc.get("files"), dict)


# -- the run lock ---------------------------------------------------------------------------------------

#: Run folders this process holds the lock of: resolved path -> lock file descriptor.
_HELD: dict[str, int] = {}


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _try_lock(lock: Path, *, create: bool) -> int | None:
    """An fd holding an exclusive flock on ``lock`` (made if ``create``), or None if another process
    holds it (or it does not exist and ``create`` is false)."""
    import fcntl

    while True:
        try:
            fd = os.open(lock, os.O_RDWR | (os.O_CREAT if create else 0) | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:  # the holder before us may have unlinked the file after we opened it: retry on the new one
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
        if not create:
            return None


def _holder(lock: Path) -> str:
    try:
        text = read_input_bytes(lock, what="lock file", cap=4096).decode("utf-8", "replace").strip()
    except InputError:
        return "another process"
    return f"pid {text}" if text.isdigit() else "another process"


def recover_orphans(parent: Path, *, report=None) -> list[str]:
    """Put back runs hidden by an ``--overwrite`` that was killed between its two renames.

    Every ``.<NAME>.old-*`` folder in ``parent`` whose NAME is not locked by a live run is renamed back to
    NAME when NAME does not exist; when NAME exists (the new run had been moved in), the old copy is left
    where it is and reported. Folders of the layout before this one (``.<NAME>.old-*/run``) are handled too.

    Returns
    -------
    One message per folder restored or reported (also passed to ``report``, default: printed to stderr).
    """
    report = report or (lambda msg: print(msg, file=sys.stderr))
    messages = []
    parent = Path(parent)
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(".") and ".old-" in p.name and p.is_dir()]
    except OSError:
        return messages
    for old in sorted(entries):
        name = old.name[1:].rsplit(".old-", 1)[0]
        if not name:
            continue
        run = old / "run" if (old / "run").is_dir() and not (old / "manifest.json").exists() else old
        target = parent / name
        key = os.path.abspath(target)
        fd = None
        if key not in _HELD:
            fd = _try_lock(_lock_path(target), create=False)
            if fd is None and _lock_path(target).exists():
                continue  # a live run of that name is between its renames right now
        try:
            if os.path.lexists(target):
                msg = f"note: an older copy of run {target} was left in {old} by an interrupted --overwrite"
            else:
                try:
                    os.rename(run, target)
                except OSError:  # another run got there first, or the folder is not ours to move
                    continue
                if run is not old:
                    shutil.rmtree(old, ignore_errors=True)
                msg = f"restored run {target} from {old} (an --overwrite had been interrupted)"
            messages.append(msg)
            report(msg)
        finally:
            if fd is not None:
                os.close(fd)
    return messages


@contextlib.contextmanager
def claim_run_dir(target: Path, *, overwrite: bool = False, field: str = "--out") -> Iterator[Path]:
    """Hold the run folder ``target`` for the whole run (use before any sampling).

    Checks the target (:func:`check_target`), takes an exclusive ``flock`` on ``.<name>.lock`` beside it
    (a second run of the same folder fails at once, naming the pid of the run in progress), puts back
    orphaned ``.old-*`` folders of the parent (:func:`recover_orphans`), removes partial folders of dead
    runs, and refuses an existing ``target`` unless ``overwrite`` is given and the folder is a run of this
    tool. On leaving, the lock file is removed, and folders made for the run are removed if still empty.

    Raises
    ------
    InputError
        One line (exit 2), before anything is written.
    """
    target = Path(target)
    key = os.path.abspath(target)
    if key in _HELD:  # nested claim in the same process
        yield target
        return
    made = check_target(target, field=field)
    lock = _lock_path(target)
    with signals_deferred():  # the lock file and its fd are made and registered for clean-up at once
        try:
            fd = _try_lock(lock, create=True)
        except OSError as exc:
            remove_empty(made)
            raise env_error(exc, target, field) from None
        if fd is None:
            remove_empty(made)
            raise InputError(
                f"a run into this folder is in progress ({_holder(lock)}); wait for it or choose another --name",
                source=target,
                field=field,
            )
        _HELD[key] = fd
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        recover_orphans(target.parent)
        remove_stale(target.parent)
        if os.path.lexists(target):
            other = "another --name" if field == "--name" else "another --out"
            if target.is_symlink() or not target.is_dir() or not is_tool_run(target):
                raise InputError(
                    "exists and is not a bayes_rescue run folder (no manifest.json of this tool), so --overwrite"
                    f" cannot replace it; choose {other}, or move it away yourself",
                    source=target,
                    field=field,
                )
            if not overwrite:
                raise InputError(
                    f"run folder already exists; pass --overwrite to replace it, or choose {other}",
                    source=target,
                    field=field,
                )
        yield target
    finally:
        with signals_deferred():
            _HELD.pop(key, None)
            with contextlib.suppress(OSError):
                os.unlink(lock)
            os.close(fd)
            if not target.exists():
                remove_empty(made)


@contextlib.contextmanager
def atomic_run_dir(target: Path, *, overwrite: bool = False, field: str = "--out") -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success move it to ``target``.

    On any exception (including KeyboardInterrupt and SIGTERM's :class:`~bayes_rescue.errors.Terminated`)
    the temporary directory is removed and an existing ``target`` is left untouched. An existing
    ``target`` is replaced only with ``overwrite=True`` and only if it is a run of this tool. The run
    folder is claimed (:func:`claim_run_dir`) unless the caller already holds it. The swap of an old run
    for the new one is two renames with SIGINT/SIGTERM deferred between them; a run killed outright
    (SIGKILL) between them leaves ``.<name>.old-<pid>-*``, which :func:`recover_orphans` puts back. A
    killed run's hidden ``.partial-<pid>-`` folder is removed by the next run of the same name.

    Raises
    ------
    InputError
        As :func:`claim_run_dir`, or when the file system refuses a write (full disk, read-only).
    """
    target = Path(target)
    with claim_run_dir(target, overwrite=overwrite, field=field):
        tmp = None
        try:
            with signals_deferred():  # a signal here must not leave a folder that no name refers to yet
                tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
                tmp.chmod(0o755)  # mkdtemp makes it private; a run directory is an ordinary folder
            yield tmp
            _fsync_tree(tmp)
            with signals_deferred():
                if os.path.lexists(target):
                    old = target.parent / f".{target.name}.old-{os.getpid()}-{os.urandom(4).hex()}"
                    os.rename(target, old)
                    os.rename(tmp, target)
                    tmp = None
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.rename(tmp, target)
                    tmp = None
                fsync_dir(target.parent)
        except OSError as exc:
            if exc.errno in ENV_ERRNOS:
                raise env_error(exc, target, field) from None
            raise
        finally:
            if tmp is not None:
                with signals_deferred():
                    shutil.rmtree(tmp, ignore_errors=True)
