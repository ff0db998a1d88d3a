"""songmap.live: the causal filter's beats take over where they drift away from the
carried grid as a bending tempo does (a closing ritardando). No networks: the front end,
the beat networks and the filter are stand-ins that replay given beats."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from songmap.live.beats import TrackedBeat
from songmap.live.grid import causal_drift
from songmap.live.stream import BEAT_LAG_S, LiveAnalyzer

#: 10 ms blocks: one frame of the 100 fps activation each
_BLOCK = 441


class _Filter:
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


def _stream(filter_beats: list[tuple[float, float]], *, tempo_step: str = "causal") -> LiveAnalyzer:
    """A stream carrying a 120 BPM grid (beats on every half second), whose causal
    filter hears ``filter_beats``; no window analysis runs unless driven by hand."""
    live = LiveAnalyzer(object(), tempo_step=tempo_step)
    live._front = SimpleNamespace(push=lambda x: np.zeros((len(x) // _BLOCK, 1)))
    live._net = SimpleNamespace(step=lambda feats, state: np.full(len(feats), 0.9))
    live._tracker = _Filter(filter_beats)
    live._plan = (0.0, 0.5, 1.0, 1e9)
    live._next_analysis = 1e9
    return live


def _beats(live: LiveAnalyzer, seconds: float) -> np.ndarray:
    events = []
    for _ in range(int(round(seconds * 100))):
        events += live.push(np.zeros(_BLOCK, np.float32))
    return np.array([e.time for e in events if e.type == "beat"])


def _ritardando() -> list[tuple[float, float]]:
    """120 BPM until 4 s, then each beat 3 % longer than the one before (the filter
    follows it, its tempo that of the last interval; 15 and 45 ms behind the grid at
    the first two beats, less than a tempo step's 70 ms)."""
    beats = [(0.5 * k, 120.0) for k in range(1, 9)]
    t, gap = 4.0, 0.5
    for _ in range(7):
        gap *= 1.03
        t += gap
        beats.append((t, 60.0 / gap))
    return beats


def test_beats_moving_away_from_the_grid_as_the_tempo_bends_are_a_drift():
    # 20 ms then 60 ms late, the filter 9 % slower than the 0.5 s grid
    assert causal_drift(np.array([0.02, 0.06]), 0.09, period_s=0.5)
    assert causal_drift(np.array([-0.02, -0.06]), -0.09, period_s=0.5)  # speeding up
    # a steady distance, as the filter keeps on a steady real song, is no drift
    assert not causal_drift(np.array([-0.03, -0.035]), -0.035, period_s=0.5)
    # the tempo moved the other way, or too little
    assert not causal_drift(np.array([0.02, 0.06]), -0.05, period_s=0.5)
    assert not causal_drift(np.array([0.02, 0.06]), 0.02, period_s=0.5)
    # a third of a period away: the off-beat or another level, not a bend
    assert not causal_drift(np.array([0.02, 0.17]), 0.09, period_s=0.5)
    # one beat is not enough
    assert not causal_drift(np.array([0.06]), 0.09, period_s=0.5)


def test_in_a_ritardando_the_stream_emits_the_filter_s_beats():
    rit = _ritardando()
    live = _stream(rit)
    beats = _beats(live, 8.5)
    # every beat after the two that showed the drift is the filter's
    later = np.array([t for t, _ in rit[10:]])
    assert np.all(np.min(np.abs(beats[:, None] - later[None, :]), axis=0) < 0.011)
    # and the grid's beats there (5.5, 6.0, ...: 90 ms and more early) are not emitted
    assert not np.any(np.abs(beats[:, None] - (5.5 + 0.5 * np.arange(6))[None, :]) < 0.011)
    # a filter at a steady distance from the grid leaves it: 30 ms early throughout at
    # a tempo 3.3 % faster (fof: armygeddon's filter on a right grid)
    live = _stream([(0.5 * k - 0.03, 124.0) for k in range(1, 14)])
    beats = _beats(live, 6.5)
    assert live._step_windows is None
    assert np.allclose(beats[beats > 1.0], 0.5 * np.arange(3, 14), atol=0.011)


def test_a_window_agreeing_with_the_filter_does_not_end_a_drift_at_once():
    rit = _ritardando()
    live = _stream(rit)
    _beats(live, 5.1)
    assert live._step_windows == 0 and live._drifting
    # a window that has followed the bend halfway: its grid agrees with the filter's
    # tempo within 5 % and its last beat is the filter's; after a step it would end
    # the filter's turn
    last = rit[9][0]
    window = SimpleNamespace(tempo=SimpleNamespace(bpm=112.0, confidence=0.9),
                             grid_confidence=0.9,
                             beat_times=lambda: last - 0.1 - 60.0 / 112.0 * np.arange(10)[::-1])
    live._guide_beats(window, 0.1, 5.1, 4.1)
    assert live._step_windows == 1  # still the filter's beats

