"""A worker loads everything an analysis loads before it caps its memory
(``workers.memory.load_before_cap``): the cap is the analysis's own, and nothing is mapped
under it but the analysis's data."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: In a fresh interpreter (the modules an analysis imports are seen only there): a worker's
#: Analyzer (one analysis thread, as batch workers run) prepared for its cap, then one
#: analysis of a decoded file; prints the modules it imported and the threads it started.
_SCRIPT = """
import sys, threading
import soundfile as sf
from songmap.config import AnalysisSettings
from songmap.examples import render_song
from songmap.pipeline import Analyzer
from songmap.workers.memory import load_before_cap

song = render_song(bars=8, bpm=100.0, seed=3)
sf.write(sys.argv[1], song.samples, song.sr)
analyzer = Analyzer(AnalysisSettings(threads=1))
load_before_cap(analyzer)
modules = set(sys.modules)
started = []
start = threading.Thread.start
def counting_start(self):
    started.append(self.name)
    start(self)
threading.Thread.start = counting_start
analyzer.analyze(sys.argv[1])
print(sorted(set(sys.modules) - modules))
print(started)
"""


@pytest.mark.models
def test_after_load_before_cap_an_analysis_imports_nothing_and_starts_no_thread(tmp_path):
    """Before, the FFT (scipy's) was imported by the first analysis, under the cap: on Dask
    workers capped at 1 MB that failed as KeyError, TypeError or SystemError instead of
    the cap's MemoryLimitError; and the ensemble's threads started under it could hang."""
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "song.flac")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    modules, threads = out.stdout.strip().splitlines()[-2:]
    assert modules == "[]"
    assert threads == "[]"
