"""Beat tracking and tempo on synthetic activations with known answers."""

import numpy as np
import pytest

from songmap.rhythm.beats import regrid_beats, track_beats
from songmap.rhythm.meter import infer_bars
from songmap.rhythm.tempo import estimate_tempo
from songmap.signals import Activations


def activation_for(beat_times, downbeat_times, seconds, fps=100.0):
    n = int(seconds * fps)
    act = np.zeros((n, 2), dtype=np.float32)
    for t in beat_times:
        act[int(round(t * fps)), 0] = 0.8
    for t in downbeat_times:
        i = int(round(t * fps))
        act[i, 0], act[i, 1] = 0.1, 0.8
    # the network's peaks are a few frames wide
    from scipy.ndimage import gaussian_filter1d

    act = gaussian_filter1d(act, 1.0, axis=0) * 2.5
    return Activations(np.clip(act, 0, 1).astype(np.float32), fps)


def test_120_bpm_beats_every_half_second():
    beats = 1.0 + 0.5 * np.arange(40)
    act = activation_for(beats, beats[::4], 22.0)
    tracked = track_beats(act)
    assert len(tracked) == 40
    assert np.abs(tracked - beats).max() <= 0.011
    assert abs(estimate_tempo(tracked).bpm - 120.0) < 0.5


def test_three_four_bars_from_activations():
    beats = 0.5 + 0.6 * np.arange(36)
    act = activation_for(beats, beats[1::3], 23.0)  # one pickup beat
    grid = infer_bars(track_beats(act), act.values[:, 0], act.values[:, 1], act.fps)
    assert grid.beats_per_bar == 3 and grid.label == "3/4"
    assert grid.positions[0] == 3 and grid.positions[1] == 1


def test_regrid_interpolates_between_tracked_beats():
    beats = np.array([0.0, 1.0, 2.0, 3.0])
    assert np.allclose(regrid_beats(beats, every=0.5), [0, 0.5, 1, 1.5, 2, 2.5, 3])
    assert np.allclose(regrid_beats(beats, every=1.5), [0, 1.5, 3])


def test_silence_gives_no_beats():
    act = Activations(np.zeros((1000, 2), dtype=np.float32), 100.0)
    assert len(track_beats(act)) == 0


def test_weak_answers_before_and_after_the_song_are_not_beats():
    beats = 3.0 + 0.5 * np.arange(30)
    act = activation_for(beats, beats[::4], 22.0)
    values = act.values.copy()
    for t in np.r_[0.25:2.9:0.5, 18.25:21.9:0.5]:  # noise and ring-out the network half-hears
        values[int(t * 100), 0] = 0.1
    tracked = track_beats(Activations(values, act.fps))
    assert tracked.min() > 2.9 and tracked.max() < 17.6
    assert len(tracked) == 30


def test_a_compound_song_tracked_in_eighths_is_tracked_again_at_its_beat():
    """6/8 whose eighths run at 255 BPM for 16 bars, then 212 BPM: the tracker cannot
    follow 255 BPM eighths, so the first half is tracked at another level; bars are
    decided on beats tracked again around the counted (dotted-quarter) tempo."""
    from songmap.rhythm.meter import track_bars

    eighths = np.concatenate([0.5 + 60 / 255 * np.arange(96),
                              0.5 + 60 / 255 * 96 + 60 / 212 * np.arange(96)])
    act = activation_for(eighths, eighths[::6], eighths[-1] + 1.0)
    grid = track_bars(act)
    counted = eighths[::3]
    assert grid.label == "6/8" and grid.beats_per_bar == 2
    hits = np.abs(grid.beat_times[:, None] - counted[None, :]).min(axis=1) < 0.07
    assert hits.mean() > 0.95 and len(grid.beat_times) >= 0.95 * len(counted)


