"""The per-job memory cap of a worker process, sized from the machine.

The cap is what one analysis may add to a worker once its models are loaded: the process's
address space then (measured, not assumed: it differs between machines with the thread
pools and libraries) plus the cap is its ``RLIMIT_AS``, so an allocation past it fails
with ``MemoryError`` in the worker instead of the kernel's OOM killer ending it (or a
neighbour) without a word.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from songmap.pipeline import Analyzer

#: A loaded worker's address space where the platform does not report it (MB). Measured
#: on Linux (VmSize, the bundled example, 2026-11-26): 0.70 GB loaded and 0.73 GB after an
#: analysis with 1 analysis thread, 0.81 / 0.96 GB with 2.
LOADED_WORKER_MB = 1024.0

#: The smallest default cap (MB) of address space: a loaded worker's ~1 GB plus room for an
#: analysis (a 60-minute file peaks at ~0.4 GB RSS since issue 15's streaming stages; recordings
#: over 20 minutes also map their samples from a temporary file, which counts here too).
FLOOR_MB = 1536.0


def physical_memory_mb() -> float | None:
    """This machine's RAM (MB), or None where the platform does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):
        return None


def can_cap() -> bool:
    """Whether this platform caps a process's address space (RLIMIT_AS)."""
    try:
        import resource
    except ImportError:  # Windows
        return False
    return hasattr(resource, "RLIMIT_AS")


def default_memory_mb(workers: int) -> float | None:
    """What one analysis may use (MB) when ``workers`` share this machine: its share of the
    RAM, at least ``FLOOR_MB``; None where the platform cannot cap or does not say how
    much RAM it has. The share keeps ``workers`` analyses of huge files together within
    the machine's RAM."""
    ram = physical_memory_mb()
    if ram is None or not can_cap():
        return None
    return max(FLOOR_MB, ram / max(workers, 1))


def address_space_mb() -> float:
    """This process's address space now (MB): VmSize on Linux, else the measured typical."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return LOADED_WORKER_MB


def load_before_cap(analyzer: Analyzer) -> None:
    """Load everything an analysis loads on first use: the decoders and the resampler, the
    networks, the compiled kernels and the FFT (``Analyzer.warm_up``), and start the
    thread that a long recording's samples on disk need, so that a memory
    cap set after this is the analysis's own. A library mapped under a tight cap fails in
    whatever shape the import machinery is in at that moment (KeyError, TypeError,
    SystemError: seen on Dask workers capped at 1 MB, whose first analysis imported the
    FFT), not as the cap's ``MemoryLimitError``; a loose cap lost the ~80 MB a first
    analysis maps."""
    import av  # noqa: F401
    import soundfile  # noqa: F401
    import soxr  # noqa: F401

    from songmap.audio.blocks import start_page_releaser

    analyzer.warm_up()
    start_page_releaser()  # the thread a long recording's samples on disk need


def cap_this_process(memory_mb: float) -> None:
    """Let this process grow by at most ``memory_mb`` beyond its address space now."""
    from songmap.limits import limit_memory, map_blas_buffers

    map_blas_buffers()  # before the cap: OpenBLAS ends the process when it cannot map one
    limit_memory(address_space_mb() + memory_mb)
