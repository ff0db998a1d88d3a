"""madmom's downbeat BLSTM ensemble run by songmap's own kernel (numba).

``RNNDownBeatProcessor`` averages 8 networks, each 3 bidirectional LSTM layers of 25
units and a 3-way softmax, on a 314-dim spectral feature at 100 fps. Under onnxruntime
the 8 x 3 x 2 recurrences run one after another, one small matrix product per frame,
which costs seconds per song. Here the weights are read from songmap's bundled
``downbeats_blstm.npz`` (converted from madmom's ONNX files, see ``songmap.models.weights``)
and:

* the input projections (x_t W for every frame) are large BLAS products, computed in
  time blocks so their memory is bounded by the block, not the song;
* the recurrences of the 8 networks run in one compiled loop per direction, the 8
  networks spread over the CPU cores (``numba.prange``; the kernel holds no GIL);
* sigmoid is ``0.5 tanh(x/2) + 0.5`` with the 1/2 folded into the weights, and tanh is
  the rational approximation Eigen and onnxruntime's MLAS use (float32, ~1 ulp).

Output matches onnxruntime on madmom's files to ~1e-5 (see tests/unit/test_models_blstm.py).

The weights keep the ONNX LSTM node's layout (opset 7+): per direction, ``W`` (4H, in), ``R`` (4H, H), ``B``
(8H: input then recurrent bias) and peepholes ``P`` (3H), gates in the order i, o, f, c:

    i = s(x Wi + h Ri + Pi*c + bi)      f = s(x Wf + h Rf + Pf*c + bf)
    c' = f*c + i*tanh(x Wc + h Rc + bc) o = s(x Wo + h Ro + Po*c' + bo)    h' = o*tanh(c')
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from songmap.models.blas import one_blas_thread

HIDDEN = 25
_GATES = 4 * HIDDEN
#: Frames whose input projections are computed at once (20 s at 100 fps).
_BLOCK_FRAMES = 2000

def _kernel():
    """The compiled recurrence (numba is imported, and the kernel loaded from numba's
    on-disk cache or compiled, on first use, not when songmap is imported)."""
    from songmap.models._kernels import lstm_recurrence

    return lstm_recurrence


@dataclass(frozen=True)
class _Direction:
    """One direction of one layer for all networks, prepared for the kernel."""

    w: np.ndarray  # layer 0: (in, nets*100); deeper: (nets, in, 100)
    b: np.ndarray  # (nets, 100)
    rec: np.ndarray  # (nets, 25, 100)
    peep: np.ndarray  # (nets, 75)


def _prepare(w: np.ndarray, r: np.ndarray, b: np.ndarray, p: np.ndarray):
    """ONNX (4H, in), (4H, H), (8H,), (3H,) -> scaled, transposed float32 arrays."""
    scale = np.ones(_GATES, np.float32)
    scale[: 3 * HIDDEN] = 0.5  # i, o, f go through sigmoid(x) = 0.5 tanh(x / 2) + 0.5
    return (
        (w * scale[:, None]).T.astype(np.float32),
        ((b[:_GATES] + b[_GATES:]) * scale).astype(np.float32),
        np.ascontiguousarray((r * scale[:, None]).T, dtype=np.float32),
        (p * 0.5).astype(np.float32),
    )


#: One network: ([(W, R, B, P) per LSTM, forward then backward per layer], output
#: weights (50, classes), output bias (classes,)).
NetWeights = tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], np.ndarray,
                   np.ndarray]


class BlstmEnsemble:
    """An average of bidirectional-LSTM + softmax networks."""

    def __init__(self, nets: Sequence[NetWeights], *, threads: int = 2) -> None:
        #: 2: the two directions of a layer run on two threads; 1: one after the other
        #: (for processes that share the cores with other workers)
        self.threads = max(1, min(2, threads))
        #: the threads of the two directions, started at the first call and kept: a thread
        #: started under a worker's memory cap may fail before it runs, and CPython then
        #: waits for it for ever (``Thread.start``)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        nets = list(nets)
        if not nets:
            raise ValueError("no networks given")
        n_layers = len(nets[0][0]) // 2
        self.num_nets = len(nets)
        self.input_dim = nets[0][0][0][0].shape[1]
        self.layers: list[tuple[_Direction, _Direction]] = []
        for layer in range(n_layers):
            dirs = []
            for d in range(2):
                prepared = [_prepare(*net[0][2 * layer + d]) for net in nets]
                w = np.stack([x[0] for x in prepared])  # (nets, in, 100)
                if layer == 0:
                    w = np.ascontiguousarray(np.concatenate(list(w), axis=1))  # (in, nets*100)
                dirs.append(_Direction(
                    w, np.stack([x[1] for x in prepared]),
                    np.ascontiguousarray(np.stack([x[2] for x in prepared])),
                    np.ascontiguousarray(np.stack([x[3] for x in prepared])),
                ))
            self.layers.append((dirs[0], dirs[1]))
        self.out_w = np.stack([net[1] for net in nets]).astype(np.float32)  # (nets, 50, classes)
        self.out_b = np.stack([net[2] for net in nets]).astype(np.float32)[:, None, :]

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str], *, threads: int = 2) -> BlstmEnsemble:
        """The ensemble stored by ``scripts/convert_weights.py`` (``net{n}.lstm{k}.W`` ...)."""
        with np.load(path) as z:
            return cls(nets_from_arrays(dict(z)), threads=threads)

    @classmethod
    def from_onnx(cls, paths: Sequence[str | os.PathLike[str]], *,
                  threads: int = 2) -> BlstmEnsemble:
        """The ensemble of madmom's ONNX files (the weights' source; tests compare)."""
        return cls([read_onnx_net(p) for p in paths], threads=threads)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Average class probabilities, shape ``(frames, classes)``, for ``features``
        of shape ``(frames, input_dim)``.

        The forward and backward recurrences of each layer run on two threads; BLAS is
        held to one thread meanwhile (two threads each asking OpenBLAS for both cores
        oversubscribe the CPU and cost more than they bring).
        """
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"expected features of shape (frames, {self.input_dim}), got {x.shape}")
        prev: tuple[np.ndarray, ...] = (x,)
        pool = self._executor()
        with one_blas_thread():
            for directions in self.layers:
                if pool is None:
                    prev = tuple(self._direction(prev, dirn, d == 1)
                                 for d, dirn in enumerate(directions))
                else:
                    jobs = [pool.submit(self._direction, prev, dirn, d == 1)
                            for d, dirn in enumerate(directions)]
                    prev = tuple(job.result() for job in jobs)
            logits = np.matmul(prev[0], self.out_w[:, :HIDDEN])
            logits += np.matmul(prev[1], self.out_w[:, HIDDEN:])
        logits += self.out_b  # (nets, frames, classes)
        logits -= logits.max(axis=-1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=-1, keepdims=True)
        return logits.mean(axis=0)

    def _executor(self) -> ThreadPoolExecutor | None:
        """The ensemble's two threads (None with ``threads`` 1: the calling thread runs
        both directions), shared by concurrent calls."""
        if self.threads == 1:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="songmap-blstm")
            return self._pool

    def _direction(self, inputs: tuple[np.ndarray, ...], dirn: _Direction, reverse: bool) -> np.ndarray:
        """One direction of one layer for every network: hidden states (nets, frames, 25).

        ``inputs`` is the features ``(x,)`` for the first layer, else the previous layer's
        (forward, backward) hidden states.
        """
        recur = _kernel()
        nets = self.num_nets
        frames = len(inputs[0]) if len(inputs) == 1 else inputs[0].shape[1]
        h = np.zeros((nets, HIDDEN), np.float32)
        c = np.zeros((nets, HIDDEN), np.float32)
        out = np.empty((nets, frames, HIDDEN), np.float32)
        starts = range(0, frames, _BLOCK_FRAMES)
        for t0 in (reversed(starts) if reverse else starts):
            t1 = min(t0 + _BLOCK_FRAMES, frames)
            if len(inputs) == 1:
                xp = (inputs[0][t0:t1] @ dirn.w).reshape(t1 - t0, nets, _GATES)
            else:
                # [h_fwd | h_bwd] @ W without building the concatenation
                xp = np.matmul(inputs[0][:, t0:t1], dirn.w[:, :HIDDEN])
                xp += np.matmul(inputs[1][:, t0:t1], dirn.w[:, HIDDEN:])
                xp = xp.transpose(1, 0, 2)
            xp = np.ascontiguousarray(xp + dirn.b)
            recur(xp, dirn.rec, dirn.peep, h, c, out, t0, reverse)
        return out


