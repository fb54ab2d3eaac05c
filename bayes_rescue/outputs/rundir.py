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
- the target is checked before any work (:func:`check_target`): name length, path length, a parent that
  is or can be made a writable folder;
- single files given to ``--out``/``--plot`` are written by :func:`atomic_write` (temporary file in the
  same folder, fsync, rename): never a half-written or 0-byte file, never an existing file replaced
  without ``overwrite``;
- a full or read-only file system is reported in one line (:class:`InputError`) and nothing is left.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from bayes_rescue.data.files import read_input_bytes
from bayes_rescue.errors import InputError, signals_deferred

#: The value of ``"tool"`` in every manifest this package writes: what marks a folder as one of its runs.
TOOL = "bayes_rescue"
#: Longest run (or output file) name, in bytes: the file system's 255 less room for the hidden
#: ``.<name>.partial-<pid>-<random>`` and ``.<name>.old-<pid>-<random>`` siblings.
MAX_NAME_BYTES = 200
#: Errors of the file system rather than of the program (full disk, read-only, no permission, ...):
#: reported as one line, exit 2, with nothing left behind.
ENV_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENAMETOOLONG,
    errno.ENOTDIR,
    errno.EFBIG,
    errno.EIO,
    errno.ENOENT,
}


#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> object:
    """A CSV cell a spreadsheet will show as text: a string beginning with ``= + - @``, a tab or a carriage
    return gets a leading ``'`` (OWASP's advice for CSV injection), unless it is a number (``-0.5``,
    ``+3``, ``-inf``); anything else is returned as it is."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value if value.isascii() and value.strip() == value else "'" + value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell (and column name) passed through :func:`neutralise_cell`; the same
    frame if nothing needed it."""
    out = None
    for col in frame.columns:
        s = frame[col]
        if s.dtype.kind not in "OSUT" and not isinstance(s.dtype, pd.CategoricalDtype | pd.StringDtype):
            continue
        text = s.astype(object)
        risky = text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES))
        if risky.any():
            out = frame.copy() if out is None else out
            out[col] = text.map(neutralise_cell)
    renamed = {c: neutralise_cell(c) for c in frame.columns if neutralise_cell(c) != c}
    if renamed:
        out = (frame.copy() if out is None else out).rename(columns=renamed)
    return frame if out is None else out


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a table as CSV with Arrow's writer: about ten times faster than ``DataFrame.to_csv`` on draw
    tables, and floats are written in their shortest round-trip form (reading the file back gives the
    identical doubles). Strings are quoted only where needed. Every text cell that a spreadsheet would read
    as a formula is neutralised first (:func:`neutralise_cell`)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(neutralise_frame(frame), preserve_index=False)
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed", quoting_header="none"))
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(root: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``root`` except ``manifest.json``."""
    return {
        str(p.relative_to(root)): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def write_json(path: Path, obj) -> Path:
    """Write ``obj`` as indented, key-sorted JSON."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def _env_error(exc: OSError, path: Path, field: str | None) -> InputError:
    why = exc.strerror or type(exc).__name__
    return InputError(f"cannot be written ({why}); nothing was written", source=path, field=field)


def _path_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        return 4096


def check_target(target: Path, *, field: str = "--out", create: bool = True) -> list[Path]:
    """Check before any work that ``target`` (a run folder or an output file) can be written.

    The name must be at most :data:`MAX_NAME_BYTES` bytes, the absolute path at most the system's
    PATH_MAX less the same margin, and the nearest existing ancestor must be a writable folder. Folders
    that do not exist yet are made here (with ``create=False`` nothing is made: a probe file is created in
    the nearest existing folder and removed at once, to test that it can be written).

    Returns
    -------
    The folders made (deepest last), so that a run that fails can remove them again.

    Raises
    ------
    InputError
        One line naming the path and the option.
    """
    target = Path(target)
    if "\x00" in str(target):
        raise InputError("contains a NUL byte", field=field)
    name = os.fsencode(target.name)
    if not target.name or target.name in (".", ".."):
        raise InputError("must name a file or folder", source=target, field=field)
    if len(name) > MAX_NAME_BYTES:
        raise InputError(f"the name is {len(name)} bytes; at most {MAX_NAME_BYTES} are allowed", field=field)
    absolute = Path(os.path.abspath(target))
    limit = _path_max(Path(absolute.anchor or "/")) - (255 - MAX_NAME_BYTES)
    if len(os.fsencode(str(absolute))) > limit:
        raise InputError(f"the path is longer than {limit} bytes", field=field)
    for part in absolute.parent.parts[1:]:
        if len(os.fsencode(part)) > 255:
            raise InputError("a folder name in the path is longer than 255 bytes", field=field)
    ancestor = absolute.parent
    try:
        while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
            ancestor = ancestor.parent
    except OSError as exc:
        raise _env_error(exc, target, field) from None
    if not ancestor.is_dir():
        raise InputError(f"{ancestor} is not a folder", source=target, field=field)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"folder {ancestor} is not writable", source=target, field=field)
    if not create:
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{target.name}.probe-{os.getpid()}-", dir=ancestor)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise _env_error(exc, target, field) from None
        return []
    made = []
    missing = []
    p = absolute.parent
    while p != ancestor:
        missing.append(p)
        p = p.parent
    try:
        for folder in reversed(missing):
            folder.mkdir()
            made.append(folder)
    except OSError as exc:
        remove_empty(made)
        raise _env_error(exc, target, field) from None
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove the given folders, deepest first, where they are empty (what :func:`check_target` made)."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def refuse_existing(path: Path, *, overwrite: bool, field: str = "--out", probe: bool = False) -> None:
    """Raise :class:`InputError` if ``path`` exists and ``overwrite`` is false, or is a folder; with
    ``probe``, also unless its folder can be written (:func:`check_target` with ``create=False``). For
    checks before any work: nothing is made."""
    if "\x00" in str(path):
        raise InputError("contains a NUL byte", field=field)
    try:
        exists, is_dir = os.path.lexists(path), Path(path).is_dir()
    except OSError as exc:
        raise _env_error(exc, Path(path), field) from None
    if exists and not overwrite:
        raise InputError("already exists; pass --overwrite to replace it", source=path, field=field)
    if is_dir:
        raise InputError("is a folder; expected a file name", source=path, field=field)
    if probe:
        check_target(Path(path), field=field, create=False)


