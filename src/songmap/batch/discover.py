"""Finding the audio files a batch was pointed at: files, folders (recursive) and globs."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

#: Extensions picked up when walking a folder (a file named explicitly is always taken).
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .mp3 .ogg .oga .opus .m4a .mp4 .aac .aif .aiff .aifc .wma .alac "
    ".caf .mka .webm .w64 .au .snd".split()
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
    #: Arguments that matched nothing, with the reason (reported as failures).
    missing: list[tuple[str, str]]


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
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            # Absolute, so a rerun from another folder names the file the same way.
            sources.append(Source(Path(os.path.abspath(path)), name))

    for arg in paths:
        text = os.fspath(arg)
        p = Path(text).expanduser()
        if p.is_file():
            add(p, p.name)
        elif p.is_dir():
            found = sorted(_walk(p))
            for f in found:
                add(f, f.relative_to(p).as_posix())
            if not found:
                missing.append((text, "folder contains no audio files"))
        elif glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(text),
                                                         recursive=True))]
            # A folder the pattern matches ('Music/2023-*') is walked like a folder argument.
            files = [f for m in matches for f in ([m] if m.is_file() else sorted(_walk(m))
                                                  if m.is_dir() else [])]
            base = _glob_base(text)
            for f in files:
                try:
                    name = f.relative_to(base).as_posix()
                except ValueError:
                    name = f.name
                add(f, name)
            if not files:
                missing.append((text, "pattern matched no files"))
        else:
            missing.append((text, "no such file or folder"))
    return Discovery(sources, missing)


def _walk(folder: Path) -> Iterable[Path]:
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
