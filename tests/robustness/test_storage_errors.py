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


# -- outputs that are not plain files (audit, 2026-11-27) --------------------------------------
GOLDEN = Path(__file__).parents[1] / "data" / "example_result.json"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="devices, pipes, sh")


def _cli(*argv: str, shell_tail: str = "") -> subprocess.CompletedProcess:
    """``songmap ARGV`` in a process of its own; ``shell_tail`` (sh redirections) closes or
    redirects its streams."""
    import shlex

    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "songmap.cli.main", *argv])
    return subprocess.run(["sh", "-c", command + " " + shell_tail], capture_output=True,
                          text=True, timeout=60, check=False)


@posix_only
@pytest.mark.parametrize("write", ["analyze", "export"])
def test_o_naming_a_device_writes_into_it_and_keeps_it(tmp_path, write):
    """``-o /dev/null`` renamed a plain file over the device (as root: for every program on
    the machine); here through a link to it, which the old code replaced."""
    from songmap.export import save
    from songmap.schema import AnalysisResult

    out = tmp_path / "out.json"
    out.symlink_to(os.devnull)
    if write == "analyze":
        analyze_files._write_atomic(out, "{}\n")
    else:
        save(AnalysisResult.model_validate_json(GOLDEN.read_bytes()), "lab", out)
    assert out.is_symlink() and os.readlink(out) == os.devnull
    assert not Path(os.devnull).is_file() and not list(tmp_path.glob(".*.tmp"))


@posix_only
def test_o_naming_a_pipe_writes_into_it(tmp_path):
    import threading

    from songmap.outputs import write_whole

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_whole(fifo, b"one result\n")
    reader.join(10)
    assert got == [b"one result\n"] and fifo.is_fifo()


def test_o_through_a_link_replaces_the_file_and_keeps_the_link(tmp_path):
    from songmap.outputs import write_whole

    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_whole(link, b"new")
    assert link.is_symlink() and target.read_text() == "new"


@posix_only
@needs_dev_full
@pytest.mark.parametrize("argv", [
    ["export", str(GOLDEN), "-f", "lab", "-o", "-"],
    ["export", str(GOLDEN), "-f", "lab", "-o", "/dev/full"],
])
def test_a_full_stdout_or_device_is_one_line_and_exit_9(argv):
    proc = _cli(*argv, shell_tail="> /dev/full")
    assert proc.returncode == 9, proc.stderr
    assert proc.stderr.count("\n") == 1 and "the disk is full" in proc.stderr
    assert Path("/dev/full").is_char_device()


@posix_only
@pytest.mark.parametrize("shell_tail, code, said", [
    (">&-", 9, "stdout: cannot be written"),            # was an AttributeError traceback
    ("| true", None, "stdout: cannot be written (Broken pipe)"),  # was a BrokenPipeError one
])
def test_a_closed_stdout_is_one_line(shell_tail, code, said):
    proc = _cli("export", str(GOLDEN), "-f", "jams", "-o", "-", shell_tail=shell_tail)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and said in proc.stderr, proc.stderr
    if code is not None:
        assert proc.returncode == code


@posix_only
def test_a_closed_stderr_keeps_the_exit_status(tmp_path):
    """Reporting the error on a closed stderr crashed, so a missing file exited 1, not 3."""
    proc = _cli("analyze", str(tmp_path / "missing.wav"), shell_tail="2>&-")
    assert proc.returncode == 3


@pytest.mark.parametrize("argv, code, said", [
    (["export", str(GOLDEN), "-f", "midi", "-o", "{tmp}/missing/out.mid"], 2,
     "does not exist"),
    (["export", str(GOLDEN), "-f", "midi,lab", "-o", "{tmp}/plain"], 9, "-o "),
    (["export", str(GOLDEN), "-f", "midi", "-o", "{tmp}/" + "a" * 300 + ".mid"], 9,
     "File name too long"),
    (["analyze", "{tmp}/song.wav", "-o", "{tmp}/" + "a" * 300 + ".json"], 9,
     "File name too long"),
    (["plot", str(GOLDEN), "-o", "{tmp}/missing/p.png"], 2, "does not exist"),
    (["descriptors", "{tmp}/song.wav", "-o", "{tmp}/missing/d.json"], 2, "does not exist"),
    (["example", "-o", "{tmp}/missing/e.flac"], 9, "does not exist"),
])
def test_unwritable_outputs_are_one_line_before_any_analysis(tmp_path, argv, code, said):
    """Each of these was a traceback (export, plot and descriptors after the analysis)."""
    (tmp_path / "plain").write_text("x")
    (tmp_path / "song.wav").write_bytes(b"RIFF")  # never read: the output is refused first
    proc = subprocess.run([sys.executable, "-m", "songmap.cli.main",
                           *[a.replace("{tmp}", str(tmp_path)) for a in argv]],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1 and said in proc.stderr, proc.stderr
    assert proc.stderr.startswith("songmap: error: ")


def test_o_dash_is_stdout_for_analyze_as_for_export(tmp_path, monkeypatch):
    """``songmap analyze x.wav -o -`` wrote a file called "-"."""
    monkeypatch.chdir(tmp_path)
    plan = analyze_files.plan(_args(["a.wav"], "-", quiet=False))
    assert plan.mode == "none" and plan.stdout_json
    plan.close()
    assert not (tmp_path / "-").exists()


@posix_only
def test_a_device_or_pipe_as_input_is_named_as_such(tmp_path):
    """/dev/null was "not a regular file (a folder?)"."""
    os.mkfifo(tmp_path / "pipe")
    for path in (os.devnull, str(tmp_path / "pipe")):
        why = analyze_files.check_input(path)
        assert isinstance(why, errors.InputNotFoundError) and "a device or a pipe" in str(why)
    assert "is a folder" in str(analyze_files.check_input(str(tmp_path)))
