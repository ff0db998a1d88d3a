"""The batch's JSON Lines output: one line per file, appended atomically.

Each line is written with a single ``write(2)`` on a file opened ``O_APPEND`` and then
``fsync``-ed, so a reader (or a crash) never sees half a line from this process. A torn
last line (a power cut mid-write) is cut off when the file is opened again. A rerun appends
to the same file; ``compact()`` (called at the end of every run) rewrites it atomically
with one line per path, the latest one winning.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from songmap.batch.discover import escape_surrogates


class JsonlWriter:
    """Append-only JSONL file; ``append`` is safe to call after every result."""

    def __init__(self, path: str | os.PathLike[str], *, repair: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if repair:  # (not while another process may be writing a line: songmap.batch.locks)
            repair_torn_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        # fsync is for files: a device or a pipe (-o /dev/null) refuses it (EINVAL)
        self._sync = stat.S_ISREG(os.fstat(self._fd).st_mode)

    def append(self, record: dict[str, Any]) -> None:
        self.append_line(json.dumps(record, ensure_ascii=False, separators=(",", ":")))

    def append_line(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("a JSONL record must be a single line")
        # a path that is not valid UTF-8 is kept as \udcXX escapes (json.loads restores it)
        data = (escape_surrogates(line) + "\n").encode("utf-8")
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk; finish the line or fail loudly
            os.write(self._fd, data[written:])
        if self._sync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_torn_tail(path: Path) -> bool:
    """Cut a trailing partial line off ``path``; True if something was cut."""
    if not path.exists():
        return False
    size = path.stat().st_size
    if size == 0:
        return False
    with open(path, "rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        # Walk back to the last newline (blocks of 64 KiB).
        pos = size
        while pos > 0:
            step = min(pos, 1 << 16)
            f.seek(pos - step)
            block = f.read(step)
            i = block.rfind(b"\n")
            if i >= 0:
                f.truncate(pos - step + i + 1)
                return True
            pos -= step
        f.truncate(0)
        return True


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every complete, parseable line of ``path`` (a torn or corrupt line is skipped)."""
    p = Path(path)
    if not p.exists():
        return
    with open(p, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


class JsonlTail:
    """Reads the complete lines appended to a JSONL file since the last read (by this
    process or another), so a run sees what a run beside it has written."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.offset = 0

    def read_new(self) -> Iterator[dict[str, Any]]:
        """The records of the complete lines after ``offset`` (corrupt lines skipped); a
        line still being written is read next time."""
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below, also when not consumed
        except FileNotFoundError:
            return
        with f:
            f.seek(self.offset)
            for line in f:
                if not line.endswith(b"\n"):
                    return
                self.offset += len(line)
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(record, dict):
                    yield record


def compact(path: str | os.PathLike[str]) -> int:
    """Rewrite ``path`` with the last record of every ``path`` key, in first-seen order.

    Atomic and durable (``songmap.outputs.write_whole``: a link is followed to the file
    it names). Returns the number of lines kept.
    """
    from songmap.outputs import is_special_file, write_whole

    p = Path(path)
    if not p.exists() or is_special_file(p):  # /dev/null, a pipe: nothing to read back
        return 0
    latest: dict[str, str] = {}
    with open(p, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                key = json.loads(line).get("path")
            except (json.JSONDecodeError, AttributeError):
                continue
            latest[key] = line  # a dict keeps first-seen order when a key is overwritten
    write_whole(p, "".join(latest.values()).encode("utf-8"), durable=True)
    return len(latest)
