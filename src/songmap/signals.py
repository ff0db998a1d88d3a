"""Frame-wise signals: the values every stage passes on, each carrying its frame rate.

The networks produce them (``songmap.models``), the onset and loudness curves are
computed as them (``songmap.onsets``), and rhythm, harmony and the timeline read them.
They sit below all of those, so a stage never imports another stage (or the model
registry) to get a type or a shared helper. Any of them can be saved and reloaded,
which makes golden tests and debugging cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


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


@dataclass(frozen=True)
class NetworkOutputs:
    """Everything the networks say about one signal; can be saved and reloaded."""

    beats: Activations  # (frames, 2): beat, downbeat; 100 fps
    key_probabilities: np.ndarray  # (24,) C major..B major, C minor..B minor
    chroma: Activations  # (frames, 12) C..B; 10 fps

    def save(self, path: str | os.PathLike[str]) -> None:
        np.savez_compressed(path, beats=self.beats.values, beats_fps=self.beats.fps,
                            key=self.key_probabilities, chroma=self.chroma.values,
                            chroma_fps=self.chroma.fps)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NetworkOutputs:
        with np.load(path) as z:
            return cls(Activations(z["beats"], float(z["beats_fps"])), z["key"],
                       Activations(z["chroma"], float(z["chroma_fps"])))


def segment_means(signal: Activations, boundaries: np.ndarray) -> np.ndarray:
    """Mean of a ``(frames, dims)`` signal between consecutive ``boundaries`` (s), shape
    ``(len(boundaries) - 1, dims)``; a span shorter than a frame takes the frame it starts in."""
    values = signal.values
    frames = np.clip(np.round(np.asarray(boundaries) * signal.fps).astype(int), 0, len(values))
    out = np.zeros((max(len(frames) - 1, 0), values.shape[1]), dtype=np.float64)
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0, dtype=np.float64)])
    for i in range(len(frames) - 1):
        a, b = frames[i], max(frames[i + 1], frames[i] + 1)
        b = min(b, len(values))
        a = min(a, b - 1) if b > 0 else 0
        out[i] = (csum[b] - csum[a]) / max(b - a, 1)
    return out
