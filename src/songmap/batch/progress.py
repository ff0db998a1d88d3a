"""What a batch shows while it runs: a one-line bar on a terminal, log lines otherwise."""

from __future__ import annotations

import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from songmap.terminal import printable


@dataclass
class Failure:
    path: str
    kind: str
    message: str


@dataclass
class BatchSummary:
    """What a batch did. ``ok`` counts files analysed now, ``skipped`` files whose result
    was already in the store."""

    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    audio_seconds: float = 0.0  # analysed in this run (skipped files not included)
    wall_seconds: float = 0.0
    interrupted: bool = False

    @property
    def done(self) -> int:
        return self.ok + self.skipped + self.failed

    @property
    def exit_code(self) -> int:
        """0 if nothing failed, 1 if some file failed, 130 if interrupted."""
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def format(self) -> str:
        rate = ""
        if self.ok and self.wall_seconds > 0:
            per_h = 3600.0 / self.wall_seconds
            rate = (f"; {self.ok * per_h:.0f} tracks/hour, "
                    f"{self.audio_seconds / 3600 * per_h:.1f} audio hours/hour")
        head = "interrupted" if self.interrupted else "done"
        lines = [
            f"batch {head}: {self.done}/{self.total} files in {_hms(self.wall_seconds)}: "
            f"{self.ok} ok, {self.failed} failed, {self.skipped} skipped (already in the store)"
            f"; {self.audio_seconds / 3600:.2f} audio hours analysed{rate}"
        ]
        if self.failures:
            lines.append("failed:")
            lines += [printable(f"  {f.path}: {f.kind}: {f.message}") for f in self.failures]
        if self.interrupted:
            lines.append("run the same command again to continue; finished files are kept")
        return "\n".join(lines)


class Progress:
    """Feeds on outcomes; draws on ``stream``. ``tty`` None: ask the stream."""

    #: Seconds of completions the "current rate" is measured over.
    WINDOW_S = 120.0

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None,
                 quiet: bool = False, show_summary: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet  # no bar or lines while running
        self.show_summary = show_summary
        self.total = 0
        self.summary: BatchSummary | None = None
        self._t0 = time.monotonic()
        self._recent: deque[float] = deque()
        self._last_draw = 0.0
        self._drawn = False

    def start(self, summary: BatchSummary) -> None:
        self.summary = summary
        self._t0 = time.monotonic()
        if not self.tty and not self.quiet:
            self._line(f"songmap batch: {summary.total} files")

    def record(self, status: str, path: str, *, audio_seconds: float = 0.0,
               wall_seconds: float = 0.0, error: str | None = None) -> None:
        now = time.monotonic()
        if status == "ok":
            self._recent.append(now)
        if self.quiet:
            return
        if self.tty:
            self.draw(force=status == "failed")
            return
        s = self.summary
        count = f"[{s.done}/{s.total}]" if s else ""
        if status == "ok":
            detail = f"({audio_seconds / 60:.1f} min audio, {wall_seconds:.1f} s)"
        elif status == "skipped":
            detail = "(already in the store)"
        else:
            detail = f"({error})"
        self._line(printable(f"songmap batch: {count} {status} {path} {detail}"))

    def rate_per_s(self) -> float:
        """Files analysed per second, over the last ``WINDOW_S`` (or since the start)."""
        now = time.monotonic()
        while self._recent and now - self._recent[0] > self.WINDOW_S:
            self._recent.popleft()
        span = min(now - self._t0, self.WINDOW_S)
        return len(self._recent) / span if span > 0 else 0.0

    def status_line(self) -> str:
        s = self.summary
        if s is None:
            return ""
        rate = self.rate_per_s()
        left = s.total - s.done
        eta = _hms(left / rate) if rate > 0 else "--"
        return (f"{s.done}/{s.total} files  {s.audio_seconds / 3600:.2f} h audio  "
                f"{rate * 3600:.0f} files/h  ETA {eta}  "
                f"ok {s.ok}  failed {s.failed}  skipped {s.skipped}")

    def draw(self, *, force: bool = False) -> None:
        """Redraw the bar (at most 5 times a second unless forced)."""
        if not self.tty or self.quiet or self.summary is None:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        s = self.summary
        width = shutil.get_terminal_size((100, 20)).columns
        text = self.status_line()
        bar_w = max(10, min(30, width - len(text) - 4))
        filled = int(bar_w * s.done / s.total) if s.total else bar_w
        line = f"[{'#' * filled}{'.' * (bar_w - filled)}] {text}"
        self.stream.write("\r" + line[: width - 1].ljust(width - 1))
        self.stream.flush()
        self._drawn = True

    def finish(self, summary: BatchSummary) -> None:
        if self.tty and self._drawn:
            self.draw(force=True)
            self.stream.write("\n")
        if self.show_summary:
            self._line(summary.format())

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
