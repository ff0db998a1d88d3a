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


def test_loudness_curve_is_the_level_of_each_frame():
    from songmap.onsets import loudness_curve

    sr = 22050  # 220.5 samples per frame: frame edges fall between samples
    x = np.concatenate([np.full(sr, 0.5, np.float32), np.full(sr, 0.05, np.float32)])
    level = loudness_curve(x, sr)
    assert level.fps == 100.0 and len(level.values) == 200
    assert np.allclose(level.values[:99], 20 * np.log10(0.5), atol=1e-3)
    assert np.allclose(level.values[101:], 20 * np.log10(0.05), atol=1e-3)
    assert len(loudness_curve(np.zeros(0, np.float32), sr).values) == 0
