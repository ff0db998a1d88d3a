"""A progress line on the terminal while a file is analysed: stage, percent, seconds.

Only when stderr is a terminal (never when it is piped or redirected to a file, never with
``--json`` or ``--quiet``): the line is rewritten in place with a carriage return and
erased when the analysis ends, so nothing of it stays in a log or in captured output.

The analyser reports a fraction (0..1) after each stage, the same numbers the service
gives its jobs; the stage that just finished is recognised by the weight it added
(``songmap.pipeline._STAGE_WEIGHTS``). Between reports a ticking clock shows the run is
alive (the beat network alone takes most of a long file's time).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from songmap.terminal import printable

#: How a finished stage reads on the line.
_STAGE_WORDS = {"decode": "decoded", "beat_network": "beat network done",
                "key_chroma_network": "key/chroma network done", "onsets": "onsets found",
                "beat_tracking": "beats tracked", "bars": "bars found", "chords": "chords read",
                "key": "key found", "timeline": "timeline built"}


def wants_progress(stream: TextIO, *, json_output: bool, quiet: bool) -> bool:
    """True when a progress line belongs on ``stream``: a terminal, and output is for people."""
    if json_output or quiet or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def stage_finished(previous: float, fraction: float, weights: dict[str, float],
                   seen: set[str]) -> str | None:
    """The stage whose weight is the step from ``previous`` to ``fraction`` (None if unsure)."""
    step = fraction - previous
    for name, w in weights.items():
        if name not in seen and abs(w - step) < 1e-9:
            return name
    return None


class ProgressLine:
    """Callable progress callback that draws ``songmap: NAME  42 %  beats tracked  12 s``.

    Use as a context manager around one analysis; it does nothing when ``enabled`` is false.
    """

    def __init__(self, name: str, *, stream: TextIO | None = None, enabled: bool = True,
                 interval_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval_s = interval_s
        self._clock = clock
        self._fraction = 0.0
        self._stage: str | None = None
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = clock()
        self._width = 0

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        from songmap.pipeline import _STAGE_WEIGHTS

        with self._lock:
            stage = stage_finished(self._fraction, fraction, _STAGE_WEIGHTS, self._seen)
            if stage is not None:
                self._seen.add(stage)
                self._stage = stage
            self._fraction = max(self._fraction, fraction)
        self._draw()

    def text(self) -> str:
        """The line as it is drawn now."""
        with self._lock:
            pct = int(self._fraction * 100)
            stage = _STAGE_WORDS.get(self._stage or "", "starting")
        seconds = self._clock() - self._t0
        return f"songmap: {printable(self.name)}  {pct:3d} %  {stage}  {seconds:.0f} s"

    def _draw(self) -> None:
        line = self.text()
        pad = max(0, self._width - len(line))
        self._width = len(line)
        try:
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: stop drawing, keep analysing
            self.enabled = False

    def _tick(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.enabled:
                self._draw()

    def __enter__(self) -> ProgressLine:
        if self.enabled:
            self._t0 = self._clock()
            self._draw()
            self._thread = threading.Thread(target=self._tick, name="songmap-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.enabled and self._width:
            try:  # erase the line: what follows (summary, error) starts on a clean line
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
            except (OSError, ValueError):
                pass
