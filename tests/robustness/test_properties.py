"""Issue 7: whatever short signal comes in, the result keeps its invariants.

Hypothesis builds signals from clicks at a random tempo, tones, noise, DC, clipping
and non-finite samples; each is analysed by the real pipeline (one shared Analyzer)
and the result is checked here, independently of the schema's own validator.
"""

from __future__ import annotations

import math
import warnings

import mir_eval
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from songmap.audio import signal_from_array
from songmap.schema import AnalysisResult

pytestmark = pytest.mark.slow

SR = 22050


@st.composite
def signals(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    seconds = draw(st.floats(2.0, 4.0))
    n = int(seconds * SR)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = np.zeros(n, np.float32)
    if draw(st.booleans()):  # clicks at a tempo, maybe swung
        bpm = draw(st.floats(40.0, 240.0))
        jitter = draw(st.floats(0.0, 0.05))
        for t in np.arange(draw(st.floats(0.0, 1.0)), seconds, 60.0 / bpm):
            i = int((t + rng.uniform(-jitter, jitter)) * SR)
            if 0 <= i < n - 40:
                x[i:i + 40] += rng.standard_normal(40).astype(np.float32)
    if draw(st.booleans()):  # a tone
        f = draw(st.floats(30.0, 5000.0))
        x += np.float32(draw(st.floats(0.0, 1.0))) * np.sin(
            2 * np.pi * f * np.arange(n) / SR).astype(np.float32)
    x += (rng.standard_normal(n) * draw(st.sampled_from([0.0, 1e-6, 0.01, 0.5]))).astype(np.float32)
    x += np.float32(draw(st.sampled_from([0.0, 0.3, -1.0])))  # DC offset
    x *= np.float32(draw(st.sampled_from([1e-7, 0.1, 1.0, 20.0])))  # near silence .. clipping
    if draw(st.booleans()):
        x = np.clip(x, -1, 1)
    if draw(st.booleans()):  # non-finite samples
        idx = rng.integers(0, n, 10)
        x[idx] = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), 10)
    channels = draw(st.sampled_from([1, 2]))
    return (np.repeat(x[:, None], channels, axis=1) if channels > 1 else x), SR


def check_times(times: list[float], duration: float, what: str) -> None:
    assert all(math.isfinite(t) and 0 <= t <= duration + 1e-6 for t in times), what
    assert all(a < b for a, b in zip(times, times[1:])), f"{what} not increasing"


def check_invariants(r: AnalysisResult) -> None:
    dur = r.audio.duration
    beats = r.beat_transient_markers
    bars = r.downbeat_timeline
    check_times([b.beat_time for b in beats], dur, "beat times")
    check_times([d.timestamp for d in bars], dur, "downbeats")
    check_times(r.onset_times, dur, "onsets")
    check_times([c.timestamp for c in r.chord_progression], dur, "bar chords")
    check_times([t for t, _ in r.tempo_curve], dur, "tempo curve")
    for b in beats:
        if b.transient_time is not None:
            assert math.isfinite(b.transient_time) and 0 <= b.transient_time <= dur + 1e-6
    for s, e, _ in r.chord_segments:
        assert math.isfinite(s) and math.isfinite(e) and 0 <= s <= e <= dur + 1e-6
    assert all(math.isfinite(v) for v in (r.tempo.bpm, r.tempo.confidence, r.key.confidence,
                                          r.transient_accuracy, r.average_bar_duration))

    # bars 1..n, beats numbered 1..N; pickup beats (bar 0) come before the first downbeat,
    # every other beat lies in the bar it names
    assert [d.bar for d in bars] == list(range(1, len(bars) + 1))
    assert [b.beat_number for b in beats] == list(range(1, len(beats) + 1))
    assert r.total_bars == len(bars) and r.total_beats == len(beats)
    starts = [d.timestamp for d in bars] + [math.inf]
    for b in beats:
        if b.bar == 0:
            assert b.beat_time < starts[0]
        else:
            assert 1 <= b.bar <= len(bars)
            assert starts[b.bar - 1] - 1e-6 <= b.beat_time < starts[b.bar]
            assert 1 <= b.beat_position <= bars[b.bar - 1].beats
    if bars:
        assert any(b.beat_time == bars[0].timestamp or abs(b.beat_time - bars[0].timestamp)
                   < 1e-3 for b in beats), "a bar without its downbeat"

    labels = [lab for _, _, lab in r.chord_segments]
    labels += [c.chord for c in r.chord_progression]
    labels += [lab for c in r.chord_progression for lab in c.chords]
    for lab in labels:
        mir_eval.chord.validate_chord_label(lab)
        mir_eval.chord.split(lab)
    if r.key.label != "N":
        mir_eval.key.validate_key(r.key.label)

    again = AnalysisResult.model_validate_json(r.model_dump_json())
    assert again == r


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(signals())
def test_result_invariants_hold_for_any_signal(analyzer, signal):
    samples, sr = signal
    with warnings.catch_warnings(record=True):
        result = analyzer.analyze_audio(signal_from_array(samples, sr), filename="random.wav")
    assert result.audio.duration == pytest.approx(len(samples) / sr, abs=1e-3)
    check_invariants(result)


def test_the_checks_can_fail(example_result):
    """A result with a beat outside every bar is caught (so the property test can fail)."""
    check_invariants(example_result)
    beats = list(example_result.beat_transient_markers)
    beats[3] = beats[3].model_copy(update={"bar": beats[3].bar + 2})
    broken = example_result.model_copy(update={"beat_transient_markers": beats})
    with pytest.raises(AssertionError):
        check_invariants(broken)
