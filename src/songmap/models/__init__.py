"""Trained networks, loaded once per process and shared between threads."""

from songmap.models.registry import (
    Activations,
    ModelRegistry,
    get_registry,
)

__all__ = ["Activations", "ModelRegistry", "get_registry"]