def test_an_ambiguous_intro_takes_the_phase_of_the_song():
    from songmap.rhythm.beats import hold_phase

    fps, period = 100.0, 0.43
    song = np.arange(0.2, 60.0, period)  # the beat
    frames = np.arange(int(61 * fps)) / fps
    act = np.zeros(len(frames))
    for t in song:
        # intro (first 20 s): weak on the beat, stronger on the off-beat; then a clear beat
        on, off = (0.15, 0.3) if t < 20 else (0.8, 0.02)
        act = np.maximum(act, on * np.exp(-0.5 * ((frames - t) * fps / 1.5) ** 2))
        act = np.maximum(act, off * np.exp(-0.5 * ((frames - t - period / 2) * fps / 1.5) ** 2))
    # the tracker on the off-beats in the intro, sliding to the beat over three beats
    intro = song[song < 20] + period / 2
    slide = song[(song > 20) & (song < 21.2)] + np.array([0.15, 0.08])[: ((song > 20) & (song < 21.2)).sum()]
    body = song[song >= 21.2]
    tracked = np.concatenate([intro, slide, body])
    held = hold_phase(tracked, act, fps)
    assert len(held) == len(song) - 1  # the intro's first beat is not invented
    np.testing.assert_allclose(held, song[1:], atol=0.002)
    # a clear song (nothing on the off-beats) is left alone
    assert np.array_equal(hold_phase(body, act, fps), body)


def test_a_beat_dropped_through_a_break_is_restored_on_the_line():
    from songmap.rhythm.beats import hold_phase

    fps, period = 100.0, 0.5
    song = np.arange(0.3, 80.0, period)  # 120 BPM, one line throughout
    frames = np.arange(int(81 * fps)) / fps
    act = np.zeros(len(frames))
    for t in song:
        act = np.maximum(act, 0.8 * np.exp(-0.5 * ((frames - t) * fps / 1.5) ** 2))
    # through a break (beats 70-75) the tracker stretches four intervals over five beats
    before, after = song[:70], song[75:]
    stretched = before[-1] + (after[0] - before[-1]) * np.arange(1, 4) / 4
    tracked = np.concatenate([before, stretched, after])
    held = hold_phase(tracked, act, fps)
    np.testing.assert_allclose(held, song, atol=1e-9)
    # a squeezed-in extra beat is taken out the same way
    squeezed = before[-1] + (after[0] - before[-1]) * np.arange(1, 6) / 6
    held = hold_phase(np.concatenate([before, squeezed, after]), act, fps)
    np.testing.assert_allclose(held, song, atol=1e-9)
    # a real tempo change (the second part slower, on another line) is left alone
    slower = song[69] + 0.55 * np.arange(1, 40)
    changed = np.concatenate([before, slower])
    assert np.array_equal(hold_phase(changed, act, fps), changed)


SR = 22050


def notes_at(onsets: np.ndarray, *, slow: bool, seconds: float) -> np.ndarray:
    """Mono audio with a note at each onset: a pitched chord tone swelling over 40 ms
    (``slow``) or a decaying noise burst (a hi-hat)."""
    rng = np.random.default_rng(1)
    x = np.zeros(int(seconds * SR))
    for i, t in enumerate(onsets):
        n0, n = int(round(t * SR)), int(0.45 * SR)
        tt = np.arange(n) / SR
        if slow:
            f0 = (220.0, 277.2, 329.6)[i % 3]
            tone = sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in range(1, 8))
            env = np.minimum(tt / 0.04, 1.0) * np.exp(-tt / 0.3)
        else:
            tone, env = rng.normal(0.0, 1.0, n), np.exp(-tt / 0.03)
        env = env * np.minimum((tt[-1] - tt) / 0.02, 1.0)  # released, not cut off (a click)
        x[n0:n0 + n] += 0.2 * tone * env
    return x


def test_attack_feet_are_where_slow_and_sharp_notes_start():
    from songmap.rhythm.attacks import attack_feet

    onsets = 0.5 + 0.5 * np.arange(24)
    for slow in (True, False):
        feet = attack_feet(notes_at(onsets, slow=slow, seconds=13.0), SR, onsets + 0.012)
        assert np.abs(feet - onsets).max() < 0.002


