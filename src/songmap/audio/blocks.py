"""Long recordings held on disk while they are analysed, and whole-signal reductions done
block by block, so that memory does not grow with the length of the recording.

A decoded hour of mono float32 at 44.1 kHz is 635 MB, three hours 1.9 GB: held in memory,
the samples alone are what makes a long file peak high (the networks already run over
bounded pieces). Above ``SPILL_ABOVE_S`` the samples are written to an unlinked temporary
file mapped into memory instead (``spilled_samples``). The stages read it as any float32
array; one helper thread per process drops the pages they touched every
``_RELEASE_EVERY_S`` (``MADV_DONTNEED``: for a file mapping the data stays in the page
cache, which the kernel may reclaim, and a later read maps it again), so the process holds
only what is being worked on. Shorter signals stay in ordinary memory, as before.
"""

from __future__ import annotations

import errno
import mmap
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator

import numpy as np

from songmap.errors import storage_error

#: Signals longer than this (seconds at their rate) are held on disk while analysed. A
#: song of normal length (and every golden and evaluation file) stays in memory.
SPILL_ABOVE_S = 1200.0
#: How often (s) the pages of a spilled signal the stages touched are given back. The
#: passes that read fast give back their own blocks (``iter_blocks``, ``release``); the
#: rest (the networks' front ends, ~10-100 MB/s in bursts of 8 MB blocks) left 10-40 MB
#: mapped at 50 ms on the 3 h file, so 10 ms (a madvise over a mostly unmapped range costs
#: microseconds).
_RELEASE_EVERY_S = 0.01
#: Samples per block of the block-wise reductions (4 MB of float32).
BLOCK_SAMPLES = 1 << 20


def should_spill(n_samples: float, sr: float) -> bool:
    """Whether a signal of ``n_samples`` at ``sr`` Hz (or frames at ``sr`` fps) is long
    enough to be held on disk."""
    return n_samples > SPILL_ABOVE_S * sr and hasattr(mmap.mmap, "madvise")


def spilled_samples(n_samples: int, *, folder: str | None = None) -> np.ndarray:
    """A writable float32 array of ``n_samples`` zeros backed by an unlinked temporary file
    in ``folder`` (default: the temp folder), its disk space reserved up front: a full disk
    is ``DiskFullError`` here, not a crash (SIGBUS) when a page is first written."""
    return spilled_array((max(int(n_samples), 1),), np.float32, folder=folder)


def spilled_array(shape: tuple[int, ...], dtype: type[np.generic], *,
                  folder: str | None = None) -> np.ndarray:
    """A writable C-ordered array of zeros of ``shape`` and ``dtype`` held on disk as
    ``spilled_samples`` holds samples (unlinked, fallocated temporary file; its pages given
    back every ``_RELEASE_EVERY_S``), for per-frame tables of a long recording that are
    written once and read once (the beat tracker's back-pointers)."""
    count = int(np.prod(shape))
    size = max(count * np.dtype(dtype).itemsize, 1)
    try:
        fd, name = tempfile.mkstemp(prefix="songmap-samples-", suffix=".f32", dir=folder)
    except OSError as exc:
        raise storage_error("the temporary file for a long recording", exc) from exc
    try:
        os.unlink(name)  # gone from the folder at once: nothing is left behind by a crash
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)
        else:  # pragma: no cover - not Linux
            os.ftruncate(fd, size)
        buffer = mmap.mmap(fd, size)
    except OSError as exc:
        if exc.errno == errno.ENOMEM:  # an address-space cap (RLIMIT_AS) counts the mapping
            raise MemoryError(f"no address space to map {size} bytes of samples") from exc
        err = exc if exc.errno is not None else OSError(errno.EIO, str(exc))
        raise storage_error(f"the temporary file for a long recording in {folder or tempfile.gettempdir()}",
                            err) from exc
    finally:
        os.close(fd)
    flat = np.frombuffer(buffer, dtype=dtype, count=count)
    key = _RELEASER.add(buffer)
    # on the array every view's base points to: its mapping is let go when the last view goes
    weakref.finalize(flat, _RELEASER.remove, key)
    return flat.reshape(shape)


