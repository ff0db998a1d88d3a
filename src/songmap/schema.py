"""The public result object. Its JSON field names are part of the API contract.

Units: seconds for every time, BPM for tempo, 1-based beat positions within a bar,
pickup (anacrusis) beats in bar 0, chords in Harte syntax, keys as mir_eval strings.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    computed_field,
    model_serializer,
    model_validator,
)

from songmap.config import AnalysisSettings

if TYPE_CHECKING:  # numpy loads when an array is asked for: `import songmap` stays cheap
    import numpy as np

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
    tuning_cents: float | None = Field(
        None, description="How far the recording's semitones lie from those of A4 = 440 Hz, in "
        "cents (-50..50, + sharp; A4 = 440 * 2 ** (cents / 1200) Hz); the key and chords are "
        "read with the audio retuned when it is 10 cents or more off. None where the "
        "pitched sound is too weak to tell (and then left out of the JSON, as in results "
        "written before it was measured).")

    @model_serializer(mode="wrap")
    def _without_unknown_tuning(self, handler: SerializerFunctionWrapHandler):
        # (no return annotation: see AnalysisResult._in_contract_order)
        data = handler(self)
        if data.get("tuning_cents", 0.0) is None:
            del data["tuning_cents"]
        return data


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


class Descriptors(_Frozen):
    """Loudness and 0..1 track descriptors (formulas in docs/descriptors.md)."""

    integrated_lufs: float | None = Field(description="Gated integrated loudness (LUFS); null if too quiet.")
    loudness_range_lu: float | None = Field(description="EBU loudness range (LU); null under 3 s.")
    true_peak_dbtp: float | None = Field(description="True peak (dBTP); null for silence.")
    sample_peak_dbfs: float | None = Field(description="Largest sample (dBFS); null for silence.")
    replaygain_track_gain_db: float | None = Field(description="-18 - integrated_lufs (dB).")
    replaygain_track_peak: float = Field(description="True peak as a linear value.")
    loudness_method: str = Field(description='"pyloudnorm" or "songmap (BS.1770-4)".')
    channels: int = Field(description="Channels the loudness was measured on.")
    tempo_bpm: float
    tempo_confidence: float
    tempo_alternative_bpm: float | None
    tempo_alternative_confidence: float | None
    key: str
    key_camelot: str | None
    key_open_key: str | None
    time_signature: str
    onsets_per_second: float
    loudness_score: float
    onset_density: float
    energy: float
    beat_strength: float
    pulse_clarity: float
    tempo_fit: float
    danceability: float


class Provenance(_Frozen):
    songmap_version: str
    models: list[ModelInfo]
    settings: AnalysisSettings


#: The derived fields: computed from the others (pydantic computed fields), written to the
#: JSON and accepted (and dropped) on input, so results stored with them still load.
_DERIVED = frozenset({"tempo_curve", "total_bars", "average_bar_duration", "tempo_stability",
                      "total_beats", "total_chord_changes", "harmonic_rhythm"})
#: Tolerance (s) of the time checks: times are rounded to 0.1 ms, the duration too.
_TIME_SLACK_S = 1e-6


class AnalysisResult(_Frozen):
    """Everything songmap says about one recording.

    Built once, where the analysis ends; the validator refuses a result whose times are
    not finite, increasing and inside the track, or whose beats, bars and chords do not
    fit together. Seven fields (``tempo_curve``, ``total_bars``, ``average_bar_duration``,
    ``tempo_stability``, ``total_beats``, ``total_chord_changes``, ``harmonic_rhythm``) are
    computed from the others; they are in the JSON, in the order of the contract.
    """

    # Extra keys are let in only to be dropped when they are the derived fields (stored
    # results carry them) and refused otherwise, in the validator below. Not with a
    # "before" validator: that made pydantic build Python objects from JSON first and
    # doubled the time to load a stored result.
    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: str = SCHEMA_VERSION
    filename: str
    audio: AudioInfo
    tempo: TempoInfo
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
    beat_transient_markers: list[BeatMarker]
    # Stored, not computed: the mean of the unrounded per-beat accuracies (each beat's is
    # rounded to 4 decimals in the JSON, and the mean of rounded values can differ in the
    # 4th decimal: 2 of the 64 dev/fof/irregular results).
    transient_accuracy: float = Field(description="Mean beat accuracy, beats without transient = 0.")
    chord_progression: list[BarChord]
    chord_segments: list[tuple[float, float, str]]
    chord_details: list[ChordDetail] = Field(
        [], description="The chord segments with spelled names, Roman numerals and confidence.")
    key_segments: list[KeySegment] = Field(
        [], description="Key per section of the song; one segment when the key never changes.")
    onset_times: list[float]
    warnings: list[str] = []
    descriptors: Descriptors | None = Field(
        None, description="Loudness and 0..1 track descriptors (docs/descriptors.md), if asked."
    )
    performance_metrics: PerformanceMetrics
    provenance: Provenance

    # -- derived fields -----------------------------------------------------------------
    @computed_field(description="[bar start (s), BPM] for every bar.")  # type: ignore[prop-decorator]
    @property
    def tempo_curve(self) -> list[tuple[float, float]]:
        return [(bar.timestamp, bar.tempo) for bar in self.downbeat_timeline]

    @computed_field(description="Number of bars.")  # type: ignore[prop-decorator]
    @property
    def total_bars(self) -> int:
        return len(self.downbeat_timeline)

    @computed_field(description="Mean bar duration (s); 0 without bars.")  # type: ignore[prop-decorator]
    @property
    def average_bar_duration(self) -> float:
        import numpy as np  # np.mean's pairwise sum: the value songmap always wrote

        bars = self.downbeat_timeline
        return round(float(np.mean([x.duration for x in bars])), 4) if bars else 0.0

    @computed_field(description="The tempo's stability (tempo.stability).")  # type: ignore[prop-decorator]
    @property
    def tempo_stability(self) -> float:
        return self.tempo.stability

    @computed_field(description="Number of beats.")  # type: ignore[prop-decorator]
    @property
    def total_beats(self) -> int:
        return len(self.beat_transient_markers)

    @computed_field(description="Bars whose chord differs from the bar before.")  # type: ignore[prop-decorator]
    @property
    def total_chord_changes(self) -> int:
        bars = self.chord_progression
        return sum(1 for a, b in pairwise(bars) if a.chord != b.chord)

    @computed_field(description="Chord changes per bar.")  # type: ignore[prop-decorator]
    @property
    def harmonic_rhythm(self) -> float:
        bars = self.chord_progression
        return round(self.total_chord_changes / max(len(bars) - 1, 1), 4) if bars else 0.0

    @model_serializer(mode="wrap")
    def _in_contract_order(self, handler: SerializerFunctionWrapHandler):
        # computed fields would come last; the JSON keeps the contract's order. No return
        # annotation: with one, pydantic would describe the JSON as that type (a bare dict)
        # instead of the model's fields in the JSON Schema and the service's OpenAPI
        data = handler(self)
        return {k: data[k] for k in _JSON_ORDER if k in data}

    @model_validator(mode="after")
    def _check_invariants(self) -> AnalysisResult:
        extra = self.__pydantic_extra__
        if extra:
            unknown = sorted(set(extra) - _DERIVED)
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(unknown)}")
            # a stored result's derived values: they follow from the rest, so dropped
            extra.clear()
        _check_result(self)
        return self

    # -- arrays for mir_eval ------------------------------------------------------------
    def beat_times(self) -> np.ndarray:
        """Beat times (s), increasing, shape ``(n_beats,)``: ``mir_eval.beat``'s input."""
        import numpy as np

        return np.array([b.beat_time for b in self.beat_transient_markers], dtype=float)

    def downbeat_times(self) -> np.ndarray:
        """Downbeat (bar start) times (s), increasing, shape ``(n_bars,)``."""
        import numpy as np

        return np.array([d.timestamp for d in self.downbeat_timeline], dtype=float)

    def chord_intervals(self, *, per_bar: bool = False) -> np.ndarray:
        """Chord spans (s), shape ``(n, 2)`` of [start, end]: ``mir_eval.chord``'s intervals.

        ``per_bar=False``: the chord segments (``chord_segments``, covering the whole
        track, ``N`` where no chord sounds). ``per_bar=True``: the chord progression, one
        span per bar and two where a bar lists two chords (split where the second chord's
        segment starts); bar 1 to the end of the last bar only."""
        import numpy as np

        spans = _bar_chord_spans(self) if per_bar else self.chord_segments
        return np.array([[s, e] for s, e, _ in spans], dtype=float).reshape(-1, 2)

    def chord_labels(self, *, per_bar: bool = False) -> list[str]:
        """Harte labels of :meth:`chord_intervals` (same ``per_bar``), one per span."""
        spans = _bar_chord_spans(self) if per_bar else self.chord_segments
        return [label for _, _, label in spans]

    def to_pandas(self, table: str = "beats") -> Any:
        """One table of the result as a pandas DataFrame: beats, bars, chords or onsets."""
        from songmap.tables import to_pandas

        return to_pandas(self, table)


