"""Descriptors on signals with known answers, and the stated formulas checked literally."""

from __future__ import annotations

import math

import numpy as np
import pytest

from songmap.descriptors import (
    compute_descriptors,
    integrated_loudness,
    k_weighting_coefficients,
    loudness_range,
    rhythm_scores,
    tempo_fit,
    true_peak,
)
from tests.export.helpers import make_result

SR = 48000


def sine(freq: float, seconds: float, amp: float, sr: int = SR, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * freq * t + phase)


def test_k_weighting_matches_bs1770_coefficients_at_48k():
    (b1, a1), (b2, a2) = k_weighting_coefficients(48000)
    np.testing.assert_allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-9)
    np.testing.assert_allclose(a1, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-9)
    np.testing.assert_allclose(b2, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(a2, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-9)


@pytest.mark.parametrize("amp_db", [0.0, -20.0, -40.0])
def test_1khz_sine_reads_its_level_minus_3_lu(amp_db):
    # BS.1770: a 0 dBFS 1 kHz sine in one channel measures -3.01 LUFS
    x = sine(997.0, 5.0, 10 ** (amp_db / 20))
    assert integrated_loudness(x, SR) == pytest.approx(amp_db - 3.01, abs=0.1)


def test_stereo_sums_channel_powers():
    x = sine(997.0, 5.0, 0.1)
    mono = integrated_loudness(x, SR)
    assert integrated_loudness(np.stack([x, x], axis=1), SR) == pytest.approx(mono + 3.01, abs=0.02)


def test_own_integrated_loudness_agrees_with_pyloudnorm():
    pyln = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((SR * 6, 2)) * 0.05
    noise[: SR * 2] *= 0.1  # a quiet start, so the relative gate matters
    for sr, x in ((SR, noise), (44100, noise[:44100 * 6])):
        assert integrated_loudness(x, sr) == pytest.approx(pyln.Meter(sr).integrated_loudness(x), abs=0.1)


def test_silence_has_no_loudness():
    assert integrated_loudness(np.zeros(SR * 2), SR) is None
    assert loudness_range(np.zeros(SR * 4), SR) is None


def test_loudness_range_of_two_levels_is_their_difference():
    steady = sine(997.0, 12.0, 0.1)
    assert loudness_range(steady, SR) == pytest.approx(0.0, abs=0.1)
    two = np.concatenate([sine(997.0, 12.0, 0.1), sine(997.0, 12.0, 0.1 * 10 ** (-10 / 20))])
    assert loudness_range(two, SR) == pytest.approx(10.0, abs=0.5)
    # 30 dB below is under the -20 LU relative gate: only the windows across the step count
    gated = np.concatenate([sine(997.0, 12.0, 0.1), sine(997.0, 12.0, 0.1 * 10 ** (-30 / 20))])
    assert loudness_range(gated, SR) < 10.0
    assert loudness_range(sine(997.0, 2.0, 0.1), SR) is None


def test_true_peak_finds_the_peak_between_samples():
    # fs/4 at 45 degrees: every sample is at +-0.707, the waveform peaks at 1.0
    x = sine(SR / 4, 1.0, 1.0, phase=np.pi / 4)
    assert np.abs(x).max() == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert 20 * np.log10(true_peak(x, SR)) == pytest.approx(0.0, abs=0.3)


def test_tempo_fit_values():
    assert tempo_fit(120) == pytest.approx(1.0)
    assert tempo_fit(60) == pytest.approx(math.exp(-2))
    assert tempo_fit(240) == pytest.approx(math.exp(-2))
    assert tempo_fit(0) == 0.0


def test_scores_follow_their_formulas():
    times = [0.5 + 0.5 * i for i in range(16)]
    r = make_result(times, [1, 2, 3, 4] * 4, duration=9.0)  # strength 0.8, confidence 0.9
    s = rhythm_scores(r, -12.0)
    assert s["loudness_score"] == pytest.approx(28 / 35)
    assert s["onset_density"] == pytest.approx(16 / 9 / 8)
    assert s["energy"] == pytest.approx(0.6 * 28 / 35 + 0.4 * 16 / 9 / 8)
    assert s["danceability"] == pytest.approx(0.35 * 0.8 + 0.25 * 0.95 + 0.2 * 0.9 + 0.2 * 1.0)
    assert all(0.0 <= v <= 1.0 for v in s.values())


def test_no_beats_means_no_danceability_and_silence_no_energy():
    r = make_result([], [], duration=5.0, key="N")
    d = compute_descriptors(np.zeros(SR * 5), SR, r)
    assert d["danceability"] == 0.0 and d["energy"] == 0.0
    assert d["integrated_lufs"] is None and d["replaygain_track_gain_db"] is None


def test_louder_denser_track_has_more_energy():
    times = [0.5 + 0.5 * i for i in range(16)]
    r = make_result(times, [1, 2, 3, 4] * 4, duration=9.0)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR * 9) * 0.01
    quiet = compute_descriptors(noise, SR, r)
    loud = compute_descriptors(noise * 20, SR, r)
    assert loud["energy"] > quiet["energy"]
    assert loud["integrated_lufs"] == pytest.approx(quiet["integrated_lufs"] + 26.02, abs=0.05)
    assert loud["replaygain_track_gain_db"] == pytest.approx(-18 - loud["integrated_lufs"], abs=0.01)


def test_descriptors_of_the_bundled_example(example_file, golden_result):
    import soundfile as sf

    x, sr = sf.read(example_file, always_2d=True)
    d = compute_descriptors(x, sr, golden_result)
    assert -30 < d["integrated_lufs"] < -10
    assert d["true_peak_dbtp"] >= d["sample_peak_dbfs"] - 1e-6
    assert d["key_camelot"] == golden_result.key.camelot
    assert d["tempo_alternative_bpm"] == golden_result.tempo.alternative_bpm
    for k in ("energy", "danceability", "beat_strength", "pulse_clarity", "tempo_fit"):
        assert 0.0 <= d[k] <= 1.0, k
    # a steady 120 BPM drum pattern with a transient on every beat is very danceable
    assert d["danceability"] > 0.8
