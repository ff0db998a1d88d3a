"""Per-process limits for one analysis: wall time and memory.

A wall-time watchdog runs in its own thread, so it fires even while the main thread is
inside a decoder's C code (which releases the GIL); if the interpreter itself is wedged,
``faulthandler``'s C watchdog ends the process a few seconds later. These are for
processes that run one analysis (the CLI); the service and batch workers put each
analysis in a child process and kill it from outside instead.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: Seconds after the wall-time limit when the C-level backstop ends the process.
_BACKSTOP_S = 5.0


class ProcessWideHold:
    """A process-wide setting held while any thread is inside ``held()``: the first thread
    in applies it, the last one out undoes it. Each thread applying and undoing it around
    its own work would race: the first to leave would undo it under the others' feet.

    ``apply`` makes the setting and returns how to undo it (None: nothing was set)."""

    def __init__(self, apply: Callable[[], Callable[[], None] | None]) -> None:
        self._apply = apply
        self._undo: Callable[[], None] | None = None
        self._users = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._undo = self._apply()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._undo is not None:
                    undo, self._undo = self._undo, None
                    undo()


@contextlib.contextmanager
def wall_time_limit(seconds: float | None, *, message: str, exit_code: int) -> Iterator[None]:
    """End the process with ``message`` on stderr and ``exit_code`` after ``seconds``."""
    if not seconds:
        yield
        return

    def expire() -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        os._exit(exit_code)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - must outlive this frame for faulthandler
    faulthandler.dump_traceback_later(seconds + _BACKSTOP_S, exit=True, file=devnull)
    try:
        yield
    finally:
        timer.cancel()
        faulthandler.cancel_dump_traceback_later()
        devnull.close()


#: Threads of one analysis that may be inside a BLAS product at once: the beat network's two
#: directions, the harmony networks' thread and the onsets' thread (``songmap.pipeline``).
BLAS_CALLERS_PER_ANALYSIS = 4


def map_blas_buffers(*, callers: int = BLAS_CALLERS_PER_ANALYSIS) -> None:
    """Have numpy's BLAS map now the work buffers ``callers`` products at once need.

    OpenBLAS maps a 32 MB work buffer when a product starts while every buffer it has is
    in use, and keeps it for later products of any thread. When that mapping fails (under
    an address-space cap) it prints a line of its own and ends the process with status 1,
    past any handler: 2 of 40 runs of the example with ``--max-memory`` 2-97 MB above what
    the loaded CLI maps (and one segfault). Called before the cap is set, the buffers an
    analysis needs are mapped already and the cap's failures surface as ``MemoryError``
    (``strace``: no buffer mapped during three analyses after this, two without it; 0 of
    40 runs above ended in OpenBLAS). The cost: ~135 MB more address space mapped before
    the cap (three buffers, and the malloc arenas and stacks of the new threads).

    ``callers`` threads each run one product of ~20 ms, started together, so that they
    overlap; the cost is that time once and the buffers' address space.
    """
    import numpy as np

    if callers < 2:
        return  # the buffer mapped when numpy loaded serves one caller
    matrix = np.ones((1024, 1024), dtype=np.float32)
    start = threading.Barrier(callers)

    def product() -> None:
        try:
            start.wait(timeout=5.0)
        except threading.BrokenBarrierError:  # a thread did not start: overlap what runs
            pass
        matrix @ matrix

    # this thread is one of the callers: each new thread also costs a stack and a malloc arena
    threads = [threading.Thread(target=product, name="songmap-blas-buffers", daemon=True)
               for _ in range(callers - 1)]
    for t in threads:
        t.start()
    product()
    for t in threads:
        t.join()


def limit_memory(megabytes: float | None) -> None:
    """Cap this process's address space; allocations beyond it raise ``MemoryError``."""
    if not megabytes:
        return
    import resource

    # (a cap beyond what a C long holds caps nothing: the most it can say)
    limit = min(int(megabytes * 1024 * 1024), sys.maxsize)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (looked up among the symbols the process has loaded), or
    None with another C library (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
        trim.restype = ctypes.c_int
    return trim


def give_back_free_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's ``malloc_trim``;
    nothing elsewhere).

    glibc keeps what a freed array used when it was below its mmap threshold, and that
    threshold rises to the size of the largest array freed so far (up to 32 MB): a long
    recording's per-frame arrays (tens of MB at 3 h) raise it, and each arena of each
    thread then keeps tens of MB free between stages. Measured on the 3 h file of
    ``benchmarks/speed.py --long``: 89 MB free in the arenas after beat tracking, 35 MB
    after a trim (60 min: 37 MB). Called between the stages of a long recording only: it
    costs a few milliseconds and the pages given back fault in again when reused.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
