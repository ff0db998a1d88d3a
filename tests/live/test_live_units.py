"""Fast parts of songmap.live: events, the sample ring, PCM headers, the beat filter."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from songmap.errors import UndecodableAudioError
from songmap.live.beats import OnlineBeatTracker
from songmap.live.events import BeatEvent, ChordEvent, ReviseEvent
from songmap.live.pcm import raw_format, read_wav_header
from songmap.live.ring import SampleRing


def test_event_json_form():
    d = BeatEvent(time=12.34549, delay=0.0312, bar=7, beat=2, confidence=0.93).to_dict()
    assert list(d) == ["type", "time", "delay", "bar", "beat", "confidence"]
    assert d == {"type": "beat", "time": 12.345, "delay": 0.031, "bar": 7, "beat": 2,
                 "confidence": 0.93}
    assert json.loads(json.dumps(ChordEvent(1.0, 0.5, "A:min", 0.4).to_dict()))["label"] == "A:min"
    assert ReviseEvent(1.0, 0.5, "beat", 3, 1).to_dict()["of"] == "beat"


def test_sample_ring_keeps_the_last_samples_in_order():
    ring = SampleRing(10)
    x = np.arange(37, dtype=np.float32)
    for a in range(0, 37, 3):
        ring.write(x[a:a + 3])
    np.testing.assert_array_equal(ring.last(10), x[-10:])
    np.testing.assert_array_equal(ring.last(4), x[-4:])
    ring.write(np.arange(100, 125, dtype=np.float32))  # more than the capacity at once
    np.testing.assert_array_equal(ring.last(10), np.arange(115, 125))
    assert ring.written == 37 + 25 and ring.capacity == 10


def _wav_header(tag=1, channels=2, rate=48000, bits=16, extra=b"") -> bytes:
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8,
                      channels * bits // 8, bits)
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + extra
            + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF))


def test_wav_header_of_a_stream():
    samples = np.array([[0, 16384], [-32768, 32767]], "<i2").tobytes()
    extra = b"LIST" + struct.pack("<I", 4) + b"INFO"
    stream = io.BytesIO(_wav_header(extra=extra) + samples)
    fmt = read_wav_header(stream)
    assert (fmt.sample_rate, fmt.channels) == (48000, 2)
    x = fmt.decode(stream.read())
    np.testing.assert_allclose(x, [[0, 0.5], [-1, 32767 / 32768]])


@pytest.mark.parametrize("data, message", [
    (b"hello world, not a wav file", "not a WAV stream"),
    (b"RIFF\0\0\0\0WAVE", "ended inside the WAV header"),
    (None, "not supported"),
])
def test_bad_wav_headers_are_named(data, message):
    data = data if data is not None else _wav_header(tag=1, bits=12)
    with pytest.raises(UndecodableAudioError, match=message):
        read_wav_header(io.BytesIO(data))


def test_raw_format_checks():
    assert raw_format("f32le", sample_rate=8000, channels=1).frame_bytes == 4
    with pytest.raises(ValueError, match="unknown raw sample format"):
        raw_format("mp3", sample_rate=8000, channels=1)


def _pulses(bpm: float, seconds: float, fps: float = 100.0) -> np.ndarray:
    act = np.full(int(seconds * fps), 0.02)
    for t in np.arange(0.5, seconds, 60.0 / bpm):
        act[int(round(t * fps))] = 0.9
    return act


def test_forward_filter_follows_a_steady_pulse():
    act = _pulses(120.0, 20.0)
    tracker = OnlineBeatTracker()
    beats = []
    for a in range(0, len(act), 7):  # any block size
        beats += tracker.step(act[a:a + 7])
    times = np.array([b.time for b in beats])
    late = times[times > 5.0]  # once locked: every 0.5 s, on the pulses
    np.testing.assert_allclose(np.diff(late), 0.5, atol=0.011)
    assert np.abs((late - 0.5) % 0.5).max() < 0.021 or np.abs(((late - 0.5) % 0.5) - 0.5).max() < 0.021
    assert abs(tracker.bpm - 120.0) < 2.5 and tracker.bpm_confidence > 0.5
    size = tracker.alpha.size
    tracker.step(_pulses(120.0, 60.0))
    assert tracker.alpha.size == size  # the state does not grow


def test_tempo_prior_moves_the_octave():
    tracker = OnlineBeatTracker()
    tracker.step(_pulses(120.0, 10.0))
    assert abs(tracker.bpm - 120.0) < 2.5
    for _ in range(8):  # the surer evidence says 60 BPM, every second
        tracker.favour_tempo(60.0)
        tracker.step(_pulses(120.0, 1.0))
    assert abs(tracker.bpm - 60.0) < 1.5
    assert abs(tracker.alpha.sum() - 1.0) < 1e-9


def test_tempo_prior_keeps_an_agreeing_tempo():
    tracker = OnlineBeatTracker()
    tracker.step(_pulses(120.0, 10.0))
    for _ in range(5):
        tracker.favour_tempo(121.0)
        beats = tracker.step(_pulses(120.0, 1.0))
    assert abs(tracker.bpm - 120.0) < 2.5 and len(beats) == 2


def test_grid_guide_sets_the_phase():
    """Pulses heard at both 0.0 and 0.25 s phases: the guide picks the one it is told."""
    act = np.full(1000, 0.02)
    act[::50] = 0.6
    act[25::50] = 0.6
    for phase in (0.0, 0.25):
        tracker = OnlineBeatTracker()
        tracker.step(act[:500])
        beats = []
        for a in range(500, 1000, 100):
            tracker.favour_grid(120.0, a / 100.0 + phase)
            beats += tracker.step(act[a:a + 100])
        late = np.array([b.time for b in beats if b.time > 7.0])
        assert len(late) >= 4
        assert np.abs(((late - phase) + 0.25) % 0.5 - 0.25).max() < 0.03
