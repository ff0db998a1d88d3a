"""Sub-frame beat times and the tempo map, on signals with known answers."""

import itertools

import numpy as np
import pytest

from songmap.rhythm.beats import NETWORK_LAG_S, grid_beat_times, refine_beat_times
from songmap.rhythm.tempo_map import (
    SNAP_TOLERANCE_S,
    WHOLE_BPM_DRIFT_S,
    beat_jitter,
    fit_tempo_map,
    place_on_grid,
    segment_beats,
    track_bpm,
)

FPS = 100.0


def peaks_at(times: np.ndarray, seconds: float, width_frames: float = 1.5) -> np.ndarray:
    """An activation with a Gaussian peak centred exactly at each time (between frames)."""
    frames = np.arange(int(seconds * FPS)) / FPS
    act = np.zeros(len(frames))
    for t in times:
        act = np.maximum(act, 0.9 * np.exp(-0.5 * ((frames - t) * FPS / width_frames) ** 2))
    return act


def test_refined_beats_land_between_frames_on_the_peaks():
    true = 1.0 + np.arange(40) * 60.0 / 128.0  # 128 BPM: beats fall anywhere between frames
    act = peaks_at(true, 22.0)
    on_frames = np.round(true * FPS) / FPS
    refined = refine_beat_times(on_frames, act, FPS, lag_s=0.0)
    # a parabola through three samples of a Gaussian finds its centre to a fraction of a ms
    assert np.abs(refined - true).max() < 0.0015
    assert np.abs(on_frames - true).max() > 0.004  # the frame grid alone was up to 5 ms off
    shifted = refine_beat_times(on_frames, act, FPS)
    np.testing.assert_allclose(shifted, refined - NETWORK_LAG_S)


def test_refinement_keeps_beats_without_a_peak_and_stays_increasing():
    beats = np.array([0.5, 1.0, 1.5])
    flat = np.full(300, 0.3)
    np.testing.assert_array_equal(refine_beat_times(beats, flat, FPS), beats)
    # two beats one frame apart under one peak may not cross each other
    close = refine_beat_times(np.array([1.0, 1.01]), peaks_at(np.array([1.004]), 3.0), FPS)
    assert close[0] < close[1]


def test_steady_beats_are_one_segment_on_one_line():
    rng = np.random.default_rng(1)
    true = 0.7 + np.arange(400) * 60.0 / 174.0
    tracked = true + rng.normal(0, 0.002, len(true))
    (seg,) = fit_tempo_map(tracked)
    assert seg.bpm == pytest.approx(174.0, abs=0.01) and seg.snapped
    assert (seg.first, seg.last, seg.beats) == (0, 399, 400)
    placed = place_on_grid(tracked, [seg])
    # the line is closer to the truth than the jittery beats it was fitted to
    assert np.abs(placed - true).max() < 0.002 < np.abs(tracked - true).max()


def test_tempo_step_and_ritardando_get_their_own_segments():
    step = np.concatenate([np.arange(64) * 0.5, 32.0 + np.arange(1, 65) * 60.0 / 132.0])
    segs = fit_tempo_map(step)
    assert [s.bpm for s in segs] == pytest.approx([120.0, 132.0], abs=0.01)
    assert segs[1].first == 64
    rit = np.cumsum(0.4 * 1.01 ** np.arange(80))  # 150 BPM slowing 1 % a beat
    segs = fit_tempo_map(rit)
    assert len(segs) > 4
    assert all(a.bpm > b.bpm for a, b in itertools.pairwise(segs))


def test_drifting_beats_are_not_forced_onto_a_line():
    # a band drifting slowly around 100 BPM (+-25 ms over minutes): no 12 ms grid holds it
    k = np.arange(300)
    drift = 0.025 * np.sin(2 * np.pi * k / 150)
    beats = 1.0 + k * 0.6 + drift
    segs = fit_tempo_map(beats)
    assert len(segs) > 1  # the drift is tempo change, not jitter around one tempo
    placed = place_on_grid(beats, segs)
    # the drift survives: no beat moved further than a snapped line allows, and the
    # result still departs from the average tempo's straight line as the band did
    assert np.abs(placed - beats).max() <= SNAP_TOLERANCE_S
    straight = 1.0 + k * 0.6
    assert np.abs(placed - straight).max() > 0.02
    assert track_bpm(segs, beats) == pytest.approx(100.0, abs=0.05)


def test_track_bpm_is_the_main_tempo():
    step = np.concatenate([np.arange(40) * 0.5, 20.0 + np.arange(1, 101) * 60.0 / 90.0])
    assert track_bpm(fit_tempo_map(step), step) == pytest.approx(90.0, abs=0.01)
    assert track_bpm([], np.zeros(0)) == 0.0


