"""Standard MIDI file whose tempo map follows the tracked beats, written with ``mido``.

A DAW that imports it gets bar lines on songmap's downbeats and one MIDI beat per
tracked beat, so the recording lines up with the grid:

- track 0 ``songmap tempo map``: ``set_tempo`` events that put beat *k* on tick
  ``k * beat_ticks`` within 0.5 ms: one per steady tempo segment (songmap places a steady
  segment's beats on its line), one per beat where the beats wander; a ``time_signature``
  whenever the beats per bar change (at meter sections and irregular bars),
  a ``marker`` "Bar n" on every downbeat, and the ``key_signature``;
- track 1 ``songmap click``: channel 10 (GM drums) note 76 (hi wood block, velocity 120)
  on downbeats and note 77 (low wood block, velocity 80) on the other beats;
- track 2 ``songmap chords``: a ``text`` event with the Harte label at every chord segment
  and its chord tones held for the segment (root in octave 3, chord tones above it).

Time before the first beat becomes a lead-in: whole beats at the opening tempo plus the
pickup beats, so MIDI bar 1 is the lead-in and songmap bar *n* is MIDI bar *n* + (lead-in
bars). Beats are quarter notes (``N/4``, ``N/2`` meters) or dotted quarters (``6/8``,
``9/8``, ``12/8``).
Resolution is 960 ticks per quarter (0.5 ms at 120 BPM); tempo values are whole
microseconds with the time they really reach carried forward, so errors never add up.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from songmap.harmony.notation import pitch_class

if TYPE_CHECKING:
    import mido

    from songmap.schema import AnalysisResult

PPQ = 960
CLICK_CHANNEL = 9  # MIDI channel 10, GM percussion
DOWNBEAT_NOTE, BEAT_NOTE = 76, 77  # GM hi / low wood block
DOWNBEAT_VELOCITY, BEAT_VELOCITY = 120, 80
CHORD_CHANNEL = 0
_MAX_TEMPO_US = 0xFFFFFF  # set_tempo holds 24 bits
#: Largest miss (s) between a beat and where the written tempo map puts it (half a
#: millisecond, inside the 1 ms the round-trip tests hold every time to).
TEMPO_TOLERANCE_S = 0.0005

# Harte shorthands -> intervals in semitones above the root.
HARTE_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
    "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "dim7": (0, 3, 6, 9), "hdim7": (0, 3, 6, 10), "minmaj7": (0, 3, 7, 11),
    "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9), "9": (0, 4, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14), "min9": (0, 3, 7, 10, 14), "sus2": (0, 2, 7), "sus4": (0, 5, 7),
    "5": (0, 7), "1": (0,),
}
_DEGREES = {"1": 0, "2": 2, "3": 4, "4": 5, "5": 7, "6": 9, "7": 11, "9": 14, "11": 17, "13": 21}


def chord_pitches(label: str, *, root_octave: int = 3) -> list[int]:
    """MIDI notes voicing a Harte label (``[]`` for ``N``/``X``); slash bass an octave down."""
    if label in ("N", "X"):
        return []
    body, _, bass = label.partition("/")
    root_name, _, quality = body.partition(":")
    quality = quality.split("(")[0] or "maj"
    root = 12 * (root_octave + 1) + pitch_class(root_name)
    notes = [root + i for i in HARTE_INTERVALS.get(quality, (0, 7))]
    if bass:
        acc = bass.count("#") - bass.count("b")
        degree = _DEGREES.get(bass.strip("#b"))
        if degree is not None:
            notes.insert(0, root + degree + acc - 12)
    return sorted(set(notes))


def _mido_key(label: str) -> str | None:
    if label == "N":
        return None
    tonic, mode = label.split()
    return tonic + ("m" if mode == "minor" else "")


class _TempoMap:
    """Piecewise-linear seconds <-> ticks through grid points (one per beat)."""

    def __init__(self, ticks: list[int], times: list[float]) -> None:
        self.ticks, self.times = ticks, times

    def tick_of(self, t: float) -> int:
        import bisect

        ts, ks = self.times, self.ticks
        if len(ts) == 1:
            return ks[0]
        i = min(max(bisect.bisect_right(ts, t) - 1, 0), len(ts) - 2)
        rate = (ks[i + 1] - ks[i]) / (ts[i + 1] - ts[i])
        return max(0, int(round(ks[i] + (t - ts[i]) * rate)))


def tempo_changes(ticks: list[int], times: list[float], *,
                  tolerance_s: float = TEMPO_TOLERANCE_S) -> list[tuple[int, int]]:
    """``(tick, microseconds per quarter)`` set_tempo events that put every grid point
    (``ticks[i]`` at ``times[i]`` seconds, tick 0 at 0 s) within ``tolerance_s`` of its time.

    Greedy: from a grid point, one tempo runs as far as it keeps every point in reach,
    so beats on a steady tempo segment need one event and wandering beats one each. The
    time each event really starts at (after the whole-microsecond tempi before it) is
    carried forward, so rounding never adds up.
    """
    t = np.asarray(times, dtype=float)
    k = np.asarray(ticks, dtype=float)
    out: list[tuple[int, int]] = []
    i, now = 0, 0.0  # grid point i starts at ``now`` seconds under the tempi written so far
    while i < len(k) - 1:
        best: tuple[int, int] | None = None
        for j in range(i + 1, len(k)):
            us = (t[j] - now) * 1e6 * PPQ / (k[j] - k[i])
            tempo = min(max(int(round(us)), 1), _MAX_TEMPO_US)
            reach = now + (k[i + 1:j + 1] - k[i]) * tempo / PPQ / 1e6
            if best is not None and np.max(np.abs(reach - t[i + 1:j + 1])) > tolerance_s:
                break
            best = (j, tempo)  # one step always counts: the tempo aims at point j itself
        assert best is not None  # the first step always counts (above)
        j, tempo = best
        if not out or out[-1][1] != tempo:
            out.append((int(k[i]), tempo))
        now += (k[j] - k[i]) * tempo / PPQ / 1e6
        i = j
    return out


#: A timed event: (tick, order among events at the same tick, mido message).
_Event = tuple[int, int, Any]


@dataclass(frozen=True)
class _MidiGrid:
    """Where songmap's beats and bars sit in MIDI ticks.

    ``ticks[i]`` is at ``times[i]`` seconds (t=0, the lead-in beats, every tracked beat);
    ``measures`` are (start tick, counted beats) of every MIDI bar."""

    beat_ticks: int
    first_beat_tick: int
    ticks: list[int]
    times: list[float]
    measures: list[tuple[int, int]]


def _lead_in_beats(times: list[float], bpm: float, beat_ticks: int) -> int:
    """Whole beats before the first beat (at 0 s): at roughly the opening tempo, bounded
    by the slowest tempo ``set_tempo`` can hold."""
    if times[0] <= 1e-4:
        return 0
    period = times[1] - times[0] if len(times) > 1 else 60.0 / max(bpm, 1.0)
    return max(1, round(times[0] / period),
               math.ceil(times[0] * 1e6 * PPQ / beat_ticks / _MAX_TEMPO_US))


def _bar_measures(r: AnalysisResult, pre: int, beat_ticks: int) -> list[tuple[int, int]]:
    """(start tick, counted beats) of the MIDI bars: the ``pre`` counted beats before the
    first downbeat in bars of the first section's meter (a short one first), then one
    bar per songmap bar."""
    from songmap.export.grid import meter_sections

    bpb = r.time_signature.beats_per_bar
    sections = meter_sections(r)
    first_bpb = sections[0].beats_per_bar if sections else bpb
    measures: list[tuple[int, int]] = []
    tick = 0
    if pre % first_bpb:
        measures.append((0, pre % first_bpb))
        tick = (pre % first_bpb) * beat_ticks
    while tick < pre * beat_ticks:
        measures.append((tick, first_bpb))
        tick += first_bpb * beat_ticks
    section_bpb = {}
    for sec in sections:
        for bar in range(sec.first_bar, sec.first_bar + sec.bars):
            section_bpb[bar] = sec.beats_per_bar
    for i, d in enumerate(r.downbeat_timeline):
        # the last bar is usually cut short by the end of the recording, not a
        # change of meter: keep its section's meter there
        last = i == len(r.downbeat_timeline) - 1
        n = max(d.beats, section_bpb.get(d.bar, bpb)) if last else d.beats
        measures.append((tick, n))
        tick += n * beat_ticks
    return measures


def _midi_grid(r: AnalysisResult, beat_ticks: int) -> _MidiGrid:
    """The lead-in, one MIDI beat per tracked beat, and the bars on them."""
    bpb = r.time_signature.beats_per_bar
    beats = r.beat_transient_markers
    if not beats:
        return _MidiGrid(beat_ticks, 0, [0], [0.0], [(0, bpb)])
    times = r.beat_times().tolist()
    lead_units = _lead_in_beats(times, r.tempo.bpm, beat_ticks)
    ticks = [u * beat_ticks for u in range(lead_units)]
    grid_times = [times[0] * u / lead_units for u in range(lead_units)]
    first_beat_tick = lead_units * beat_ticks
    ticks += [first_beat_tick + k * beat_ticks for k in range(len(times))]
    grid_times += times
    if not r.downbeat_timeline:
        return _MidiGrid(beat_ticks, first_beat_tick, ticks, grid_times, [(0, bpb)])
    pickups = sum(1 for b in beats if b.bar == 0)
    measures = _bar_measures(r, lead_units + pickups, beat_ticks)
    return _MidiGrid(beat_ticks, first_beat_tick, ticks, grid_times, measures)


def _conductor_events(r: AnalysisResult, grid: _MidiGrid, tmap: _TempoMap) -> list[_Event]:
    """Track 0: tempo changes, time signatures, a marker per bar and the key."""
    import mido

    compound = _compound(r.time_signature.label)
    denominator = 8 if compound else int(r.time_signature.label.split("/")[1])
    units_per_beat = 3 if compound else 1  # time-signature numerator units per counted beat
    events: list[_Event] = []
    first_tempo = mido.bpm2tempo(r.tempo.bpm) if r.tempo.bpm > 0 else 500000
    for tick, tempo in tempo_changes(grid.ticks, grid.times) or [(0, first_tempo)]:
        events.append((tick, 1, mido.MetaMessage("set_tempo", tempo=tempo)))
    prev_num = None
    for tick, n in grid.measures:
        num = max(1, n * units_per_beat)
        if num != prev_num:
            events.append((tick, 0, mido.MetaMessage(
                "time_signature", numerator=num, denominator=denominator,
                clocks_per_click=36 if compound else 24, notated_32nd_notes_per_beat=8)))
            prev_num = num
    for d in r.downbeat_timeline:
        marker = mido.MetaMessage("marker", text=f"Bar {d.bar}")
        events.append((tmap.tick_of(d.timestamp), 2, marker))
    key = _mido_key(r.key.label)
    if key:
        events.append((0, 0, mido.MetaMessage("key_signature", key=key)))
    return events


def _click_events(r: AnalysisResult, grid: _MidiGrid) -> list[_Event]:
    """Track 1: a wood block on every beat, the higher and louder one on downbeats."""
    import mido

    events: list[_Event] = []
    dur = grid.beat_ticks // 4
    for k, b in enumerate(r.beat_transient_markers):
        tick = grid.first_beat_tick + k * grid.beat_ticks
        accent = b.beat_position == 1 and b.bar >= 1
        note = DOWNBEAT_NOTE if accent else BEAT_NOTE
        vel = DOWNBEAT_VELOCITY if accent else BEAT_VELOCITY
        on = mido.Message("note_on", channel=CLICK_CHANNEL, note=note, velocity=vel)
        off = mido.Message("note_off", channel=CLICK_CHANNEL, note=note, velocity=0)
        events += [(tick, 1, on), (tick + dur, 0, off)]
    return events


def _chord_events(r: AnalysisResult, tmap: _TempoMap) -> list[_Event]:
    """Track 2: the Harte label and the chord tones of every chord segment."""
    import mido

    events: list[_Event] = [
        (0, 0, mido.Message("program_change", channel=CHORD_CHANNEL, program=0))]
    for start, end, label in r.chord_segments:
        t0, t1 = tmap.tick_of(start), tmap.tick_of(end)
        events.append((t0, 2, mido.MetaMessage("text", text=label)))
        for p in chord_pitches(label):
            on = mido.Message("note_on", channel=CHORD_CHANNEL, note=p, velocity=70)
            off = mido.Message("note_off", channel=CHORD_CHANNEL, note=p, velocity=0)
            events += [(t0, 3, on), (max(t1, t0 + 1), 1, off)]
    return events


def _track(name: str, events: list[_Event]) -> mido.MidiTrack:
    """A named track of ``events`` in tick order (ties by their order), delta-timed."""
    import mido

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _compound(label: str) -> bool:
    """Whether a time signature counts dotted-quarter beats (6/8, 9/8, 12/8): each counted
    beat is three eighths (``config.counted_beats``)."""
    from songmap.config import counted_beats, parse_time_signature

    try:
        num, den = parse_time_signature(label)
    except ValueError:
        return False
    return den == 8 and counted_beats(label) != num


def build_midi(result: AnalysisResult):
    """The type-1 MIDI file of ``result``: tempo map, click and chord tracks."""
    import mido

    grid = _midi_grid(result, PPQ * 3 // 2 if _compound(result.time_signature.label) else PPQ)
    tmap = _TempoMap(grid.ticks, grid.times)
    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    mid.tracks.append(_track("songmap tempo map", _conductor_events(result, grid, tmap)))
    mid.tracks.append(_track("songmap click", _click_events(result, grid)))
    mid.tracks.append(_track("songmap chords", _chord_events(result, tmap)))
    return mid


def to_midi(result: AnalysisResult) -> bytes:
    buf = io.BytesIO()
    build_midi(result).save(file=buf)
    return buf.getvalue()
