"""Sonic Visualiser CSV layers (File > Import Annotation Layer).

Sonic Visualiser reads a CSV whose first column is a time in seconds and whose last
column is a text label as a *Time Instants* layer with labels; that is what its own
beat trackers and Chordino produce, so these files line up with theirs:

- ``sv-beats``: ``time,bar.beat`` for every beat (``"3.1"`` = bar 3, beat 1; pickups in bar 0),
- ``sv-chords``: ``time,label`` at every chord change (Harte labels, ``N`` for no chord).

No header row (Sonic Visualiser would otherwise offer to skip it); labels are quoted only
when they contain a comma, which Harte labels never do.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from songmap.export.mirex import fmt_time

if TYPE_CHECKING:
    from songmap.schema import AnalysisResult


def _csv(rows: list[tuple[str, str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def to_sv_beats(result: AnalysisResult) -> str:
    return _csv([(fmt_time(b.beat_time), f"{b.bar}.{b.beat_position}")
                 for b in result.beat_transient_markers])


def to_sv_chords(result: AnalysisResult) -> str:
    rows: list[tuple[str, str]] = []
    prev_end = None
    for start, end, label in result.chord_segments:
        if prev_end is not None and start > prev_end + 1e-6 and rows[-1][1] != "N":
            rows.append((fmt_time(prev_end), "N"))  # a gap between segments sounds no chord
        if not rows or rows[-1][1] != label:
            rows.append((fmt_time(start), label))
        prev_end = end
    return _csv(rows)
