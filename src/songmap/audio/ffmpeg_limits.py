"""A bound on any one allocation FFmpeg makes while songmap decodes with it.

FFmpeg's MPEG audio parser keeps every byte it reads until it finds the next frame: a
file named .mp3 that is mostly zero bytes (1 KB of noise, then 300 MB of zeros) grows
one buffer to the size of the file while the stream is probed, in reallocations that
peaked at 636 MB for 300 MB (PyAV 18 / libavformat 62); ``probesize`` does not stop it,
as the parser never hands a packet back. ``av_max_alloc`` caps a single allocation, so
that buffer fails at the bound and the file is refused as undecodable as before (peak
164 MB). Decoding real audio needs packets and frames of kilobytes to a few megabytes;
a video frame a container also holds is decoded while probing (8K 4:2:0: 50 MB), hence
the bound's size.

The setting is the process's: it is set while a songmap decode runs and put back to
FFmpeg's default (``INT_MAX``) when the last one ends. Where the loaded libavutil cannot
be found (not Linux), nothing is bounded.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from songmap.limits import ProcessWideHold

#: The largest single allocation FFmpeg may make during a songmap decode (bytes).
MAX_ALLOCATION_BYTES = 128 * 2**20
#: FFmpeg's own default for ``av_max_alloc``.
_FFMPEG_DEFAULT = 2**31 - 1


@functools.cache
def _av_max_alloc() -> Any:
    """``av_max_alloc`` of the libavutil PyAV loaded, or None where it cannot be found."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            path = next((line.split()[-1] for line in maps if "libavutil" in line), None)
        if path is None:
            return None
        function = ctypes.CDLL(path).av_max_alloc  # the loaded library: the same handle
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = None
    return function


def _bound() -> Callable[[], None] | None:
    """Set the bound; how to put FFmpeg's default back (None where it cannot be set)."""
    set_max = _av_max_alloc()
    if set_max is None:
        return None
    set_max(MAX_ALLOCATION_BYTES)
    return lambda: set_max(_FFMPEG_DEFAULT)


_hold = ProcessWideHold(_bound)


def bounded_allocations() -> AbstractContextManager[None]:
    """Bound FFmpeg's single allocations to ``MAX_ALLOCATION_BYTES`` until every thread
    inside this context has left it (PyAV must be imported first)."""
    return _hold.held()
