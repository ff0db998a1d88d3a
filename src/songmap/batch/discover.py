"""Finding the audio files a batch was pointed at: files, folders (recursive) and globs.

Only regular files are analysed. Anything else an argument, a folder or a pattern leads to
(a FIFO, a device such as ``/dev/zero``, a socket, a symlink loop, a broken link, an
unreadable path) becomes one recorded failure with its reason, so one odd entry never
stops or hangs a batch.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Extensions picked up when walking a folder (a file named explicitly is always taken).
AUDIO_EXTENSIONS = frozenset(
    [".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".aif",
     ".aiff", ".aifc", ".wma", ".alac", ".caf", ".mka", ".webm", ".w64", ".au", ".snd"]
)


@dataclass(frozen=True)
class Source:
    """One file to analyse. ``path`` is absolute; ``name`` is its path relative to the
    folder or glob it came from (just the file name when given directly); exports are
    written under that name."""

    path: Path
    name: str


@dataclass(frozen=True)
class Discovery:
    sources: list[Source]
    #: Arguments that matched nothing, and paths found that are not regular files (FIFOs,
    #: devices, symlink loops, unreadable entries), with the reason (reported as failures).
    missing: list[tuple[str, str]]


class NotRegularFileError(OSError):
    """A path that is not a regular file where one was expected (``strerror``: why)."""


def describe_special(mode: int) -> str:
    """What a non-regular file is, from its ``st_mode``, for messages."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device (like /dev/zero)"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def check_path(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``("file" | "dir" | "missing" | "bad", reason)`` for ``path`` (links followed),
    without opening it: opening a FIFO would block and a device could be endless."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "bad", "a symlink loop: following its links never reaches a file"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            if os.path.islink(path):
                return "bad", "a broken symlink: what it points to does not exist"
            return "missing", "no such file or folder"
        return "bad", f"cannot read it ({exc.strerror or exc})"
    except ValueError as exc:  # an embedded NUL byte
        return "bad", f"not a usable path ({exc})"
    if stat.S_ISREG(mode):
        return "file", ""
    if stat.S_ISDIR(mode):
        return "dir", ""
    return "bad", f"{describe_special(mode)}, not a regular file; not analysed"


def hash_input(path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a regular file's bytes (the store's audio key).

    Opened non-blocking and checked with ``fstat`` on the open descriptor, so a path
    that became a FIFO or a device after discovery raises ``NotRegularFileError``
    instead of hanging or reading for ever.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, f"{describe_special(mode)}, not a "
                                      "regular file")
        os.set_blocking(fd, True)
        digest = hashlib.sha256()
        while chunk := os.read(fd, chunk_bytes):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(text: str) -> str:
    """``text`` with the lone surrogates ``os.fsdecode`` gives for a name's bytes that are
    not UTF-8 written as ``\\udcXX``: valid UTF-8 that keeps the name recoverable
    (inside a JSON string it is the very escape ``json.loads`` turns back into the name)."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def is_audio_name(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def discover_audio(paths: Iterable[str | os.PathLike[str]]) -> Discovery:
    """Expand ``paths`` into audio files, in a stable order, each file once.

    A file is taken whatever its extension (the decoder decides whether it is audio); a
    folder is walked recursively for files with an audio extension (hidden files and folders
    skipped); anything else is tried as a glob (``**`` recurses; matched folders are walked).
    """
    sources: list[Source] = []
    seen: set[Path] = set()
    missing: list[tuple[str, str]] = []

    def add(path: Path, name: str) -> None:
        kind, reason = check_path(path)
        if kind != "file":
            missing.append((os.fspath(path), reason or "not a regular file"))
            return
        try:
            key = path.resolve()
        except (OSError, RuntimeError):  # a link that changed since check_path
            key = Path(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            # Absolute, so a rerun from another folder names the file the same way.
            sources.append(Source(Path(os.path.abspath(path)), name))

    for arg in paths:
        text = os.fspath(arg)
        p = Path(text).expanduser()
        kind, reason = check_path(p)
        if kind == "file":
            add(p, p.name)
        elif kind == "bad":
            missing.append((text, reason))
        elif kind == "dir":
            found = sorted(_walk(p))
            for f in found:
                add(f, f.relative_to(p).as_posix())
            if not found:
                missing.append((text, "folder contains no audio files"))
        elif glob.has_magic(text):
            files = _glob_files(text)
            for f, name in files:
                add(f, name)
            if not files:
                missing.append((text, "pattern matched no files"))
        else:
            missing.append((text, "no such file or folder"))
    return Discovery(sources, missing)


def _glob_files(pattern: str) -> list[tuple[Path, str]]:
    """``(path, relative name)`` of what a glob matches. A folder the pattern matches
    ('Music/2023-*') is walked like a folder argument; a match that is neither (a FIFO, a
    loop) is returned too, for the caller to record why it is skipped."""
    matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(pattern), recursive=True))]
    files = [f for m in matches for f in (sorted(_walk(m)) if m.is_dir() else [m])]
    base = _glob_base(pattern)
    out = []
    for f in files:
        try:
            name = f.relative_to(base).as_posix()
        except ValueError:
            name = f.name
        out.append((f, name))
    return out


def _walk(folder: Path) -> Iterable[Path]:
    # unreadable sub-folders are skipped silently by os.walk; loops cannot occur (links to
    # folders are not followed); a file entry that is a link loop or a FIFO is yielded
    # and recorded by add()
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if not f.startswith(".") and is_audio_name(f):
                yield Path(root) / f


def _glob_base(pattern: str) -> Path:
    """The longest leading part of a glob without wildcards."""
    parts = Path(os.path.expanduser(pattern)).parts
    base: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")
