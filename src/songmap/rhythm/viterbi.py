"""madmom's beat-tracking DBN (bar-pointer HMM), decoded by a structured Viterbi (numba).

madmom's ``DBNBeatTrackingProcessor`` decodes a generic sparse HMM: for 55-215 BPM at
100 fps that is 5617 states, and it keeps a 4-byte back-pointer for every state and
frame (600 MB for a 270 s song, 8 GB for an hour). The model has structure: inside a
beat the position only advances (one predecessor, probability 1), and only the first
state of each tempo has many predecessors (the last states of all tempi). This decoder
uses exactly madmom's state space, transition and observation probabilities, the same
float64 arithmetic in the same order and the same tie-breaking, so it returns the same
path; it stores one back-pointer (a tempo index) per tempo and frame, and runs in a
fraction of the time. Imported lazily (numba takes ~0.5 s to import).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from songmap.models._scipy_ext import preload_cython_blas

# numba imports scipy.linalg (~0.2 s) at its first kernel load only to check for BLAS
preload_cython_blas()


@nb.njit(nogil=True, cache=True)
def _first_states(intervals: np.ndarray) -> np.ndarray:
    """Index of each tempo's first state (madmom numbers the states tempo by tempo)."""
    n_tempi = intervals.shape[0]
    first = np.zeros(n_tempi, np.int64)
    for j in range(1, n_tempi):
        first[j] = first[j - 1] + intervals[j - 1]
    return first


