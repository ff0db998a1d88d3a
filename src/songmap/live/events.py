"""The events a live analysis emits: small frozen values with a JSON form.

Every event has ``time`` (seconds of audio, from the stream's first sample, that it refers
to) and ``delay`` (seconds of audio that had been read past ``time`` when it was emitted;
0 or more). ``to_dict()`` gives the JSON line ``songmap live --json`` prints, e.g.
``{"type": "beat", "time": 12.345, "delay": 0.031, "bar": 7, "beat": 2, "confidence": 0.93}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class LiveEvent:
    type: ClassVar[str] = "event"
    time: float
    delay: float

    def to_dict(self) -> dict:
        """The event as a JSON-ready dict: ``type`` first, seconds rounded to 1 ms."""
        out: dict = {"type": self.type}
        for key, value in asdict(self).items():
            out[key] = round(value, 3 if key in ("time", "delay", "start") else 4) \
                if isinstance(value, float) else value
        return out


@dataclass(frozen=True)
class BeatEvent(LiveEvent):
    """A beat, emitted as it is heard; ``bar`` (0: before the first downbeat) and ``beat``
    (1-based position in the bar) come from the bar grid known then and may be revised."""

    type: ClassVar[str] = "beat"
    bar: int
    beat: int
    confidence: float


@dataclass(frozen=True)
class DownbeatEvent(LiveEvent):
    """The first beat of bar ``bar``; ``beats_per_bar`` of the meter it was read in."""

    type: ClassVar[str] = "downbeat"
    bar: int
    beats_per_bar: int
    confidence: float


@dataclass(frozen=True)
class TempoEvent(LiveEvent):
    """The current tempo (BPM) from ``time`` on."""

    type: ClassVar[str] = "tempo"
    bpm: float
    confidence: float


@dataclass(frozen=True)
class ChordEvent(LiveEvent):
    """A chord (Harte label, ``N`` for none) starting at ``time``."""

    type: ClassVar[str] = "chord"
    label: str
    confidence: float


@dataclass(frozen=True)
class KeyEvent(LiveEvent):
    """The running key estimate (``"A minor"``) from the audio up to ``time``."""

    type: ClassVar[str] = "key"
    label: str
    confidence: float


@dataclass(frozen=True)
class ReviseEvent(LiveEvent):
    """A correction of an earlier ``of`` event (``"beat"``) at ``time``: its bar and beat
    position as now known."""

    type: ClassVar[str] = "revise"
    of: str
    bar: int
    beat: int


@dataclass(frozen=True)
class WarningEvent(LiveEvent):
    """Something the listener should know about the analysis itself (``message``), e.g.
    that it fell behind real time and dropped to cheaper evidence."""

    type: ClassVar[str] = "warning"
    message: str
