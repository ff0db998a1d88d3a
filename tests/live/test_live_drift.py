"""songmap.live: the causal filter's beats take over where they drift away from the
carried grid as a bending tempo does (a closing ritardando). No networks: the front end,
the beat networks and the filter are stand-ins that replay given beats."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from songmap.live.grid import causal_drift
from tests.live.replay import emitted_beats, replay_stream


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
    live = replay_stream(rit)
    beats = emitted_beats(live, 8.5)
    # every beat after the two that showed the drift is the filter's
    later = np.array([t for t, _ in rit[10:]])
    assert np.all(np.min(np.abs(beats[:, None] - later[None, :]), axis=0) < 0.011)
    # and the grid's beats there (5.5, 6.0, ...: 90 ms and more early) are not emitted
    assert not np.any(np.abs(beats[:, None] - (5.5 + 0.5 * np.arange(6))[None, :]) < 0.011)
    # a filter at a steady distance from the grid leaves it: 30 ms early throughout at
    # a tempo 3.3 % faster (fof: armygeddon's filter on a right grid)
    live = replay_stream([(0.5 * k - 0.03, 124.0) for k in range(1, 14)])
    beats = emitted_beats(live, 6.5)
    assert live._step_windows is None
    assert np.allclose(beats[beats > 1.0], 0.5 * np.arange(3, 14), atol=0.011)


def test_a_window_agreeing_with_the_filter_does_not_end_a_drift_at_once():
    rit = _ritardando()
    live = replay_stream(rit)
    emitted_beats(live, 5.1)
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

