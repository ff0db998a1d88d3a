"""songmap's structured beat-DBN Viterbi against madmom's DBNBeatTrackingProcessor."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from songmap.rhythm.viterbi import beat_state_model, decode_beats, exponential_transition


def _madmom(act: np.ndarray, **kw) -> np.ndarray:
    from madmom.features.beats import DBNBeatTrackingProcessor

    return DBNBeatTrackingProcessor(fps=100, transition_lambda=100, **kw)(act)


def _activation(seed: int, frames: int = 2500, period: float = 52.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    act = rng.random(frames).astype(np.float32) ** 6 * 0.3
    beats = np.arange(rng.integers(0, 40), frames, period * (1 + 0.05 * rng.standard_normal()))
    act[np.round(beats).astype(int).clip(0, frames - 1)] += 0.7
    return np.clip(act, 1e-5, 1 - 1e-5)


@pytest.mark.reference
@pytest.mark.parametrize("seed", range(4))
def test_same_beats_as_madmom(seed):
    act = _activation(seed, period=40.0 + 8 * seed)
    kw = {"min_bpm": 55.0, "max_bpm": 215.0, "threshold": 0.05}
    ref = _madmom(act, **kw)
    ours = decode_beats(act, fps=100, transition_lambda=100, **kw)
    assert len(ref) > 10
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.reference
def test_same_beats_on_noise_and_other_tempo_range():
    act = np.clip(np.random.default_rng(9).random(1500).astype(np.float32) ** 3, 1e-5, 1 - 1e-5)
    kw = {"min_bpm": 70.0, "max_bpm": 180.0}
    np.testing.assert_array_equal(decode_beats(act, fps=100, transition_lambda=100, **kw),
                                  _madmom(act, **kw))


@pytest.mark.reference
def test_state_model_matches_madmom():
    from madmom.features.beats_hmm import BeatStateSpace

    intervals, beat_len, _, has = beat_state_model(
        min_bpm=55.0, max_bpm=215.0, fps=100, transition_lambda=100, observation_lambda=16)
    st = BeatStateSpace(60 * 100 / 215.0, 60 * 100 / 55.0)
    np.testing.assert_array_equal(intervals, st.intervals)
    assert intervals.sum() == st.num_states
    assert (beat_len >= 1).all() and has.diagonal().all()


def test_below_threshold_gives_no_beats():
    act = np.full(500, 0.01, np.float32)
    assert len(decode_beats(act, min_bpm=55, max_bpm=215, fps=100, threshold=0.05)) == 0


@pytest.mark.reference
@pytest.mark.parametrize("lam", [1.0, 100.0, 1000.0])
def test_transition_model_equals_madmoms(lam):
    from madmom.features.beats_hmm import exponential_transition as madmom_transition

    intervals = np.arange(28, 110)
    np.testing.assert_array_equal(exponential_transition(intervals, intervals, lam),
                                  madmom_transition(intervals, intervals, lam))


def test_transition_rows_are_distributions_favouring_the_same_tempo():
    intervals = np.arange(28, 110)
    prob = exponential_transition(intervals, intervals, 100.0)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0)
    assert (np.argmax(prob, axis=1) == np.arange(len(intervals))).all()
    # a tempo change of more than ~37 % is below float64's spacing at 1: dropped
    assert prob[0, -1] == 0 and prob[-1, 0] == 0
    # exp(-100 |b/a - 1|): one frame slower from 50 frames is exp(-2) of staying
    i = 50 - 28
    assert prob[i, i + 1] / prob[i, i] == pytest.approx(np.exp(-2.0))


def test_long_signals_keep_their_back_pointers_on_disk(monkeypatch):
    # issue 15: the back-pointer table is the beat tracker's only per-frame table that
    # grows with the length (90 MB for 3 h); a long signal's is a file mapping
    from songmap.audio import blocks
    from songmap.rhythm.viterbi import back_pointers

    act = _activation(1)
    kw = {"min_bpm": 55.0, "max_bpm": 215.0, "fps": 100, "threshold": 0.05}
    in_memory = decode_beats(act, **kw)
    assert blocks._mapping(back_pointers(len(act), 83, fps=100)) is None
    monkeypatch.setattr(blocks, "SPILL_ABOVE_S", 10.0)  # 1000 frames at 100 fps
    table = back_pointers(len(act), 83, fps=100)
    assert blocks._mapping(table) is not None
    assert table.shape == (len(act), 83) and table.dtype == np.uint8
    assert len(in_memory) > 10
    np.testing.assert_array_equal(decode_beats(act, **kw), in_memory)


@pytest.mark.reference
def test_more_tempi_than_a_byte_holds():
    from songmap.rhythm.viterbi import back_pointers

    assert back_pointers(10, 300, fps=100).dtype == np.int16
    act = _activation(2, frames=1500, period=150.0)
    kw = {"min_bpm": 18.0, "max_bpm": 215.0}  # 307 tempi at 100 fps
    assert len(beat_state_model(fps=100, transition_lambda=100, observation_lambda=16, **kw)[0]) > 256
    np.testing.assert_array_equal(decode_beats(act, fps=100, transition_lambda=100, **kw),
                                  _madmom(act, **kw))
