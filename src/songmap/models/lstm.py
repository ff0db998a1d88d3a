"""madmom's online beat LSTMs run by songmap's LSTM kernel, state carried across blocks.

``RNNBeatProcessor(online=True)`` averages up to 8 networks (madmom's
``beats/2016/beats_lstm_*``), each 3 unidirectional LSTM layers of 25 units and one
sigmoid output, on a 162-dim causal feature at 100 fps (``songmap.live.features``). Being
unidirectional, a network's output at frame ``t`` depends only on frames ``<= t``: fed
block by block with its state kept (``OnlineLstm.step``), it gives the same numbers as
fed the whole signal at once.

The cell is ``songmap.models.blstm``'s (same ONNX weight layout, gate order i, o, f, c,
peepholes, the same compiled recurrence ``lstm_recurrence``); only the direction and the
output layer (a sigmoid instead of a softmax) differ. Weights come from songmap's bundled
``beats_lstm.npz`` (``scripts/convert_weights.py``), named ``net{n}.lstm{k}.{W,R,B,P}``,
``net{n}.out.weight`` (25, 1) and ``net{n}.out.bias`` (1,).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from songmap.models.blstm import HIDDEN, _kernel, _prepare

#: The bundled file in ``songmap/models/weights`` (``scripts/convert_weights.py``).
ONLINE_BEATS_FILE = "beats_lstm.npz"

#: One network: ([(W, R, B, P) per layer], output weights (25, 1), output bias (1,)).
LstmWeights = tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], np.ndarray,
                    np.ndarray]


@dataclass
class LstmState:
    """Hidden and cell state of every layer of every network: ``(layers, nets, 25)`` each,
    float32. A fixed size, whatever the length of the stream."""

    h: np.ndarray
    c: np.ndarray


class OnlineLstm:
    """An average of unidirectional LSTM + sigmoid networks, run block by block."""

    def __init__(self, nets: Sequence[LstmWeights]) -> None:
        nets = list(nets)
        if not nets:
            raise ValueError("no networks given")
        self.num_nets = len(nets)
        self.num_layers = len(nets[0][0])
        self.input_dim = nets[0][0][0][0].shape[1]
        self.layers = []
        for layer in range(self.num_layers):
            prepared = [_prepare(*net[0][layer]) for net in nets]
            w = np.stack([x[0] for x in prepared])  # (nets, in, 100)
            if layer == 0:  # one product for every network: (in, nets*100)
                w = np.ascontiguousarray(np.concatenate(list(w), axis=1))
            self.layers.append((w, np.stack([x[1] for x in prepared]),
                                np.ascontiguousarray(np.stack([x[2] for x in prepared])),
                                np.ascontiguousarray(np.stack([x[3] for x in prepared]))))
        self.out_w = np.stack([net[1] for net in nets]).astype(np.float32)  # (nets, 25, 1)
        self.out_b = np.stack([net[2] for net in nets]).astype(np.float32)[:, None, :]

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str], *, nets: int | None = None) -> OnlineLstm:
        """The networks stored by ``scripts/convert_weights.py``; ``nets``: only the first
        so many (fewer networks, less CPU)."""
        with np.load(path) as z:
            loaded = lstm_nets_from_arrays(dict(z))
        return cls(loaded[:nets] if nets else loaded)

    @classmethod
    def from_onnx(cls, paths: Sequence[str | os.PathLike[str]]) -> OnlineLstm:
        """The networks of madmom's ONNX files (the weights' source; tests compare)."""
        return cls([read_onnx_lstm_net(p) for p in paths])

    def new_state(self) -> LstmState:
        """The state before the first frame (zeros, as madmom's networks start)."""
        shape = (self.num_layers, self.num_nets, HIDDEN)
        return LstmState(np.zeros(shape, np.float32), np.zeros(shape, np.float32))

    def step(self, features: np.ndarray, state: LstmState) -> np.ndarray:
        """Beat activation (0..1) of each frame of ``features`` ``(frames, input_dim)``,
        shape ``(frames,)``, continuing from ``state`` (updated in place)."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"expected features of shape (frames, {self.input_dim}), got {x.shape}")
        frames = len(x)
        if frames == 0:
            return np.zeros(0, np.float32)
        recur = _kernel()
        nets = self.num_nets
        hidden = np.empty((nets, frames, HIDDEN), np.float32)  # layer 0 reads x instead
        for layer, (w, b, rec, peep) in enumerate(self.layers):
            if layer == 0:
                xp = (x @ w).reshape(frames, nets, 4 * HIDDEN)
            else:  # (nets, frames, 25) @ (nets, 25, 100) -> (frames, nets, 100)
                xp = np.matmul(hidden, w).transpose(1, 0, 2)
            xp = np.ascontiguousarray(xp + b)
            out = np.empty((nets, frames, HIDDEN), np.float32)
            h, c = state.h[layer], state.c[layer]  # views: the kernel updates them
            recur(xp, rec, peep, h, c, out, 0, False)
            hidden = out
        logits = np.matmul(hidden, self.out_w) + self.out_b  # (nets, frames, 1)
        return (1.0 / (1.0 + np.exp(-logits[..., 0]))).mean(axis=0).astype(np.float32)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """The whole signal's activation from a fresh state."""
        return self.step(features, self.new_state())


def lstm_nets_to_arrays(nets: Sequence[LstmWeights]) -> dict[str, np.ndarray]:
    """Flat ``{name: array}``: ``net{n}.lstm{k}.{W,R,B,P}``, ``net{n}.out.{weight,bias}``."""
    arrays: dict[str, np.ndarray] = {}
    for n, (lstms, out_w, out_b) in enumerate(nets):
        for k, params in enumerate(lstms):
            for key, value in zip("WRBP", params):
                arrays[f"net{n}.lstm{k}.{key}"] = value
        arrays[f"net{n}.out.weight"] = out_w
        arrays[f"net{n}.out.bias"] = out_b
    return arrays


def lstm_nets_from_arrays(arrays: dict[str, np.ndarray]) -> list[LstmWeights]:
    """The inverse of ``lstm_nets_to_arrays``."""
    nets: list[LstmWeights] = []
    while f"net{len(nets)}.out.weight" in arrays:
        n = len(nets)
        lstms: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        while f"net{n}.lstm{len(lstms)}.W" in arrays:
            k = len(lstms)
            w, r, b, p = (arrays[f"net{n}.lstm{k}.{key}"] for key in "WRBP")
            lstms.append((w, r, b, p))
        if not lstms:
            raise ValueError(f"network {n} has no LSTM layers")
        nets.append((lstms, arrays[f"net{n}.out.weight"], arrays[f"net{n}.out.bias"]))
    return nets


def read_onnx_lstm_net(path: str | os.PathLike[str]) -> LstmWeights:
    """([(W, R, B, P) per LSTM node], out weights, out bias) of one of madmom's online
    beat networks: forward LSTM nodes, then MatMul + Add + Sigmoid. Anything else
    (a bidirectional or reverse LSTM, another output) is refused rather than misread."""
    from songmap.models.onnx_weights import read_onnx_graph

    graph = read_onnx_graph(path)
    init = graph.initializers
    lstms, matmuls, adds, sigmoids = [], [], [], 0
    for node in graph.nodes:
        if node.op_type == "LSTM":
            inp = node.inputs
            direction = node.attributes.get("direction", b"forward")
            if len(inp) < 8 or inp[4] or not inp[7] or direction not in (b"forward", "forward"):
                raise ValueError(f"{path}: unexpected LSTM node {inp} {direction!r}")
            lstms.append(tuple(init[inp[i]][0] for i in (1, 2, 3, 7)))
        elif node.op_type == "MatMul":
            matmuls.append(init[node.inputs[1]])
        elif node.op_type == "Add":
            adds.append(init[node.inputs[1]])
        elif node.op_type == "Sigmoid":
            sigmoids += 1
        elif node.op_type not in ("Unsqueeze", "Squeeze"):
            raise ValueError(f"{path}: {node.op_type} nodes are not supported here")
    if not lstms or len(matmuls) != 1 or len(adds) != 1 or sigmoids != 1:
        raise ValueError(f"{path}: not a stack of LSTMs with one sigmoid output layer")
    return lstms, matmuls[0], adds[0]


def online_beats_path():
    """The bundled ``beats_lstm.npz``; ``ModelError`` if it is missing."""
    from songmap.errors import ModelError
    from songmap.models.bundled import WEIGHTS_DIR

    path = WEIGHTS_DIR / ONLINE_BEATS_FILE
    if not path.is_file():
        raise ModelError(f"the online beat networks' weights are missing ({path}); "
                         "reinstall songmap")
    return path