@nb.njit(nogil=True, cache=True)
def _transition_bands(
    log_trans: np.ndarray, has_trans: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trans_to, lo, hi): ``trans_to[j, i]`` is log P(i -> j), -inf where absent; the
    predecessors of tempo j with a transition lie in a band ``lo[j] <= i < hi[j]``."""
    n_tempi = log_trans.shape[0]
    trans_to = np.empty((n_tempi, n_tempi))
    for i in range(n_tempi):
        for j in range(n_tempi):
            trans_to[j, i] = log_trans[i, j] if has_trans[i, j] else -np.inf
    lo = np.zeros(n_tempi, np.int64)
    hi = np.zeros(n_tempi, np.int64)
    for j in range(n_tempi):
        found = False
        for i in range(n_tempi):
            if has_trans[i, j]:
                if not found:
                    lo[j] = i
                    found = True
                hi[j] = i + 1
    return trans_to, lo, hi


@nb.njit(nogil=True, cache=True)
def _step(prev: np.ndarray, cur: np.ndarray, back_row: np.ndarray, last_v: np.ndarray,
          first: np.ndarray, intervals: np.ndarray, beat_len: np.ndarray,
          trans_to: np.ndarray, lo: np.ndarray, hi: np.ndarray, d0: float, d1: float) -> None:
    """One frame of the Viterbi recursion: ``cur`` from ``prev``, with the best previous
    tempo of every tempo's first state in ``back_row`` (d0 / d1: the frame's non-beat /
    beat log densities)."""
    n_tempi = intervals.shape[0]
    for i in range(n_tempi):
        last_v[i] = prev[first[i] + intervals[i] - 1]
    for j in range(n_tempi):
        f = first[j]
        # first state of tempo j: predecessors are the last states of all tempi,
        # visited in madmom's order (ascending), strict > keeps the first maximum
        best = -np.inf
        arg = 0  # madmom leaves the pointer unset when nothing is reachable
        row = trans_to[j]
        for i in range(lo[j], hi[j]):
            v = last_v[i] + row[i] + d1
            if v > best:
                best = v
                arg = i
        cur[f] = best
        back_row[j] = arg
        # the other states advance one position with probability 1 (log 0.0)
        for k in range(1, beat_len[j]):
            cur[f + k] = prev[f + k - 1] + 0.0 + d1
        for k in range(max(beat_len[j], 1), intervals[j]):
            cur[f + k] = prev[f + k - 1] + 0.0 + d0


@nb.njit(nogil=True, cache=True)
def _trace_back(state: int, back: np.ndarray, first: np.ndarray, tempo_of: np.ndarray,
                intervals: np.ndarray, path: np.ndarray, t_start: int, t_stop: int) -> int:
    """Fill ``path[t_start:t_stop]`` backwards from ``state`` (the best path's state at
    frame ``t_stop - 1``); returns its state at frame ``t_start - 1``."""
    for t in range(t_stop - 1, t_start - 1, -1):
        path[t] = state
        j = tempo_of[state]
        if state == first[j]:
            i = back[t, j]
            state = first[i] + intervals[i] - 1
        else:
            state = state - 1
    return state


@nb.njit(nogil=True, cache=True)
def _viterbi(log_dens: np.ndarray, intervals: np.ndarray, beat_len: np.ndarray,
             log_trans: np.ndarray, has_trans: np.ndarray, back: np.ndarray) -> np.ndarray:
    """The log probability of the best path to every state at the last frame, with the
    back-pointers of every frame in ``back`` (``best_path`` reads them).

    log_dens (frames, 2): log densities for non-beat (0) and beat (1) states;
    intervals (tempi,): states per tempo; beat_len (tempi,): how many leading states of a
    tempo are beat states; log_trans (tempi, tempi): log P(tempo i -> j) at a beat
    boundary; has_trans: whether that transition exists (madmom drops tiny ones);
    back (frames, tempi): filled with the best previous tempo of every tempo's first
    state (``back_pointers``: every entry is written before it is read).
    """
    n_frames = log_dens.shape[0]
    n_tempi = intervals.shape[0]
    first = _first_states(intervals)
    n_states = first[n_tempi - 1] + intervals[n_tempi - 1]
    prev = np.full(n_states, np.log(1.0 / n_states))
    cur = np.empty(n_states)
    trans_to, lo, hi = _transition_bands(log_trans, has_trans)
    last_v = np.empty(n_tempi)
    for t in range(n_frames):
        _step(prev, cur, back[t], last_v, first, intervals, beat_len, trans_to, lo, hi,
              log_dens[t, 0], log_dens[t, 1])
        prev, cur = cur, prev
    return prev


#: Frames traced back at once between two give-backs of a spilled table's pages (an
#: 83-tempo uint8 table: 5 MB; the trace reads ~1 GB/s, faster than the helper releases).
_TRACE_SPAN = 1 << 16


def best_path(last: np.ndarray, back: np.ndarray, intervals: np.ndarray) -> tuple[np.ndarray, float]:
    """The best state path (madmom's state numbering) ending in the best state of
    ``last`` (the last frame's scores from ``_viterbi``) and its log probability: madmom's
    argmax (the first maximum), then the back-pointers, span by span from the end."""
    from songmap.audio import blocks

    n_frames, n_tempi = back.shape
    first = np.concatenate([[0], np.cumsum(intervals)[:-1]]).astype(np.int64)
    tempo_of = np.repeat(np.arange(n_tempi, dtype=np.int64), intervals)
    state = int(np.argmax(last))  # no NaN: the scores are sums of finite logs and -inf
    log_prob = float(last[state])
    path = np.empty(n_frames, np.int64)
    flat = back.reshape(-1)
    for t_start in range(((n_frames - 1) // _TRACE_SPAN) * _TRACE_SPAN, -1, -_TRACE_SPAN):
        t_stop = min(t_start + _TRACE_SPAN, n_frames)
        state = _trace_back(state, back, first, tempo_of, intervals, path, t_start, t_stop)
        blocks.release(flat, t_start * n_tempi, t_stop * n_tempi)
    return path, log_prob


def back_pointers(n_frames: int, n_tempi: int, *, fps: float) -> np.ndarray:
    """The Viterbi's table of back-pointers: one tempo index per tempo and frame (uint8
    while the tempi fit, as they do for any range of 55-215 BPM at 100 fps: 83 tempi).

    It is the one part of beat tracking that grows with the length (an hour at 100 fps
    and 83 tempi: 30 MB), written frame by frame and read once backwards: above
    ``blocks.SPILL_ABOVE_S`` of frames it is held on disk as the samples are
    (``blocks.spilled_array``), so a 3 h recording does not hold 90 MB of it.
    """
    from songmap.audio import blocks

    dtype = np.uint8 if n_tempi <= 256 else np.int16
    shape = (max(n_frames, 1), n_tempi)
    if blocks.should_spill(n_frames, fps):
        return blocks.spilled_array(shape, dtype)
    return np.empty(shape, dtype)


def exponential_transition(from_intervals: np.ndarray, to_intervals: np.ndarray,
                           transition_lambda: float) -> np.ndarray:
    """Tempo-change probabilities of madmom's beat HMM (Krebs, Böck, Widmer 2015), shape
    ``(len(from_intervals), len(to_intervals))``, each row summing to 1.

    From a beat interval ``a`` to ``b`` (frames), the weight is
    ``exp(-transition_lambda * |b / a - 1|)``; weights at or below float64's spacing at 1
    are dropped (0), as madmom drops them, then rows are normalised. The same float64
    operations in the same order as madmom's, so the same numbers
    (tests/unit/test_models_beat_dbn.py).
    """
    ratio = to_intervals.astype(float) / from_intervals.astype(float)[:, np.newaxis]
    prob = np.exp(-transition_lambda * np.abs(ratio - 1.0))
    prob[prob <= np.spacing(1)] = 0.0
    prob /= prob.sum(axis=1)[:, np.newaxis]
    return prob


def beat_state_model(*, min_bpm: float, max_bpm: float, fps: float, transition_lambda: float,
                     observation_lambda: int):
    """madmom's beat state space and tempo transitions: (intervals, beat_len, log_trans,
    has_trans), the same numbers as madmom's (tests/unit/test_models_beat_dbn.py)."""
    min_interval = 60.0 * fps / max_bpm
    max_interval = 60.0 * fps / min_bpm
    intervals = np.arange(np.round(min_interval), np.round(max_interval) + 1).astype(np.int64)
    # beat states: position k / interval < 1 / observation_lambda
    beat_len = np.array(
        [int(np.sum(np.linspace(0, 1, n, endpoint=False) < 1.0 / observation_lambda))
         for n in intervals], dtype=np.int64)
    prob = exponential_transition(intervals, intervals, transition_lambda)
    has = prob != 0
    with np.errstate(divide="ignore"):
        log_trans = np.where(has, np.log(np.where(has, prob, 1.0)), -np.inf)
    return intervals, beat_len, log_trans, has


