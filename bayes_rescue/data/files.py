"""Reading the files a user names: regular files only, at most :data:`MAX_INPUT_BYTES`.

``/dev/zero`` would be read until memory runs out and a FIFO without a writer blocks ``open`` for ever, so
the file type is checked with :func:`os.stat` before the file is opened, and no more than the cap plus one
byte is ever read (a file that grows between the check and the read is still cut off at the cap).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bayes_rescue.errors import InputError

#: Largest input file (counts CSV, prior TOML, run manifest) read: 10 MB, far above any real one.
MAX_INPUT_BYTES = 10 * 1024 * 1024


def read_input_bytes(path: str | Path, *, field: str | None = None, what: str = "file", cap: int = MAX_INPUT_BYTES):
    """The bytes of the regular file ``path``, read only if it is a regular file of at most ``cap`` bytes.

    Parameters
    ----------
    path
        The file.
    field
        The option that named it (for the message).
    what
        What the file should be ("counts file", "prior file", ...), for the message.
    cap
        Largest size accepted, in bytes.

    Raises
    ------
    InputError
        Missing, not a regular file (directory, FIFO, device, socket), unreadable or larger than ``cap``.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(f"no such {what}", source=p, field=field) from None
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL byte in the path
        raise InputError(f"cannot be read ({getattr(exc, 'strerror', None) or exc})", source=p, field=field) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"is a directory, not a {what}", source=p, field=field)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"is not a regular file (a device, FIFO or socket); expected a {what}", source=p, field=field)
    if st.st_size > cap:
        raise InputError(f"is {st.st_size} bytes; a {what} may be at most {cap} bytes", source=p, field=field)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks, even if swapped for a FIFO
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced between stat and open
                raise InputError(f"is not a regular file; expected a {what}", source=p, field=field)
            raw = fh.read(cap + 1)
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", source=p, field=field) from None
    if len(raw) > cap:
        raise InputError(f"is larger than {cap} bytes; a {what} may be at most that", source=p, field=field)
    return raw


def read_inside(
    root: str | Path, relpath: str, *, field: str | None = None, what: str = "file", cap: int = MAX_INPUT_BYTES
):
    """The bytes of the regular file ``root/relpath``, opened without following a symbolic link anywhere
    below ``root``: every folder of ``relpath`` is opened with ``O_NOFOLLOW`` relative to the one above it
    (``dir_fd``), and the file itself with ``O_NOFOLLOW`` too, so a symlink (to an identical copy elsewhere or
    not) is refused rather than read, and nothing can be swapped between a check and the open.

    Parameters
    ----------
    root
        The folder the file must be inside (a run folder); it may itself be reached through a symlink.
    relpath
        ``/``-separated path below ``root`` (``inputs/data.csv``).
    field, what, cap
        As :func:`read_input_bytes`.

    Raises
    ------
    InputError
        A component is a symlink or not a folder, the file is missing, not regular, unreadable or too large.
    """
    parts = [p for p in relpath.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InputError(f"is not a plain path inside the folder ({what})", source=Path(root) / relpath, field=field)
    shown = Path(root) / relpath
    fds = []
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        try:
            fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY))
            for k, part in enumerate(parts[:-1]):
                here = Path(root).joinpath(*parts[: k + 1])
                if stat.S_ISLNK(os.lstat(part, dir_fd=fds[-1]).st_mode):
                    raise InputError(
                        "is a symbolic link; a run folder's inputs are read only from the folder itself",
                        source=here,
                        field=field,
                    )
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fds[-1]))
            st = os.lstat(parts[-1], dir_fd=fds[-1])
            if stat.S_ISLNK(st.st_mode):
                raise InputError(
                    "is a symbolic link; a run folder's inputs are read only from the folder itself",
                    source=shown,
                    field=field,
                )
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"is not a regular file; expected a {what}", source=shown, field=field)
            fd = os.open(parts[-1], os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0), dir_fd=fds[-1])
        except FileNotFoundError:
            raise InputError(f"no such {what}", source=shown, field=field) from None
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror or exc})", source=shown, field=field) from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise InputError(f"is not a regular file; expected a {what}", source=shown, field=field)
            raw = fh.read(cap + 1)
    finally:
        for d in fds:
            os.close(d)
    if len(raw) > cap:
        raise InputError(f"is larger than {cap} bytes; a {what} may be at most that", source=shown, field=field)
    return raw


def list_inside(root: str | Path, relpath: str, *, field: str | None = None) -> list[str]:
    """The names in the folder ``root/relpath``, which may not be (or pass through) a symbolic link.

    Raises
    ------
    InputError
        The folder is missing, a symlink or not a folder.
    """
    parts = [p for p in relpath.split("/") if p]
    fds = []
    try:
        fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY))
        for k, part in enumerate(parts):
            here = Path(root).joinpath(*parts[: k + 1])
            if stat.S_ISLNK(os.lstat(part, dir_fd=fds[-1]).st_mode):
                raise InputError(
                    "is a symbolic link; a run folder's inputs are read only from the folder itself",
                    source=here,
                    field=field,
                )
            fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0), dir_fd=fds[-1]))
        return sorted(os.listdir(fds[-1]))
    except FileNotFoundError:
        raise InputError("no such folder", source=Path(root) / relpath, field=field) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", source=Path(root) / relpath, field=field) from None
    finally:
        for d in fds:
            os.close(d)
