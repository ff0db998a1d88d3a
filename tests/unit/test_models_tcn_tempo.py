"""The 2019 multi-task TCNs' tempo head (``songmap.models.tcn_tempo``): its layers, its
input and the ensemble against madmom's own ``TCNBeatProcessor``."""

from __future__ import annotations

import numpy as np
import pytest

from songmap.models import tcn_tempo


def test_a_valid_convolution_is_onnxs_cross_correlation():
    rng = np.random.default_rng(0)
    for channels in (1, 3):
        x = rng.random((9, 7, channels)).astype(np.float32)
        w = rng.random((2, channels, 3, 2)).astype(np.float32)
        b = np.array([0.5, -1.0], np.float32)
        out = tcn_tempo._conv2d_valid(x, w, b)
        assert out.shape == (7, 6, 2)
        t, f, o = 4, 5, 1
        expected = sum(x[t + i, f + j, c] * w[o, c, i, j]
                       for c in range(channels) for i in range(3) for j in range(2)) + b[o]
        assert out[t, f, o] == pytest.approx(expected, rel=1e-5)


def test_a_dilated_convolution_keeps_the_length_and_reaches_its_taps():
    x = np.zeros((40, 1), np.float32)
    x[20, 0] = 1.0
    w = np.zeros((1, 1, 5), np.float32)
    w[0, 0, 0] = 1.0  # the first tap looks 2 * dilation frames back
    out = tcn_tempo._dilated(x, w, np.zeros(1, np.float32), 4)
    assert out.shape == (40, 1)
    assert np.flatnonzero(out[:, 0]).tolist() == [28]


def test_tempo_mass_sums_the_tempi_near_a_value():
    d = np.zeros(300)
    d[[80, 83, 84, 160, 166]] = 0.2
    assert tcn_tempo.tempo_mass(d, 80.0) == pytest.approx(0.4)  # 80 and 83 (within 3.2)
    assert tcn_tempo.tempo_mass(d, 160.0) == pytest.approx(0.4)  # 160 and 166 (within 6.4)
    assert tcn_tempo.tempo_mass(d, 400.0) == 0.0


@pytest.mark.models
@pytest.mark.reference
def test_the_tempo_distribution_is_madmoms(example_file):
    """Spectrogram, padding, the 8 networks and their mean softmax, on the bundled example,
    against madmom's ``TCNBeatProcessor(tasks=(1,))`` (what ``TCNTempoDetector`` reads)."""
    from madmom.audio.signal import Signal
    from madmom.features.beats import TCNBeatProcessor

    from songmap.audio import load_audio

    samples = load_audio(example_file).samples
    ours = tcn_tempo.tempo_distribution(samples, 44100)
    theirs = np.asarray(TCNBeatProcessor(tasks=(1,))(
        Signal(samples, sample_rate=44100, num_channels=1)), dtype=float)
    assert ours.shape == theirs.shape == (300,)
    assert np.abs(ours - theirs).max() < 1e-3
    assert int(np.argmax(ours)) == int(np.argmax(theirs))


def test_the_analysis_hands_the_tempo_networks_at_most_the_middle_of_a_long_recording(
        monkeypatch):
    """``pipeline._tempo_evidence``: computed once, on first use; the middle
    ``_TEMPO_EVIDENCE_MAX_S`` of a longer recording; none off 44.1 kHz."""
    from songmap.audio.decode import signal_from_array
    from songmap.pipeline import _TEMPO_EVIDENCE_MAX_S, _tempo_evidence

    heard: list[np.ndarray] = []

    def fake(samples, sr=44100, nets=None):
        heard.append(samples)
        return np.full(300, 1 / 300)

    monkeypatch.setattr(tcn_tempo, "tempo_distribution", fake)
    sr = 44100
    seconds = _TEMPO_EVIDENCE_MAX_S + 40.0
    ramp = (np.arange(int(seconds * sr)) / sr / seconds).astype(np.float32) * 0.5
    evidence = _tempo_evidence(signal_from_array(ramp, sr))
    assert heard == []  # nothing until asked
    assert evidence() is not None and evidence() is not None
    assert len(heard) == 1 and len(heard[0]) == int(_TEMPO_EVIDENCE_MAX_S * sr)
    assert heard[0][0] == pytest.approx(0.5 * 20.0 / seconds, abs=1e-4)  # from 20 s in
    short = ramp[: 10 * sr]
    assert _tempo_evidence(signal_from_array(short, sr))() is not None
    assert len(heard) == 2 and len(heard[1]) == 10 * sr  # a short recording whole
    other = signal_from_array(short, sr, target_sr=22050)
    assert other.sr == 22050 and _tempo_evidence(other)() is None
