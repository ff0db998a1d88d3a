"""Overrides end to end on the bundled example (120 BPM, 4/4, C major): the networks run
once per audio, the overrides shape the result, bad values are clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import songmap
from songmap.cli.main import main
from songmap.errors import InvalidParameterError
from songmap.netcache import NetworkCache
from songmap.pipeline import Analyzer

pytestmark = pytest.mark.slow


def test_reanalysis_with_an_override_does_not_run_the_networks(analyzer, example_file, monkeypatch):
    first = Analyzer(analyzer.settings, analyzer.registry, NetworkCache(max_items=2))
    calls = []
    real = Analyzer.run_networks

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Analyzer, "run_networks", counted)
    plain = first.analyze(example_file)
    assert len(calls) == 1
    waltz = first.with_settings(time_signature="3/4").analyze(example_file)
    pinned = first.with_settings(bpm=120, first_downbeat_s=2.0).analyze(example_file)
    assert len(calls) == 1  # both re-analyses reused the networks' outputs
    progress: list[float] = []
    first.with_settings(bpm=120).analyze(example_file, progress=progress.append)
    assert len(calls) == 1 and progress == sorted(progress) and progress[-1] > 0.9
    assert waltz.time_signature.label == "3/4" and waltz.time_signature.confidence == 1.0
    assert plain.time_signature.label == "4/4"
    downbeats = pinned.downbeat_times()
    beats = pinned.beat_times()
    nearest = beats[np.argmin(np.abs(beats - 2.0))]
    assert nearest in downbeats
    assert 114 <= pinned.tempo.bpm <= 126
    assert pinned.provenance.settings.bpm == (120.0, 120.0)


def test_bounded_cache_forgets_the_oldest():
    cache = NetworkCache(max_items=2)
    for key in "abc":
        cache.put(key, object())  # type: ignore[arg-type]
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") is not None


def test_disk_cache_is_shared_between_analyzers(analyzer, example_file, tmp_path, monkeypatch):
    one = Analyzer(analyzer.settings, analyzer.registry, NetworkCache(directory=tmp_path))
    one.analyze(example_file)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    monkeypatch.setattr(Analyzer, "run_networks", lambda *a, **k: pytest.fail("networks ran"))
    two = Analyzer(analyzer.settings, analyzer.registry, NetworkCache(directory=tmp_path))
    assert two.analyze(example_file).tempo.bpm == pytest.approx(120.0, abs=1.0)


@pytest.mark.models
def test_library_overrides_and_bad_values(example_file):
    result = songmap.analyze(example_file, time_signature="6/8")
    assert result.time_signature.label == "6/8"
    with pytest.raises(InvalidParameterError, match="first_downbeat"):
        songmap.analyze(example_file, first_downbeat=-2)
    with pytest.raises(InvalidParameterError, match="bpm"):
        songmap.analyze(example_file, bpm="120-110")


@pytest.mark.models
def test_cli_overrides_and_summary(example_file, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SONGMAP_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    code = main(["analyze", str(example_file), "--summary", "-o", str(out),
                 "--time-signature", "3/4", "--bpm", "115-125", "--first-downbeat", "1.0"])
    text = capsys.readouterr().out
    assert code == 0
    data = json.loads(out.read_text())
    assert data["time_signature"]["label"] == "3/4"
    assert data["provenance"]["settings"]["time_signature"] == "3/4"
    assert 0.0 <= data["grid_confidence"] <= 1.0
    assert "overrides  --bpm 115-125, --time-signature 3/4, --first-downbeat 1.0" in text
    assert "runner-up" in text and "grid" in text
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1  # the next run skips the networks


@pytest.mark.parametrize("argv, words", [
    (["--bpm", "fast"], "invalid --bpm"),
    (["--bpm", "130-120"], "runs backwards"),
    (["--time-signature", "4/5"], "invalid --time-signature"),
    (["--first-downbeat", "-1"], "invalid --first-downbeat"),
])
def test_cli_bad_override_is_exit_2(example_file, capsys, argv, words):
    code = main(["analyze", str(example_file), *argv])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err