#: The JSON's keys in the order of the contract (derived fields where they always were).
_JSON_ORDER = (
    "schema_version", "filename", "audio", "tempo", "tempo_curve", "time_signature",
    "tempo_map", "meter_sections", "grid_confidence", "key", "downbeat_timeline", "total_bars",
    "average_bar_duration", "tempo_stability", "beat_transient_markers", "total_beats",
    "transient_accuracy", "chord_progression", "total_chord_changes", "harmonic_rhythm",
    "chord_segments", "chord_details", "key_segments", "onset_times", "warnings",
    "descriptors", "performance_metrics", "provenance",
)


def _bar_chord_spans(result: AnalysisResult) -> list[tuple[float, float, str]]:
    """The chord progression as (start s, end s, label): one per bar, two where the bar
    lists two (split where the second chord's segment starts)."""
    out: list[tuple[float, float, str]] = []
    for bar in result.chord_progression:
        start, end = bar.timestamp, bar.timestamp + bar.duration
        if len(bar.chords) == 2:
            split = next((s for s, e, lab in result.chord_segments
                          if lab == bar.chords[1] and start < s < end), None)
            if split is not None:
                out.append((start, split, bar.chords[0]))
                out.append((split, end, bar.chords[1]))
                continue
        out.append((start, end, bar.chord))
    return out