def decode_beats(activation: np.ndarray, *, min_bpm: float, max_bpm: float, fps: float,
                 transition_lambda: float = 100, observation_lambda: int = 16,
                 threshold: float = 0.0, correct: bool = True) -> np.ndarray:
    """Beat times (s), as madmom's ``DBNBeatTrackingProcessor(...).process_offline``."""
    act = np.asarray(activation)
    first = 0
    if threshold:
        idx = np.nonzero(act >= threshold)[0]
        if idx.any():
            first = max(first, int(np.min(idx)))
            last = min(len(act), int(np.max(idx)) + 1)
        else:
            last = first
        act = act[first:last]
    if not act.any():
        return np.empty(0)
    intervals, beat_len, log_trans, has = beat_state_model(
        min_bpm=min_bpm, max_bpm=max_bpm, fps=fps, transition_lambda=transition_lambda,
        observation_lambda=observation_lambda)
    # madmom's RNNBeatTrackingObservationModel.log_densities, same expression and dtypes
    obs = np.array(act, copy=False, subok=True, ndmin=1)
    log_dens = np.empty((len(obs), 2), dtype=float)
    log_dens[:, 0] = np.log((1.0 - obs) / (observation_lambda - 1))
    log_dens[:, 1] = np.log(obs)
    back = back_pointers(len(log_dens), len(intervals), fps=fps)
    path, log_prob = best_path(_viterbi(log_dens, intervals, beat_len, log_trans, has, back),
                               back, intervals)
    del back  # a spilled table's temporary file goes with it
    if np.isinf(log_prob) or not path.any():
        return np.empty(0)
    # position of each state within its tempo -> is it a beat state
    first_states = np.concatenate([[0], np.cumsum(intervals)[:-1]])
    tempo = np.searchsorted(first_states, path, side="right") - 1
    beat_range = ((path - first_states[tempo]) < beat_len[tempo]).astype(np.uint32)
    beats = np.empty(0, dtype=int)
    if correct:
        idx = np.nonzero(np.diff(beat_range))[0] + 1
        if beat_range[0]:
            idx = np.r_[0, idx]
        if beat_range[-1]:
            idx = np.r_[idx, beat_range.size]
        if idx.any():  # the activation's peak in each run of beat states
            beats = np.array([np.argmax(act[left:right]) + left
                              for left, right in idx.reshape((-1, 2))], dtype=int)
    else:
        from scipy.signal import argrelmin

        positions = (path - first_states[tempo]) / intervals[tempo]
        beats = argrelmin(positions, mode="wrap")[0]
        beats = beats[beat_range[beats] == 1]
    return (beats + first) / float(fps)
