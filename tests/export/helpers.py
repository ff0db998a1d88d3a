"""Build AnalysisResult objects with known contents, without running the analyser."""

from __future__ import annotations

import itertools

from songmap.config import AnalysisSettings
from songmap.schema import (
    AnalysisResult,
    AudioInfo,
    BarChord,
    BeatMarker,
    Downbeat,
    KeyInfo,
    PerformanceMetrics,
    Provenance,
    TempoInfo,
    TimeSignature,
)


def make_result(
    beat_times: list[float],
    positions: list[int],
    *,
    duration: float | None = None,
    chords: list[tuple[float, float, str]] | None = None,
    key: str = "A minor",
    meter: str = "4/4",
    beats_per_bar: int = 4,
    filename: str = "synthetic.wav",
) -> AnalysisResult:
    """Beats at ``beat_times`` with bar positions ``positions`` (bar 0 before the first 1)."""
    duration = duration or (beat_times[-1] + 1.0 if beat_times else 10.0)
    bar, markers, bar_beats = 0, [], {}
    for i, (t, p) in enumerate(zip(beat_times, positions)):
        if p == 1:
            bar += 1
        markers.append(BeatMarker(beat_number=i + 1, bar=bar, beat_position=p, beat_time=t,
                                  confidence=0.9, transient_time=t, transient_strength=0.8,
                                  accuracy=1.0))
        bar_beats.setdefault(bar, []).append(t)
    downbeats = []
    for b in sorted(k for k in bar_beats if k >= 1):
        ts = bar_beats[b]
        nxt = bar_beats.get(b + 1, [None])[0]
        if nxt is None:
            period = (ts[-1] - ts[0]) / (len(ts) - 1) if len(ts) > 1 else 0.5
            nxt = ts[-1] + period
        dur = nxt - ts[0]
        downbeats.append(Downbeat(bar=b, timestamp=ts[0], confidence=0.9, duration=round(dur, 6),
                                  beats=len(ts), tempo=round(60.0 * len(ts) / dur, 2)))
    chords = chords or []
    bar_chords = []
    for d in downbeats:
        label = next((c for s, e, c in chords if s <= d.timestamp < e), "N")
        bar_chords.append(BarChord(bar=d.bar, timestamp=d.timestamp, duration=d.duration,
                                   chord=label, confidence=0.7, chroma_vector=[0.0] * 12,
                                   chords=[label]))
    from songmap.harmony.notation import camelot, open_key

    periods = [b - a for a, b in itertools.pairwise(beat_times)]
    bpm = round(60.0 / (sum(periods) / len(periods)), 2) if periods else 0.0
    return AnalysisResult(
        filename=filename,
        audio=AudioInfo(duration=duration, sample_rate=44100, channels=2, decoder="soundfile"),
        tempo=TempoInfo(bpm=bpm, confidence=0.9, alternative_bpm=bpm / 2 if bpm else None,
                        alternative_confidence=0.3 if bpm else None, stability=0.95),
        time_signature=TimeSignature(beats_per_bar=beats_per_bar, label=meter, confidence=0.8),
        key=KeyInfo(label=key, confidence=0.8,
                    camelot=camelot(key) if key != "N" else None,
                    open_key=open_key(key) if key != "N" else None),
        downbeat_timeline=downbeats,
        beat_transient_markers=markers,
        transient_accuracy=1.0 if markers else 0.0,
        chord_progression=bar_chords,
        chord_segments=chords,
        onset_times=list(beat_times),
        performance_metrics=PerformanceMetrics(analysis_time=0.1, realtime_factor=100.0,
                                               stage_seconds={}),
        provenance=Provenance(songmap_version="0.1.0", models=[], settings=AnalysisSettings()),
    )


def ritardando_waltz() -> AnalysisResult:
    """3/4 with two pickup beats, a tempo that slows from 150 to ~100 BPM, slash/seventh chords."""
    times, t, period = [], 1.3, 0.4
    for _ in range(26):
        times.append(round(t, 4))
        t += period
        period *= 1.016
    positions = [2, 3] + [(i % 3) + 1 for i in range(24)]
    bars = [times[i] for i in range(2, 26, 3)]
    labels = ["G:maj", "D:7/3", "E:min7", "C:maj7", "A:min", "D:sus4", "G:maj", "N"]
    chords = [(0.0, bars[0], "N")]
    for i, start in enumerate(bars):
        end = bars[i + 1] if i + 1 < len(bars) else times[-1] + 0.7
        chords.append((start, round(end, 4), labels[i]))
    return make_result(times, positions, chords=chords, key="E minor", meter="3/4",
                       beats_per_bar=3, duration=round(times[-1] + 0.8, 4), filename="waltz.mp3")


def silent_result() -> AnalysisResult:
    return make_result([], [], duration=5.0, key="N", filename="silence.wav")


def two_section_result() -> AnalysisResult:
    """4 bars of 4/4 and 4 of 3/4 at 120 BPM, then 4 bars of 3/4 at 90 BPM: two meter
    sections and two tempo segments, on a grid that starts at 0.3 s."""
    from songmap.schema import MeterSection, TempoSegment

    times, positions, t = [], [], 0.3
    for bpb, bpm in [(4, 120.0)] * 4 + [(3, 120.0)] * 4 + [(3, 90.0)] * 4:
        for p in range(1, bpb + 1):
            times.append(round(t, 4))
            positions.append(p)
            t += 60.0 / bpm
    r = make_result(times, positions, duration=round(t + 0.5, 4))
    bar5, bar9 = r.downbeat_timeline[4], r.downbeat_timeline[8]
    sections = [MeterSection(start=times[0], first_bar=1, bars=4, beats_per_bar=4, label="4/4",
                             confidence=0.9),
                MeterSection(start=bar5.timestamp, first_bar=5, bars=8, beats_per_bar=3,
                             label="3/4", confidence=0.8)]
    first_slow = times.index(bar9.timestamp)
    segments = [TempoSegment(start=times[0], end=times[first_slow - 1], bpm=120.0, confidence=1.0,
                             first_beat=1, beats=first_slow),
                TempoSegment(start=times[first_slow], end=times[-1], bpm=90.0, confidence=1.0,
                             first_beat=first_slow + 1, beats=len(times) - first_slow)]
    return r.model_copy(update={"meter_sections": sections, "tempo_map": segments})
