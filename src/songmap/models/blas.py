"""One BLAS thread while any stage computes, shared by every thread of the process.

songmap runs its stages side by side on threads (beat network, harmony networks, onsets)
and holds OpenBLAS to one thread meanwhile: two threads each asking OpenBLAS for both
cores oversubscribe the CPU. threadpoolctl's limit is process-wide, so nested
``threadpool_limits`` blocks on two threads race: the first to leave restores the old
limit under the other's feet, whose products then run on two BLAS threads and round
differently (a beat confidence moved in its 4th decimal between runs). Here the first
thread in sets the limit and the last one out restores it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from songmap.limits import ProcessWideHold


def _one_thread() -> Callable[[], None] | None:
    """Limit BLAS to one thread; how to restore it (None without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed matter
        return None
    return threadpool_limits(1, user_api="blas").restore_original_limits


_hold = ProcessWideHold(_one_thread)


def one_blas_thread() -> AbstractContextManager[None]:
    """Hold BLAS to one thread until every thread inside this context has left it."""
    return _hold.held()


def blas_threads() -> int | None:
    """Threads BLAS would use for a product started on this thread now (the most of any
    BLAS library loaded); None when that cannot be told (no threadpoolctl).

    A limit set on another thread is not always seen here: OpenBLAS 0.3.31 (numpy's
    wheels) kept two threads for products of a worker thread inside ``one_blas_thread``
    once the main thread had set and restored the limit before, and rounded them
    differently.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return max((lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"),
               default=1)
