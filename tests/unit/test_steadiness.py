"""Steadiness: beats are heard where the network or the onsets mark them, and the
confidences shrink with the share of the music the heard beats span."""

from __future__ import annotations

import numpy as np
import pytest

from songmap.rhythm.steadiness import assess_grid, beat_coverage, heard_beats

FPS = 100.0


def peaks(times: np.ndarray, seconds: float, height: float) -> np.ndarray:
    x = np.full(int(seconds * FPS), 0.01)
    x[np.round(np.asarray(times) * FPS).astype(int)] = height
    return x


def test_beats_marked_by_the_network_are_heard_and_cover_the_song():
    beats = np.arange(0.5, 30.0, 0.5)
    act = peaks(beats, 31.0, 0.6)
    a = assess_grid(beat_times=beats, beat_activation=act, fps=FPS, music=(0.5, 30.0),
                    meter_confidence=1.0)
    assert a.heard.all()
    assert a.coverage > 0.95
    assert a.support == 1.0 and a.tempo_confidence(0.98) == pytest.approx(0.98)
    assert a.grid_confidence(a.tempo_confidence(0.98)) > 0.9


def test_onsets_make_beats_heard_when_the_network_is_quiet():
    beats = np.arange(0.5, 30.0, 0.5)
    quiet = peaks(beats, 31.0, 0.05)  # a drum-less song: the network barely marks it
    env = peaks(beats, 31.0, 0.8) + 0.02  # but every note starts on a beat
    assert not heard_beats(beats, quiet, FPS).any()
    assert heard_beats(beats, quiet, FPS, env, FPS).all()


def test_a_grid_through_a_beatless_stretch_loses_confidence():
    beats = np.arange(0.5, 60.0, 0.5)
    act = peaks(beats[beats < 20.0], 61.0, 0.6)  # a beat for 20 s, then a drone
    rng = np.random.default_rng(0)
    env = rng.random(int(61 * FPS)) * 0.2  # no onset stands out at the beats
    a = assess_grid(beat_times=beats, beat_activation=act, fps=FPS, music=(0.0, 60.0),
                    meter_confidence=1.0, onset_envelope=env, onset_fps=FPS)
    assert a.coverage == pytest.approx(20.0 / 60.0, abs=0.03)
    assert a.support == pytest.approx(a.coverage / 0.9)
    assert a.tempo_confidence(0.99) < 0.5 and a.meter_confidence < 0.5


def test_a_meter_the_user_fixed_keeps_its_confidence():
    beats = np.arange(0.5, 30.0, 0.5)
    a = assess_grid(beat_times=beats, beat_activation=np.zeros(3100), fps=FPS,
                    music=(0.0, 30.0), meter_confidence=1.0, meter_fixed=True)
    assert a.coverage == 0.0 and a.meter_confidence == 1.0


def test_coverage_counts_intervals_with_a_heard_end():
    beats = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    heard = np.array([True, False, False, False, True])
    assert beat_coverage(beats, heard, (0.0, 4.0)) == pytest.approx(0.5)
    assert beat_coverage(beats[:1], heard[:1], (0.0, 4.0)) == 0.0


def test_a_breakdown_put_on_its_drums_grid_is_heard_where_the_tracker_followed_it():
    """The pipeline on given network outputs: 120 BPM drums, then a 32-beat breakdown the
    network hears weakly on accents 80 ms late, then the drums again on the same grid.
    The breakdown is put on the grid (one tempo segment), and its beats still count as
    heard: they are placed by the grid, not unheard (the old check, at the placed beats,
    said 0.86)."""
    from scipy.ndimage import gaussian_filter1d

    from songmap.audio.decode import signal_from_array
    from songmap.pipeline import Analyzer
    from songmap.signals import Activations, NetworkOutputs

    sr = 22050
    grid = 1.0 + 0.5 * np.arange(160)
    quiet = (np.arange(160) >= 64) & (np.arange(160) < 96)
    accents = np.where(quiet, grid + 0.080, grid)
    seconds = grid[-1] + 2.0
    act = np.zeros((int(seconds * FPS), 2), np.float32)
    samples = np.zeros(int(seconds * sr), np.float32)
    for i, t in enumerate(accents):
        act[round(t * FPS), 1 if i % 4 == 0 else 0] = 0.12 if quiet[i] else 0.8
        samples[int(t * sr):int(t * sr) + 200] = 0.1 if quiet[i] else 0.5
    act = np.clip(gaussian_filter1d(act, 1.0, axis=0) * 2.5, 0, 1).astype(np.float32)
    chroma = Activations(np.full((int(seconds * 10), 12), 0.1, np.float32), 10.0)
    networks = NetworkOutputs(Activations(act, FPS), np.full(24, 1 / 24), chroma)
    result = Analyzer().analyze_audio(signal_from_array(samples, sr, target_sr=sr),
                                      networks=networks)
    beats = result.beat_times()
    assert len(result.tempo_map) == 1 and result.tempo.bpm == pytest.approx(120.0, abs=0.01)
    np.testing.assert_allclose(beats[quiet], grid[quiet], atol=0.005)
    assert result.tempo.confidence > 0.95 and result.grid_confidence > 0.95
