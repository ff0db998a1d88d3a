"""Read the nodes and weights of an ONNX file without the ``onnx`` package.

An ONNX model is a protobuf message. ``scripts/convert_weights.py`` needs only the
graph's nodes (operator, inputs, outputs, scalar and integer-list attributes) and its
initializers (named weight tensors) to turn madmom's ONNX files into songmap's ``.npz``
weights, so this reads just those fields of the wire format
(https://protobuf.dev/programming-guides/encoding/) and skips everything else. songmap
itself never reads ONNX at run time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# field numbers in onnx.proto3
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 3, 4, 5
_ATTR_NAME, _ATTR_F, _ATTR_I, _ATTR_S, _ATTR_INTS = 1, 2, 3, 4, 8
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_FLOAT_DATA = 1, 2, 4
_TENSOR_INT64_DATA, _TENSOR_NAME, _TENSOR_RAW_DATA = 7, 8, 9
_DTYPES = {1: np.float32, 6: np.int32, 7: np.int64, 11: np.float64}


@dataclass(frozen=True)
class OnnxNode:
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    #: float, int, bytes and int-list attributes (others are left out)
    attributes: dict[str, float | int | bytes | tuple[int, ...]] = field(default_factory=dict)


@dataclass
class OnnxGraph:
    nodes: list[OnnxNode] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field_number, wire_type, value)``; length-delimited values are bytes,
    varints int (``Any``: which one a field holds is known from its number)."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _packed_varints(value: bytes | int, wire: int) -> list[int]:
    if wire == 0:
        return [int(value)]  # type: ignore[arg-type]
    out, pos = [], 0
    while pos < len(value):  # type: ignore[arg-type]
        v, pos = _varint(value, pos)  # type: ignore[arg-type]
        out.append(v)
    return out


def _tensor(buf: bytes) -> tuple[str, np.ndarray]:
    name, dims, dtype, raw = "", [], 1, None
    floats: list[bytes] = []
    ints: list[int] = []
    for number, wire, value in _fields(buf):
        if number == _TENSOR_DIMS:
            dims += _packed_varints(value, wire)
        elif number == _TENSOR_DATA_TYPE:
            dtype = int(value)
        elif number == _TENSOR_NAME:
            name = bytes(value).decode()
        elif number == _TENSOR_RAW_DATA:
            raw = bytes(value)
        elif number == _TENSOR_FLOAT_DATA:
            floats.append(bytes(value))
        elif number == _TENSOR_INT64_DATA:
            ints += [_signed(v) for v in _packed_varints(value, wire)]
    if dtype not in _DTYPES:
        raise ValueError(f"initializer {name!r} has unsupported ONNX data type {dtype}")
    np_dtype = np.dtype(_DTYPES[dtype]).newbyteorder("<")
    if raw is not None:
        arr = np.frombuffer(raw, dtype=np_dtype)
    elif floats:
        arr = np.frombuffer(b"".join(floats), dtype="<f4")
    else:
        arr = np.asarray(ints, dtype=np_dtype)
    return name, arr.astype(np_dtype.newbyteorder("="), copy=True).reshape(dims)


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _attribute(buf: bytes) -> tuple[str, float | int | bytes | tuple[int, ...] | None]:
    name = ""
    value: float | int | bytes | tuple[int, ...] | None = None
    for number, wire, v in _fields(buf):
        if number == _ATTR_NAME:
            name = bytes(v).decode()
        elif number == _ATTR_F:
            value = float(np.frombuffer(bytes(v), "<f4")[0])
        elif number == _ATTR_I:
            value = _signed(int(v))
        elif number == _ATTR_S:
            value = bytes(v)
        elif number == _ATTR_INTS:
            earlier = value if isinstance(value, tuple) else ()  # a repeated field's parts
            value = (*earlier, *(_signed(x) for x in _packed_varints(v, wire)))
    return name, value


def _node(buf: bytes) -> OnnxNode:
    inputs, outputs, name, op = [], [], "", ""
    attributes = {}
    for number, _, value in _fields(buf):
        if number == _NODE_INPUT:
            inputs.append(bytes(value).decode())
        elif number == _NODE_OUTPUT:
            outputs.append(bytes(value).decode())
        elif number == _NODE_NAME:
            name = bytes(value).decode()
        elif number == _NODE_OP_TYPE:
            op = bytes(value).decode()
        elif number == _NODE_ATTRIBUTE:
            key, attr = _attribute(value)
            if attr is not None:
                attributes[key] = attr
    return OnnxNode(op, name, tuple(inputs), tuple(outputs), attributes)


def read_onnx_graph(path: str | os.PathLike[str]) -> OnnxGraph:
    """Nodes (in file order) and initializers of the ONNX model at ``path``."""
    with open(path, "rb") as fh:
        data = fh.read()
    graph = OnnxGraph()
    for number, wire, value in _fields(data):
        if number != _MODEL_GRAPH or wire != 2:
            continue
        for g_number, g_wire, g_value in _fields(value):
            if g_wire != 2:
                continue
            if g_number == _GRAPH_NODE:
                graph.nodes.append(_node(g_value))
            elif g_number == _GRAPH_INITIALIZER:
                name, arr = _tensor(g_value)
                graph.initializers[name] = arr
    return graph
