"""songmap live: beats, bars, tempo, chords and key of a signal as it plays.

``LiveAnalyzer`` (``songmap.live.stream``) takes audio blocks and returns typed events
(``songmap.live.events``); ``songmap live`` is its command line (``songmap.cli.live_cmd``).
"""

from songmap.live.events import (
    BeatEvent,
    ChordEvent,
    DownbeatEvent,
    KeyEvent,
    LiveEvent,
    ReviseEvent,
    TempoEvent,
    WarningEvent,
)
from songmap.live.stream import LiveAnalyzer

__all__ = [
    "BeatEvent",
    "ChordEvent",
    "DownbeatEvent",
    "KeyEvent",
    "LiveAnalyzer",
    "LiveEvent",
    "ReviseEvent",
    "TempoEvent",
    "WarningEvent",
]
