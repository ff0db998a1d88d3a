"""`songmap batch` on local worker processes, with the real networks on short songs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from songmap.batch import run_batch
from songmap.batch.failures import FailureLog
from songmap.batch.jsonl import read_records
from songmap.cli.main import main
from songmap.config import AnalysisSettings
from songmap.schema import AnalysisResult
from songmap.store import ResultStore, content_hash

pytestmark = pytest.mark.slow

KEY = AnalysisSettings().cache_key()


@pytest.mark.models
def test_batch_analyses_a_folder_records_the_bad_file_and_resumes(library, songs, tmp_path):
    (library / "copy-of-a.wav").write_bytes((library / "a.wav").read_bytes())
    out, db = tmp_path / "results.jsonl", tmp_path / "store.sqlite"

    first = run_batch([library], store=db, output=out, workers=2)

    assert (first.total, first.ok, first.skipped, first.failed) == (6, 4, 1, 1)
    assert first.exit_code == 1
    assert [f.path for f in first.failures] == [str(library / "sub" / "broken.mp3")]
    assert first.failures[0].kind == "NotAudioError"
    records = {r["path"]: r for r in read_records(out)}
    assert len(records) == 6 and len(out.read_text().splitlines()) == 6
    for name, bpm, bpb in songs:
        rec = records[str(library / name)]
        result = AnalysisResult.model_validate(rec["result"])
        assert result.filename == Path(name).name
        assert result.time_signature.beats_per_bar == bpb
        assert abs(result.tempo.bpm - bpm) < 2, (name, result.tempo.bpm)
    # The same bytes under another name are analysed once and named after each file.
    copy = records[str(library / "copy-of-a.wav")]
    assert copy["cached"] is True and copy["result"]["filename"] == "copy-of-a.wav"
    with ResultStore(db) as store, FailureLog(db) as failures:
        assert store.count() == 4
        assert store.get(content_hash(library / "a.wav"), KEY) is not None
        assert [f["path"] for f in failures.list(KEY)] == [str(library / "sub" / "broken.mp3")]

    # A rerun skips every stored file, retries the bad one, and adds no duplicate lines.
    (library / "sub" / "broken.mp3").unlink()
    second = run_batch([library], store=db, output=out, workers=2)
    assert (second.total, second.ok, second.skipped, second.failed) == (5, 0, 5, 0)
    assert second.exit_code == 0
    assert len(out.read_text().splitlines()) == 6  # the old failure line stays, once


@pytest.mark.models
def test_a_worker_killed_mid_file_loses_nothing(library, tmp_path):
    killed: list[str] = []

    def kill_a_busy_worker(record, runner):
        busy = runner.busy_workers() if runner is not None else {}
        if not killed and busy:
            pid, path = next(iter(busy.items()))
            os.kill(pid, signal.SIGKILL)
            killed.append(path)

    (library / "sub" / "broken.mp3").unlink()
    summary = run_batch([library], store=tmp_path / "s.sqlite", workers=2,
                        on_record=kill_a_busy_worker)
    assert killed, "no worker was busy when the first file finished"
    assert (summary.ok, summary.failed) == (4, 0), summary.format()


@pytest.mark.models
def test_cli_writes_jsonl_exports_and_a_summary(library, tmp_path, capsys):
    out = tmp_path / "out" / "r.jsonl"
    code = main(["batch", str(library / "sub"), str(library / "*.flac"), "-o", str(out),
                 "--store", str(tmp_path / "s.sqlite"), "--export", "lab", "--export", "beats",
                 "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "batch done: 4/4 files" in err and "3 ok, 1 failed, 0 skipped" in err
    assert f"{library / 'sub' / 'broken.mp3'}: NotAudioError" in err
    assert sorted(p.relative_to(out.parent).as_posix() for p in out.parent.rglob("*.*")) == [
        "b.beats", "b.lab", "c.beats", "c.lab", "d.beats", "d.lab", "r.jsonl"]
    beats = (out.parent / "b.beats").read_text().split("\n")
    assert beats[0].split("\t")[1] == "1"  # bar position column
    assert len(list(read_records(out))) == 4


def test_cli_refuses_an_unknown_export_format_before_any_work(library, tmp_path, capsys):
    code = main(["batch", str(library), "--store", str(tmp_path / "s.sqlite"),
                 "--export", "nope"])
    assert code == 2
    assert "unknown export format 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists() or \
        ResultStore(tmp_path / "s.sqlite").count() == 0


@pytest.mark.models
def test_ctrl_c_then_rerun_skips_what_was_done(library, tmp_path):
    (library / "sub" / "broken.mp3").unlink()
    out, db = tmp_path / "r.jsonl", tmp_path / "s.sqlite"
    argv = [sys.executable, "-m", "songmap.cli.main", "batch", str(library), "-o", str(out),
            "--store", str(db), "--workers", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "batch interrupted" in err and "run the same command again" in err
    done = len(list(read_records(out)))
    assert 1 <= done < 4, err

    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{4 - done} ok, 0 failed, {done} skipped" in rerun.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["status"] == "ok" for line in lines)
