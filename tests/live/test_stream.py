"""LiveAnalyzer on rendered songs (the networks run: marked slow)."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from songmap.errors import InvalidParameterError
from songmap.examples import render_song
from songmap.live import LiveAnalyzer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def song():
    return render_song(bpm=120.0, beats_per_bar=4, bars=16, sr=44100,
                       progression=("C:maj", "A:min", "F:maj", "G:maj"), seed=5)


def _feed(live: LiveAnalyzer, x: np.ndarray, block: int) -> list:
    events = []
    for i in range(0, len(x), block):
        events += live.push(x[i:i + block])
    return events + live.finish()


@pytest.fixture(scope="module")
def events(analyzer, song):
    return _feed(LiveAnalyzer(analyzer), song.samples, 882)


def test_events_follow_the_song(events, song):
    beats = np.array([e.time for e in events if e.type == "beat"])
    downs = np.array([e.time for e in events if e.type == "downbeat"])
    assert mir_eval.beat.f_measure(song.beat_times, beats) > 0.9
    assert mir_eval.beat.f_measure(song.downbeat_times, downs) > 0.8
    chords = [e.label for e in events if e.type == "chord"]
    assert {"C:maj", "A:min", "F:maj", "G:maj"} <= set(chords)
    keys = [e.label for e in events if e.type == "key"]
    assert keys and keys[-1] in ("C major", "A minor")
    tempo = [e.bpm for e in events if e.type == "tempo"]
    assert tempo and abs(tempo[-1] - 120.0) < 3


def test_events_in_order_with_consistent_bars(events):
    for kind in ("beat", "downbeat", "chord"):
        times = [e.time for e in events if e.type == kind]
        assert times == sorted(times), kind
    bars = [e.bar for e in events if e.type == "downbeat"]
    assert bars == list(range(1, len(bars) + 1))  # a steady song: no bar skipped
    for e in events:
        assert e.delay >= 0
    beat_delays = [e.delay for e in events if e.type == "beat"]
    assert np.median(beat_delays) < 0.05 and max(beat_delays) < 0.1
    assert max(e.delay for e in events if e.type in ("downbeat", "chord")) < 2.5
    # after revisions, each beat's (bar, position) agrees with the committed downbeats
    final: dict[float, tuple[int, int]] = {}
    for e in events:
        if e.type in ("beat", "revise"):
            final[e.time] = (e.bar, e.beat)
    downs = {e.bar: e.time for e in events if e.type == "downbeat"}
    on_downbeats = [final[t] for t in final if any(abs(t - d) < 0.07 for d in downs.values())]
    assert sum(pos == 1 for _, pos in on_downbeats) >= 0.9 * len(on_downbeats)


def test_silence_gives_no_events(analyzer):
    live = LiveAnalyzer(analyzer)
    assert _feed(live, np.zeros(44100 * 8, np.float32), 4410) == []
    rng = np.random.default_rng(0)
    hiss = (1e-4 * rng.standard_normal(44100 * 8)).astype(np.float32)
    events = _feed(LiveAnalyzer(analyzer), hiss, 4410)
    assert [e for e in events if e.type in ("beat", "downbeat", "chord")] == []


def test_other_rates_and_stereo_give_the_same_beats(analyzer, song):
    import soxr

    ref = [e.time for e in _feed(LiveAnalyzer(analyzer), song.samples, 4410) if e.type == "beat"]
    x48 = soxr.resample(song.samples, 44100, 48000)
    stereo = np.stack([x48, x48], axis=1)
    pcm = np.clip(stereo * 32767, -32768, 32767).astype(np.int16)
    live = LiveAnalyzer(analyzer, sample_rate=48000, channels=2)
    got = [e.time for e in _feed(live, pcm, 1000) if e.type == "beat"]
    assert mir_eval.beat.f_measure(np.array(ref), np.array(got), 0.011) > 0.95


def test_state_stays_bounded(analyzer, song):
    live = LiveAnalyzer(analyzer, hop_s=4.0)
    for _ in range(6):  # ~3 minutes of input
        for i in range(0, len(song.samples), 44100):
            live.push(song.samples[i:i + 44100])
    assert live._ring.capacity == int(live.window_s * 44100)
    assert len(live._recent) <= live._recent.maxlen and len(live._downbeats) <= 8
    assert len(live._recent_act) <= 150 and len(live._front._tail) < 2048 + 441


def test_bad_blocks_are_refused(analyzer):
    live = LiveAnalyzer(analyzer, channels=2)
    with pytest.raises(InvalidParameterError, match="whole number"):
        live.push(np.zeros(3, np.float32))
    with pytest.raises(InvalidParameterError, match="channels"):
        live.push(np.zeros((10, 3), np.float32))
    with pytest.raises(InvalidParameterError, match="NaN"):
        live.push(np.full((10, 2), np.nan, np.float32))
    with pytest.raises(InvalidParameterError, match="sample rate"):
        LiveAnalyzer(analyzer, sample_rate=100)
