"""The per-job memory cap of a worker process, sized from the machine."""

from __future__ import annotations

import os

#: Address space a worker needs before it analyses anything (MB): the interpreter, numpy,
#: numba, the decoders and the networks, plus the thread stacks and allocator arenas it
#: reserves but never touches. Measured (VmSize, the bundled example, 2026-11-26): 0.70 GB
#: loaded and 0.73 GB after an analysis with 1 analysis thread, 0.81 / 0.96 GB with 2.
BASE_MB = 1024.0

#: Never cap a worker below this (MB): a 10-minute song needs ~0.5 GB on top of the base.
FLOOR_MB = BASE_MB + 1024.0


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
    """A worker's address-space cap (MB) when ``workers`` share this machine: its share of
    the RAM plus the address space every worker reserves without using, never below
    ``FLOOR_MB``; None where the platform cannot cap or does not say how much RAM it has.

    The share keeps ``workers`` analyses of huge files together below the machine's RAM,
    so one of them fails with a clear error instead of the kernel's OOM killer ending a
    worker (or the server) without one."""
    ram = physical_memory_mb()
    if ram is None or not can_cap():
        return None
    return max(FLOOR_MB, BASE_MB + ram / max(workers, 1))
