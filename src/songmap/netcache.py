"""A bounded cache of the networks' outputs, keyed by the decoded audio.

The networks are most of an analysis's time (the beat network alone ~55 %); every
decision after them (beats, bars, overrides, chords, key) takes a fraction of a second.
So a re-analysis of the same audio with an override (``--bpm 128``) reuses them. In
memory the cache keeps the last ``max_items`` signals of a process (an Analyzer, a
service worker); with a ``directory`` it also keeps them on disk (one ``.npz`` each, the
newest ``max_files``), so two runs of the CLI share them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from songmap.audio.blocks import iter_blocks
from songmap.signals import NetworkOutputs

if TYPE_CHECKING:
    from songmap.audio import Audio

log = logging.getLogger("songmap")

#: Bump when the networks or their front end change, so old files are not reused.
NETWORK_VERSION = "2"  # 2: harmony networks on the retuned audio (harmony.tuning)


def audio_key(audio: Audio) -> str:
    """Hex SHA-256 of the decoded mono samples and their rate (what the networks see):
    the same audio in two containers or under two names has one key."""
    digest = hashlib.sha256()  # the fastest exact hash here (~1 GB/s with SHA extensions)
    digest.update(f"{NETWORK_VERSION}:{audio.sr}:".encode())
    # block by block: a long recording held on disk is not mapped whole (same digest)
    for block in iter_blocks(np.ascontiguousarray(audio.samples, dtype=np.float32)):
        digest.update(block.data.cast("B"))  # a slice of a contiguous 1-D array
    return digest.hexdigest()


def default_cache_dir() -> Path | None:
    """``$SONGMAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/songmap/networks`` (``~/.cache``);
    None when ``SONGMAP_CACHE_DIR`` is set empty (no disk cache)."""
    explicit = os.environ.get("SONGMAP_CACHE_DIR")
    if explicit is not None:
        return Path(explicit) if explicit.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "songmap" / "networks"


class NetworkCache:
    """Thread-safe LRU of ``NetworkOutputs`` (optionally backed by a folder)."""

    def __init__(self, max_items: int = 8, *, directory: str | os.PathLike[str] | None = None,
                 max_files: int = 64) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self.directory = Path(directory) if directory is not None else None
        self.max_files = max_files
        self._items: OrderedDict[str, NetworkOutputs] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> NetworkOutputs | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found
        found = self._load(key)
        with self._lock:
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
        self._remember(key, found)
        return found

    def clear(self) -> None:
        """Forget the outputs held in memory (the folder, if any, is kept)."""
        with self._lock:
            self._items.clear()

    def put(self, key: str, outputs: NetworkOutputs) -> None:
        self._remember(key, outputs)
        self._save(key, outputs)

    def _remember(self, key: str, outputs: NetworkOutputs) -> None:
        with self._lock:
            self._items[key] = outputs
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    # -- disk (best effort: a cache that cannot be read or written is only slower) -------
    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.npz"

    def _load(self, key: str) -> NetworkOutputs | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            outputs = NetworkOutputs.load(path)
            os.utime(path)  # most recently used: pruned last
            return outputs
        except (OSError, ValueError, KeyError, EOFError) as exc:
            log.info("network cache: ignoring unreadable %s (%s)", path, exc)
            return None

    def _save(self, key: str, outputs: NetworkOutputs) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
            outputs.save(tmp)
            tmp.replace(path)
            files = sorted((p for p in path.parent.glob("*.npz") if not p.name.startswith(".")),
                           key=lambda p: p.stat().st_mtime)
            for old in files[: max(len(files) - self.max_files, 0)]:
                old.unlink(missing_ok=True)
        except OSError as exc:
            log.info("network cache: could not write %s (%s)", path, exc)
