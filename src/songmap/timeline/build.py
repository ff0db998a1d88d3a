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


def bar_spans(
    beat_times: np.ndarray, positions: np.ndarray, duration: float,
) -> tuple[np.ndarray, np.ndarray]:
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


@dataclass(frozen=True)
class TimelineBeats:
    """What the stages know about every beat, one entry per beat in each array.

    ``beat_times`` (s, increasing); ``positions`` (1-based position in the bar, the
    first downbeat's bar is bar 1, beats before it are the pickup); ``beat_confidence``
    and ``downbeat_confidence`` (0-1); ``transient_times`` (s), ``transient_strength``
    and ``transient_accuracy`` of the nearest transient (NaN where there is none);
    ``beat_tempo_bpm`` (BPM, e.g. the beat's tempo-map segment's; 0 where there is none,
    ``None`` for no tempo map).
    """

    beat_times: np.ndarray
    positions: np.ndarray
    beat_confidence: np.ndarray
    downbeat_confidence: np.ndarray
    transient_times: np.ndarray
    transient_strength: np.ndarray
    transient_accuracy: np.ndarray
    beat_tempo_bpm: np.ndarray | None = None

    def __post_init__(self) -> None:
        arrays = [self.beat_times, self.positions, self.beat_confidence,
                  self.downbeat_confidence, self.transient_times, self.transient_strength,
                  self.transient_accuracy]
        if self.beat_tempo_bpm is not None:
            arrays.append(self.beat_tempo_bpm)
        lengths = {len(a) for a in arrays}
        if len(lengths) > 1:
            raise ValueError(f"TimelineBeats arrays differ in length: {sorted(lengths)}")


def build_timeline(
    beats: TimelineBeats,
    *,
    chord_segments: list[ChordSegment],
    chroma: Activations | None,
    duration_s: float,
) -> Timeline:
    """The timeline of ``beats`` in a recording of ``duration_s`` seconds; a bar's tempo is
    ``beats.beat_tempo_bpm`` at the bar's first beat where given and positive, otherwise
    60 / the mean interval from each of its beats to the next."""
    times = np.asarray(beats.beat_times, dtype=float)
    positions = np.asarray(beats.positions, dtype=int)
    if len(times) == 0:
        return Timeline([], [], [], np.zeros(0))
    starts, ends = bar_spans(times, positions, duration_s)
    downbeats, tempi = _downbeats(beats, times, positions, starts, ends)
    markers = _beat_markers(beats, times, positions)
    chords = _bar_chords(chord_segments, chroma, starts, ends)
    return Timeline(downbeats, markers, chords, np.asarray(tempi))


def _downbeats(
    beats: TimelineBeats, times: np.ndarray, positions: np.ndarray,
    starts: np.ndarray, ends: np.ndarray,
) -> tuple[list[Downbeat], list[float]]:
    """One ``Downbeat`` per bar (``starts``/``ends`` s) and the bar's tempo (BPM)."""
    # bar number of every beat: pickups before the first downbeat are bar 0
    bar_of = np.cumsum(positions == 1)
    ibi = np.diff(times)
    next_ibi = np.append(ibi, ibi[-1] if len(ibi) else 0.5)
    beat_tempo = beats.beat_tempo_bpm
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
            confidence=round(float(beats.downbeat_confidence[first]), 4),
            beat_position=1, duration=round(float(b - a), 4), beats=int(in_bar.sum()),
            tempo=round(tempo, 2),
        ))
    return downbeats, tempi


def _beat_markers(
    beats: TimelineBeats, times: np.ndarray, positions: np.ndarray,
) -> list[BeatMarker]:
    """One ``BeatMarker`` per beat, with its bar (0 for the pickup) and nearest transient."""
    bar_of = np.cumsum(positions == 1)
    return [
        BeatMarker(
            beat_number=i + 1, bar=int(bar_of[i]), beat_position=int(positions[i]),
            beat_time=round(float(times[i]), 4),
            confidence=round(float(beats.beat_confidence[i]), 4),
            transient_time=_opt(beats.transient_times[i]),
            transient_strength=_opt(beats.transient_strength[i]),
            accuracy=_opt(beats.transient_accuracy[i]),
        )
        for i in range(len(times))
    ]


def _bar_chords(
    chord_segments: list[ChordSegment], chroma: Activations | None,
    starts: np.ndarray, ends: np.ndarray,
) -> list[BarChord]:
    """The chord of every bar (``starts``/``ends`` s) with its chroma scaled to peak 1."""
    chords: list[BarChord] = []
    if not len(starts):
        return chords
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
    return chords