def test_jitter_ignores_a_tempo_step():
    rng = np.random.default_rng(2)
    beats = np.concatenate([np.arange(50) * 0.5, 25.0 + np.arange(50) * 0.45])
    noisy = beats + rng.normal(0, 0.003, len(beats))
    assert beat_jitter(noisy) == pytest.approx(0.003, rel=0.3)
    assert segment_beats(noisy) == [(0, 49), (50, 99)]


def test_grid_beat_times_stay_inside_the_track():
    true = 0.004 + np.arange(30) * 0.5
    act = peaks_at(true, 15.2)
    beats, segs, _ = grid_beat_times(np.round(true * FPS) / FPS, act, FPS, duration=14.51)
    assert beats[0] >= 0 and beats[-1] <= 14.51 and np.all(np.diff(beats) > 0)
    assert len(segs) == 1 and segs[0].bpm == pytest.approx(120.0, abs=0.01)


def test_bar_tempo_comes_from_snapped_segments():
    from songmap.rhythm.tempo_map import beat_tempi
    from songmap.timeline import TimelineBeats, build_timeline

    rng = np.random.default_rng(4)
    beats = 0.5 + np.arange(32) * 0.5 + rng.normal(0, 0.003, 32)
    segs = fit_tempo_map(beats)
    placed = place_on_grid(beats, segs)
    nan = np.full(32, np.nan)

    def bar_tempi(beat_tempo):
        beats = TimelineBeats(
            beat_times=placed, positions=np.tile([1, 2, 3, 4], 8), beat_confidence=np.ones(32),
            downbeat_confidence=np.ones(32), transient_times=nan, transient_strength=nan,
            transient_accuracy=nan, beat_tempo_bpm=beat_tempo)
        return build_timeline(beats, chord_segments=[], chroma=None, duration_s=17.0).bar_tempi

    assert segs[0].snapped
    np.testing.assert_allclose(bar_tempi(beat_tempi(segs, 32)), segs[0].bpm)
    # without a segment tempo the bar's own intervals count, last bar included
    assert bar_tempi(None)[:-1] == pytest.approx(segs[0].bpm, abs=0.01)
    unsnapped = [s.__class__(**{**s.__dict__, "snapped": False}) for s in segs]
    assert not beat_tempi(unsnapped, 32).any()


def test_isolated_bad_beats_do_not_split_a_steady_song():
    rng = np.random.default_rng(5)
    true = 0.3 + np.arange(200) * 60.0 / 128.0
    tracked = true + rng.normal(0, 0.002, len(true))
    # the tracker puts the last beat (a ring-out) and two single beats 25-30 ms off
    tracked[[0, 77, 150]] += [-0.025, 0.03, -0.028]
    tracked[-1] += 0.03
    from songmap.rhythm.tempo_map import outlier_beats

    assert set(np.nonzero(outlier_beats(tracked))[0]) == {0, 77, 150, 199}
    (seg,) = fit_tempo_map(tracked)
    assert seg.snapped and seg.bpm == pytest.approx(128.0, abs=0.01)
    # on the line, the bad beats are where the music is
    assert np.abs(place_on_grid(tracked, [seg]) - true).max() < 0.002


def test_a_jump_of_the_whole_pattern_is_no_outlier():
    # every beat from 60 on is 30 ms later (same tempo): a segment boundary, not outliers
    beats = 0.5 + np.arange(120) * 0.5
    beats[60:] += 0.03
    from songmap.rhythm.tempo_map import outlier_beats

    assert not outlier_beats(beats).any()
    segs = fit_tempo_map(beats)
    assert [s.first for s in segs] == [0, 60]


def test_a_bar_pattern_swaying_around_the_line_is_steady_but_a_drift_is_not():
    # the network hears beats 2 and 4 of every bar 30 ms later than 1 and 3
    k = np.arange(256)
    sway = np.tile([-0.015, 0.015, -0.015, 0.015], 64)
    (seg,) = fit_tempo_map(0.5 + k * 60.0 / 168.7 + sway)
    assert seg.snapped and seg.max_abs_s > SNAP_TOLERANCE_S
    assert seg.bpm == pytest.approx(168.7, abs=0.01)
    # the same sway on a slow drift of +-60 ms: the two-bar means leave any one line (a
    # drift within +-35 ms over the song is the tracker's wander: one line, see below)
    drift = 0.06 * np.sin(2 * np.pi * k / 128)
    assert len(fit_tempo_map(0.5 + k * 60.0 / 168.7 + sway + drift)) > 1


