"""``songmap live``: a rendered song from a file and from stdin (WAV, raw), bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from songmap.cli.main import main
from songmap.examples import render_song


@pytest.fixture(scope="module")
def song_wav(tmp_path_factory):
    song = render_song(bpm=110.0, beats_per_bar=4, bars=10, sr=44100,
                       progression=("G:maj", "E:min", "C:maj", "D:maj"), seed=2)
    path = tmp_path_factory.mktemp("live") / "song.wav"
    sf.write(path, song.samples, song.sr, subtype="PCM_16")
    return path, song


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _check(events: list[dict], song) -> None:
    kinds = {e["type"] for e in events}
    assert {"beat", "downbeat", "chord", "key", "tempo"} <= kinds
    beats = [e["time"] for e in events if e["type"] == "beat"]
    assert beats == sorted(beats) and abs(len(beats) - len(song.beat_times)) <= 3
    bars = [e["bar"] for e in events if e["type"] == "downbeat"]
    assert bars == sorted(bars) and bars[0] == 1
    assert all(e["delay"] >= 0 for e in events)


@pytest.mark.slow
def test_live_file_json(song_wav, capsys):
    path, song = song_wav
    code = main(["live", str(path), "--speed", "0", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    _check(_events(out), song)


def _cli(args: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "songmap.cli.main", "live", *args],
                          input=stdin, capture_output=True, env=env, timeout=300, check=False)


@pytest.mark.slow
def test_live_stdin_wav_and_raw(song_wav):
    path, song = song_wav
    wav = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "2", "-ar", "48000",
                          "-f", "wav", "-"], capture_output=True, check=True).stdout
    done = _cli(["-", "--json"], wav)
    assert done.returncode == 0, done.stderr
    _check(_events(done.stdout.decode()), song)
    raw = np.clip(song.samples * 32767, -32768, 32767).astype("<i2").tobytes()
    done = _cli(["-", "--raw", "--rate", "44100", "--channels", "1", "--json"], raw)
    assert done.returncode == 0, done.stderr
    _check(_events(done.stdout.decode()), song)


def test_live_bad_input_gets_one_line_and_a_code(tmp_path, capsys):
    assert main(["live", str(tmp_path / "missing.wav")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("songmap: error:")
    assert main(["live", "x.wav", "--speed", "-1"]) == 2
    assert main(["live", "x.wav", "--raw"]) == 2


def test_live_stdin_without_a_wav_header():
    done = _cli(["-"], b"this is not audio at all" * 10)
    assert done.returncode == 4
    assert done.stderr.decode().strip().count("\n") == 0
    assert "not a WAV stream" in done.stderr.decode()


def test_live_stdin_with_a_header_and_no_audio_says_so(tmp_path):
    """A WAV header and nothing after it (or an empty --raw stream) exited 0, silently."""
    header = tmp_path / "h.wav"
    sf.write(header, np.zeros(44100, np.float32), 44100, subtype="PCM_16")
    done = _cli(["-"], header.read_bytes()[:44])
    assert done.returncode == 4, done.stderr
    assert b"ended before any audio" in done.stderr and done.stderr.count(b"\n") == 1
    done = _cli(["-", "--raw"], b"")
    assert done.returncode == 4, done.stderr


def test_live_file_too_short_is_exit_5_as_for_analyze(tmp_path, capsys):
    """A 0.2 s file printed nothing and exited 0; `songmap analyze` says exit 5."""
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros(8820, np.float32), 44100)
    assert main(["live", str(path), "--speed", "0"]) == 5
    assert "too short" in capsys.readouterr().err


def test_live_stdin_closed_is_one_line():
    """``songmap live - <&-`` crashed on sys.stdin being None (a traceback)."""
    done = subprocess.run(["sh", "-c", f"'{sys.executable}' -m songmap.cli.main live - <&-"],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 4 and b"Traceback" not in done.stderr
    assert done.stderr.count(b"\n") == 1
