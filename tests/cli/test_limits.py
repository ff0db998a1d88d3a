"""Wall-time and memory limits of `songmap analyze` (run as a real process: the
watchdog ends the process, which pytest's own process must survive)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.models]  # analyses under the limits


def songmap(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # no network cache: the limits are tested on a whole analysis, networks included
    env = {**os.environ, "SONGMAP_CACHE_DIR": ""}
    return subprocess.run([sys.executable, "-m", "songmap.cli.main", *argv],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def five_minutes(example_file, tmp_path_factory):
    """The example ten times over: its analysis takes seconds on any machine (the 30 s
    example alone was analysed within 0.3 s on a fast one, its decoding done ahead)."""
    import numpy as np
    import soundfile as sf

    audio, sr = sf.read(example_file, dtype="float32")
    path = tmp_path_factory.mktemp("long") / "five_minutes.wav"
    sf.write(path, np.concatenate([audio] * 10), sr)
    return path


def test_timeout_stops_the_analysis_with_exit_7(five_minutes):
    proc = songmap("analyze", str(five_minutes), "--timeout", "0.3", "-q")
    assert proc.returncode == 7
    assert "took longer than 0.3 s and was stopped" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_memory_limit_fails_cleanly(example_file):
    proc = songmap("analyze", str(example_file), "--max-memory", "250", "-q")
    assert proc.returncode == 7
    assert "needs more than --max-memory 250 MB" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_generous_limits_change_nothing(example_file):
    proc = songmap("analyze", str(example_file), "--timeout", "300", "--max-memory", "8000",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"total_bars": 11' in proc.stdout


def test_a_memory_cap_below_the_loaded_models_fails_at_once(five_minutes):
    """A WAV under --max-memory 300 hung for ever: the cap fell below what the process had
    already mapped, and a thread that could not allocate its first frame left
    Thread.start() waiting (the FLAC example happened to fail on an import first)."""
    proc = songmap("analyze", str(five_minutes), "--max-memory", "300", "-q", timeout=60)
    assert proc.returncode == 7, proc.stderr
    assert "needs more than --max-memory 300 MB" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_first_downbeat_after_the_end_is_a_bad_argument(example_file):
    proc = songmap("analyze", str(example_file), "--first-downbeat", "420", "-q")
    assert proc.returncode == 2, proc.stderr
    assert "lies after the end of the audio" in proc.stderr
