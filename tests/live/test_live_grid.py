"""songmap.live.grid: which beat grid the stream carries (no networks)."""

from __future__ import annotations

import numpy as np
import pytest

from songmap.errors import InvalidParameterError
from songmap.live.grid import (
    GridChooser,
    bent_grid,
    line_grid,
    next_beat,
    phase_offset,
    same_grid,
    tempo_bend,
)


def test_grid_helpers():
    assert next_beat((1.0, 0.5), 2.2) == pytest.approx(2.5)
    assert same_grid((0.0, 0.5), (10.02, 0.505), at_s=10.0)
    assert not same_grid((0.0, 0.5), (10.25, 0.5), at_s=10.0)  # the off-beat
    assert not same_grid((0.0, 0.5), (10.0, 0.25), at_s=10.0)  # another tempo
    assert phase_offset((0.0, 0.5), (0.3, 1.0)) == pytest.approx(-0.2)


def test_a_window_on_the_off_beat_waits_until_it_outweighs_the_song_so_far():
    chooser = GridChooser()
    song = (0.0, 0.5)
    carried = chooser.choose(None, song, now_s=5.0, weight=1.0)
    for now in range(6, 10):  # four windows agree: support 5
        carried = chooser.choose(carried, (now - 0.002, 0.5), now_s=now, weight=1.0)
    assert same_grid(carried, song, at_s=10.0)
    off = (10.25, 0.5)
    for now in range(10, 15):  # five off-beat windows: not yet more than 5
        assert same_grid(chooser.choose(carried, off, now_s=now, weight=1.0), song, at_s=now)
    assert chooser.choose(carried, off, now_s=15.0, weight=1.0) == off  # the sixth


def test_another_tempo_octave_needs_confirming_and_keeps_the_beats():
    chooser = GridChooser()
    half = (0.0, 1.0)  # the song read at half its tempo
    carried = chooser.choose(None, half, now_s=5.0, weight=1.0)
    # the window now hears the full tempo but puts its beats on the carried off-beats
    full_offbeat = (5.25, 0.5)
    assert chooser.choose(carried, full_offbeat, now_s=5.5, weight=1.0) == half
    assert chooser.choose(carried, full_offbeat, now_s=6.5, weight=1.0) == half
    taken = chooser.choose(carried, full_offbeat, now_s=7.5, weight=1.0)
    assert taken[1] == 0.5 and same_grid(taken, (0.0, 0.5), at_s=8.0)  # moved half a beat


def test_a_tempo_jump_is_taken_when_confirmed_or_when_the_causal_filter_agrees():
    chooser = GridChooser()
    carried = chooser.choose(None, (0.0, 0.5), now_s=5.0, weight=1.0)
    jump = (5.0, 0.46)  # 8 % faster
    assert chooser.choose(carried, jump, now_s=5.0, weight=1.0) == carried
    assert chooser.choose(carried, (6.01, 0.46), now_s=6.0, weight=1.0) == (6.01, 0.46)
    chooser = GridChooser()
    carried = chooser.choose(None, (0.0, 0.5), now_s=5.0, weight=1.0)
    assert chooser.choose(carried, jump, now_s=5.0, weight=1.0, causal_period_s=0.461) == jump


def test_grid_choice_is_checked():
    from songmap.errors import InvalidParameterError
    from songmap.live import LiveAnalyzer

    with pytest.raises(InvalidParameterError, match="grid_choice"):
        LiveAnalyzer(object(), grid_choice="latest")


def test_a_phase_that_lost_returns_with_what_it_had_earned():
    chooser = GridChooser()
    right, off = (0.0, 0.5), (0.25, 0.5)
    carried = chooser.choose(None, right, now_s=1.0, weight=1.0)
    for now in range(2, 5):  # support 4
        carried = chooser.choose(carried, right, now_s=now, weight=1.0)
    for now in range(5, 10):  # the off-beat wins on its fifth window (5 > 4)
        carried = chooser.choose(carried, off, now_s=now, weight=1.0)
    assert carried == off
    # back to the old phase: it had 4, so its second window (4 + 2 > 5) takes it, where
    # a phase starting from nothing would need six
    assert chooser.choose(carried, right, now_s=10.0, weight=1.0) == off
    assert chooser.choose(carried, right, now_s=11.0, weight=1.0) == right


def test_a_downbeat_between_the_emitted_beats():
    import numpy as np

    from songmap.live.grid import between_beats

    beats = np.arange(0.0, 10.0, 0.5)
    kw = {"period_s": 0.5, "beats_per_bar": 4}
    assert between_beats(6.25, beats, **kw)  # the off-beat
    assert not between_beats(6.04, beats, **kw)  # on a beat, a little late
    assert not between_beats(1.25, beats, **kw)  # the stream's first bar: not known
    gap = beats[(beats < 4.0) | (beats > 6.0)]
    assert not between_beats(6.75, gap, **kw)  # beats missing in the bar before
    assert not between_beats(6.25, np.array([]), **kw)


