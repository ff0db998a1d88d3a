"""The batch's parts that need no models: discovery, the JSONL file, progress, summary."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from songmap.batch.discover import Source, discover_audio
from songmap.batch.jsonl import JsonlWriter, compact, read_records, repair_torn_tail
from songmap.batch.progress import BatchSummary, Failure, Progress
from songmap.batch.run import export_paths


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_discovery_walks_folders_globs_and_files_once(tmp_path):
    a = touch(tmp_path / "lib" / "a.mp3")
    b = touch(tmp_path / "lib" / "deep" / "B.FLAC")
    touch(tmp_path / "lib" / "cover.jpg")
    touch(tmp_path / "lib" / ".hidden" / "x.wav")
    odd = touch(tmp_path / "odd.bin")  # named explicitly: taken whatever the extension
    found = discover_audio([tmp_path / "lib", str(tmp_path / "lib" / "**" / "*.mp3"), odd,
                            tmp_path / "nothing-here", str(tmp_path / "*.nomatch")])
    assert [s.path for s in found.sources] == [a, b, odd]
    assert [s.name for s in found.sources] == ["a.mp3", "deep/B.FLAC", "odd.bin"]
    assert all(s.path.is_absolute() for s in found.sources)
    assert [m[1] for m in found.missing] == ["no such file or folder", "pattern matched no files"]


def test_a_glob_matching_folders_walks_them(tmp_path):
    a = touch(tmp_path / "2023-01" / "a.wav")
    b = touch(tmp_path / "2023-02" / "x" / "b.mp3")
    touch(tmp_path / "2024-01" / "c.wav")
    found = discover_audio([str(tmp_path / "2023-*")])
    assert [(s.path, s.name) for s in found.sources] == [(a, "2023-01/a.wav"),
                                                         (b, "2023-02/x/b.mp3")]


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    touch(tmp_path / "x.wav")
    monkeypatch.chdir(tmp_path)
    (source,) = discover_audio(["x.wav"]).sources
    assert source.path == tmp_path / "x.wav"


def test_jsonl_appends_whole_lines_and_repairs_a_torn_tail(tmp_path):
    out = tmp_path / "r.jsonl"
    with JsonlWriter(out) as w:
        w.append({"path": "a", "status": "ok"})
        w.append({"path": "b", "status": "failed"})
    with open(out, "ab") as f:  # what a power cut mid-write could leave
        f.write(b'{"path": "c", "sta')
    assert [r["path"] for r in read_records(out)] == ["a", "b"]
    assert repair_torn_tail(out)
    assert out.read_bytes().endswith(b"}\n")
    with JsonlWriter(out) as w:
        w.append({"path": "c", "status": "ok"})
    assert [r["path"] for r in read_records(out)] == ["a", "b", "c"]


def test_jsonl_refuses_multiline_records(tmp_path):
    import pytest

    with JsonlWriter(tmp_path / "r.jsonl") as w, pytest.raises(ValueError, match="single line"):
        w.append_line('{"a":\n1}')


def test_compact_keeps_the_latest_line_per_path_in_first_seen_order(tmp_path):
    out = tmp_path / "r.jsonl"
    with JsonlWriter(out) as w:
        w.append({"path": "a", "status": "failed"})
        w.append({"path": "b", "status": "ok"})
        w.append({"path": "a", "status": "ok"})
    assert compact(out) == 2
    recs = list(read_records(out))
    assert [(r["path"], r["status"]) for r in recs] == [("a", "ok"), ("b", "ok")]
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())



def test_compact_through_a_link_rewrites_the_file_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_text('{"path": "a", "n": 1}\n{"path": "a", "n": 2}\n')
    link = tmp_path / "out.jsonl"
    link.symlink_to(real)
    assert compact(link) == 1
    assert link.is_symlink() and [r["n"] for r in read_records(real)] == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "real.jsonl"]

def test_export_names_follow_the_relative_name_and_disambiguate_extensions(tmp_path):
    from songmap.export import EXPORTERS

    chosen = {k: EXPORTERS[k] for k in ("lab", "sv-beats", "sv-chords")}
    paths = export_paths(Source(tmp_path / "in" / "x" / "song.mp3", "x/song.mp3"), chosen,
                         tmp_path / "out")
    assert paths == {"lab": tmp_path / "out/x/song.lab",
                     "sv-beats": tmp_path / "out/x/song.sv-beats.csv",
                     "sv-chords": tmp_path / "out/x/song.sv-chords.csv"}


def test_summary_exit_codes_and_text():
    s = BatchSummary(total=3, ok=1, skipped=1, failed=1, audio_seconds=7200, wall_seconds=3600,
                     failures=[Failure("/x/bad.mp3", "NotAudioError", "not audio")])
    assert s.exit_code == 1
    text = s.format()
    assert "1 ok, 1 failed, 1 skipped" in text and "/x/bad.mp3: NotAudioError: not audio" in text
    assert "1 tracks/hour, 2.0 audio hours/hour" in text
    assert BatchSummary(total=2, ok=2).exit_code == 0
    assert BatchSummary(total=2, ok=1, interrupted=True).exit_code == 130


def test_progress_draws_a_bar_on_a_terminal_and_lines_elsewhere():
    tty, plain = io.StringIO(), io.StringIO()
    for stream, is_tty in ((tty, True), (plain, False)):
        p = Progress(stream, tty=is_tty)
        s = BatchSummary(total=4)
        p.start(s)
        s.ok += 1
        s.audio_seconds += 1800
        p.record("ok", "/m/a.mp3", audio_seconds=1800, wall_seconds=2.0)
        s.failed += 1
        p.record("failed", "/m/b.mp3", error="NotAudioError: nope")
        p.finish(s)
    assert "\r[" in tty.getvalue() and "2/4 files" in tty.getvalue()
    assert "0.50 h audio" in tty.getvalue() and "ETA" in tty.getvalue()
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue()
    assert lines[1] == "songmap batch: [1/4] ok /m/a.mp3 (30.0 min audio, 2.0 s)"
    assert lines[2] == "songmap batch: [2/4] failed /m/b.mp3 (NotAudioError: nope)"
    assert lines[3].startswith("batch done: 2/4 files")


def test_failures_table_lives_beside_results(tmp_path):
    from songmap.batch.failures import FailureLog
    from songmap.store import ResultStore

    db = tmp_path / "s.sqlite"
    with ResultStore(db) as store, FailureLog(db) as log:
        store.put("h", "k", json.dumps({"x": 1}))
        log.record("/a.mp3", "k", "h2", "NotAudioError", "nope")
        assert [f["path"] for f in log.list("k")] == ["/a.mp3"]
        log.clear("/a.mp3", "k")
        assert log.list() == [] and store.get("h", "k") == '{"x": 1}'
    assert os.path.exists(db)
