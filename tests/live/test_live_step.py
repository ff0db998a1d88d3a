"""songmap.live: the causal filter's beats take over at a tempo step (no networks: the
front end, the beat networks and the filter are stand-ins that replay given beats)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from songmap.errors import InvalidParameterError
from songmap.live.grid import causal_step
from songmap.live.stream import LiveAnalyzer
from tests.live.replay import emitted_beats, replay_stream


def _step_at_4s() -> list[tuple[float, float]]:
    """120 BPM until 4 s, then 150 BPM (0.4 s beats): the filter follows at once."""
    return ([(0.5 * k, 120.0) for k in range(1, 9)]
            + [(4.0 + 0.4 * k, 150.0) for k in range(1, 8)])


def test_a_filter_beat_off_the_grid_at_another_tempo_is_a_step():
    grid = (0.0, 0.5)
    assert causal_step(4.4, 0.4, grid)  # 100 ms off, 20 % faster
    assert not causal_step(4.52, 0.4, grid)  # on the grid's beat (within 70 ms)
    assert not causal_step(4.4, 0.48, grid)  # 4 %: the filter's wobble on a steady song
    assert not causal_step(4.4, 0.333, grid)  # 3:2, another metrical level
    assert not causal_step(4.25, 0.25, grid)  # twice as fast: another level


def test_after_a_tempo_step_the_stream_emits_the_filter_s_beats():
    live = replay_stream(_step_at_4s(), tempo_step="causal")
    beats = emitted_beats(live, 6.5)
    new = 4.0 + 0.4 * np.arange(2, 7)  # every beat after the one that showed the step
    assert np.all(np.min(np.abs(beats[:, None] - new[None, :]), axis=0) < 0.011)
    assert not np.any(np.abs(beats - 5.0) < 0.05)  # the old grid's beat is not emitted


def test_without_it_the_grid_keeps_the_old_tempo():
    live = replay_stream(_step_at_4s(), tempo_step="window")
    beats = emitted_beats(live, 6.5)
    assert np.any(np.abs(beats - 5.0) < 0.011) and np.any(np.abs(beats - 6.0) < 0.011)
    assert not np.any(np.abs(beats - 5.2) < 0.05)


def test_a_steady_filter_leaves_the_grid():
    # a filter wobbling up to 90 ms off the grid, at its tempo's neighbouring states
    wobble = [(0.5 * k + (0.09 if k % 3 == 0 else 0.0), 120.0 if k % 2 else 124.0)
              for k in range(1, 14)]
    live = replay_stream(wobble, tempo_step="causal")
    beats = emitted_beats(live, 6.5)
    assert np.allclose(beats[beats > 1.0], 0.5 * np.arange(3, 14), atol=0.011)


def test_the_grid_returns_when_a_window_agrees_with_the_filter():
    live = replay_stream(_step_at_4s(), tempo_step="causal")
    emitted_beats(live, 4.5)
    assert live._step_windows == 0
    # a window of the last 4.4 s (from 0.1 s) whose beats are at 150 BPM up to 4.4 s
    window = SimpleNamespace(tempo=SimpleNamespace(bpm=150.0, confidence=0.9),
                             grid_confidence=0.9,
                             beat_times=lambda: 4.3 - 0.4 * np.arange(10)[::-1])
    live._guide_beats(window, 0.1, 4.5, 3.5)
    assert live._step_windows is None
    assert live._plan is not None and live._plan[1] == pytest.approx(0.4)


def test_tempo_step_is_checked():
    with pytest.raises(InvalidParameterError, match="tempo_step"):
        LiveAnalyzer(object(), tempo_step="tracker")


def test_a_filter_lagging_behind_the_windows_is_no_step():
    # the windows moved from 120 to 150 BPM at 4 s; the filter still beats at 120
    lagging = [(0.5 * k, 120.0) for k in range(1, 14)]
    live = replay_stream(lagging, tempo_step="causal")
    live._plan = (4.0, 0.4, 1.0, 1e9)
    live._left_period = 0.5
    beats = emitted_beats(live, 6.5)
    assert live._step_windows is None
    assert np.allclose(beats[beats > 4.1], 4.0 + 0.4 * np.arange(1, 7), atol=0.011)


def test_a_window_that_shows_the_step_inside_it_is_taken_at_once():
    from songmap.live.grid import GridChooser, window_step

    # 0.48 s beats until 11.2 s, then 0.405 s: the window's committed beats end with
    # two of the new tempo, its last second holds three more
    old = 11.2 - 0.48 * np.arange(8)[::-1]
    new = 11.2 + 0.405 * np.arange(1, 6)
    committed, later = np.concatenate([old, new[:2]]), new[2:]
    carried = (old[-1], 0.48)
    assert window_step(committed, later, carried, fit_tol_s=0.03)
    # a window that reads everything at another tempo shows no step
    other = 11.2 + 0.405 * np.arange(-9, 1)
    assert not window_step(other[:-3], other[-3:], carried, fit_tol_s=0.03)
    # nor does a steady one
    assert not window_step(old, 11.2 + 0.48 * np.arange(1, 3), carried, fit_tol_s=0.03)
    # the chooser takes the stepped window's grid without waiting for the next window
    proposed = (float(new[-1]), 0.405)
    chooser = GridChooser()
    chooser.choose(None, carried, now_s=11.0, weight=1.0)
    assert chooser.choose(carried, proposed, now_s=13.0, weight=1.0) == carried
    chooser = GridChooser()
    chooser.choose(None, carried, now_s=11.0, weight=1.0)
    assert chooser.choose(carried, proposed, now_s=13.0, weight=1.0, stepped=True) == proposed
