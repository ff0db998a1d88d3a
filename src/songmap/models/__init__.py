"""Trained networks, loaded once per process and shared between threads."""

import os

# onnxruntime (the madmom reference backend only) writes a telemetry session file into
# $TMPDIR; songmap leaves no files behind
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from songmap.models.registry import (
    Activations,
    ModelRegistry,
    get_registry,
)

__all__ = ["Activations", "ModelRegistry", "get_registry"]
