"""The causal beat path: the online LSTMs' bundled weights, their kernel run block by
block, and the causal front end, against whole-signal runs and madmom's own processor."""

from __future__ import annotations

import numpy as np
import pytest

from songmap.live.features import OnlineBeatFeatures, online_beat_features
from songmap.models.lstm import OnlineLstm, online_beats_path


def _signal(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Noise with clicks every 0.5 s: something for the spectral difference to see."""
    rng = np.random.default_rng(seed)
    x = 0.02 * rng.standard_normal(int(44100 * seconds))
    for t in np.arange(0.25, seconds, 0.5):
        i = int(t * 44100)
        x[i:i + 400] += np.hanning(400) * np.sin(np.arange(400) * 0.3)
    return x.astype(np.float32)


def _blocks(x: np.ndarray, sizes: list[int]):
    i, k = 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        yield x[i:i + n]
        i, k = i + n, k + 1


@pytest.mark.parametrize("sizes", [[1, 440, 441, 442, 3000], [44100], [128], [len(_signal())]])
def test_blockwise_features_equal_whole_signal(sizes):
    x = _signal()
    front = OnlineBeatFeatures()
    got = np.concatenate([front.push(b) for b in _blocks(x, sizes)])
    want = online_beat_features(x)
    assert got.shape == want.shape == (int(np.ceil(len(x) / 441)), 162)
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert want[:, 81:].max() > 0.1  # the difference half is not all zeros


def test_front_end_state_stays_bounded():
    front = OnlineBeatFeatures()
    x = _signal(2.0)
    for _ in range(20):
        front.push(x)
    assert len(front._tail) < 2048 + 441 and len(front._history) == front.lag


def test_blockwise_network_equals_one_go():
    net = OnlineLstm.from_npz(online_beats_path())
    feats = online_beat_features(_signal())
    whole = net(feats)
    state = net.new_state()
    parts = [net.step(feats[a:a + n], state) for a, n in
             zip(np.cumsum([0, 1, 7, 50, 3]), [1, 7, 50, 3, len(feats)])]
    got = np.concatenate(parts)[:len(feats)]
    np.testing.assert_allclose(got, whole, atol=1e-6)
    assert whole.max() > 5 * np.median(whole)  # the clicks are heard
    # a fresh state after a stream forgets it: the same input gives the same output
    np.testing.assert_allclose(net.step(feats[:100], net.new_state()), whole[:100], atol=1e-6)


def test_fewer_nets_are_a_prefix_of_the_ensemble():
    one = OnlineLstm.from_npz(online_beats_path(), nets=1)
    assert one.num_nets == 1 and OnlineLstm.from_npz(online_beats_path()).num_nets >= 1


@pytest.mark.reference
def test_blockwise_equals_madmom_online_processor():
    from madmom.features.beats import RNNBeatProcessor
    from madmom.models import BEATS_LSTM

    x = _signal(6.0, seed=3)
    proc = RNNBeatProcessor(online=True, origin="online")
    want = proc(x)
    np.testing.assert_allclose(online_beat_features(x), proc.processors[0](x), atol=2e-6)
    bundled = OnlineLstm.from_npz(online_beats_path())
    onnx = OnlineLstm.from_onnx(list(BEATS_LSTM)[:bundled.num_nets])
    front, state = OnlineBeatFeatures(), bundled.new_state()
    got = np.concatenate([bundled.step(front.push(b), state) for b in _blocks(x, [1000, 4410, 17])])
    if bundled.num_nets == len(BEATS_LSTM):
        np.testing.assert_allclose(got, want, atol=2e-5)
    np.testing.assert_allclose(got, onnx(online_beat_features(x)), atol=2e-5)
