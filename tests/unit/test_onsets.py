import numpy as np

from songmap.onsets import detect_onsets, nearest_transients, onset_envelope
from tests.conftest import click_track


def test_clicks_are_found_where_they_are():
    sr = 44100
    audio = click_track(120.0, 10.0, sr)
    env = onset_envelope(audio, sr)
    onsets = detect_onsets(env)
    expected = np.arange(0.5, 9.9, 0.5)
    assert len(onsets) == len(expected)
    assert np.abs(onsets - expected).max() <= 0.02


def test_nearest_transient_within_window_only():
    env = onset_envelope(click_track(120.0, 4.0), 44100)
    onsets = np.array([0.5, 1.0, 1.5])
    t, _s, acc = nearest_transients(np.array([0.51, 1.2, 1.5]), onsets, env, window_s=0.07)
    assert t[0] == 0.5 and np.isnan(t[1]) and t[2] == 1.5
    assert acc[2] == 1.0 and 0 < acc[0] < 1


def test_transients_move_to_their_attack_starts_and_their_accuracy_follows():
    from songmap.onsets import onto_attack_starts
    from songmap.rhythm.attacks import attack_feet

    sr = 44100
    audio = click_track(120.0, 4.0, sr)
    beats = np.array([0.5, 1.0, 1.5, 2.0])
    onsets = detect_onsets(onset_envelope(audio, sr))
    t, _s, acc = nearest_transients(beats, onsets, onset_envelope(audio, sr), window_s=0.07)
    # the detected onsets sit on the envelope's 10 ms frames, before the clicks
    assert np.all(t < beats - 0.005)
    starts = attack_feet(audio, sr, beats)
    moved, moved_acc = onto_attack_starts(beats, t, starts, duration=4.0, window_s=0.07)
    assert np.abs(moved - beats).max() < 0.003
    assert np.all(moved_acc > acc) and np.all(moved_acc > 0.95)
    # an attack start far from the detected transient (another attack), or none, or
    # no transient at all: the transient stays as it was
    far = starts + np.array([0.04, 0.0, 0.0, 0.0])
    far[1] = np.nan
    t[2] = np.nan
    kept, kept_acc = onto_attack_starts(beats, t, far, duration=4.0, window_s=0.07)
    assert kept[0] == t[0] and kept[1] == t[1] and np.isnan(kept[2]) and np.isnan(kept_acc[2])
    assert kept[3] == moved[3]
    # an attack start outside the track (sought in the silence before it) is not used
    t[0] = 0.01
    edge, _ = onto_attack_starts(beats, t, np.array([-0.004, np.nan, np.nan, np.nan]),
                                 duration=4.0, window_s=0.07)
    assert edge[0] == 0.01


def test_loudness_curve_is_the_level_of_each_frame():
    from songmap.onsets import loudness_curve

    sr = 22050  # 220.5 samples per frame: frame edges fall between samples
    x = np.concatenate([np.full(sr, 0.5, np.float32), np.full(sr, 0.05, np.float32)])
    level = loudness_curve(x, sr)
    assert level.fps == 100.0 and len(level.values) == 200
    assert np.allclose(level.values[:99], 20 * np.log10(0.5), atol=1e-3)
    assert np.allclose(level.values[101:], 20 * np.log10(0.05), atol=1e-3)
    assert len(loudness_curve(np.zeros(0, np.float32), sr).values) == 0
