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
import os
import sys
import threading
from collections.abc import Iterator

#: Seconds after the wall-time limit when the C-level backstop ends the process.
_BACKSTOP_S = 5.0


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


def limit_memory(megabytes: float | None) -> None:
    """Cap this process's address space; allocations beyond it raise ``MemoryError``."""
    if not megabytes:
        return
    import resource

    limit = int(megabytes * 1024 * 1024)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
