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
