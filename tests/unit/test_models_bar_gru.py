"""The beat-synchronous downbeat networks (``songmap.models.bar_gru``): the beat-subdivision
averaging, the GRU against onnxruntime and the whole path against madmom's
``RNNBarProcessor`` (tests marked ``reference`` need the ``reference`` extra)."""

from __future__ import annotations

import numpy as np
import pytest

from songmap.models import bar_gru


def test_features_are_averaged_over_quarters_of_each_beat():
    fps = 100.0
    frames = np.arange(400, dtype=float)[:, None] * np.ones((1, 2))  # frame index, twice
    beats = np.array([1.0, 2.0, 3.0, 9.0])  # the last is past the 4 s of features
    synced = bar_gru.beat_synchronous(frames, beats, subdivisions=4, fps=fps)
    assert synced.shape == (2, 8)  # three beats left: two intervals of 4 x 2 features
    # from 20 ms before the first beat to 50 ms before the next (a quarter of a 1 s beat
    # is 250 ms: half of it is capped at 50 ms), in four equal runs of frames; the next
    # interval starts where this one ended
    for row, (start, end) in zip(synced, ((98, 195), (195, 295))):
        runs = np.array_split(np.arange(start, end), 4)
        assert np.allclose(row[::2], [r.mean() for r in runs], atol=1.0)
        assert np.array_equal(row[::2], row[1::2])
    assert bar_gru.beat_synchronous(frames, beats[:1]).shape == (0, 8)


def test_a_gru_step_follows_the_onnx_equations():
    rng = np.random.default_rng(0)
    hidden, inputs = 3, 2
    w, r = rng.normal(size=(3 * hidden, inputs)), rng.normal(size=(3 * hidden, hidden))
    b = rng.normal(size=6 * hidden)
    x = rng.normal(size=(2, inputs))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros(hidden)
    for t in range(2):
        z = sig(w[:3] @ x[t] + b[:3] + r[:3] @ h + b[9:12])
        reset = sig(w[3:6] @ x[t] + b[3:6] + r[3:6] @ h + b[12:15])
        cand = np.tanh(w[6:] @ x[t] + b[6:9] + reset * (r[6:] @ h + b[15:]))
        h = (1 - z) * cand + z * h
    one = bar_gru.gru_pass(x[:, None], w[None], r[None], b[None])[:, 0]
    assert np.allclose(one[-1], h)
    backward = bar_gru.gru_pass(x[:, None], w[None], r[None], b[None], reverse=True)[:, 0]
    assert np.allclose(backward[0], bar_gru.gru_pass(x[::-1, None], w[None], r[None], b[None])[-1, 0])


def test_the_last_beat_has_no_probability():
    nets = bar_gru.BarGruEnsemble({
        "net0.layer0.fw.w": np.zeros((3, 8)), "net0.layer0.fw.r": np.zeros((3, 1)),
        "net0.layer0.fw.b": np.zeros(6), "net0.layer0.bw.w": np.zeros((3, 8)),
        "net0.layer0.bw.r": np.zeros((3, 1)), "net0.layer0.bw.b": np.zeros(6),
        "net0.dense.w": np.zeros((2, 1)), "net0.dense.b": np.zeros(1)})
    p = bar_gru.bar_downbeat_probability(np.ones((500, 2)), np.array([0.5, 1.0, 1.5]), nets)
    assert np.allclose(p[:2], 0.5) and np.isnan(p[2])


@pytest.mark.models
@pytest.mark.reference
def test_the_bundled_networks_are_madmoms():
    """Each bundled network against its ONNX file run by onnxruntime, from zero states."""
    import onnxruntime as ort
    from madmom.models import DOWNBEATS_BGRU

    ort.set_default_logger_severity(3)
    x = np.random.default_rng(1).random((40, 180)).astype(np.float32)
    ours = bar_gru.bundled_bar_grus()
    outs = []
    for f in DOWNBEATS_BGRU[0]:
        sess = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        for inp in sess.get_inputs()[1:]:
            feed[inp.name] = np.zeros([int(d) for d in inp.shape], np.float32)
        outs.append(np.asarray(sess.run(None, feed)[0]).reshape(-1))
    assert ours.size == len(outs) == 6
    assert np.allclose(ours(x), np.mean(outs, axis=0), atol=1e-5)


@pytest.mark.models
@pytest.mark.reference
def test_per_beat_probabilities_are_madmoms_rhythmic_ensemble(example_file):
    """Features, beat-synchronous averaging and networks together, on the bundled example,
    against madmom's ``RNNBarProcessor`` percussive half."""
    from madmom.audio.signal import Signal
    from madmom.features.downbeats import RNNBarProcessor

    from songmap.audio import load_audio

    samples = load_audio(example_file).samples
    beats = np.arange(0.5, 20.0, 0.5)
    ours = bar_gru.bar_downbeat_probability(bar_gru.rhythmic_features(samples, 44100), beats)
    proc = RNNBarProcessor()
    signal = Signal(samples, sample_rate=44100, num_channels=1)
    synced = proc.perc_beat_sync((proc.perc_feat(signal), beats))
    theirs = proc.perc_nn(synced.reshape((len(synced), -1)))
    assert np.isnan(ours[-1])
    assert np.allclose(ours[:-1], theirs, atol=2e-4)


def test_networks_run_side_by_side_as_each_alone():
    rng = np.random.default_rng(2)
    w, r, b = rng.normal(size=(3, 6, 4)), rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 12))
    x = rng.normal(size=(5, 3, 4))
    for reverse in (False, True):
        both = bar_gru.gru_pass(x, w, r, b, reverse=reverse)
        for k in range(3):
            alone = bar_gru.gru_pass(x[:, k:k + 1], w[k:k + 1], r[k:k + 1], b[k:k + 1],
                                     reverse=reverse)
            assert np.allclose(both[:, k], alone[:, 0])


@pytest.mark.models
def test_the_analysis_asks_the_networks_only_on_audio_they_can_read():
    """``pipeline._bar_evidence``: none under 30 s (the live stream's windows) or off
    44.1 kHz; otherwise P(downbeat) per beat but the last, features computed on first use."""
    from songmap.audio.decode import signal_from_array
    from songmap.examples import render_song
    from songmap.pipeline import _BAR_EVIDENCE_MIN_S, _bar_evidence

    song = render_song(bars=20, bpm=120.0, beats_per_bar=4, seed=3)  # 40 s at 44.1 kHz
    audio = signal_from_array(song.samples, song.sr)
    assert audio.sr == 44100 and audio.duration >= _BAR_EVIDENCE_MIN_S
    evidence = _bar_evidence(audio)
    assert evidence is not None
    beats = np.asarray(song.beat_times, dtype=float)
    p = evidence(beats)
    assert p.shape == beats.shape and np.isnan(p[-1])
    assert np.all((p[:-1] > 0) & (p[:-1] < 1))
    down = np.isin(beats, song.downbeat_times)[:-1]
    assert np.median(p[:-1][down]) > 2 * np.median(p[:-1][~down])  # it hears the bars
    short = signal_from_array(song.samples[: int(20 * song.sr)], song.sr)
    assert _bar_evidence(short) is None
    other_rate = signal_from_array(song.samples, song.sr, target_sr=22050)
    assert _bar_evidence(other_rate) is None
