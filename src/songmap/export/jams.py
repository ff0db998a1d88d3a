"""JAMS (JSON Annotated Music Specification), written and validated with the ``jams`` package.

Annotations, each tagged ``annotation_tools = "songmap <version>"``:

- ``beat``: one observation per beat, value = 1-based position in the bar, with confidence;
- ``beat_position``: the same beats with ``measure`` (bar, 0 for pickups), ``num_beats``
  (beats counted in that bar) and ``beat_units`` (denominator of the meter label);
  downbeats are the observations with ``position == 1``;
- ``chord`` (sandbox ``songmap_layer = "chord_segments"``): the chord segments, Harte labels;
- ``chord`` (sandbox ``songmap_layer = "bar_chords"``): the main chord of each bar, with confidence;
- ``key_mode``: ``"A:minor"`` per key section (one over the whole track when the key never
  changes; the global key, Camelot and Open Key and the tuning (cents from A440) in the
  sandbox);
- ``tempo``: the global tempo and, when there is one, the half/double-time alternative;
- ``tempo`` (sandbox ``songmap_layer = "tempo_map"``): one observation per tempo-map
  segment (its start, until the next segment, its BPM and confidence);
- ``segment_open`` (sandbox ``songmap_layer = "meter_sections"``): one observation per
  meter section, value the time signature (``"3/4"``); ``beat_position``'s ``beat_units``
  and ``num_beats`` follow the section;
- ``onset``: detected onsets.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jams

    from songmap.schema import AnalysisResult


def _key_mode(label: str) -> str:
    tonic, mode = label.split()
    return f"{tonic}:{mode}"


def _unit(x: float) -> float:
    """``x`` clipped to 0..1 (JAMS confidences)."""
    return min(max(x, 0.0), 1.0)


def _metadata(r: AnalysisResult) -> jams.AnnotationMetadata:
    import jams

    return jams.AnnotationMetadata(
        curator=jams.Curator(name="songmap", email=""),
        annotator={"name": "songmap", "type": "automatic"},
        version=r.provenance.songmap_version,
        annotation_tools=f"songmap {r.provenance.songmap_version}",
        annotation_rules="songmap result schema " + r.schema_version,
        validation="none (automatic analysis)",
        data_source="songmap automatic analysis (madmom models): "
                    + "; ".join(m.name for m in r.provenance.models),
    )


def _annotation(namespace: str, *, metadata: jams.AnnotationMetadata, duration: float,
                **sandbox: object) -> jams.Annotation:
    """An empty annotation over the whole track (``duration`` s) with songmap's metadata."""
    import jams

    return jams.Annotation(namespace=namespace, time=0, duration=duration,
                           annotation_metadata=metadata, sandbox=jams.Sandbox(**sandbox))


def _beat_annotations(r: AnalysisResult, ann: Callable[..., Any]) -> list[Any]:
    """``beat`` and ``beat_position`` (with each beat's bar and its section's meter)."""
    from songmap.export.grid import section_of_beats

    beat = ann("beat")
    beat_pos = ann("beat_position", meter=r.time_signature.label,
                   counted_beats_per_bar=r.time_signature.beats_per_bar)
    beats_in_bar = {d.bar: d.beats for d in r.downbeat_timeline}
    for b, sec in zip(r.beat_transient_markers, section_of_beats(r)):
        conf = _unit(b.confidence)
        beat.append(time=b.beat_time, duration=0.0, value=b.beat_position, confidence=conf)
        label = sec.label if sec is not None else r.time_signature.label
        bpb = sec.beats_per_bar if sec is not None else r.time_signature.beats_per_bar
        num = beats_in_bar.get(b.bar, bpb)
        beat_pos.append(time=b.beat_time, duration=0.0, confidence=conf, value={
            "position": b.beat_position, "measure": b.bar,
            "num_beats": max(num, b.beat_position), "beat_units": int(label.split("/")[1]),
        })
    return [beat, beat_pos]


def _chord_annotations(r: AnalysisResult, ann: Callable[..., Any]) -> list[Any]:
    """The chord segments and the chord of every bar."""
    segments = ann("chord", songmap_layer="chord_segments")
    for start, end, label in r.chord_segments:
        segments.append(time=start, duration=end - start, value=label, confidence=None)
    bar_chords = ann("chord", songmap_layer="bar_chords")
    for c in r.chord_progression:
        bar_chords.append(time=c.timestamp, duration=c.duration, value=c.chord,
                          confidence=_unit(c.confidence))
    return [segments, bar_chords]


