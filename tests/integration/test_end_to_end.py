"""The real networks on short generated clips whose answers are known."""

from __future__ import annotations

import json
import subprocess
import sys

import mir_eval
import numpy as np
import pytest
import soundfile as sf

from songmap.examples import render_song
from songmap.schema import AnalysisResult

pytestmark = pytest.mark.slow


def test_bundled_example_is_mapped_correctly(example_result):
    r = example_result
    song = render_song(bpm=120.0, bars=10)  # how the example was made
    beats = r.beat_times()
    downbeats = r.downbeat_times()
    assert mir_eval.beat.f_measure(song.beat_times, beats) >= 0.95
    assert mir_eval.beat.f_measure(song.downbeat_times, downbeats) >= 0.95
    assert r.tempo.bpm == pytest.approx(120.0, abs=1.0)
    assert r.time_signature.label == "4/4"
    assert r.key.label == "C major" and r.key.camelot == "8B"
    bars = [c.chord for c in r.chord_progression[:8]]
    assert bars == ["C:maj", "A:min", "F:maj", "G:maj"] * 2
    # every beat's transient is the click the synthesiser put there
    with_transient = [b for b in r.beat_transient_markers if b.transient_time is not None]
    assert len(with_transient) >= 0.9 * len(beats)
    assert r.performance_metrics.realtime_factor > 1
    assert set(r.performance_metrics.stage_seconds) >= {"decode", "beat_network", "chords"}


def test_waltz_is_three_four(analyzer, waltz_file):
    path, song = waltz_file
    r = analyzer.analyze(path)
    assert r.time_signature.beats_per_bar == 3
    downbeats = r.downbeat_times()
    assert mir_eval.beat.f_measure(song.downbeat_times, downbeats) >= 0.9
    assert r.tempo.bpm == pytest.approx(100.0, abs=2.0)


def test_result_round_trips_through_json(example_result):
    again = AnalysisResult.model_validate_json(example_result.model_dump_json())
    assert again == example_result


def test_pickup_beats_belong_to_bar_zero(example_result):
    for beat in example_result.beat_transient_markers:
        first_bar_start = example_result.downbeat_timeline[0].timestamp
        assert (beat.bar == 0) == (beat.beat_time < first_bar_start)


@pytest.mark.parametrize("fmt,codec", [("mp3", "libmp3lame"), ("ogg", "libvorbis"),
                                       ("m4a", "aac"), ("opus", "libopus"), ("aiff", "pcm_s24be")])
def test_common_formats_give_the_same_beats(fmt, codec, tmp_path, analyzer, example_file):
    """Compressed copies of the example (stereo, 48 kHz) map to the same beats."""
    src = tmp_path / "stereo.wav"
    data, sr = sf.read(example_file, dtype="float32")
    sf.write(src, np.stack([data, 0.5 * data], axis=1), sr)
    dst = tmp_path / f"copy.{fmt}"
    proc = subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-ar", "48000",
                           "-c:a", codec, str(dst)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"this ffmpeg cannot encode {codec}: {proc.stderr[-200:]!r}")
    r = analyzer.analyze(dst)
    assert r.audio.channels == 2 and r.audio.sample_rate == 48000
    ref = analyzer.analyze(example_file)
    assert mir_eval.beat.f_measure(ref.beat_times(), r.beat_times(), 0.02) >= 0.95


def test_many_channels_and_float_wav(tmp_path, analyzer, example_file):
    data, sr = sf.read(example_file, dtype="float32")
    six = np.repeat(data[:, None], 6, axis=1) * 1.5  # beyond +-1 on purpose
    path = tmp_path / "six.wav"
    sf.write(path, six, sr, subtype="FLOAT")
    r = analyzer.analyze(path)
    assert r.audio.channels == 6 and r.time_signature.label == "4/4"


@pytest.mark.models
def test_library_call_matches_cli(tmp_path, example_file):
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "songmap.cli.main", "analyze", str(example_file),
                    "-o", str(out), "-q"], check=True)
    data = json.loads(out.read_text())
    assert data["tempo"]["bpm"] == pytest.approx(120.0, abs=1.0)


def test_progress_is_reported_after_every_stage_and_increases(analyzer, example_file):
    seen: list[float] = []
    result = analyzer.analyze(example_file, progress=seen.append)
    assert len(seen) == len(result.performance_metrics.stage_seconds)
    assert seen == sorted(seen) and seen[0] > 0 and seen[-1] < 1


def test_one_thread_gives_the_same_result(example_file, example_result):
    """threads=1 runs every stage in turn (batch workers sharing the cores); same answer."""
    from songmap.config import AnalysisSettings
    from songmap.models.fast import FastModelRegistry
    from songmap.pipeline import Analyzer

    one = Analyzer(AnalysisSettings(threads=1), FastModelRegistry(threads=1)).analyze(example_file)
    assert one.model_dump(exclude={"performance_metrics", "provenance"}) == \
        example_result.model_dump(exclude={"performance_metrics", "provenance"})
