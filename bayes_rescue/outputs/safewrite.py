"""Writing single files safely: checked targets, atomic writes, neutralised CSV cells, hashes.

- the target is checked before any work (:func:`check_target`): name length, path length, a parent that
  is or can be made a writable folder;
- single files given to ``--out``/``--plot`` are written by :func:`atomic_write` (temporary file in the
  same folder, fsync, rename): never a half-written or 0-byte file, never an existing file replaced
  without ``overwrite`` (a file that appeared after the check is not replaced either: a hard link, which
  fails if the name exists);
- every CSV cell that a spreadsheet would read as a formula is neutralised (:func:`write_csv`);
- every path built inside a run folder is checked to stay inside it (:func:`path_inside`);
- a full or read-only file system is reported in one line (:class:`InputError`) and nothing is left.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bayes_rescue.errors import InputError, signals_deferred

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


def env_error(exc: OSError, path: Path, field: str | None) -> InputError:
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
    if not target.name.isprintable():
        raise InputError("the name contains a control character; refused", field=field)
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
        raise env_error(exc, target, field) from None
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
            raise env_error(exc, target, field) from None
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
        raise env_error(exc, target, field) from None
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
        raise env_error(exc, Path(path), field) from None
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
        fsync_dir(path.parent)
        return path
    except OSError as exc:
        if exc.errno in ENV_ERRNOS:
            raise env_error(exc, path, field) from None
        raise
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            remove_empty(made)


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def path_inside(root: Path, relpath: str | Path, *, field: str = "--out") -> Path:
    """``root / relpath``, if it stays inside ``root`` once resolved (``..``, an absolute part or a symlink
    leading out is refused): the second line of defence behind the name rule, for every path built from a
    name inside a run folder.

    Raises
    ------
    InputError
        The path would leave ``root``.
    """
    root = Path(root)
    path = root / relpath
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        raise InputError("would be written outside the run folder; refused", source=path, field=field)
    return path