def test_beats_the_network_hardly_marks_do_not_break_a_steady_grid():
    # 120 BPM throughout; through a 16-beat break the tracker's beats wander by 20-30 ms
    # (the network hardly marks them), then the beat returns on the same line
    rng = np.random.default_rng(3)
    true = 0.5 + np.arange(200) * 0.5
    tracked = true + rng.normal(0, 0.002, len(true))
    brk = np.arange(90, 106)
    tracked[brk] += np.where(brk % 2 == 0, 0.028, -0.022)
    unheard = np.zeros(len(true), dtype=bool)
    unheard[brk] = True
    (seg,) = fit_tempo_map(tracked, unheard=unheard)
    assert seg.snapped and seg.bpm == pytest.approx(120.0, abs=0.01)
    np.testing.assert_allclose(place_on_grid(tracked, [seg]), true, atol=0.002)
    # the same wandering beats, heard: the grid does not snap through them
    assert not all(s.snapped for s in fit_tempo_map(tracked))
    # two unheard beats 60 ms off the line are other music: never moved that far onto it
    far = true + rng.normal(0, 0.002, len(true))
    far[[90, 91]] += 0.060
    segs = fit_tempo_map(far, unheard=np.isin(np.arange(len(far)), [90, 91]))
    assert np.abs(place_on_grid(far, segs) - far).max() <= 0.035


def test_a_phase_step_at_one_tempo_keeps_one_tempo():
    # 120 BPM throughout; the second section's beats sit 60 ms earlier (its drums are
    # placed earlier on the same grid), the first is tracked drifting 8 ms early (alone
    # its line says 120.02): two segments, one tempo, each on its own start
    rng = np.random.default_rng(5)
    true = 0.5 + np.arange(240) * 0.5
    true[120:] -= 0.060
    tracked = true + rng.normal(0, 0.003, len(true))
    tracked[:120] -= np.linspace(0.0, 0.008, 120)
    segs = fit_tempo_map(tracked)
    assert [(s.first, s.last) for s in segs] == [(0, 119), (120, 239)]
    assert segs[0].bpm == segs[1].bpm == pytest.approx(120.0, abs=0.015)
    assert all(s.snapped for s in segs)
    np.testing.assert_allclose(place_on_grid(tracked, segs), true, atol=0.008)
    # a real tempo step keeps both tempi
    step = np.concatenate([0.5 + np.arange(120) * 0.5, 60.5 + np.arange(1, 121) * 60 / 126])
    bpms = [s.bpm for s in fit_tempo_map(step + rng.normal(0, 0.003, len(step)))]
    assert bpms == pytest.approx([120.0, 126.0], abs=0.02)


def test_a_breakdown_between_drum_sections_on_one_line_keeps_their_line():
    # 120 BPM on one grid; a 32-beat breakdown the network hardly hears is tracked on its
    # arpeggio's accents, 80 ms off the grid, at the same tempo; the drums come back on it
    rng = np.random.default_rng(11)
    true = 0.5 + np.arange(160) * 0.5
    tracked = true + rng.normal(0, 0.002, len(true))
    quiet = slice(64, 96)
    tracked[quiet] += 0.080
    strength = np.full(len(true), 0.7)
    strength[quiet] = 0.12
    unheard = strength < 0.15
    (seg,) = fit_tempo_map(tracked, unheard=unheard, strength=strength)
    assert seg.snapped and seg.bpm == pytest.approx(120.0, abs=0.01)
    np.testing.assert_allclose(place_on_grid(tracked, [seg]), true, atol=0.003)
    # without the network's answers the breakdown keeps its own start
    assert len(fit_tempo_map(tracked, unheard=unheard)) == 3
    # heard nearly as well as the drums, the breakdown is music of its own
    louder = np.where(unheard, 0.5, strength)
    assert len(fit_tempo_map(tracked, unheard=unheard, strength=louder)) == 3
    # drums coming back off the line: the sections keep their own starts
    moved = tracked.copy()
    moved[96:] += 0.060
    segs = fit_tempo_map(moved, unheard=unheard, strength=strength)
    assert len(segs) == 3
    np.testing.assert_allclose(place_on_grid(moved, segs)[quiet], moved[quiet], atol=0.01)


