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
    chroma: Activations  # (frames, 12) C..B; 10 fps (of the original audio's time)
    #: the signal's tuning (``songmap.harmony.tuning``): offset from A440 (cents) and
    #: how far it is to be trusted; the harmony networks heard the audio retuned by
    #: ``correction_cents`` of it
    tuning_cents: float = 0.0
    tuning_strength: float = 0.0

    def save(self, path: str | os.PathLike[str]) -> None:
        np.savez_compressed(path, beats=self.beats.values, beats_fps=self.beats.fps,
                            key=self.key_probabilities, chroma=self.chroma.values,
                            chroma_fps=self.chroma.fps,
                            tuning=np.array([self.tuning_cents, self.tuning_strength]))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NetworkOutputs:
        with np.load(path) as z:
            tuning = z["tuning"] if "tuning" in z else np.zeros(2)
            return cls(Activations(z["beats"], float(z["beats_fps"])), z["key"],
                       Activations(z["chroma"], float(z["chroma_fps"])),
                       float(tuning[0]), float(tuning[1]))


def segment_means(signal: Activations, boundaries: np.ndarray) -> np.ndarray:
    """Mean of a ``(frames, dims)`` signal between consecutive ``boundaries`` (s), shape
    ``(len(boundaries) - 1, dims)``: over the frames whose centres lie in ``[start, end)``;
    a span holding no frame centre takes the frame nearest its middle.

    (Frames taken by *rounding* the boundaries to frames would reach half a frame before
    every span on average: 50 ms of the previous chord in each beat at deep chroma's
    10 fps.)
    """
    values = signal.values
    n = len(values)
    out = np.zeros((max(len(boundaries) - 1, 0), values.shape[1]), dtype=np.float64)
    if n == 0 or len(out) == 0:
        return out
    bounds = np.asarray(boundaries, dtype=float) * signal.fps
    # first frame whose centre is at or after each boundary (1e-6 frames: a boundary on
    # a centre, written to 0.1 ms, takes that frame)
    first = np.clip(np.ceil(bounds - 1e-6).astype(int), 0, n)
    middle = np.clip(np.round((bounds[:-1] + bounds[1:]) / 2).astype(int), 0, n - 1)
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0, dtype=np.float64)])
    for i in range(len(out)):
        a, b = first[i], first[i + 1]
        if b <= a:
            a, b = middle[i], middle[i] + 1
        out[i] = (csum[b] - csum[a]) / (b - a)
    return out


def peak_offset(before: np.ndarray, at: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where the parabola through three equally spaced samples peaks, in samples from the
    middle one, clipped to [-0.5, 0.5]: a peak placed between frames or bins. For a strict
    maximum in the middle (``before - 2 * at + after < 0``); elsewhere meaningless."""
    return np.clip(0.5 * (before - after) / (before - 2.0 * at + after), -0.5, 0.5)
