"""MIREX / Isophonics text annotations, as Sonic Visualiser, madmom and mir_eval read them.

- ``.lab`` chords: ``start<TAB>end<TAB>label`` per segment, seconds, Harte labels
  (the Isophonics reference annotations' layout; ``mir_eval.io.load_labeled_intervals``).
- ``.beats``: ``time<TAB>position`` per beat, 1-based position in the bar (madmom's
  ``load_beats`` reads it and takes the downbeats as the rows with position 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from songmap.schema import AnalysisResult


def fmt_time(t: float) -> str:
    """Seconds with microsecond resolution (the results are rounded far coarser)."""
    return f"{t:.6f}"


def to_chord_lab(result: AnalysisResult) -> str:
    return "".join(f"{fmt_time(s)}\t{fmt_time(e)}\t{label}\n"
                   for s, e, label in result.chord_segments)


def to_beats(result: AnalysisResult) -> str:
    return "".join(f"{fmt_time(b.beat_time)}\t{b.beat_position}\n"
                   for b in result.beat_transient_markers)