def _meter_annotations(r: AnalysisResult, ann: Callable[..., Any]) -> list[Any]:
    """One ``segment_open`` observation per meter section (none without sections)."""
    from songmap.export.grid import meter_sections

    sections = meter_sections(r)
    if not sections:
        return []
    meter = ann("segment_open", songmap_layer="meter_sections")
    for i, sec in enumerate(sections):
        end = sections[i + 1].start if i + 1 < len(sections) else r.audio.duration
        meter.append(time=sec.start, duration=max(end - sec.start, 0.0), value=sec.label,
                     confidence=_unit(sec.confidence))
    return [meter]


def _key_annotations(r: AnalysisResult, ann: Callable[..., Any]) -> list[Any]:
    """``key_mode`` per key section (none without a key)."""
    if r.key.label == "N":
        return []
    key = ann("key_mode", camelot=r.key.camelot, open_key=r.key.open_key,
              runner_up=r.key.runner_up, global_key=_key_mode(r.key.label),
              tuning_cents=r.key.tuning_cents)
    # one observation per key section; the global key alone for results without them
    key_spans = [(k.start, k.end, k.key, k.confidence) for k in r.key_segments] or [
        (0.0, r.audio.duration, r.key.label, r.key.confidence)]
    for start, end, label, conf in key_spans:
        key.append(time=start, duration=max(end - start, 0.0), value=_key_mode(label),
                   confidence=_unit(conf))
    return [key]


def _tempo_annotations(r: AnalysisResult, ann: Callable[..., Any]) -> list[Any]:
    """The global tempo (and its alternative), then the tempo map's segments."""
    duration = r.audio.duration
    out = []
    if r.tempo.bpm > 0:
        tempo = ann("tempo", stability=r.tempo.stability)
        tempo.append(time=0.0, duration=duration, value=r.tempo.bpm,
                     confidence=_unit(r.tempo.confidence))
        if r.tempo.alternative_bpm:
            tempo.append(time=0.0, duration=duration, value=r.tempo.alternative_bpm,
                         confidence=_unit(r.tempo.alternative_confidence or 0.0))
        out.append(tempo)
    if r.tempo_map:
        tempo_map = ann("tempo", songmap_layer="tempo_map")
        for i, seg in enumerate(r.tempo_map):
            # a segment lasts until the next one starts (the last: one beat past its end)
            end = (r.tempo_map[i + 1].start if i + 1 < len(r.tempo_map)
                   else min(seg.end + 60.0 / seg.bpm, duration) if seg.bpm > 0 else seg.end)
            tempo_map.append(time=seg.start, duration=max(end - seg.start, 0.0), value=seg.bpm,
                             confidence=_unit(seg.confidence))
        out.append(tempo_map)
    return out


def _onset_annotation(r: AnalysisResult, ann: Callable[..., Any]) -> Any:
    """The detected onsets."""
    onsets = ann("onset")
    for t in r.onset_times:
        onsets.append(time=t, duration=0.0, value=None, confidence=None)
    return onsets


def build_jams(result: AnalysisResult):
    """The result as a validated :class:`jams.JAMS` object."""
    import jams

    from songmap._version import __version__

    r = result
    ann = partial(_annotation, metadata=_metadata(r), duration=r.audio.duration)
    annotations = [*_beat_annotations(r, ann), *_chord_annotations(r, ann),
                   *_meter_annotations(r, ann), *_key_annotations(r, ann),
                   *_tempo_annotations(r, ann), _onset_annotation(r, ann)]
    jam = jams.JAMS(
        file_metadata=jams.FileMetadata(title=r.filename, duration=r.audio.duration),
        sandbox=jams.Sandbox(songmap={"schema_version": r.schema_version,
                                      "writer": f"songmap {__version__}"}),
    )
    jam.annotations.extend(annotations)
    jam.validate(strict=True)
    return jam


def to_jams(result: AnalysisResult) -> str:
    """JAMS JSON text (validated against the JAMS schema before it is returned)."""
    return build_jams(result).dumps(indent=2) + "\n"
