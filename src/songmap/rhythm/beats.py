"""Beat tracking on the network's beat activation."""

from __future__ import annotations

import numpy as np

from songmap.models.registry import Activations


def beat_probability(activations: Activations) -> np.ndarray:
    """Probability that a frame holds any beat (beat or downbeat), shape ``(frames,)``."""
    values = activations.values
    if values.ndim == 2:
        return np.clip(values[:, 0] + values[:, 1], 0.0, 1.0)
    return np.clip(values, 0.0, 1.0)


#: Leading and trailing frames below this fraction of the beat probability's 99th
#: percentile are not part of the song for the beat tracker.
_EDGE_FRACTION = 0.2


def track_beats(
    activations: Activations, *, min_bpm: float = 55.0, max_bpm: float = 215.0
) -> np.ndarray:
    """Beat times (s, increasing) decoded by a dynamic Bayesian network (bar-pointer HMM).

    Uses madmom's DBN beat tracker (Krebs, Böck, Widmer 2015) with its defaults except the
    tempo range and the threshold that trims the song's ends (relative to the song's own
    activation level), on the summed beat+downbeat probability. It is decoded by
    ``songmap.rhythm.viterbi`` (same model and path as madmom's decoder, a fraction of its
    time and memory).
    """
    from songmap.rhythm.viterbi import decode_beats

    prob = beat_probability(activations).astype(np.float32)
    if len(prob) < 2 or float(prob.max(initial=0.0)) < 0.05:
        return np.zeros(0)
    # exact zeros make the HMM's log-densities -inf and Viterbi finds no path
    prob = np.clip(prob, 1e-5, 1.0 - 1e-5)
    # the song starts and ends where the network's output first and last reaches a fifth
    # of its typical peak: beats are not tracked through leading noise or the ring-out
    # of a final chord, where the network still answers weakly
    threshold = max(0.05, _EDGE_FRACTION * float(np.percentile(prob, 99)))
    beats = decode_beats(prob, min_bpm=min_bpm, max_bpm=max_bpm, fps=activations.fps,
                         transition_lambda=100, threshold=threshold)
    return np.unique(np.asarray(beats, dtype=float))


def sample_at(activation: np.ndarray, times: np.ndarray, fps: float, *, radius: int = 2) -> np.ndarray:
    """Maximum of a frame-wise ``activation`` within ``radius`` frames of each time."""
    if len(times) == 0:
        return np.zeros(0)
    frames = np.clip(np.round(np.asarray(times) * fps).astype(int), 0, len(activation) - 1)
    offsets = np.arange(-radius, radius + 1)
    idx = np.clip(frames[:, None] + offsets[None, :], 0, len(activation) - 1)
    return activation[idx].max(axis=1)


def regrid_beats(beat_times: np.ndarray, *, every: float, offset: float = 0.0) -> np.ndarray:
    """Beats at every ``every``-th tracked beat, starting at tracked beat ``offset``.

    Positions between tracked beats are interpolated linearly, so ``every=0.5`` doubles
    the rate and ``every=1.5`` puts two beats where three were tracked.
    """
    n = len(beat_times)
    if n < 2:
        return np.asarray(beat_times, dtype=float)
    idx = np.arange(offset, n - 1 + 1e-9, every)
    return np.interp(idx, np.arange(n), beat_times)
