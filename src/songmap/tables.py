"""Flat tables of a result, as rows of plain values (and a pandas DataFrame).

Four tables, each a list of plain dicts with the same keys in every row:

- ``beats``: one row per beat (the default; what a spreadsheet user wants first),
- ``bars``: one row per bar (downbeat, duration, beats, tempo, main chord),
- ``chords``: one row per chord segment (start, end, Harte label),
- ``onsets``: one row per detected onset.

Times are seconds, tempo BPM, beat positions 1-based (pickup beats in bar 0).

The rows read the result's fields and nothing else, so this module sits below
``songmap.schema``: ``AnalysisResult.to_pandas`` calls down to it, and the CSV and JSON
Lines writers (``songmap.export.tables``) build on it.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from songmap.errors import InvalidParameterError, MissingDependencyError

if TYPE_CHECKING:  # annotations only: never imported at run time
    from songmap.schema import AnalysisResult

TABLES = ("beats", "bars", "chords", "onsets")

BEAT_COLUMNS = (
    "beat_number", "bar", "beat_position", "time", "is_downbeat", "confidence",
    "transient_time", "transient_strength", "accuracy", "bar_tempo", "chord", "bar_chord",
)
BAR_COLUMNS = ("bar", "time", "duration", "beats", "tempo", "confidence", "chord", "chords",
               "chord_confidence")
CHORD_COLUMNS = ("start", "end", "chord")
ONSET_COLUMNS = ("time",)
COLUMNS = {"beats": BEAT_COLUMNS, "bars": BAR_COLUMNS, "chords": CHORD_COLUMNS,
           "onsets": ONSET_COLUMNS}


def chord_at(result: AnalysisResult, time_s: float) -> str:
    """Harte label of the chord segment sounding at ``time_s`` ("N" outside every segment)."""
    segs = result.chord_segments
    i = bisect.bisect_right([s[0] for s in segs], time_s + 1e-9) - 1
    if i >= 0 and time_s < segs[i][1] - 1e-9:
        return segs[i][2]
    return "N"


def beat_rows(result: AnalysisResult) -> list[dict[str, Any]]:
    bars = {b.bar: b for b in result.downbeat_timeline}
    bar_chords = {c.bar: c.chord for c in result.chord_progression}
    rows = []
    for b in result.beat_transient_markers:
        bar = bars.get(b.bar)
        rows.append({
            "beat_number": b.beat_number,
            "bar": b.bar,
            "beat_position": b.beat_position,
            "time": b.beat_time,
            "is_downbeat": b.beat_position == 1 and b.bar >= 1,
            "confidence": b.confidence,
            "transient_time": b.transient_time,
            "transient_strength": b.transient_strength,
            "accuracy": b.accuracy,
            "bar_tempo": bar.tempo if bar else None,
            "chord": chord_at(result, b.beat_time),
            "bar_chord": bar_chords.get(b.bar),
        })
    return rows


def bar_rows(result: AnalysisResult) -> list[dict[str, Any]]:
    chords = {c.bar: c for c in result.chord_progression}
    rows = []
    for d in result.downbeat_timeline:
        c = chords.get(d.bar)
        rows.append({
            "bar": d.bar, "time": d.timestamp, "duration": d.duration, "beats": d.beats,
            "tempo": d.tempo, "confidence": d.confidence,
            "chord": c.chord if c else None,
            "chords": " ".join(c.chords) if c else None,
            "chord_confidence": c.confidence if c else None,
        })
    return rows


def chord_rows(result: AnalysisResult) -> list[dict[str, Any]]:
    return [{"start": s, "end": e, "chord": label} for s, e, label in result.chord_segments]


def onset_rows(result: AnalysisResult) -> list[dict[str, Any]]:
    return [{"time": t} for t in result.onset_times]


def rows(result: AnalysisResult, table: str = "beats") -> list[dict[str, Any]]:
    """The rows of ``table`` (one of ``TABLES``)."""
    makers = {"beats": beat_rows, "bars": bar_rows, "chords": chord_rows, "onsets": onset_rows}
    if table not in makers:
        raise InvalidParameterError(f"unknown table {table!r}; choose one of: {', '.join(TABLES)}")
    return makers[table](result)


def to_pandas(result: AnalysisResult, table: str = "beats"):
    """``table`` as a :class:`pandas.DataFrame` (pandas is optional; imported here)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependencyError(
            "to_pandas needs pandas, which is not installed: pip install pandas"
        ) from exc
    return pd.DataFrame(rows(result, table), columns=list(COLUMNS[table]))
