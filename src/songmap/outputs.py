"""Writing an output file whole, without ever replacing what is not a file.

Every file songmap writes for a user (``-o``, ``--export``, batch's JSON lines after
compaction) goes through a temporary file beside it that is then renamed over it, so a
reader, a crash or a full disk never leaves half a file. A rename replaces whatever
directory entry has the name, though: ``-o /dev/null`` run as root would put a plain file
where the null device was (every program on the machine then writes into that file), and
``-o /dev/stdout`` or ``-o some.fifo`` would replace the link or the pipe instead of
writing to it. So a path that names a device, a pipe or a socket is written into
directly, and a symbolic link is followed to the file it names (which is replaced, the
link kept).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (links followed) exists and is a device, pipe or socket: something
    to write into, never to replace or read back."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_whole(path: str | os.PathLike[str], data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` as a whole (a temporary file renamed over it), or straight
    into it when ``path`` is a device, pipe or socket. ``durable``: the temporary file is
    on disk (``fsync``) before it replaces the old one, which a power cut then cannot
    leave empty (for a file that holds work already done, the batch's JSON lines).

    ``OSError`` (a full disk, a missing or read-only folder, a name too long) reaches the
    caller, which says which output it was; no temporary file is left behind.
    """
    p = Path(path)
    if is_special_file(p):
        with open(p, "wb") as f:
            f.write(data)
        return
    if p.is_symlink():
        p = Path(os.path.realpath(p))
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(p)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise
