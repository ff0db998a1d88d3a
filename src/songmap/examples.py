"""A small synthesiser for the bundled example and for tests and benchmarks.

Renders drums, bass and sustained chords on an exact grid, so its ground truth is
known: beats every ``60/bpm`` s, a downbeat every ``beats_per_bar`` beats, one chord
per bar from ``progression``. No third-party recording is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from songmap.harmony.notation import pitch_class

_QUALITY_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10)}


@dataclass(frozen=True)
class Song:
    samples: np.ndarray
    sr: int
    beat_times: np.ndarray
    downbeat_times: np.ndarray
    chords: list[tuple[float, float, str]]
    bpm: float
    beats_per_bar: int


def _env(n: int, sr: int, decay_s: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (decay_s * sr)).astype(np.float32)


def _kick(sr: int) -> np.ndarray:
    n = int(0.25 * sr)
    t = np.arange(n) / sr
    freq = 50 + 100 * np.exp(-t * 30)
    return (np.sin(2 * np.pi * np.cumsum(freq) / sr) * _env(n, sr, 0.08)).astype(np.float32)


def _noise_hit(sr: int, rng: np.random.Generator, decay_s: float, dur_s: float) -> np.ndarray:
    n = int(dur_s * sr)
    return (rng.standard_normal(n) * _env(n, sr, decay_s)).astype(np.float32)


def _tone(freq: float, n: int, sr: int, decay_s: float) -> np.ndarray:
    t = np.arange(n) / sr
    wave = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t) + 0.1 * np.sin(6 * np.pi * freq * t)
    return (wave * _env(n, sr, decay_s)).astype(np.float32)


def render_song(
    *,
    bpm: float = 120.0,
    beats_per_bar: int = 4,
    bars: int = 8,
    progression: tuple[str, ...] = ("C:maj", "A:min", "F:maj", "G:maj"),
    sr: int = 22050,
    lead_in_s: float = 0.5,
    seed: int = 0,
    drums: bool = True,
) -> Song:
    """Render ``bars`` bars; chords cycle through ``progression`` (Harte ``root:maj|min|7``)."""
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / bpm
    n_beats = bars * beats_per_bar
    total = lead_in_s + n_beats * beat_s + 1.0
    out = np.zeros(int(total * sr) + sr, dtype=np.float32)
    beat_times = lead_in_s + np.arange(n_beats) * beat_s
    kick, snare = _kick(sr), _noise_hit(sr, rng, 0.05, 0.2)
    hat = _noise_hit(sr, rng, 0.01, 0.05)
    hat = np.diff(hat, prepend=0).astype(np.float32)  # brighter

    def add(sig: np.ndarray, t: float, gain: float) -> None:
        i = int(round(t * sr))
        j = min(len(out), i + len(sig))
        out[i:j] += gain * sig[: j - i]

    chords = []
    for bar in range(bars):
        t0 = lead_in_s + bar * beats_per_bar * beat_s
        label = progression[bar % len(progression)]
        root_name, quality = label.split(":")
        root = pitch_class(root_name)
        chords.append((t0, t0 + beats_per_bar * beat_s, label))
        n = int(beats_per_bar * beat_s * sr)
        for iv in _QUALITY_INTERVALS[quality]:
            midi = 60 + (root + iv) % 12
            add(_tone(440.0 * 2 ** ((midi - 69) / 12), n, sr, 2.0), t0, 0.12)
        bass_midi = 36 + root
        for k in range(beats_per_bar):
            add(_tone(440.0 * 2 ** ((bass_midi - 69) / 12), int(beat_s * sr * 0.9), sr, 0.3),
                t0 + k * beat_s, 0.25 if k == 0 else 0.15)
        if drums:
            for k in range(beats_per_bar):
                t = t0 + k * beat_s
                if k == 0:
                    add(kick, t, 0.9)
                elif beats_per_bar == 4 and k == 2:
                    add(kick, t, 0.6)
                else:
                    add(snare, t, 0.35)
                add(hat, t, 0.2)
                add(hat, t + beat_s / 2, 0.1)
    out = out[: int(total * sr)]
    out /= max(float(np.abs(out).max()), 1e-9) / 0.8
    downbeats = beat_times[::beats_per_bar]
    return Song(out, sr, beat_times, downbeats, chords, bpm, beats_per_bar)


def example_path() -> Path:
    """Path of the bundled example (20 s, 120 BPM, 4/4, C Am F G), made by ``render_song``."""
    return Path(str(resources.files("songmap") / "data" / "example.flac"))