def test_drum_sections_whose_lines_agree_keep_one_grid_through_their_breakdowns():
    # realmusic r02's shape: three drum sections on one 120 BPM grid, each tracked as the
    # network hears it (the first drifting 10 ms early over its 64 beats, the second
    # swaying 10 ms every other beat and entering 16 ms late), each alone on a line within
    # the snap tolerance; between them a 32-beat breakdown tracked 80 ms off the grid and
    # a 6-beat fill 40 ms off with one beat 95 ms off (too short to have a tempo of its own). Their
    # lines agree, so the song is one grid, though the beats on one line through all the
    # drums bend and sway beyond what a single segment's beats may
    rng = np.random.default_rng(3)
    true = 0.5 + np.arange(230) * 0.5
    tracked = true + rng.normal(0, 0.002, len(true))
    tracked[:64] -= np.linspace(0.0, 0.010, 64)
    tracked[96:160] += np.where(np.arange(64) % 2, -0.010, 0.006)
    tracked[96] += 0.016
    breakdown, fill = slice(64, 96), slice(160, 166)
    tracked[breakdown] += 0.080
    tracked[fill] += 0.040
    tracked[163] += 0.055
    strength = np.full(len(true), 0.7)
    strength[breakdown] = 0.12
    strength[fill] = 0.3
    unheard = strength < 0.15
    (seg,) = fit_tempo_map(tracked, unheard=unheard, strength=strength)
    assert seg.snapped and seg.bpm == pytest.approx(120.0, abs=0.01)
    np.testing.assert_allclose(place_on_grid(tracked, [seg]), true, atol=0.006)
    # the third section back 40 ms late: its line disagrees, it keeps its own start
    late = tracked.copy()
    late[166:] += 0.040
    segs = fit_tempo_map(late, unheard=unheard, strength=strength)
    assert len(segs) >= 2 and segs[-1].first >= 160
    np.testing.assert_allclose(place_on_grid(late, segs)[170:], true[170:] + 0.040, atol=0.008)


def test_an_intro_wandering_around_the_grid_of_the_song_joins_it():
    # realmusic r06's shape: 118.5 BPM throughout; in its 32-beat intro the network hears
    # every other beat 30 ms late (plus 6 ms of scatter), so the intro's own line holds
    # its beats no better than 24 ms; the grid of the 200 steady beats after it, carried
    # back, holds them around it: one segment, every beat on the grid
    rng = np.random.default_rng(0)
    period = 60.0 / 118.5
    true = 1.0 + np.arange(232) * period
    tracked = true + rng.normal(0, 0.002, len(true))
    wander = np.where(np.arange(32) % 2, 0.035, 0.005)
    tracked[:32] += wander + rng.normal(0, 0.006, 32)
    (seg,) = fit_tempo_map(tracked)
    assert seg.snapped and seg.bpm == pytest.approx(118.5, abs=0.01)
    np.testing.assert_allclose(place_on_grid(tracked, [seg]), true, atol=0.002)
    # an intro speeding up into the tempo (116 -> 118.5 BPM) moves away from that grid
    periods = np.concatenate([np.linspace(60.0 / 116.0, period, 32), np.full(199, period)])
    ramp = np.concatenate([[1.0], 1.0 + np.cumsum(periods)])
    ramp += rng.normal(0, 0.002, len(ramp))
    ramp[:32] += wander + rng.normal(0, 0.006, 32)
    segs = fit_tempo_map(ramp)
    assert len(segs) >= 2 and not segs[0].snapped and segs[-1].first >= 30


