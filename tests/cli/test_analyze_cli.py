"""`songmap analyze` end to end: good files give JSON, every bad input a message and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from songmap.cli.main import main

pytestmark = pytest.mark.slow


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.models
def test_analyze_writes_json_and_prints_summary(tmp_path, capsys, example_file):
    out_file = tmp_path / "ex.json"
    code, out, err = run(capsys, "analyze", str(example_file), "-o", str(out_file))
    assert code == 0, err
    assert "120.0 BPM" in out and "4/4" in out and "C major" in out
    data = json.loads(out_file.read_text())
    assert data["time_signature"]["beats_per_bar"] == 4
    assert data["total_bars"] == len(data["downbeat_timeline"]) >= 10
    assert data["beat_transient_markers"][0]["beat_number"] == 1


@pytest.mark.models
def test_json_on_stdout_when_asked(capsys, example_file):
    code, out, _ = run(capsys, "analyze", str(example_file), "--json")
    assert code == 0
    assert json.loads(out)["key"]["camelot"] == "8B"


def write_noise(path: Path, seconds: float, sr: int = 44100) -> Path:
    rng = np.random.default_rng(1)
    sf.write(path, (rng.standard_normal(int(seconds * sr)) * 0.1).astype(np.float32), sr)
    return path


def video_without_audio(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def bad_inputs(tmp: Path, example: Path) -> dict[str, tuple[Path, int, str]]:
    empty = tmp / "empty.wav"
    empty.write_bytes(b"")
    text = tmp / "notes.mp3"
    text.write_text("these are my notes, not a song\n" * 20)
    trunc = tmp / "truncated.flac"
    trunc.write_bytes(example.read_bytes()[:10_000])
    full = write_noise(tmp / "full.wav", 5.0)
    cut = tmp / "cut.wav"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    short = write_noise(tmp / "short.wav", 0.5)
    garbage = tmp / "garbage.ogg"
    garbage.write_bytes(bytes(np.random.default_rng(2).integers(0, 256, 40_000, dtype=np.uint8)))
    return {
        "missing": (tmp / "nope.mp3", 3, "no such file"),
        "empty": (empty, 4, "empty (0 bytes)"),
        "text": (text, 4, "looks like a text file"),
        "truncated flac": (trunc, 4, "truncated or corrupt"),
        "truncated wav": (cut, 4, "truncated"),
        "garbage": (garbage, 4, "is not audio"),
        "video without audio": (video_without_audio(tmp / "silent.mp4"), 4, "no audio stream"),
        "too short": (short, 5, "too short to analyse"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "empty", "text", "truncated flac", "truncated wav", "garbage",
             "video without audio", "too short"],
)
def test_bad_input_gets_message_and_exit_code(case, tmp_path, capsys, example_file):
    path, code, message = bad_inputs(tmp_path, example_file)[case]
    got, out, err = run(capsys, "analyze", str(path))
    assert got == code, err
    assert message in err
    assert err.startswith("songmap: error: ") and "Traceback" not in err
    assert out == ""


def test_too_long_is_refused_before_decoding(tmp_path, capsys):
    path = write_noise(tmp_path / "long.wav", 12.0)
    code, _, err = run(capsys, "analyze", str(path), "--max-duration", "10")
    assert code == 6
    assert "longer than the limit of 10 s" in err


def test_digital_silence_succeeds_with_empty_timeline_and_warning(tmp_path, capsys):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(44100 * 5, np.float32), 44100)
    code, out, _ = run(capsys, "analyze", str(path), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["total_beats"] == 0 and data["total_bars"] == 0
    assert any("silence" in w for w in data["warnings"])


def test_bad_setting_is_a_usage_error(capsys, example_file):
    code, _, err = run(capsys, "analyze", str(example_file), "--max-duration", "-3")
    assert code == 2 and "invalid --max-duration" in err  # the option, not the field


@pytest.mark.models
def test_analyze_exports_and_descriptors(tmp_path, capsys, example_file):
    import jams
    import mir_eval

    out = tmp_path / "ex.json"
    code, _, err = run(capsys, "analyze", str(example_file), "-o", str(out), "-q",
                       "--export", "lab,jams", "--descriptors")
    assert code == 0, err
    data = json.loads(out.read_text())
    _intervals, labels = mir_eval.io.load_labeled_intervals(str(tmp_path / "ex.lab"))
    assert labels[:len(data["chord_segments"])] == [s[2] for s in data["chord_segments"]]
    assert jams.load(str(tmp_path / "ex.jams"), validate=False).file_metadata.duration > 20
    d = data["descriptors"]
    assert -40 < d["integrated_lufs"] < -5 and 0 <= d["danceability"] <= 1


def test_unknown_export_format_is_a_usage_error(capsys, example_file, tmp_path):
    code, _, err = run(capsys, "analyze", str(example_file), "-o", str(tmp_path / "x.json"),
                       "--export", "wav")
    assert code == 2 and "wav" in err
