"""The public result object. Its JSON field names are part of the API contract.

Units: seconds for every time, BPM for tempo, 1-based beat positions within a bar,
pickup (anacrusis) beats in bar 0, chords in Harte syntax, keys as mir_eval strings.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1.0"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AudioInfo(_Frozen):
    duration: float = Field(description="Seconds of audio as a player plays it.")
    sample_rate: int = Field(description="Sample rate of the file (Hz).")
    channels: int
    decoder: str = Field(description="Which decoder read the file (soundfile or pyav).")


class TempoInfo(_Frozen):
    bpm: float = Field(description="Global tempo from the tracked beats (BPM); 0 if none.")
    confidence: float
    alternative_bpm: float | None = Field(
        None, description="Half- or double-time reading of the same beats."
    )
    alternative_confidence: float | None = None
    stability: float = Field(description="1 - coefficient of variation of the bar tempi (0..1).")


class TimeSignature(_Frozen):
    beats_per_bar: int = Field(description="Counted beats per bar (6/8 counts 2).")
    label: str = Field(description='Conventional reading: "4/4", "3/4", "2/4" or "6/8".')
    confidence: float


class TempoSegment(_Frozen):
    """One stretch of steady tempo in the tempo map (a DJ grid's ``TEMPO`` entry)."""

    start: float = Field(description="Time of the segment's first beat (s).")
    end: float = Field(description="Time of the segment's last beat (s).")
    bpm: float = Field(description="Tempo of the straight-line grid fitted to its beats (BPM, 2 decimals).")
    confidence: float = Field(description="How well the steady grid fits the tracked beats (0..1).")
    first_beat: int = Field(ge=1, description="beat_number of the segment's first beat.")
    beats: int = Field(ge=1, description="Number of beats in the segment.")


class MeterSection(_Frozen):
    """A run of bars with one time signature; a new one starts where the meter changes."""

    start: float = Field(description="Time of the section's first downbeat (s).")
    first_bar: int = Field(ge=1, description="Number of the section's first bar.")
    bars: int = Field(ge=1, description="Number of bars in the section.")
    beats_per_bar: int
    label: str = Field(description='Time signature, e.g. "4/4", "3/4", "7/4", "6/8".')
    confidence: float


class KeyInfo(_Frozen):
    label: str = Field(description='mir_eval key string, e.g. "A minor"; "N" if undecided.')
    confidence: float
    camelot: str | None = Field(None, description='Camelot wheel code, e.g. "8A".')
    open_key: str | None = Field(None, description='Open Key code, e.g. "1m".')
    runner_up: str | None = None
    runner_up_confidence: float | None = None
    name: str | None = Field(
        None, description='The key spelled as in its key signature, e.g. "Db major" for "C# major".'
    )


class KeySegment(_Frozen):
    """A stretch of the song in one key; one segment over the whole song when it never
    changes key."""

    start: float = Field(description="Start of the section (s); the first starts at 0.")
    end: float = Field(description="End of the section (s); the last ends at the track's end.")
    key: str = Field(description='mir_eval key string, e.g. "A minor".')
    confidence: float = Field(description="Share of the section's chord evidence for this key (0..1).")
    name: str | None = Field(None, description='The key spelled, e.g. "Db major".')


class ChordDetail(_Frozen):
    """One chord segment with its lead-sheet name and function in its key section."""

    start: float
    end: float
    label: str = Field(description="Harte label (the contract; same as chord_segments).")
    name: str = Field(description='Lead-sheet name spelled in the key, e.g. "Db", "Bbm7", "E5", "N.C.".')
    numeral: str | None = Field(
        None, description='Roman numeral in the key, e.g. "vi", "V7/V", "bVII"; null for N.')
    borrowed: bool = Field(False, description="Borrowed from the parallel mode (e.g. bVII, iv in major).")
    secondary: bool = Field(False, description="Secondary dominant (V/x, V7/x).")
    key: str | None = Field(None, description="Key section the chord was read in.")
    confidence: float = Field(0.0, description="How sure the chord is (0..1); higher is more often right.")


class Downbeat(_Frozen):
    bar: int = Field(ge=1)
    timestamp: float
    confidence: float
    beat_position: int = 1
    duration: float = Field(description="Seconds until the next downbeat (or the last beat's end).")
    beats: int = Field(description="Beats counted in this bar.")
    tempo: float = Field(description="Tempo of this bar in BPM.")


class BeatMarker(_Frozen):
    beat_number: int = Field(ge=1)
    bar: int = Field(ge=0, description="0 for pickup beats before the first downbeat.")
    beat_position: int = Field(ge=1)
    beat_time: float
    confidence: float
    transient_time: float | None = Field(None, description="Nearest detected onset, if close.")
    transient_strength: float | None = Field(None, description="Onset envelope there (0..1).")
    accuracy: float | None = Field(
        None, description="1 - |transient - beat| / window: 1 when they coincide, null if none."
    )


class BarChord(_Frozen):
    bar: int = Field(ge=1)
    timestamp: float
    duration: float
    chord: str = Field(description="Harte label of the bar's main chord.")
    confidence: float
    chroma_vector: list[float] = Field(description="Mean chroma of the bar, C..B, max 1.")
    chords: list[str] = Field(description="Every chord of the bar in order (one or two).")
    names: list[str] = Field(
        [], description="Lead-sheet names of `chords`, spelled in the bar's key (Db, not C#, in flat keys).")
    numerals: list[str | None] = Field(
        [], description="Roman numeral of each of `chords` in the bar's key (null for N).")


class PerformanceMetrics(_Frozen):
    analysis_time: float = Field(description="Wall seconds from file to result.")
    realtime_factor: float = Field(description="Audio seconds per wall second.")
    stage_seconds: dict[str, float]
    peak_rss_mb: float | None = None


class ModelInfo(_Frozen):
    name: str
    source: str
    licence: str


class Provenance(_Frozen):
    songmap_version: str
    models: list[ModelInfo]
    settings: dict[str, Any]


class AnalysisResult(_Frozen):
    """Everything songmap says about one recording."""

    schema_version: str = SCHEMA_VERSION
    filename: str
    audio: AudioInfo
    tempo: TempoInfo
    tempo_curve: list[tuple[float, float]] = Field(
        description="[bar start (s), BPM] for every bar."
    )
    time_signature: TimeSignature
    tempo_map: list[TempoSegment] = Field(
        [], description="Piecewise-constant tempo fitted to the beats; one segment when steady."
    )
    meter_sections: list[MeterSection] = Field(
        [], description="Time signature per section; one section when the meter never changes."
    )
    grid_confidence: float | None = Field(
        None, description="How sure the whole beat/bar grid is (0..1): low for free time or no beat."
    )
    key: KeyInfo
    downbeat_timeline: list[Downbeat]
    total_bars: int
    average_bar_duration: float
    tempo_stability: float
    beat_transient_markers: list[BeatMarker]
    total_beats: int
    transient_accuracy: float = Field(description="Mean beat accuracy, beats without transient = 0.")
    chord_progression: list[BarChord]
    total_chord_changes: int
    harmonic_rhythm: float = Field(description="Chord changes per bar.")
    chord_segments: list[tuple[float, float, str]]
    chord_details: list[ChordDetail] = Field(
        [], description="The chord segments with spelled names, Roman numerals and confidence.")
    key_segments: list[KeySegment] = Field(
        [], description="Key per section of the song; one segment when the key never changes.")
    onset_times: list[float]
    warnings: list[str] = []
    descriptors: dict[str, Any] | None = Field(
        None, description="Loudness and 0..1 track descriptors (docs/descriptors.md), if asked."
    )
    performance_metrics: PerformanceMetrics
    provenance: Provenance

    @model_validator(mode="after")
    def _check_invariants(self) -> "AnalysisResult":
        duration = self.audio.duration + 1e-6
        times = [b.beat_time for b in self.beat_transient_markers]
        _check_increasing(times, duration, "beat times")
        _check_increasing([d.timestamp for d in self.downbeat_timeline], duration, "downbeats")
        _check_increasing(self.onset_times, duration, "onset times")
        bars = [d.bar for d in self.downbeat_timeline]
        if bars != list(range(1, len(bars) + 1)):
            raise ValueError("bar numbers must run 1, 2, 3, ...")
        if self.total_bars != len(bars) or self.total_beats != len(times):
            raise ValueError("totals must count the listed bars and beats")
        for start, end, _ in self.chord_segments:
            if not (0 <= start <= end <= duration):
                raise ValueError("chord segments must lie inside the track")
        return self

    def timeline_features(self) -> dict[str, Any]:
        """The ``timeline_features`` block of the service's ``/analyze-timeline`` answer."""
        data = self.model_dump(mode="json")
        keys = (
            "downbeat_timeline total_bars average_bar_duration tempo_stability "
            "beat_transient_markers total_beats transient_accuracy chord_progression "
            "total_chord_changes harmonic_rhythm chord_segments tempo tempo_curve "
            "time_signature key"
        ).split()
        return {k: data[k] for k in keys}

    def to_pandas(self, table: str = "beats") -> Any:
        """One table of the result as a pandas DataFrame: beats, bars, chords or onsets."""
        from songmap.tables import to_pandas

        return to_pandas(self, table)

    def to_eval_dict(self) -> dict[str, Any]:
        """The prediction form read by ``shared/eval/score.py`` (mir_eval ready)."""
        return {
            "beats": [b.beat_time for b in self.beat_transient_markers],
            "downbeats": [d.timestamp for d in self.downbeat_timeline],
            "tempo": self.tempo.bpm,
            "key": self.key.label if self.key.label != "N" else None,
            "chords": [list(s) for s in self.chord_segments],
            "bar_chords": _bar_chord_segments(self),
            # confidences, for checking that they predict correctness
            "beat_confidence": [b.confidence for b in self.beat_transient_markers],
            "downbeat_confidence": [d.confidence for d in self.downbeat_timeline],
            "bars": [[c.timestamp, c.timestamp + c.duration, c.chord, c.confidence]
                     for c in self.chord_progression],
            "key_confidence": self.key.confidence,
            "time_signature": self.time_signature.label,
            "time_signature_confidence": self.time_signature.confidence,
            "tempo_curve": [list(point) for point in self.tempo_curve],
            "key_segments": [[k.start, k.end, k.key] for k in self.key_segments],
        }


def _bar_chord_segments(result: AnalysisResult) -> list[list[Any]]:
    """The chord progression as segments: one per bar, two where the bar lists two
    (split where the second chord's segment starts)."""
    out: list[list[Any]] = []
    for bar in result.chord_progression:
        start, end = bar.timestamp, bar.timestamp + bar.duration
        if len(bar.chords) == 2:
            split = next((s for s, e, lab in result.chord_segments
                          if lab == bar.chords[1] and start < s < end), None)
            if split is not None:
                out.append([start, split, bar.chords[0]])
                out.append([split, end, bar.chords[1]])
                continue
        out.append([start, end, bar.chord])
    return out


def _check_increasing(times: list[float], duration: float, what: str) -> None:
    prev = -math.inf
    for t in times:
        if not math.isfinite(t) or t < 0 or t > duration:
            raise ValueError(f"{what} must be finite and inside the track")
        if t <= prev:
            raise ValueError(f"{what} must increase")
        prev = t
