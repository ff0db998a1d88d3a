"""Issue 15: batch workers have a memory cap (``--max-memory``, sized from the machine by
default); a file past it is a failure record with the reason, and the batch goes on."""

from __future__ import annotations

import pytest

from songmap.batch import run_batch
from songmap.batch.failures import FailureLog
from songmap.batch.jsonl import read_records
from songmap.batch.run import _run_options
from songmap.cli.main import main
from songmap.config import AnalysisSettings
from songmap.errors import InvalidParameterError
from songmap.workers import default_memory_mb


def test_the_cap_defaults_to_the_machines_share_and_zero_turns_it_off():
    settings = AnalysisSettings()
    options = dict(scheduler=None, upload=False, timeout_s=None, threads=None)
    assert _run_options(settings, workers=2, memory_mb=None, **options).spec.memory_mb \
        == default_memory_mb(2)
    assert _run_options(settings, workers=2, memory_mb=0, **options).spec.memory_mb is None
    assert _run_options(settings, workers=2, memory_mb=3000, **options).spec.memory_mb == 3000
    with pytest.raises(InvalidParameterError, match="--max-memory"):
        _run_options(settings, workers=2, memory_mb=-1, **options)


@pytest.mark.slow
def test_files_past_the_cap_are_failure_records_with_the_reason(long_songs, tmp_path):
    out, db = tmp_path / "r.jsonl", tmp_path / "s.sqlite"
    # 1 MB on top of the loaded worker: every analysis's first large allocation fails (a
    # real MemoryError in songmap's code), and the worker lives on.
    summary = run_batch([long_songs], store=db, output=out, workers=1, memory_mb=1)
    assert (summary.ok, summary.failed) == (0, 2), summary.format()
    assert {f.kind for f in summary.failures} == {"MemoryLimitError"}
    assert all("the cap of 1 MB per analysis" in f.message for f in summary.failures)
    records = list(read_records(out))
    assert [r["error"]["type"] for r in records] == ["MemoryLimitError"] * 2
    with FailureLog(db) as failures:
        assert {f["error_type"] for f in failures.list()} == {"MemoryLimitError"}


@pytest.mark.slow
def test_a_long_file_past_the_cap_fails_and_short_ones_do_not(library, tmp_path):
    import soundfile as sf

    from songmap.examples import render_song

    # Measured (2026-11-26, a worker with 1 analysis thread): a 9.5 s song needs 30-50 MB
    # beyond the loaded worker, this 4.3-minute one 130-160 MB; 80 MB lies between.
    song = render_song(bars=128, seed=1)
    sf.write(library / "sub" / "long.wav", song.samples, song.sr, subtype="PCM_16")
    (library / "sub" / "broken.mp3").unlink()
    summary = run_batch([library / "sub"], store=tmp_path / "s.sqlite", workers=1,
                        memory_mb=80)
    assert (summary.ok, summary.failed) == (2, 1), summary.format()
    [failure] = summary.failures
    assert failure.path.endswith("long.wav") and failure.kind == "MemoryLimitError"


@pytest.mark.slow
def test_cli_max_memory_reports_the_cap_and_exits_1(long_songs, tmp_path, capsys):
    code = main(["batch", str(long_songs / "long.wav"), "--store", str(tmp_path / "s.sqlite"),
                 "--workers", "1", "--max-memory", "1"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "long.wav: MemoryLimitError: the analysis needs more memory than the cap of 1 MB " \
           "per analysis" in err


def test_cli_refuses_a_negative_cap_in_one_line(library, tmp_path, capsys):
    code = main(["batch", str(library), "--store", str(tmp_path / "s.sqlite"),
                 "--max-memory", "-5"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "songmap: error: --max-memory must be positive (0: no cap)"]


@pytest.mark.parametrize("option", ["--analysis-threads", "--threads"])  # --threads: old name
def test_cli_passes_the_analysis_threads_and_the_cap(option, library, monkeypatch):
    import songmap.batch
    from songmap.batch.progress import BatchSummary

    seen = {}

    def fake_run_batch(paths, **kwargs):
        seen.update(kwargs)
        return BatchSummary()

    monkeypatch.setattr(songmap.batch, "run_batch", fake_run_batch)
    assert main(["batch", str(library), option, "3", "--max-memory", "2500"]) == 0
    assert seen["analysis_threads"] == 3 and seen["memory_mb"] == 2500
    assert seen["settings"].threads == AnalysisSettings().threads  # not the analysis's own