def _ritardando(n: int, *, period_s: float = 0.5, growth_s: float = 0.012) -> np.ndarray:
    """Beat times (s) of a tempo that slows down steadily: each period ``growth_s``
    longer than the one before."""
    return np.concatenate([[0.0], np.cumsum(period_s + growth_s * np.arange(n - 1))])


def test_a_steady_tempo_is_carried_as_a_line():
    beats = 10.0 + 0.5 * np.arange(8) + np.array([0, 3, -2, 1, -3, 2, 0, -1]) * 1e-3
    anchor, period = line_grid(beats, fit_tol_s=0.03)
    assert period == pytest.approx(0.5, abs=2e-3) and anchor == pytest.approx(13.5, abs=5e-3)
    later = 14.0 + 0.5 * np.arange(2)
    assert tempo_bend(beats, later, fit_tol_s=0.03) == 0


def test_a_ritardando_is_followed_along_its_curve():
    song = _ritardando(16)
    committed, later = song[:9], song[9:11]  # the window's committed beats, its last second
    assert tempo_bend(committed, later, fit_tol_s=0.03) == 1
    # the line through the committed beats falls behind the slowing beats; the curve not
    line = line_grid(committed, fit_tol_s=0.03)
    after = later[-1]
    curve = bent_grid(committed, after_s=after)
    assert curve is not None
    truth = song[song >= after][:3]

    def miss(grid):
        return max(abs(next_beat(grid, t - 0.5 * grid[1]) - t) for t in truth)

    assert miss(curve) < 0.02 and miss(line) > 0.1
    # speeding up: -1
    fast = 20.0 - song[::-1]
    assert tempo_bend(fast[:9], fast[9:11], fit_tol_s=0.03) == -1


def test_a_sway_is_no_bend_when_the_next_beats_stay_on_the_line():
    # beats pushed and dragged around a steady 0.35 s (a band's sway): the parabola
    # through them would bend, but the window's later beats are back on the line
    k = np.arange(12)
    beats = 0.35 * k + 0.004 * (k - 5.5) ** 2 - 0.004 * 5.5 ** 2
    later = 0.35 * np.arange(12, 15)
    assert tempo_bend(beats, later, fit_tol_s=0.03) == 0
    assert tempo_bend(beats, np.zeros(0), fit_tol_s=0.03) == 0  # nothing heard after


def test_grid_fit_is_checked():
    from songmap.live import LiveAnalyzer

    with pytest.raises(InvalidParameterError, match="grid_fit"):
        LiveAnalyzer(object(), grid_fit="quadratic")


def test_after_a_tempo_step_the_line_runs_through_the_beats_since():
    # 0.48 s beats, then 0.405 s from 11.2 s: the window's committed beats end with
    # two of the new tempo, its last second holds two more
    old = 11.2 - 0.48 * np.arange(8)[::-1]
    new = 11.2 + 0.405 * np.arange(1, 5)
    committed, later = np.concatenate([old, new[:2]]), new[2:]
    anchor, period = line_grid(committed, fit_tol_s=0.03, later_times=later)
    assert period == pytest.approx(0.405, abs=1e-3) and anchor == pytest.approx(new[-1], abs=1e-3)
    # without the later beats (or without runs) only the last 4 beats: old and new mixed
    assert line_grid(committed, fit_tol_s=0.03, later_times=later, run_beats=None)[1] > 0.42
    assert line_grid(committed, fit_tol_s=0.03)[1] > 0.42


def test_a_tempo_that_moved_in_the_window_s_last_second_is_followed():
    # a gentle ritardando (each period 4 ms longer): the window's committed beats
    # still hold one line within 30 ms, its last second's beats fall 44 and 68 ms
    # behind that line; the line through the run of the last beats misses the next
    # beat by 44 ms, the line through the committed beats alone by 96 ms
    song = _ritardando(13, growth_s=0.004)
    committed, later, following = song[:10], song[10:12], song[12]

    def miss(grid):
        return abs(next_beat(grid, following - 0.5 * grid[1]) - following)

    assert miss(line_grid(committed, fit_tol_s=0.03, later_times=later)) < 0.05
    assert miss(line_grid(committed, fit_tol_s=0.03, later_times=later, run_beats=None)) > 0.09
    # later beats still on the line: the line
    steady = 10.0 + 0.5 * np.arange(12)
    assert line_grid(steady[:10], fit_tol_s=0.03, later_times=steady[10:]) == (
        pytest.approx(14.5), pytest.approx(0.5))


def test_a_slow_song_s_window_carries_a_grid_from_four_beat_periods():
    from types import SimpleNamespace

    from songmap.live.stream import LiveAnalyzer

    # 55 BPM (1.09 s beats): the last 4 s before the committed end (11 s) hold 3 of the
    # window's beats, 4 beat periods hold 4
    period = 60.0 / 55.0
    beats = 7.9 + period * np.arange(-6, 4)
    window = SimpleNamespace(tempo=SimpleNamespace(bpm=55.0, confidence=0.9),
                             grid_confidence=0.9, beat_times=lambda: beats)
    live = LiveAnalyzer(object())
    live._guide_beats(window, 0.0, 12.0, 11.0)
    assert live._plan is not None and live._plan[1] == pytest.approx(period)
