"""The fast registry against madmom's processors (the reference registry) end to end."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from songmap.examples import render_song
from songmap.models import fast, get_registry
from songmap.models.reference import MadmomRegistry
from songmap.rhythm.beats import track_beats

SR = 44100


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return render_song(bpm=112.0, bars=6, sr=SR, seed=11).samples


@pytest.fixture(scope="module")
def registries():
    return fast.FastModelRegistry(threads=1), MadmomRegistry(threads=1)


@pytest.mark.slow
@pytest.mark.models
@pytest.mark.reference
def test_networks_match_the_reference(clip, registries):
    ours, ref = registries
    b, rb = ours.beat_activations(clip), ref.beat_activations(clip)
    assert b.fps == rb.fps == 100.0 and b.values.shape == rb.values.shape
    assert np.abs(b.values - rb.values).max() < 1e-4
    key, chroma = ours.key_and_chroma(clip)
    assert np.abs(key - ref.key_probabilities(clip)).max() < 1e-4
    rc = ref.deep_chroma(clip)
    assert chroma.values.shape == rc.values.shape
    assert np.abs(chroma.values - rc.values).max() < 1e-4
    assert np.abs(ours.key_probabilities(clip) - key).max() == 0


@pytest.mark.slow
@pytest.mark.models
def test_chunked_beats_equal_unchunked(clip, registries, monkeypatch):
    ours, _ = registries
    long_clip = np.tile(clip, 3)  # ~40 s
    whole = ours.beat_activations(long_clip)
    monkeypatch.setattr(fast, "CHUNK_S", 8.0)
    monkeypatch.setattr(fast, "CONTEXT_S", 4.0)
    chunked = ours.beat_activations(long_clip)
    assert chunked.values.shape == whole.values.shape
    b1, b2 = track_beats(whole), track_beats(chunked)
    import mir_eval

    assert mir_eval.beat.f_measure(b1, b2, 0.07) >= 0.99


def test_chunk_spans_cover_every_frame_once():
    for n in (1, 50, 3000, 3001, 10_000, 12_345):
        spans = fast.chunk_spans(n, chunk=1000, context=300)
        kept = np.concatenate([np.arange(f0, f1) for f0, f1, _, _ in spans])
        np.testing.assert_array_equal(kept, np.arange(n))
        for f0, f1, c0, c1 in spans:
            assert 0 <= c0 <= f0 < f1 <= c1 <= n
            assert f0 - c0 == min(f0, 300) or len(spans) == 1
    assert fast.chunk_spans(1600, chunk=1000, context=300) == [(0, 1600, 0, 1600)]


@pytest.mark.reference
def test_context_frames_match_madmom():
    from madmom.audio.chroma import _dcp_flatten
    from madmom.audio.signal import FramedSignalProcessor, SignalProcessor

    spec = np.random.default_rng(0).random((40, 105)).astype(np.float32)
    ref = _dcp_flatten(FramedSignalProcessor(frame_size=15, hop_size=1, fps=10)(
        SignalProcessor(sample_rate=10)(spec)))
    np.testing.assert_array_equal(fast._context_frames(spec, 0, 40), ref)
    np.testing.assert_array_equal(fast._context_frames(spec, 10, 25), ref[10:25])


def test_backend_is_chosen_by_environment(monkeypatch):
    from songmap.errors import ModelError

    monkeypatch.setenv("SONGMAP_MODEL_BACKEND", "madmom")
    assert type(get_registry(3)) is MadmomRegistry  # built lazily: madmom not imported yet
    monkeypatch.setenv("SONGMAP_MODEL_BACKEND", "songmap")
    assert isinstance(get_registry(3), fast.FastModelRegistry)
    monkeypatch.setenv("SONGMAP_MODEL_BACKEND", "tensorflow")
    with pytest.raises(ModelError, match="SONGMAP_MODEL_BACKEND"):
        get_registry(3)


@pytest.mark.models
def test_key_of_a_long_input_is_the_weighted_mean_of_equal_pieces(monkeypatch):
    # 7 frames over the piece length used to make a 7-frame last piece, too short for the
    # network (3 max pools of 2); pieces are now equal
    seen = []

    class Net:
        def __call__(self, piece):
            seen.append(len(piece))
            return np.full(24, float(len(piece)))

    reg = fast.FastModelRegistry(threads=1)
    reg._procs["key"] = Net()
    monkeypatch.setattr(fast, "_KEY_CHUNK_FRAMES", 100)
    probs = reg._key(np.zeros((207, 105), np.float32))
    assert seen == [69, 69, 69]
    np.testing.assert_allclose(probs, 1 / 24)


def test_missing_madmom_is_a_model_error_naming_the_extra(monkeypatch):
    import builtins

    from songmap.errors import ModelError

    real_import = builtins.__import__

    def no_madmom(name, *args, **kwargs):
        if name.split(".")[0] == "madmom":
            raise ImportError("No module named 'madmom'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_madmom)
    with pytest.raises(ModelError, match=r"songmap\[reference\]"):
        MadmomRegistry(threads=1).key_probabilities(np.zeros(44100 * 3, np.float32))


def test_span_key_probabilities_answer_each_span_on_its_own(monkeypatch):
    from songmap.config import NETWORK_SR

    reg = fast.FastModelRegistry(threads=1)
    seen = []

    def key_probabilities(samples):
        seen.append(len(samples))
        return np.full(24, float(samples[0]))

    monkeypatch.setattr(reg, "key_probabilities", key_probabilities)
    samples = np.repeat(np.arange(4.0), 2 * NETWORK_SR)  # 8 s, a new value every 2 s
    out = reg.span_key_probabilities(samples, [(0.0, 2.0), (4.0, 8.0), (7.5, 8.0)])
    assert out.shape == (3, 24)
    assert out[0, 0] == 0.0 and out[1, 0] == 2.0
    assert seen == [2 * NETWORK_SR, 4 * NETWORK_SR]
    assert not out[2].any()  # under a second: no answer


@pytest.mark.models
def test_prepared_beat_features_are_used_once_and_change_nothing(clip, monkeypatch):
    from songmap.models import frontend

    reg = fast.FastModelRegistry(threads=1)
    x = np.asarray(clip, dtype=np.float32)
    expected = reg.beat_activations(x).values
    calls = []
    original = frontend.downbeat_features
    monkeypatch.setattr(frontend, "downbeat_features",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    reg.prepare_beat_features(x)
    assert len(calls) == 1
    got = reg.beat_activations(x).values
    assert len(calls) == 1  # the prepared features, not computed again
    assert got.tobytes() == expected.tobytes()
    # used once: the next call computes its own, and another array never takes them
    reg.prepare_beat_features(x)
    assert reg.beat_activations(x.copy()).values.tobytes() == expected.tobytes()
    assert len(calls) == 3
    assert reg.beat_activations(x).values.tobytes() == expected.tobytes()
    assert len(calls) == 4


@pytest.mark.models
def test_features_prepared_on_another_thread_change_nothing(clip):
    # prepared on a worker thread (as the command line does) or declined there when BLAS
    # would not run on one thread: the activations are the same bits either way
    from concurrent.futures import ThreadPoolExecutor

    reg = fast.FastModelRegistry(threads=1)
    x = np.asarray(clip, dtype=np.float32)
    expected = reg.beat_activations(x).values
    with ThreadPoolExecutor(1) as pool:
        pool.submit(reg.prepare_beat_features, x).result()
    assert reg.beat_activations(x).values.tobytes() == expected.tobytes()
