"""Chords decoded on the beat grid from deep chroma.

Deep chroma (Korzeniowski & Widmer 2016) is averaged between consecutive beats; a
Viterbi pass over those beat segments picks one chord per segment from binary pitch
templates (major, minor and, in the sevenths vocabulary, 7, maj7 and min7) plus ``N``.
Changing chord costs less on a bar line than inside a bar, and chords diatonic to the
key get a small bonus, which is what lets a bar hold one or two chords.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from songmap.harmony.notation import PITCH_NAMES
from songmap.models.registry import Activations

_QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
}
_VOCABULARIES = {"majmin": ("maj", "min"), "sevenths": ("maj", "min", "7", "maj7", "min7")}

#: Scale of the cosine similarity in the log-emission (sharper = trusts chroma more).
_SHARPNESS = 12.0
#: Log-penalty for a chord change inside a bar, and on a bar line.
_CHANGE_IN_BAR = 3.0
_CHANGE_ON_BAR = 1.0
#: Log-bonus per beat for chords built on the key's scale.
_DIATONIC_BONUS = 0.3
#: Chroma whose strongest pitch class is below this is heard as no chord.
_SILENT = 0.15


@dataclass(frozen=True)
class ChordSegment:
    start: float
    end: float
    label: str
    confidence: float


def chord_templates(vocabulary: str = "sevenths") -> tuple[list[str], np.ndarray]:
    """Harte labels and unit-norm pitch-class templates, shape ``(chords, 12)``."""
    labels, rows = [], []
    for quality in _VOCABULARIES[vocabulary]:
        for root in range(12):
            t = np.zeros(12)
            t[[(root + i) % 12 for i in _QUALITIES[quality]]] = 1.0
            labels.append(f"{PITCH_NAMES[root]}:{quality}")
            rows.append(t / np.linalg.norm(t))
    return labels, np.array(rows)


def segment_means(chroma: Activations, boundaries: np.ndarray) -> np.ndarray:
    """Mean chroma between consecutive ``boundaries`` (s), shape ``(len-1, 12)``."""
    values = chroma.values
    frames = np.clip(np.round(np.asarray(boundaries) * chroma.fps).astype(int), 0, len(values))
    out = np.zeros((max(len(frames) - 1, 0), values.shape[1]), dtype=np.float64)
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0, dtype=np.float64)])
    for i in range(len(frames) - 1):
        a, b = frames[i], max(frames[i + 1], frames[i] + 1)
        b = min(b, len(values))
        a = min(a, b - 1) if b > 0 else 0
        out[i] = (csum[b] - csum[a]) / max(b - a, 1)
    return out


def _diatonic_mask(labels: list[str], key: str | None) -> np.ndarray:
    mask = np.zeros(len(labels) + 1)
    if not key or key == "N":
        return mask
    from songmap.harmony.notation import parse_key

    tonic, minor = parse_key(key)
    major_tonic = (tonic + 3) % 12 if minor else tonic
    scale = {(major_tonic + i) % 12 for i in (0, 2, 4, 5, 7, 9, 11)}
    for j, label in enumerate(labels):
        root_name, quality = label.split(":")
        root = PITCH_NAMES.index(root_name)
        if all((root + i) % 12 in scale for i in _QUALITIES[quality]):
            mask[j] = 1.0
    return mask


def recognize_chords(
    chroma: Activations,
    beat_times: np.ndarray,
    beat_positions: np.ndarray,
    *,
    duration: float,
    key: str | None = None,
    vocabulary: str = "sevenths",
    music_span: tuple[float, float] | None = None,
) -> list[ChordSegment]:
    """Chord segments covering ``[0, duration]``, boundaries on beats, Harte labels.

    Outside ``music_span`` (start, end in seconds: where the music sounds, e.g. from
    ``songmap.onsets.music_span``) every segment is N.
    """
    beats = np.asarray(beat_times, dtype=float)
    keep = (beats > 0) & (beats < duration)
    beats = beats[keep]
    positions = np.asarray(beat_positions)[keep] if len(beat_positions) else beats
    edges = [t for t in (music_span or ()) if 0.0 < t < duration]
    bounds = np.unique(np.concatenate([[0.0], beats, edges, [duration]]))
    if len(bounds) < 2:
        return []
    means = segment_means(chroma, bounds)
    labels, templates = chord_templates(vocabulary)
    n_states = len(labels) + 1  # last state is N
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    cos = (means / np.maximum(norms, 1e-9)) @ templates.T
    strength = means.max(axis=1)
    # N explains a segment as well as a perfect template when the chroma is silent
    n_score = np.where(strength < _SILENT, 1.0, 0.5)
    emit = _SHARPNESS * np.column_stack([cos, n_score])
    emit += _DIATONIC_BONUS * _diatonic_mask(labels, key)[None, :]
    lengths = np.diff(bounds)
    # weight each segment by its length in beats so a long intro is not one vote
    weight = np.clip(lengths / max(np.median(lengths), 1e-3), 0.25, 4.0)
    emit *= weight[:, None]
    if music_span is not None:
        centres = (bounds[:-1] + bounds[1:]) / 2
        outside = (centres < music_span[0]) | (centres > music_span[1])
        emit[outside, :-1] = -1e6  # only N

    # a segment starts on a bar line if its start beat has position 1
    starts_bar = np.zeros(len(means), dtype=bool)
    if len(beats):
        pos_of = {round(float(t), 6): int(p) for t, p in zip(beats, positions)}
        starts_bar = np.array([pos_of.get(round(float(b), 6), 0) == 1 for b in bounds[:-1]])

    n = len(means)
    delta = emit[0].copy()
    back = np.zeros((n, n_states), dtype=np.int32)
    for i in range(1, n):
        penalty = _CHANGE_ON_BAR if starts_bar[i] else _CHANGE_IN_BAR
        best_prev = int(delta.argmax())
        switch = delta[best_prev] - penalty
        stay = delta
        use_switch = switch > stay
        back[i] = np.where(use_switch, best_prev, np.arange(n_states))
        delta = np.where(use_switch, switch, stay) + emit[i]
    path = np.empty(n, dtype=int)
    path[-1] = int(delta.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]

    # per-segment confidence: softmax share of the chosen chord among all states
    soft = np.exp(emit - emit.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    all_labels = labels + ["N"]
    segments: list[ChordSegment] = []
    start = 0
    for i in range(1, n + 1):
        if i == n or path[i] != path[start]:
            conf = float(soft[start:i, path[start]].mean())
            segments.append(
                ChordSegment(float(bounds[start]), float(bounds[i]), all_labels[path[start]], conf)
            )
            start = i
    return segments


def bar_chords(
    segments: list[ChordSegment], bar_starts: np.ndarray, bar_ends: np.ndarray
) -> list[tuple[str, float, list[str]]]:
    """For each bar: (main chord, confidence, chords in order).

    The main chord covers most of the bar; a second chord is listed when it covers at
    least a quarter of the bar.
    """
    out = []
    for a, b in zip(bar_starts, bar_ends):
        cover: dict[str, float] = {}
        conf: dict[str, float] = {}
        order: list[str] = []
        for s in segments:
            overlap = min(b, s.end) - max(a, s.start)
            if overlap <= 1e-6:
                continue
            if s.label not in cover:
                order.append(s.label)
            cover[s.label] = cover.get(s.label, 0.0) + overlap
            conf[s.label] = max(conf.get(s.label, 0.0), s.confidence)
        if not cover:
            out.append(("N", 0.0, ["N"]))
            continue
        main = max(cover, key=lambda k: cover[k])
        span = max(b - a, 1e-9)
        listed = [lab for lab in order if cover[lab] >= 0.25 * span][:2] or [main]
        out.append((main, conf[main] * cover[main] / span, listed))
    return out
