"""A LiveAnalyzer without networks, for the tests of the causal filter's turns (tempo steps,
bends): the front end, the beat networks and the filter are stand-ins that replay given
beats, and the stream carries a 120 BPM grid (beats on every half second)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from songmap.live.beats import TrackedBeat
from songmap.live.stream import BEAT_LAG_S, LiveAnalyzer

#: 10 ms blocks: one frame of the 100 fps activation each
BLOCK = 441


class ReplayFilter:
    """The causal beat filter replaying ``beats``: (time s on the audio's clock, BPM)."""

    def __init__(self, beats: list[tuple[float, float]]) -> None:
        self.beats, self.frame, self.bpm = beats, 0, 0.0

    def step(self, act: np.ndarray) -> list[TrackedBeat]:
        lo, hi = self.frame / 100.0, (self.frame + len(act)) / 100.0
        self.frame += len(act)
        out = [TrackedBeat(t + BEAT_LAG_S, bpm, 0.9) for t, bpm in self.beats
               if lo <= t + BEAT_LAG_S < hi]
        if out:
            self.bpm = out[-1].bpm
        return out

    def favour_grid(self, bpm: float, next_beat_s: float) -> None:
        """The window's pull: nothing to pull in a replay."""


def replay_stream(filter_beats: list[tuple[float, float]], *,
                  tempo_step: str = "causal") -> LiveAnalyzer:
    """A stream carrying a 120 BPM grid (beats on every half second), whose causal
    filter hears ``filter_beats``; no window analysis runs (the windows are driven by
    hand)."""
    live = LiveAnalyzer(object(), tempo_step=tempo_step)
    live._front = SimpleNamespace(push=lambda x: np.zeros((len(x) // BLOCK, 1)))
    live._net = SimpleNamespace(step=lambda feats, state: np.full(len(feats), 0.9))
    live._tracker = ReplayFilter(filter_beats)
    live._plan = (0.0, 0.5, 1.0, 1e9)
    live._next_analysis = 1e9
    return live


def emitted_beats(live: LiveAnalyzer, seconds: float) -> np.ndarray:
    """The times (s) of the beat events of ``seconds`` more of the stream."""
    events = []
    for _ in range(int(round(seconds * 100))):
        events += live.push(np.zeros(BLOCK, np.float32))
    return np.array([e.time for e in events if e.type == "beat"])
