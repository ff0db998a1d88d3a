"""Issue 15: a batch never stops or hangs for one odd input.

A symlink loop, a FIFO, a link to /dev/zero and a file name that is not valid UTF-8, each
among normal songs: each becomes one recorded failure with its reason (the odd name is
analysed), the other files are analysed, and the JSONL and failure log stay readable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from songmap.batch.discover import (
    NotRegularFileError,
    check_path,
    discover_audio,
    escape_surrogates,
    hash_input,
)
from songmap.batch.failures import FailureLog
from songmap.batch.jsonl import JsonlWriter, read_records
from songmap.batch.run import run_batch

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")

#: A name whose bytes are Latin-1, not UTF-8 (what an old archive or a Windows share leaves).
ODD_NAME = os.fsdecode(b"caf\xe9.wav")


def _odd_library(root: Path) -> dict[str, Path]:
    """Links and special files with audio names, in a folder of their own."""
    root.mkdir(parents=True, exist_ok=True)
    loop_a, loop_b = root / "loop_a.wav", root / "loop_b.wav"
    os.symlink(loop_b.name, loop_a)
    os.symlink(loop_a.name, loop_b)
    self_loop = root / "self.wav"
    os.symlink(self_loop.name, self_loop)
    fifo = root / "pipe.wav"
    os.mkfifo(fifo)
    zero = root / "zero.wav"
    os.symlink("/dev/zero", zero)
    broken = root / "broken.flac"
    os.symlink(root / "gone.flac", broken)
    return {"loop_a": loop_a, "loop_b": loop_b, "self": self_loop, "fifo": fifo,
            "zero": zero, "broken": broken}


def test_check_path_names_each_kind(tmp_path):
    odd = _odd_library(tmp_path / "odd")
    assert check_path(odd["self"]) == ("bad", check_path(odd["loop_a"])[1])
    assert "symlink loop" in check_path(odd["loop_a"])[1]
    assert "FIFO" in check_path(odd["fifo"])[1]
    assert "character device" in check_path(odd["zero"])[1]
    assert "broken symlink" in check_path(odd["broken"])[1]
    assert check_path(tmp_path / "nope.wav") == ("missing", "no such file or folder")
    assert check_path(tmp_path)[0] == "dir"


def test_discovery_records_odd_entries_of_a_folder_a_glob_and_the_arguments(tmp_path):
    odd = _odd_library(tmp_path / "odd")
    good = tmp_path / "odd" / "good.wav"
    good.write_bytes(b"RIFF")
    found = discover_audio([tmp_path / "odd"])  # must not raise (it did on the loop)
    assert [s.path for s in found.sources] == [good]
    reasons = dict(found.missing)
    assert set(reasons) == {str(p) for p in odd.values()}
    found = discover_audio([str(tmp_path / "odd" / "*.wav")])
    assert [s.path for s in found.sources] == [good]
    assert str(odd["fifo"]) in dict(found.missing)
    found = discover_audio([odd["fifo"], odd["zero"], odd["self"]])
    assert found.sources == []
    assert [r.split(",")[0] for _, r in found.missing] == [
        "a FIFO (named pipe)", "a character device (like /dev/zero)",
        "a symlink loop: following its links never reaches a file"]


def test_hashing_refuses_a_path_that_is_no_longer_a_regular_file(tmp_path):
    """Discovery and hashing are apart in time: the open descriptor is checked, at once."""
    fifo = tmp_path / "late.wav"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFileError, match="FIFO"):
        hash_input(fifo)  # would block for ever in a plain open()
    with pytest.raises(NotRegularFileError, match="character device"):
        hash_input("/dev/zero")  # would read for ever
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert hash_input(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_names_that_are_not_utf8_survive_the_jsonl_losslessly(tmp_path):
    path = str(tmp_path / ODD_NAME)
    with JsonlWriter(tmp_path / "out.jsonl") as w:
        w.append({"path": path, "status": "failed"})
    raw = (tmp_path / "out.jsonl").read_bytes()
    raw.decode("utf-8")  # the file stays UTF-8
    assert b"\\udce9" in raw
    assert [r["path"] for r in read_records(tmp_path / "out.jsonl")] == [path]
    assert os.fsencode(path).endswith(b"caf\xe9.wav")
    assert escape_surrogates("plain Кино") == "plain Кино"


@pytest.mark.models
def test_a_batch_goes_on_past_every_odd_input(library, tmp_path):
    """One real run: the songs are analysed, every odd entry is one failure with a reason,
    and the file with a non-UTF-8 name is analysed too (it failed with a traceback)."""
    odd = _odd_library(library / "odd")
    shutil.copy(library / "a.wav", os.fsencode(library / "odd") + b"/caf\xe9.wav")
    out, db = tmp_path / "out.jsonl", tmp_path / "s.sqlite"
    summary = run_batch([library, odd["fifo"], odd["zero"]], store=db, output=out, workers=2,
                        timeout_s=120)
    failed = {f.path: f.message for f in summary.failures}
    for key in ("loop_a", "loop_b", "self", "fifo", "zero", "broken"):
        assert str(odd[key]) in failed, key
    assert "FIFO" in failed[str(odd["fifo"])]
    assert "symlink loop" in failed[str(odd["self"])]
    assert "sub/broken.mp3" in " ".join(failed)  # the library's own bad file, as before
    assert summary.ok + summary.skipped == 5  # 4 songs + the odd name (same bytes as a.wav)
    records = list(read_records(out))
    by_path = {r["path"]: r for r in records}
    odd_path = os.fsdecode(os.fsencode(library / "odd") + b"/caf\xe9.wav")
    assert by_path[odd_path]["status"] == "ok"
    assert by_path[odd_path]["result"]["filename"] == "caf\ufffd.wav"
    out.read_bytes().decode("utf-8")
    log = FailureLog(db)
    try:
        assert {row["path"] for row in log.list()} >= {str(odd["fifo"]), str(odd["self"])}
    finally:
        log.close()


@pytest.mark.models
def test_songmap_analyze_of_a_non_utf8_name_gives_a_result(library, tmp_path):
    target = os.fsencode(tmp_path) + b"/caf\xe9.wav"
    shutil.copy(library / "a.wav", target)
    out = tmp_path / "out.json"
    run = subprocess.run([sys.executable, "-m", "songmap.cli.main", "analyze",
                          os.fsdecode(target), "-o", str(out)],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ),
                         check=False)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["filename"] == "caf\ufffd.wav"
