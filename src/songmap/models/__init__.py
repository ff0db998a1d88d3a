"""Trained networks, loaded once per process and shared between threads."""

import os

# onnxruntime (the madmom reference backend only) writes a telemetry session file into
# $TMPDIR; songmap leaves no files behind
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from songmap.models.backends import get_registry
from songmap.models.registry import ModelRegistry

__all__ = ["ModelRegistry", "get_registry"]
