"""The beat grid as exporters need it: meter sections and where tempo segments start,
as beat indices into ``result.beat_transient_markers``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from songmap.schema import AnalysisResult, MeterSection


def meter_sections(result: AnalysisResult) -> list[MeterSection]:
    """The result's meter sections; a result without any (the meter never changes, or
    written before sections existed) is one section in ``time_signature``."""
    from songmap.schema import MeterSection

    if result.meter_sections:
        return list(result.meter_sections)
    ts = result.time_signature
    if not result.downbeat_timeline:
        return []
    return [MeterSection(start=result.downbeat_timeline[0].timestamp, first_bar=1,
                         bars=max(len(result.downbeat_timeline), 1),
                         beats_per_bar=ts.beats_per_bar, label=ts.label, confidence=ts.confidence)]


def section_of_beats(result: AnalysisResult) -> list[MeterSection | None]:
    """For every beat, the meter section it is counted in (pickup beats: the first
    section; None only when there are no sections)."""
    sections = sorted(meter_sections(result), key=lambda s: s.first_bar)
    out: list[MeterSection | None] = []
    j = 0
    for b in result.beat_transient_markers:
        while j + 1 < len(sections) and b.bar >= sections[j + 1].first_bar:
            j += 1
        out.append(sections[j] if sections else None)
    return out


def section_start_beats(result: AnalysisResult) -> dict[int, MeterSection]:
    """Beat index of the first downbeat of every meter section after the first (the
    first section's meter holds from the first beat, pickups included)."""
    starts: dict[int, MeterSection] = {}
    first_beat_of_bar: dict[int, int] = {}
    for i, b in enumerate(result.beat_transient_markers):
        if b.bar >= 1 and b.bar not in first_beat_of_bar:
            first_beat_of_bar[b.bar] = i
    for s in sorted(meter_sections(result), key=lambda x: x.first_bar)[1:]:
        beat = first_beat_of_bar.get(s.first_bar)
        if beat is not None:
            starts[beat] = s
    return starts


def tempo_segment_starts(result: AnalysisResult) -> dict[int, float]:
    """Beat index of each tempo-map segment's first beat -> the segment's BPM."""
    n = len(result.beat_transient_markers)
    return {s.first_beat - 1: s.bpm for s in result.tempo_map if 0 <= s.first_beat - 1 < n}
