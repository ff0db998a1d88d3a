"""madmom's key CNN and deep-chroma DNN in numpy, from songmap's bundled ``.npz`` weights.

Both are small feed-forward networks, so numpy's BLAS runs them as fast as onnxruntime
did (measured in tests/unit/test_models_convnet.py's module docstring) without its
import (~0.2 s) or its sessions:

* ``KeyCnn`` (Korzeniowski & Widmer 2018): on a ``(frames, 105)`` log spectrogram at
  5 fps, "same"-padded convolutions (5x5, then 3x3, last 1x1), each followed by a
  batch-norm scale and offset and ELU, 2x2 max pools in between, then the mean over time
  and frequency: 24 key logits (A major .. G# major, A minor .. G# minor);
* ``DenseNet`` (Korzeniowski & Widmer 2016, deep chroma): dense layers with ReLU and a
  sigmoid output on 15 stacked spectrogram frames: 12 chroma values.

The layer sequence is stored in each ``.npz`` (``layers`` / ``activations``) beside the
weights; ``scripts/convert_weights.py`` checks madmom's ONNX graphs against it.
"""

from __future__ import annotations

import os

import numpy as np

#: ``layers`` entries of a key-CNN file, applied in order.
CNN_OPS = ("conv", "pool", "mean")
#: ``activations`` entries of a dense-net file.
DENSE_ACTIVATIONS = ("relu", "sigmoid")


#: Input channels x kernel taps up to which a convolution gathers its patches
#: (im2col) instead of summing one product per kernel offset: the first layer (1 channel,
#: 25 taps) runs ~10x faster so, the others ~1.5x slower.
_IM2COL_MAX_TAPS = 64
#: Bytes of gathered patches per block (bounds im2col's memory, not the song's).
_IM2COL_BLOCK_BYTES = 1 << 22