def test_a_grid_heard_late_on_slow_attacks_moves_onto_them_and_drums_stay():
    from songmap.rhythm.beats import grid_beat_times

    onsets = 0.5 + 0.5 * np.arange(24)
    # the network peaks 12 ms after each slow attack starts, on time on the hits
    for slow, lag in ((True, 0.012), (False, 0.0)):
        heard = onsets + lag
        act = np.zeros(1300)
        act[np.round(heard * 100).astype(int)] = 0.9
        act = np.maximum(act, 0.5 * (np.roll(act, 1) + np.roll(act, -1)))
        audio = notes_at(onsets, slow=slow, seconds=13.0)
        without, _, _ = grid_beat_times(heard, act, 100.0, duration=13.0)
        beats, segs, _ = grid_beat_times(heard, act, 100.0, duration=13.0, samples=audio, sr=SR)
        assert len(segs) == 1 and segs[0].snapped
        if slow:  # the whole grid moves onto the attacks: about 10 ms earlier
            assert np.abs(beats - onsets).max() < 0.003
            assert np.median(without - beats) > 0.008
            assert segs[0].times() == pytest.approx(beats)
        else:
            np.testing.assert_array_equal(beats, without)


def test_a_grid_the_network_hears_weakly_and_late_still_moves_onto_its_attacks():
    from songmap.rhythm.beats import HEARD_ACTIVATION, grid_beat_times

    # a choir: the network answers below HEARD_ACTIVATION, 12 ms after each swell starts
    onsets = 0.5 + 0.5 * np.arange(24)
    heard = onsets + 0.012
    act = np.zeros(1300)
    act[np.round(heard * 100).astype(int)] = 0.5 * HEARD_ACTIVATION
    act = np.maximum(act, 0.5 * (np.roll(act, 1) + np.roll(act, -1)))
    audio = notes_at(onsets, slow=True, seconds=13.0)
    without, _, _ = grid_beat_times(heard, act, 100.0, duration=13.0)
    beats, _, _ = grid_beat_times(heard, act, 100.0, duration=13.0, samples=audio, sr=SR)
    assert np.median(without - onsets) > 0.008
    assert np.abs(np.median(beats - onsets)) < 0.003


def test_attacks_heard_weakly_are_looked_for_further_back():
    """Sung swells rising over 100 ms, the network's answer 80 ms after each starts: where
    it answers weakly, the grid finds the swells' starts a sixth of a beat back; where it
    answers clearly, the look stays 50 ms back and the grid stays."""
    from songmap.rhythm.beats import HEARD_ACTIVATION, grid_beat_times

    onsets = 0.5 + 0.8 * np.arange(24)
    audio = np.zeros(int(21.0 * SR))
    tt = np.arange(int(0.6 * SR)) / SR
    for i, t in enumerate(onsets):
        f0 = (220.0, 277.2, 329.6)[i % 3]
        tone = sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in range(1, 8))
        n0 = int(round(t * SR))
        audio[n0:n0 + len(tt)] += 0.2 * tone * np.minimum(tt / 0.1, 1.0) * np.exp(-tt / 0.5)
    heard = onsets + 0.08
    for height, moved in ((0.5 * HEARD_ACTIVATION, True), (0.9, False)):
        act = np.zeros(2100)
        act[np.round(heard * 100).astype(int)] = height
        act = np.maximum(act, 0.5 * (np.roll(act, 1) + np.roll(act, -1)))
        beats, _, _ = grid_beat_times(heard, act, 100.0, duration=21.0, samples=audio, sr=SR)
        if moved:
            assert np.abs(np.median(beats - onsets)) < 0.004
        else:
            assert np.median(beats - onsets) > 0.07


def test_the_grid_moves_onto_its_attacks_only_on_clear_evidence():
    from songmap.rhythm.attacks import SHARP_LAG_S, attack_shift

    rng = np.random.default_rng(2)
    assert attack_shift(-0.008 + rng.normal(0, 0.001, 40)) == pytest.approx(-0.008, abs=0.001)
    # feet a drum's few ms after the beats: the detector's lag on a sharp attack, no move
    assert attack_shift(0.003 + rng.normal(0, 0.0005, 40)) == 0.0
    # one sharp attack per beat, clearly after the beats: later, less the detector's lag
    assert attack_shift(0.02 + rng.normal(0, 0.0003, 40)) == pytest.approx(
        0.02 - SHARP_LAG_S, abs=0.0005)
    # late but scattered feet (a strum's strongest string): no move
    assert attack_shift(0.02 + rng.uniform(-0.012, 0.012, 40)) == 0.0
    assert attack_shift(-0.002 + rng.normal(0, 0.02, 40)) == 0.0  # scattered feet
    assert attack_shift(np.array([-0.01, -0.01, np.nan, np.nan])) == 0.0  # too few
