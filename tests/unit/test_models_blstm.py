"""songmap's BLSTM kernel, its bundled weights and the ONNX reader, against onnxruntime
on madmom's own files (tests marked ``reference`` need the ``reference`` extra)."""

from __future__ import annotations

import numpy as np
import pytest

from songmap.models import blstm
from songmap.models.bundled import weights_path
from songmap.models.onnx_weights import read_onnx_graph

# every test reads the downbeat networks' weights (songmap's bundled ones or madmom's files)
pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def blstm_files() -> list[str]:
    from madmom.models import DOWNBEATS_BLSTM

    return list(DOWNBEATS_BLSTM)


@pytest.fixture(scope="module")
def bundled() -> list[blstm.NetWeights]:
    with np.load(weights_path("downbeats")) as z:
        return blstm.nets_from_arrays(dict(z))


def _onnxruntime_average(files: list[str], features: np.ndarray) -> np.ndarray:
    """What madmom's ensemble computes: each network from zero state, softmax averaged."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    outs = []
    for f in files:
        sess = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: features}
        for inp in sess.get_inputs()[1:]:
            feed[inp.name] = np.zeros([int(d) for d in inp.shape], np.float32)
        outs.append(sess.run([sess.get_outputs()[0].name], feed)[0])
    return sum(outs) / len(outs)


def _features(frames: int, seed: int = 0) -> np.ndarray:
    # spectral-feature-like input: non-negative, mostly small, some bursts
    rng = np.random.default_rng(seed)
    x = rng.gamma(0.5, 0.4, size=(frames, 314)).astype(np.float32)
    x[rng.random(frames) < 0.05] *= 4
    return x


@pytest.mark.reference
def test_onnx_reader_finds_the_lstm_weights(blstm_files):
    graph = read_onnx_graph(blstm_files[0])
    lstms = [n for n in graph.nodes if n.op_type == "LSTM"]
    assert len(lstms) == 6
    w, r, b, p = (graph.initializers[lstms[0].inputs[i]] for i in (1, 2, 3, 7))
    assert w.shape == (1, 100, 314) and r.shape == (1, 100, 25)
    assert b.shape == (1, 200) and p.shape == (1, 75)
    assert w.dtype == np.float32 and np.isfinite(w).all() and np.abs(w).max() > 0


@pytest.mark.reference
def test_onnx_reader_equals_the_onnx_package(blstm_files):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(blstm_files[1])
    ours = read_onnx_graph(blstm_files[1])
    ref = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert ref.keys() == ours.initializers.keys()
    for name, arr in ref.items():
        np.testing.assert_array_equal(ours.initializers[name], arr)
    assert [n.op_type for n in model.graph.node] == [n.op_type for n in ours.nodes]


@pytest.mark.reference
def test_onnx_reader_reads_attributes_as_the_onnx_package():
    import onnx
    from madmom.models import KEY_CNN

    model = onnx.load(KEY_CNN[0])
    ours = read_onnx_graph(KEY_CNN[0])
    for ref, node in zip(model.graph.node, ours.nodes):
        expected = {a.name: onnx.helper.get_attribute_value(a) for a in ref.attribute}
        expected = {k: tuple(v) if isinstance(v, list) else v for k, v in expected.items()}
        assert node.attributes == expected


@pytest.mark.reference
def test_bundled_weights_equal_madmoms_files(blstm_files, bundled):
    assert len(bundled) == len(blstm_files) == 8
    for ours, path in zip(bundled, blstm_files):
        ref = blstm.read_onnx_net(path)
        assert len(ours[0]) == len(ref[0]) == 6
        for a, b in zip(ours[0], ref[0]):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(ours[1], ref[1])
        np.testing.assert_array_equal(ours[2], ref[2])


def test_bundled_weights_have_the_downbeat_networks_shapes(bundled):
    assert len(bundled) == 8
    for lstms, out_w, out_b in bundled:
        assert [w.shape for w, *_ in lstms] == [(100, 314)] * 2 + [(100, 50)] * 4
        for w, r, b, p in lstms:
            assert r.shape == (100, 25) and b.shape == (200,) and p.shape == (75,)
            assert w.dtype == np.float32 and np.isfinite(w).all()
        assert out_w.shape == (50, 3) and out_b.shape == (3,)
    arrays = blstm.nets_to_arrays(bundled)
    assert len(blstm.nets_from_arrays(arrays)) == 8


def test_ensemble_of_the_bundled_weights_gives_probabilities(bundled):
    ens = blstm.BlstmEnsemble(bundled, threads=1)
    out = ens(_features(200, seed=4))
    assert out.shape == (200, 3) and np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert out.std(axis=0).max() > 1e-3  # responds to its input


@pytest.mark.reference
def test_ensemble_matches_onnxruntime(blstm_files):
    x = _features(700)
    ours = blstm.BlstmEnsemble.from_npz(weights_path("downbeats"))(x)
    ref = _onnxruntime_average(blstm_files, x)
    assert ours.shape == ref.shape == (700, 3)
    assert np.abs(ours - ref).max() < 1e-4
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-5)


def test_projection_blocks_do_not_change_the_result(bundled, monkeypatch):
    x = _features(500, seed=1)
    whole = blstm.BlstmEnsemble(bundled)(x)
    monkeypatch.setattr(blstm, "_BLOCK_FRAMES", 64)  # 8 blocks, the last one partial
    blocked = blstm.BlstmEnsemble(bundled)(x)
    assert np.abs(whole - blocked).max() < 1e-5


@pytest.mark.reference
def test_single_network_matches_its_onnx_file(blstm_files):
    # one network: a wrong gate order or direction would show here even if averaging hid it
    x = _features(300, seed=2)
    ours = blstm.BlstmEnsemble.from_onnx(blstm_files[2:3])(x)
    ref = _onnxruntime_average(blstm_files[2:3], x)
    assert np.abs(ours - ref).max() < 1e-4


def test_wrong_feature_width_is_refused(bundled):
    with pytest.raises(ValueError, match="314"):
        blstm.BlstmEnsemble(bundled[:1])(np.zeros((10, 313), np.float32))


def test_the_ensemble_starts_its_threads_once_and_one_thread_runs_inline(bundled, thread_starts):
    """A capped worker warms up before its cap: a thread started under the cap may fail
    before it runs, and Thread.start then waits for ever (seen: a batch worker capped at
    1 MB hung in the ensemble's second call). Later calls start no thread; with one
    thread none is ever started. Results are the same either way."""
    started = thread_starts
    x = _features(300)
    two, one = blstm.BlstmEnsemble(bundled, threads=2), blstm.BlstmEnsemble(bundled, threads=1)
    first = two(x)
    assert started  # the two directions' threads
    started.clear()
    assert np.array_equal(two(x), first)
    assert np.array_equal(one(x), first)
    assert started == []