def wandering(true: np.ndarray, rng: np.random.Generator, *, sway: float) -> np.ndarray:
    """Beats tracked around ``true`` with a placement that wanders by up to ``sway`` (s)
    from one 12-beat pattern to the next (the tracker hears each drum pattern a little
    earlier or later) and 12 ms of jitter (blast beats, double bass: fof's Armygeddon
    scatters 12-25 ms within its segments)."""
    offsets = rng.uniform(-sway, sway, len(true) // 12 + 1)
    return true + np.repeat(offsets, 12)[:len(true)] + rng.normal(0, 0.012, len(true))


def test_beats_wandering_around_one_line_are_that_line():
    # a band on a 170 BPM click, tracked 20-25 ms early or late pattern by pattern
    rng = np.random.default_rng(8)
    true = 0.4 + np.arange(400) * 60.0 / 170.0
    tracked = wandering(true, rng, sway=0.025)
    (seg,) = fit_tempo_map(tracked)
    assert seg.snapped and seg.bpm == 170.0  # the click's whole tempo, not the fit's
    assert np.abs(tracked - true).max() > 0.03  # the tracked beats, 30+ ms off at times
    np.testing.assert_allclose(place_on_grid(tracked, [seg]), true, atol=0.006)
    # a click at 170.4 BPM keeps its own tempo: no line at 170 holds it
    off_whole = 0.4 + np.arange(400) * 60.0 / 170.4
    (seg,) = fit_tempo_map(wandering(off_whole, rng, sway=0.025))
    assert seg.snapped and seg.bpm == pytest.approx(170.4, abs=0.02)


def test_a_drifting_band_is_not_forced_onto_one_line():
    # the same wander on a band speeding up from 120 to 124 BPM over 300 beats: no line
    # holds it, the segments follow the drift
    rng = np.random.default_rng(9)
    period = 60.0 / np.linspace(120.0, 124.0, 300)
    true = 0.4 + np.concatenate([[0.0], np.cumsum(period[:-1])])
    tracked = wandering(true, rng, sway=0.025)
    segs = fit_tempo_map(tracked)
    assert len(segs) > 1
    assert np.abs(place_on_grid(tracked, segs) - true).max() < 0.05


def test_a_late_heard_intro_does_not_tilt_the_tempo():
    # 94.6 BPM throughout; the first 12 beats (an intro without drums) are heard 16 ms
    # late, the rest on time: one line would hold both within the snap tolerance only by
    # tilting (0.11 BPM off); the tempo is the two stretches' common slope
    rng = np.random.default_rng(17)
    true = 0.3 + np.arange(30) * 60.0 / 94.6
    tracked = true + rng.normal(0, 0.001, len(true))
    tracked[:12] += 0.016
    segs = fit_tempo_map(tracked)
    assert all(s.bpm == pytest.approx(94.6, abs=0.02) for s in segs if s.snapped)
    assert track_bpm(segs, place_on_grid(tracked, segs)) == pytest.approx(94.6, abs=0.02)


def test_track_bpm_leaves_out_a_loose_intro_off_the_grid():
    # a drumless intro tracked loosely (not snapped) and 16 ms late, then a steady song on
    # its line: the intro does not tilt the track's tempo
    from songmap.rhythm.tempo_map import TempoSegmentFit

    rng = np.random.default_rng(4)
    true = 0.3 + np.arange(30) * 60.0 / 94.6
    beats = true.copy()
    beats[:12] += 0.016 + rng.normal(0, 0.006, 12)
    segs = [TempoSegmentFit(0, 11, float(beats[0]), 94.43, 0.0057, 0.012, False),
            TempoSegmentFit(12, 29, float(true[12]), 94.6, 0.0027, 0.008, True)]
    assert track_bpm(segs, beats) == pytest.approx(94.6, abs=0.01)


def test_a_long_segment_between_hundredths_keeps_its_fitted_line():
    # 4.4 minutes at 106.5639 BPM: rounded to 106.56, its line would be ~4 ms off at the ends
    rng = np.random.default_rng(3)
    true = 0.4 + np.arange(470) * 60.0 / 106.5639
    (seg,) = fit_tempo_map(true + rng.normal(0, 0.001, len(true)))
    assert seg.snapped and seg.bpm == pytest.approx(106.56)
    assert np.abs(seg.times() - true).max() < 0.001
    assert 60.0 / seg.step_s != pytest.approx(106.56, abs=1e-6)


def test_a_tempo_the_beats_cannot_tell_from_a_whole_bpm_is_that_bpm():
    # 40 beats at 174.916 BPM: the 175 BPM line strays 3.2 ms at the ends (< 5 ms)
    short = 0.2 + np.arange(40) * 60.0 / 174.916
    (seg,) = fit_tempo_map(short)
    assert seg.bpm == 175.0 and seg.step_s == pytest.approx(60.0 / 175.0)
    assert np.abs(seg.times() - short).max() <= WHOLE_BPM_DRIFT_S
    assert track_bpm([seg], short) == 175.0
    # ten times as many beats tell it apart: the fitted tempo stays
    long = 0.2 + np.arange(400) * 60.0 / 174.916
    (seg,) = fit_tempo_map(long)
    assert seg.bpm == pytest.approx(174.92) and np.abs(seg.times() - long).max() < 1e-6
    assert track_bpm([seg], long) == pytest.approx(174.92)


def test_a_whole_bpm_that_would_break_the_grid_gives_way_to_the_fitted_line(monkeypatch):
    # were any whole BPM allowed, 119.4 BPM would be shown as 119 and its beats, 60 ms off
    # that line at the ends, would no longer snap: the fitted line is kept instead
    import songmap.rhythm.tempo_map as tm

    monkeypatch.setattr(tm, "WHOLE_BPM_DRIFT_S", 1.0)
    beats = 0.5 + np.arange(64) * 60.0 / 119.4
    (seg,) = fit_tempo_map(beats)
    assert seg.snapped and seg.bpm == pytest.approx(119.4)
