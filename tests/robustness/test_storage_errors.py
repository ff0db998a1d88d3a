"""Issue 15: every storage failure is one line, and leaves no half-written file behind.

A full disk is simulated with ``/dev/full`` (every write fails with ENOSPC) behind a
symlink where songmap writes, and, for SQLite, with ``PRAGMA max_page_count`` (SQLite's
own "database or disk is full"); a read-only filesystem with ``os.access`` / ``mkdir``
answering EROFS (the tests may run as root, whom permission bits do not stop).
"""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from songmap import errors
from songmap.api.errors import status_for
from songmap.cli import analyze_files
from songmap.cli.main import exit_code_for
from songmap.store import ResultStore

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")


def _args(files: list[str], output: str | None, **kw: object) -> argparse.Namespace:
    values = {"files": files, "output": output, "timeout": None, "max_memory": None,
              "export": None, "json": False, "summary": False}
    values.update(kw)
    return argparse.Namespace(**values)


# -- the result store ------------------------------------------------------------------------
def test_a_folder_where_the_store_file_should_be(tmp_path):
    where = tmp_path / "results.sqlite"
    where.mkdir()
    with pytest.raises(errors.StorageError, match="is a folder, not a file"):
        ResultStore(where)


def test_a_store_in_a_read_only_place(tmp_path, monkeypatch):
    def read_only(self, *a, **kw):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(errors.StorageError, match="Read-only file system"):
        ResultStore(tmp_path / "new" / "results.sqlite")


def test_a_store_whose_file_cannot_be_opened(tmp_path):
    # a path through a regular file: SQLite cannot open it (SQLITE_CANTOPEN)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(errors.StorageError):
        ResultStore(tmp_path / "plain" / "results.sqlite")


def test_a_full_disk_while_storing_is_one_error_and_the_store_stays_usable(tmp_path):
    store = ResultStore(tmp_path / "results.sqlite")
    store.connect().execute("PRAGMA max_page_count = 8")
    with pytest.raises(errors.DiskFullError, match="the disk is full"):
        store.put("h", "k", "x" * 200_000)
    assert not store.connect().in_transaction  # rolled back, not left open
    store.put("small", "k", "{}")  # what fits still goes in
    assert store.get("small", "k") == "{}"
    assert status_for(errors.DiskFullError("")) == 507
    assert exit_code_for(errors.DiskFullError("")) == 9


# -- songmap analyze -o ----------------------------------------------------------------------
@needs_dev_full
def test_a_full_disk_under_o_file_leaves_no_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".out.json.tmp").symlink_to("/dev/full")  # where the atomic write goes
    with pytest.raises(errors.DiskFullError, match=r"out\.json: cannot be written, the disk is full"):
        analyze_files._write_atomic(tmp_path / "out.json", "{}\n" * 10_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@needs_dev_full
def test_a_full_disk_under_o_jsonl_is_said_for_every_file(tmp_path):
    out = tmp_path / "all.jsonl"
    out.symlink_to("/dev/full")
    plan = analyze_files.plan(_args(["a.wav", "b.wav"], str(out)))
    with pytest.raises(errors.DiskFullError):  # noqa: PT012 - whichever write meets the disk
        plan.record_failure("a.wav", errors.NotAudioError("x"), 4)
        plan._write_line("{}\n")
    with pytest.raises(errors.DiskFullError):  # the next file hears it too
        plan._write_line("{}\n")
    plan.record_failure("b.wav", errors.NotAudioError("x"), 4)  # no second error while reporting
    plan.close()  # nothing left to flush raises


def test_o_into_a_read_only_folder_is_refused_before_the_analysis(tmp_path, monkeypatch):
    real_access = os.access

    def no_write(path, mode, *a, **kw):
        if mode & os.W_OK and Path(path) == tmp_path:
            return False
        return real_access(path, mode, *a, **kw)

    monkeypatch.setattr(os, "access", no_write)
    for output in (tmp_path / "x.json", tmp_path / "x.jsonl", tmp_path / "new" / "sub"):
        with pytest.raises(errors.StorageError, match="is not writable"):
            analyze_files.output_mode(str(output) + ("/" if output.name == "sub" else ""), 1)


def test_o_under_a_file_is_refused_before_the_analysis(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(errors.StorageError, match="is not a folder"):
        analyze_files.output_mode(str(tmp_path / "plain" / "deeper") + "/", 1)


def test_the_cli_says_one_line_and_exit_9_for_an_unwritable_output(tmp_path):
    """End to end, before any analysis: a missing input file is not even looked at."""
    (tmp_path / "plain").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "songmap.cli.main", "analyze", str(tmp_path / "song.wav"),
         "-o", str(tmp_path / "plain" / "out") + "/"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 9, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("songmap: error: -o ")