def atomic_write(
    path: Path,
    content: bytes | str | Callable[[Path], object],
    *,
    overwrite: bool = False,
    field: str = "--out",
) -> Path:
    """Write one file so that it is either complete or absent: the content goes to a temporary file in
    the same folder (same suffix, so writers that infer the format from it work), is fsynced, and is then
    renamed over ``path``. Without ``overwrite`` an existing file is refused, atomically (a hard link,
    which fails if the name exists).

    Parameters
    ----------
    path
        The file to write.
    content
        Bytes, text (UTF-8), or a function that writes the file at the path it is given.
    overwrite
        Replace an existing file.
    field
        The option that named ``path`` (for messages).

    Returns
    -------
    ``path``.

    Raises
    ------
    InputError
        ``path`` exists (without ``overwrite``), or the file system refused (full, read-only, ...); the
        temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    refuse_existing(path, overwrite=overwrite, field=field)
    made = check_target(path, field=field)
    tmp = None
    try:
        with signals_deferred():
            fd, name = tempfile.mkstemp(
                prefix=f".{path.name}.partial-{os.getpid()}-", suffix=path.suffix, dir=path.parent
            )
            tmp = Path(name)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        with signals_deferred():
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise InputError(
                        "already exists; pass --overwrite to replace it", source=path, field=field
                    ) from None
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                        raise
                    if os.path.lexists(path):  # no hard links here: check, then rename
                        raise InputError(
                            "already exists; pass --overwrite to replace it", source=path, field=field
                        ) from None
                    os.replace(tmp, path)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            tmp = None
        _fsync_dir(path.parent)
        return path
    except OSError as exc:
        if exc.errno in ENV_ERRNOS:
            raise _env_error(exc, path, field) from None
        raise
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            remove_empty(made)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (before it is renamed into place)."""
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


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
    for p in Path(target).parent.glob(f".{glob_escape(Path(target).name)}.partial-*"):
        parts = p.name.rsplit(".partial-", 1)[1].split("-", 1)
        if parts[0].isdigit() and not _pid_alive(int(parts[0])):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
            removed.append(p)
    return removed


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
            raise _env_error(exc, target, field) from None
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
        remove_stale_partials(target)
        if os.path.lexists(target):
            if not overwrite:
                raise InputError(
                    "run directory already exists; choose another --name or pass --overwrite",
                    source=target,
                    field=field,
                )
            if not target.is_dir() or not is_tool_run(target):
                raise InputError(
                    "exists and is not a bayes_rescue run folder (no manifest.json of this tool);"
                    " --overwrite replaces only runs of this tool, so it was left untouched",
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
                _fsync_dir(target.parent)
        except OSError as exc:
            if exc.errno in ENV_ERRNOS:
                raise _env_error(exc, target, field) from None
            raise
        finally:
            if tmp is not None:
                with signals_deferred():
                    shutil.rmtree(tmp, ignore_errors=True)