class _PageReleaser:
    """One daemon thread that gives back the resident pages of every spilled mapping every
    ``_RELEASE_EVERY_S`` while there are any, and sleeps while there are none. One thread
    for the process, started before a worker caps its memory (``start``): a thread
    started under the cap, after a long recording's mapping took its room, may fail
    before it runs, and ``Thread.start`` then waits for it for ever."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._mappings: dict[int, mmap.mmap] = {}
        self._next = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread now (nothing if it runs)."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="songmap-release-samples")
                self._thread.start()

    def add(self, buffer: mmap.mmap) -> int:
        """Give ``buffer``'s pages back from now on; the key that ``remove`` takes."""
        self.start()
        with self._cond:
            self._next += 1
            self._mappings[self._next] = buffer
            self._cond.notify()
            return self._next

    def remove(self, key: int) -> None:
        with self._cond:
            self._mappings.pop(key, None)

    def watched(self) -> int:
        """How many mappings are given back now."""
        with self._cond:
            return len(self._mappings)

    def _run(self) -> None:
        with self._cond:
            while True:
                while not self._mappings:
                    self._cond.wait()
                for buffer in list(self._mappings.values()):
                    buffer.madvise(mmap.MADV_DONTNEED)
                self._cond.wait(_RELEASE_EVERY_S)


_RELEASER = _PageReleaser()


def start_page_releaser() -> None:
    """Start the thread that gives back spilled signals' pages (``_PageReleaser``) now."""
    _RELEASER.start()


def _mapping(samples: np.ndarray) -> tuple[mmap.mmap, int] | None:
    """The file mapping under ``samples`` and the byte offset of its first sample, or None
    for an array in ordinary memory."""
    base: object = samples
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer's base
        base = base.obj
    if not isinstance(base, mmap.mmap):
        return None
    start = np.frombuffer(base, dtype=np.uint8, count=1).ctypes.data
    return base, samples.ctypes.data - start


def release(samples: np.ndarray, start: int, stop: int) -> None:
    """Give back the pages holding ``samples[start:stop]`` if they are a spilled signal's
    (nothing for an array in memory): a pass over the samples faster than the helper
    thread's period would otherwise map them all."""
    found = _mapping(samples)
    if found is None or stop <= start:
        return
    buffer, offset = found
    page = mmap.PAGESIZE
    first = (offset + start * samples.itemsize) // page * page
    last = min(offset + stop * samples.itemsize, len(buffer))
    if last > first:
        buffer.madvise(mmap.MADV_DONTNEED, first, last - first)


def iter_blocks(samples: np.ndarray, block: int | None = None) -> Iterator[np.ndarray]:
    """``samples`` in consecutive views of ``block`` samples (``BLOCK_SAMPLES``), each
    given back (``release``) once the caller asks for the next."""
    step = block or BLOCK_SAMPLES
    for a in range(0, len(samples), step):
        yield samples[a:a + step]
        release(samples, a, a + step)


def peak_level(samples: np.ndarray) -> float:
    """Largest absolute sample value, 0 for no samples, without a full-length temporary."""
    peak = 0.0
    for block in iter_blocks(samples):
        peak = max(peak, float(np.max(np.abs(block))))
    return peak


def replace_non_finite(samples: np.ndarray) -> int:
    """Set NaN and Inf samples to 0 in place, block by block; returns how many there were."""
    bad_total = 0
    for block in iter_blocks(samples):
        bad = ~np.isfinite(block)
        if bad.any():
            bad_total += int(bad.sum())
            block[bad] = 0.0
    return bad_total


def resample_blocks(samples: np.ndarray, sr: float, target_sr: float) -> np.ndarray:
    """``samples`` resampled to ``target_sr`` with soxr's streaming resampler (HQ), block
    by block into a spilled array: the long-signal counterpart of ``soxr.resample``."""
    import soxr

    expected = int(np.ceil(len(samples) * target_sr / sr)) + 1024
    out = spilled_samples(expected)
    stream = soxr.ResampleStream(sr, target_sr, 1, dtype="float32", quality="HQ")
    n = 0
    for a in range(0, len(samples), BLOCK_SAMPLES):
        last = a + BLOCK_SAMPLES >= len(samples)
        block = stream.resample_chunk(np.ascontiguousarray(samples[a:a + BLOCK_SAMPLES]),
                                      last=last)
        release(samples, a, a + BLOCK_SAMPLES)
        if n + len(block) > len(out):  # pragma: no cover - soxr's count is exact
            raise RuntimeError("the resampler returned more samples than the rates allow")
        out[n:n + len(block)] = block
        release(out, n, n + len(block))
        n += len(block)
    return out[:n]