def nets_to_arrays(nets: Sequence[NetWeights]) -> dict[str, np.ndarray]:
    """Flat ``{name: array}`` for ``np.savez``: ``net{n}.lstm{k}.{W,R,B,P}`` (``k`` in
    graph order: layer 0 forward, layer 0 backward, layer 1 forward ...),
    ``net{n}.out.weight`` and ``net{n}.out.bias``."""
    arrays = {}
    for n, (lstms, out_w, out_b) in enumerate(nets):
        for k, params in enumerate(lstms):
            for key, value in zip("WRBP", params):
                arrays[f"net{n}.lstm{k}.{key}"] = value
        arrays[f"net{n}.out.weight"] = out_w
        arrays[f"net{n}.out.bias"] = out_b
    return arrays


def nets_from_arrays(arrays: dict[str, np.ndarray]) -> list[NetWeights]:
    """The inverse of ``nets_to_arrays``."""
    nets: list[NetWeights] = []
    while f"net{len(nets)}.out.weight" in arrays:
        n = len(nets)
        lstms: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        while f"net{n}.lstm{len(lstms)}.W" in arrays:
            k = len(lstms)
            w, r, b, p = (arrays[f"net{n}.lstm{k}.{key}"] for key in "WRBP")
            lstms.append((w, r, b, p))
        if not lstms or len(lstms) % 2:
            raise ValueError(f"network {n}: {len(lstms)} LSTMs, expected pairs of directions")
        nets.append((lstms, arrays[f"net{n}.out.weight"], arrays[f"net{n}.out.bias"]))
    return nets


