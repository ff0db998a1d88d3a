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

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_users = 0
_limiter: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread until every thread inside this context has left it."""
    global _users, _limiter
    with _lock:
        if _users == 0:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:  # optional: only a speed matter
                _limiter = None
            else:
                _limiter = threadpool_limits(1, user_api="blas")
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None


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
