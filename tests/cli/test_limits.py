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


def test_timeout_stops_the_analysis_with_exit_7(example_file):
    proc = songmap("analyze", str(example_file), "--timeout", "0.3", "-q")
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