def read_onnx_net(path: str | os.PathLike[str]) -> NetWeights:
    """([(W, R, B, P) per LSTM node, in graph order], out weights, out bias) of one of
    madmom's ONNX files.

    madmom's exported graphs list, per bidirectional layer, the forward LSTM node and
    then the backward one (run on the time-reversed input); a MatMul + Add + Softmax
    follows. Anything else is refused rather than misread.
    """
    from songmap.models.onnx_weights import read_onnx_graph

    graph = read_onnx_graph(path)
    init = graph.initializers
    lstms, matmuls, adds = [], [], []
    for node in graph.nodes:
        if node.op_type == "LSTM":
            inp = node.inputs
            if len(inp) < 8 or inp[4] or not inp[7]:
                raise ValueError(f"{path}: unexpected LSTM inputs {inp}")
            lstms.append(tuple(init[inp[i]][0] for i in (1, 2, 3, 7)))
        elif node.op_type == "MatMul":
            matmuls.append(init[node.inputs[1]])
        elif node.op_type == "Add":
            adds.append(init[node.inputs[1]])
        elif node.op_type in ("GRU", "RNN", "Conv", "Gemm"):
            raise ValueError(f"{path}: {node.op_type} layers are not supported here")
    if len(lstms) % 2 or len(matmuls) != 1 or len(adds) != 1:
        raise ValueError(f"{path}: not a stack of bidirectional LSTMs with one output layer")
    return lstms, matmuls[0], adds[0]
