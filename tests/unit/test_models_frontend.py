"""songmap's vectorised front ends against madmom's processors on short signals."""

from __future__ import annotations

import numpy as np
import pytest

from songmap.examples import render_song
from songmap.models import frontend

SR = 44100


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    s = render_song(bpm=126.0, bars=3, sr=SR, seed=5)
    return s.samples[: int(5.3 * SR)]  # not a whole number of hops


def _madmom_signal(x: np.ndarray):
    from madmom.audio.signal import Signal

    return Signal(np.ascontiguousarray(x, dtype=np.float32), sample_rate=SR)


@pytest.mark.reference
def test_downbeat_features_match_madmom(song):
    from madmom.features.downbeats import RNNDownBeatProcessor

    pre = RNNDownBeatProcessor().processors[0]
    ref = np.asarray(pre(_madmom_signal(song)), dtype=np.float32)
    ours = frontend.downbeat_features(song, sr=SR)
    assert ours.shape == ref.shape == (int(np.ceil(len(song) / 441)), 314)
    assert np.abs(ours - ref).max() < 1e-4


@pytest.mark.reference
def test_chroma_spectrogram_matches_madmom_and_feeds_key(song):
    from madmom.audio.chroma import DeepChromaProcessor
    from madmom.features.key import CNNKeyRecognitionProcessor

    sig = _madmom_signal(song)
    chroma_ref = sig
    for proc in DeepChromaProcessor().processors[:4]:
        chroma_ref = proc(chroma_ref)
    key_ref = sig
    for proc in CNNKeyRecognitionProcessor().processors[:4]:
        key_ref = proc(key_ref)
    ours = frontend.chroma_spectrogram(song, sr=SR)
    assert ours.shape == np.asarray(chroma_ref).shape
    assert np.abs(ours - chroma_ref).max() < 1e-4
    # the key network's 5 fps frames are the even 10 fps frames
    assert np.abs(ours[::2] - key_ref).max() < 1e-4


def test_stft_frames_are_centred_on_hops():
    # an impulse at sample 3 * hop shows a flat spectrum in frame 3, none in frames 0 and 6
    hop, size = 441, 1024
    x = np.zeros(10 * hop, np.float32)
    x[3 * hop] = 1.0
    mags = np.concatenate([m for _, m in frontend.stft_magnitude_blocks(x, frame_size=size, hop=hop,
                                                                        block_frames=4)])
    assert mags.shape == (10, size // 2)
    np.testing.assert_allclose(mags[3], np.hanning(size)[size // 2], atol=1e-6)  # window centre
    assert mags[0].max() == 0 and mags[6].max() == 0


def test_positive_difference():
    spec = np.array([[1.0], [3.0], [2.0], [5.0]], np.float32)
    np.testing.assert_array_equal(frontend.positive_difference(spec, 1)[:, 0], [0, 2, 0, 3])
    np.testing.assert_array_equal(frontend.positive_difference(spec, 2)[:, 0], [0, 0, 1, 2])


def test_non_integer_hop_is_refused():
    with pytest.raises(ValueError, match="whole number"):
        frontend.downbeat_features(np.zeros(22050, np.float32), sr=22050, fps=100.0 * 2 / 3)


@pytest.mark.reference
@pytest.mark.parametrize("frame_size, sr, bands, fmin, fmax", [
    (1024, 44100, 3, 30.0, 17000.0), (2048, 44100, 6, 30.0, 17000.0),
    (4096, 44100, 12, 30.0, 17000.0), (8192, 44100, 24, 65.0, 2100.0),
    (2048, 22050, 12, 30.0, 11000.0), (4096, 48000, 24, 20.0, 20000.0),
])
def test_log_filterbank_equals_madmoms(frame_size, sr, bands, fmin, fmax):
    from madmom.audio.filters import LogarithmicFilterbank
    from madmom.audio.stft import fft_frequencies

    ref = np.asarray(LogarithmicFilterbank(
        fft_frequencies(frame_size // 2, sr), num_bands=bands, fmin=fmin, fmax=fmax,
        norm_filters=True, unique_filters=True), dtype=np.float32)
    ours = frontend.log_filterbank(frame_size, sr, bands, fmin, fmax)
    np.testing.assert_array_equal(ours, ref[:len(ours)])
    assert not ref[len(ours):].any()


def test_log_filterbank_bands_are_unit_area_triangles_on_log_centres():
    fb = frontend.log_filterbank(8192, 44100, 24, 65.0, 2100.0)
    np.testing.assert_allclose(fb.sum(axis=0), 1.0, rtol=1e-6)
    peaks = np.argmax(fb, axis=0)
    assert (np.diff(peaks) > 0).all()  # one band per distinct centre bin, rising
    # 24 bands per octave: peak frequencies an octave apart are 24 bands apart
    freqs = frontend.fft_bin_frequencies(4096, 44100)[peaks]
    i = int(np.searchsorted(freqs, 440.0))
    assert freqs[i + 24] / freqs[i] == pytest.approx(2.0, rel=0.02)


def test_nearest_bins_are_distinct_and_nearest():
    bins = np.arange(10) * 10.0
    np.testing.assert_array_equal(frontend.nearest_bins(np.array([1.0, 4.0, 6.0, 14.0, 15.0, 99.0]), bins),
                                  [0, 1, 2, 9])  # 15 Hz: a tie goes up
