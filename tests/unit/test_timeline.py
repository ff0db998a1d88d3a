"""The timeline built from per-beat facts (songmap.timeline)."""

import numpy as np
import pytest

from songmap.timeline import TimelineBeats, build_timeline


def _beats(n: int, **changes: np.ndarray) -> TimelineBeats:
    times = 0.25 + 0.5 * np.arange(n)  # 120 BPM, one pickup beat
    fields = dict(
        beat_times=times, positions=np.array([4] + [1, 2, 3, 4] * ((n - 1) // 4)),
        beat_confidence=np.full(n, 0.9), downbeat_confidence=np.full(n, 0.8),
        transient_times=times + 0.01, transient_strength=np.ones(n),
        transient_accuracy=np.full(n, np.nan),
    )
    return TimelineBeats(**{**fields, **changes})


def test_bars_beats_and_tempo_from_the_beats():
    timeline = build_timeline(_beats(9), chord_segments=[], chroma=None, duration_s=5.0)
    assert [d.timestamp for d in timeline.downbeats] == [0.75, 2.75]
    assert [d.beats for d in timeline.downbeats] == [4, 4]
    np.testing.assert_allclose(timeline.bar_tempi, 120.0)
    assert [b.bar for b in timeline.beats] == [0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert timeline.beats[0].transient_time == 0.26
    assert timeline.beats[0].accuracy is None
    assert [c.chord for c in timeline.chords] == ["N", "N"]


def test_the_segment_tempo_wins_where_given():
    tempo = np.full(9, 119.5)
    timeline = build_timeline(_beats(9, beat_tempo_bpm=tempo), chord_segments=[],
                              chroma=None, duration_s=5.0)
    np.testing.assert_allclose(timeline.bar_tempi, 119.5)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        _beats(9, beat_confidence=np.ones(8))


def test_no_beats_no_timeline():
    empty = np.zeros(0)
    beats = TimelineBeats(beat_times=empty, positions=empty.astype(int), beat_confidence=empty,
                          downbeat_confidence=empty, transient_times=empty,
                          transient_strength=empty, transient_accuracy=empty)
    timeline = build_timeline(beats, chord_segments=[], chroma=None, duration_s=1.0)
    assert timeline.downbeats == timeline.beats == timeline.chords == []