# -- invariants -------------------------------------------------------------------------
def _check_result(r: AnalysisResult) -> None:
    """Raise ``ValueError`` naming the first broken invariant of ``r``."""
    duration = r.audio.duration + _TIME_SLACK_S
    beats, bars = r.beat_transient_markers, r.downbeat_timeline
    beat_times = [b.beat_time for b in beats]
    bar_times = [d.timestamp for d in bars]
    _check_increasing(beat_times, duration, "beat times")
    _check_increasing(bar_times, duration, "downbeats")
    _check_increasing(r.onset_times, duration, "onset times")
    _check_increasing([c.timestamp for c in r.chord_progression], duration, "bar chords")
    for b in beats:
        if b.transient_time is not None and not 0 <= b.transient_time <= duration:
            raise ValueError("transient times must be finite and inside the track")
    for start, end, _ in r.chord_segments:
        if not 0 <= start <= end <= duration:  # False for NaN too
            raise ValueError("chord segments must be finite and lie inside the track")
    numbers = (r.tempo.bpm, r.tempo.confidence, r.key.confidence, r.transient_accuracy)
    if not all(math.isfinite(x) for x in numbers):
        raise ValueError("tempo, confidences and transient accuracy must be finite")
    if [d.bar for d in bars] != list(range(1, len(bars) + 1)):
        raise ValueError("bar numbers must run 1, 2, 3, ...")
    if [b.beat_number for b in beats] != list(range(1, len(beats) + 1)):
        raise ValueError("beat numbers must run 1, 2, 3, ...")
    _check_beats_in_bars(r)


def _check_beats_in_bars(r: AnalysisResult) -> None:
    """Pickup beats (bar 0) come before the first downbeat; every other beat lies in the
    bar it names, at a position that bar has; the first bar starts on a beat."""
    bars = r.downbeat_timeline
    starts = [d.timestamp for d in bars] + [math.inf]
    for b in r.beat_transient_markers:
        if b.bar == 0:
            if b.beat_time >= starts[0]:
                raise ValueError(f"pickup beat {b.beat_number} lies after the first downbeat")
            continue
        if not (b.bar <= len(bars) and starts[b.bar - 1] - _TIME_SLACK_S <= b.beat_time < starts[b.bar]):
            raise ValueError(f"beat {b.beat_number} does not lie in its bar {b.bar}")
        if b.beat_position > bars[b.bar - 1].beats:
            raise ValueError(f"beat {b.beat_number} is at position {b.beat_position} of a bar "
                             f"of {bars[b.bar - 1].beats} beats")
    if bars and not any(abs(b.beat_time - starts[0]) < 1e-3 for b in r.beat_transient_markers):
        raise ValueError("the first bar does not start on a beat")


def _check_increasing(times: list[float], duration: float, what: str) -> None:
    prev = -math.inf
    for t in times:
        if not math.isfinite(t) or t < 0 or t > duration:
            raise ValueError(f"{what} must be finite and inside the track")
        if t <= prev:
            raise ValueError(f"{what} must increase")
        prev = t
