"""Bars, beats with transients, and chords per bar, from the stage outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from songmap.harmony.chords import ChordSegment, bar_chords
from songmap.schema import BarChord, BeatMarker, Downbeat
from songmap.signals import Activations, segment_means


@dataclass(frozen=True)
class Timeline:
    downbeats: list[Downbeat]
    beats: list[BeatMarker]
    chords: list[BarChord]
    bar_tempi: np.ndarray


def _opt(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 4)


def bar_spans(beat_times: np.ndarray, positions: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (s) of every complete or final bar (pickup bar 0 excluded)."""
    beats = np.asarray(beat_times, dtype=float)
    starts = beats[positions == 1]
    if len(starts) == 0:
        return starts, starts
    ibi = float(np.median(np.diff(beats))) if len(beats) > 1 else 0.5
    last_end = min(duration, float(beats[-1]) + ibi)
    ends = np.append(starts[1:], max(last_end, float(starts[-1]) + 1e-3))
    ends[-1] = min(ends[-1], duration) if duration > starts[-1] else ends[-1]
    return starts, ends


def build_timeline(
    *,
    beat_times: np.ndarray,
    positions: np.ndarray,
    beat_confidence: np.ndarray,
    downbeat_confidence: np.ndarray,
    transient_times: np.ndarray,
    transient_strength: np.ndarray,
    transient_accuracy: np.ndarray,
    chord_segments: list[ChordSegment],
    chroma: Activations | None,
    duration: float,
    beat_tempo: np.ndarray | None = None,
) -> Timeline:
    """The timeline; a bar's tempo is ``beat_tempo`` (BPM per beat, e.g. its tempo-map
    segment's) at the bar's first beat where given and positive, otherwise 60 / the mean
    interval from each of its beats to the next."""
    beats = np.asarray(beat_times, dtype=float)
    positions = np.asarray(positions, dtype=int)
    n = len(beats)
    if n == 0:
        return Timeline([], [], [], np.zeros(0))
    # bar number of every beat: pickups before the first downbeat are bar 0
    bar_of = np.cumsum(positions == 1)
    ibi = np.diff(beats)
    next_ibi = np.append(ibi, ibi[-1] if len(ibi) else 0.5)

    starts, ends = bar_spans(beats, positions, duration)
    downbeats: list[Downbeat] = []
    tempi = []
    for i, (a, b) in enumerate(zip(starts, ends)):
        in_bar = bar_of == i + 1
        tempo = float(60.0 / np.mean(next_ibi[in_bar])) if in_bar.any() else 0.0
        first = int(np.flatnonzero(in_bar)[0])
        if beat_tempo is not None and beat_tempo[first] > 0:
            tempo = float(beat_tempo[first])  # the fitted segment: steady where the music is
        tempi.append(tempo)
        downbeats.append(Downbeat(
            bar=i + 1, timestamp=round(float(a), 4),
            confidence=round(float(downbeat_confidence[first]), 4),
            beat_position=1, duration=round(float(b - a), 4), beats=int(in_bar.sum()),
            tempo=round(tempo, 2),
        ))

    markers = [
        BeatMarker(
            beat_number=i + 1, bar=int(bar_of[i]), beat_position=int(positions[i]),
            beat_time=round(float(beats[i]), 4),
            confidence=round(float(beat_confidence[i]), 4),
            transient_time=_opt(transient_times[i]),
            transient_strength=_opt(transient_strength[i]),
            accuracy=_opt(transient_accuracy[i]),
        )
        for i in range(n)
    ]

    chords: list[BarChord] = []
    if len(starts):
        per_bar = bar_chords(chord_segments, starts, ends)
        bounds = np.append(starts, ends[-1])
        means = segment_means(chroma, bounds) if chroma is not None else np.zeros((len(starts), 12))
        for i, ((main, conf, listed), a, b) in enumerate(zip(per_bar, starts, ends)):
            vec = means[i]
            top = float(vec.max()) if len(vec) else 0.0
            vec = vec / top if top > 0 else vec
            chords.append(BarChord(
                bar=i + 1, timestamp=round(float(a), 4), duration=round(float(b - a), 4),
                chord=main, confidence=round(float(conf), 4),
                chroma_vector=[round(float(x), 3) for x in vec], chords=listed,
            ))
    return Timeline(downbeats, markers, chords, np.asarray(tempi))