def conv2d_same(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Cross-correlation of ``x`` (rows, cols, in) with ``weight`` (k, k, in, out), zero
    padded by ``(k - 1) / 2`` on every side so the output keeps ``(rows, cols)``; plus
    ``bias`` (out,). float32.

    With many input channels, the padded input is flattened with a row stride of
    ``cols + k - 1``: for a kernel offset ``(di, dj)`` the input pixels every output
    pixel needs are one contiguous slice of that flat array, so each offset is one BLAS
    product without copying patches (the outputs this computes in the padding columns
    are dropped). With few, each output pixel's ``k * k * in`` inputs are gathered in
    blocks of rows and multiplied at once.
    """
    rows, cols, cin = x.shape
    k = weight.shape[0]
    p = k // 2
    stride = cols + 2 * p
    cout = weight.shape[3]
    padded = np.zeros((rows + 2 * p + 1, stride, cin), np.float32)  # +1 row: the last slices
    padded[p:p + rows, p:p + cols] = x
    if cin * k * k <= _IM2COL_MAX_TAPS:
        taps = np.ascontiguousarray(weight.transpose(2, 0, 1, 3).reshape(cin * k * k, cout))
        view = np.lib.stride_tricks.sliding_window_view(padded[:rows + 2 * p], (k, k), axis=(0, 1))
        out = np.empty((rows, cols, cout), np.float32)
        block = max(1, _IM2COL_BLOCK_BYTES // (cols * cin * k * k * 4))
        for r0 in range(0, rows, block):
            r1 = min(rows, r0 + block)
            patches = view[r0:r1].reshape((r1 - r0) * cols, cin * k * k)  # (.., in, k, k)
            np.matmul(patches, taps, out=out[r0:r1].reshape(-1, cout))
        out += bias
        return out
    flat = padded.reshape(-1, cin)
    n = rows * stride
    acc = np.empty((n, cout), np.float32)
    part = np.empty_like(acc)
    for di in range(k):
        for dj in range(k):
            off = di * stride + dj
            if di == 0 and dj == 0:
                np.matmul(flat[off:off + n], weight[di, dj], out=acc)
            else:
                np.matmul(flat[off:off + n], weight[di, dj], out=part)
                acc += part
    out = acc.reshape(rows, stride, cout)[:, :cols]
    out += bias
    return out


def elu(x: np.ndarray) -> np.ndarray:
    """``x`` where positive, ``exp(x) - 1`` elsewhere (ELU with alpha 1), in place.
    (``exp - 1`` rather than ``expm1``: numpy vectorises float32 ``exp``; the absolute
    error stays below 1e-7.)"""
    neg = np.minimum(x, 0.0)
    np.exp(neg, out=neg)
    neg -= 1.0
    np.maximum(x, 0.0, out=x)
    x += neg
    return x


def max_pool2(x: np.ndarray) -> np.ndarray:
    """2x2 max pool with stride 2 over the first two axes (a last odd row or column is
    dropped)."""
    r, c = x.shape[0] // 2, x.shape[1] // 2
    return x[:2 * r, :2 * c].reshape(r, 2, c, 2, x.shape[2]).max(axis=(1, 3))


class KeyCnn:
    """madmom's key network: 24 logits for a ``(frames, bands)`` spectrogram."""

    def __init__(self, layers: list[str], convs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        unknown = set(layers) - set(CNN_OPS)
        if unknown or layers.count("conv") != len(convs):
            raise ValueError(f"bad key-CNN layer list {layers} for {len(convs)} convolutions")
        self.layers = list(layers)
        self.convs = convs

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str]) -> KeyCnn:
        """Weights as ``scripts/convert_weights.py`` stores them: ``layers`` and, per
        convolution ``i``, ``conv{i}.weight`` (out, in, k, k), ``conv{i}.bias``,
        ``conv{i}.bn_scale``, ``conv{i}.bn_offset``. The batch-norm scale and offset are
        folded into the convolution here."""
        with np.load(path) as z:
            layers = [str(op) for op in z["layers"]]
            convs = []
            for i in range(layers.count("conv")):
                w, b = z[f"conv{i}.weight"], z[f"conv{i}.bias"]
                scale, offset = z[f"conv{i}.bn_scale"], z[f"conv{i}.bn_offset"]
                # (out, in, k, k) -> (k, k, in, out), scaled per output channel
                folded = np.ascontiguousarray((w * scale[:, None, None, None]).transpose(2, 3, 1, 0))
                convs.append((folded.astype(np.float32), (b * scale + offset).astype(np.float32)))
        return cls(layers, convs)

    def __call__(self, spec: np.ndarray) -> np.ndarray:
        """Key logits, shape ``(24,)`` float64, of ``spec`` ``(frames, bands)``."""
        x = np.asarray(spec, dtype=np.float32)[:, :, None]
        conv = iter(self.convs)
        for op in self.layers:
            if op == "conv":
                x = elu(conv2d_same(x, *next(conv)))
            elif op == "pool":
                if x.shape[0] < 2 or x.shape[1] < 2:
                    raise ValueError(f"{len(spec)} frames are too few for the key network")
                x = max_pool2(x)
            else:
                x = x.mean(axis=(0, 1), dtype=np.float64)
        return np.asarray(x, dtype=np.float64).reshape(-1)


class DenseNet:
    """madmom's deep-chroma network: ``(frames, inputs)`` -> ``(frames, outputs)``."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], activations: list[str]) -> None:
        if len(layers) != len(activations) or set(activations) - set(DENSE_ACTIVATIONS):
            raise ValueError(f"bad dense-net activations {activations} for {len(layers)} layers")
        self.layers = layers
        self.activations = list(activations)

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str]) -> DenseNet:
        """``activations`` and, per layer ``i``, ``dense{i}.weight`` (in, out) and
        ``dense{i}.bias``."""
        with np.load(path) as z:
            acts = [str(a) for a in z["activations"]]
            layers = [(np.ascontiguousarray(z[f"dense{i}.weight"], dtype=np.float32),
                       z[f"dense{i}.bias"].astype(np.float32)) for i in range(len(acts))]
        return cls(layers, acts)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs, float32, one row per input row."""
        h = np.asarray(x, dtype=np.float32)
        for (w, b), act in zip(self.layers, self.activations):
            h = h @ w
            h += b
            if act == "relu":
                np.maximum(h, 0.0, out=h)
            else:
                np.negative(h, out=h)
                np.exp(h, out=h)
                h += 1.0
                np.reciprocal(h, out=h)
        return h
