"""Issue 15: two batch runs on the same store and output share the work and lose nothing.

The runs are two processes (``fake_batch.py``: the batch driver with a fake analysis, no
networks), as they are for users: the locks belong to processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from songmap.batch import locks
from songmap.batch.jsonl import JsonlWriter, compact, read_records
from songmap.batch.locks import ClaimDir, OutputLock
from songmap.errors import OutputBusyError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX flock semantics")

FAKE = Path(__file__).with_name("fake_batch.py")
SRC = Path(locks.__file__).parents[2]


def _library(root: Path, n: int) -> list[Path]:
    root.mkdir(parents=True)
    files = [root / f"s{i:02d}.wav" for i in range(n)]
    for f in files:
        f.write_text(f"not audio, the fake reads no bytes: {f}\n")  # distinct bytes
    return files


def _old_failed_lines(out: Path, files: list[Path]) -> None:
    """Lines from an earlier run in which every file failed: the new run rewrites them,
    so it compacts the output when it ends."""
    with open(out, "a", encoding="utf-8") as f:
        for p in files:
            f.write(json.dumps({"path": str(p), "status": "failed",
                                "error": {"type": "X", "message": "an earlier run"}}) + "\n")


def _start(tmp: Path, paths: list[Path], *, delay: float, out: Path | None = None,
           ) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(FAKE), *map(str, paths), "--store", str(tmp / "s.sqlite"),
           "--log", str(tmp / "analyses.log"), "--delay", str(delay)]
    if out is not None:
        cmd += ["--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get(
        "PYTHONPATH", "")])}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _analyses(tmp: Path) -> list[tuple[int, str]]:
    log = tmp / "analyses.log"
    if not log.exists():
        return []
    return [(int(pid), path) for pid, path in
            (line.split(" ", 1) for line in log.read_text().splitlines())]


def _when_started(tmp: Path, n: int = 1, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_analyses(tmp)) < n:
        assert time.monotonic() < deadline, "the first run never started analysing"
        time.sleep(0.02)


def _finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> dict[str, int]:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_run_on_other_files_loses_no_line_when_the_first_compacts(tmp_path):
    """Before the lock: the first run's compaction replaced the file under the second,
    whose later lines went to the replaced file (8 of 30 lost while it said "30 ok")."""
    first, second = _library(tmp_path / "a", 30), _library(tmp_path / "b", 30)
    out = tmp_path / "out.jsonl"
    _old_failed_lines(out, first + second)
    a = _start(tmp_path, [tmp_path / "a"], delay=0.05, out=out)
    _when_started(tmp_path)
    b = _start(tmp_path, [tmp_path / "b"], delay=0.1, out=out)  # still writing after a ends
    assert _finish(a)["ok"] == 30
    assert _finish(b)["ok"] == 30
    records = list(read_records(out))
    assert sorted(r["path"] for r in records) == sorted(map(str, first + second))  # once each
    assert all(r["status"] == "ok" for r in records)
    # Nothing is left behind: no temporary file, no lock file, no claims.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a", "analyses.log", "b", "out.jsonl", "s.sqlite"]


@pytest.mark.slow
def test_two_identical_runs_analyse_every_file_once_and_both_report_all(tmp_path):
    files = _library(tmp_path / "lib", 30)
    out = tmp_path / "out.jsonl"
    a = _start(tmp_path, [tmp_path / "lib"], delay=0.1, out=out)
    _when_started(tmp_path)
    b = _start(tmp_path, [tmp_path / "lib"], delay=0.1, out=out)
    first, second = _finish(a), _finish(b)
    analysed = [path for _, path in _analyses(tmp_path)]
    assert sorted(analysed) == sorted(map(str, files)), "a file was analysed twice"
    # Both runs end with every file: what one analysed the other took from the store.
    assert first["ok"] + first["skipped"] == 30 and second["ok"] + second["skipped"] == 30
    assert first["ok"] + second["ok"] == 30
    records = list(read_records(out))
    assert len(records) == 30 and {r["path"] for r in records} == set(map(str, files))


@pytest.mark.slow
def test_a_run_killed_with_sigkill_does_not_block_the_next(tmp_path):
    files = _library(tmp_path / "lib", 1)
    out = tmp_path / "out.jsonl"
    a = _start(tmp_path, [tmp_path / "lib"], delay=600, out=out)  # never finishes
    _when_started(tmp_path)
    b = _start(tmp_path, [tmp_path / "lib"], delay=0.05, out=out)
    time.sleep(2.0)  # b has started and found the file claimed
    assert len(_analyses(tmp_path)) == 1, "the second run analysed a file the first had"
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    summary = _finish(b, timeout=30)  # the kernel dropped the dead run's locks
    assert summary["ok"] == 1
    assert [pid for pid, _ in _analyses(tmp_path)] == [a.pid, b.pid]
    assert [r["path"] for r in read_records(out)] == [str(files[0])]


def test_a_claim_is_one_holders_until_released_or_its_holder_dies(tmp_path):
    claims = ClaimDir(tmp_path / "claims")
    mine = claims.try_claim("ab" * 32, "{}")
    assert mine is not None
    assert claims.try_claim("ab" * 32, "{}") is None  # another open file: another holder
    assert claims.try_claim("ab" * 32, '{"vocabulary":"sevenths"}') is not None
    mine.release()
    assert not mine.path.exists()
    again = claims.try_claim("ab" * 32, "{}")
    assert again is not None
    again.release()


def test_a_claim_on_a_file_its_holder_removed_is_taken_again(tmp_path, monkeypatch):
    """The race of lock files: B opens the file, A removes it and unlocks, B locks the
    removed file. B must see that and open the path again, or two runs hold one claim."""
    claims = ClaimDir(tmp_path / "claims")
    holder = claims.try_claim("cd" * 32, "{}")
    assert holder is not None
    real_flock = locks._flock

    def holder_leaves_between_open_and_lock(fd, **kw):
        holder.release()
        monkeypatch.setattr(locks, "_flock", real_flock)
        return real_flock(fd, **kw)

    monkeypatch.setattr(locks, "_flock", holder_leaves_between_open_and_lock)
    taken = claims.try_claim("cd" * 32, "{}")
    assert taken is not None and taken.path.exists()
    assert os.stat(taken.path).st_ino == os.fstat(taken._fd).st_ino
    taken.release()


def test_only_the_last_writer_compacts_and_keeps_every_writers_lines(tmp_path):
    out = tmp_path / "out.jsonl"
    one, two = OutputLock(out), OutputLock(out)
    one.enter(lambda: None)
    two.enter(lambda: None)
    w1, w2 = JsonlWriter(out, repair=False), JsonlWriter(out, repair=False)
    w1.append({"path": "x", "status": "failed"})
    w1.append({"path": "x", "status": "ok"})  # a rewrite: the output needs compacting
    w1.close()
    compactions: list[int] = []
    one.leave(lambda: compactions.append(compact(out)), dirty=True)
    assert compactions == []  # two still writes: compacting now could lose its lines
    w2.append({"path": "y", "status": "ok"})
    w2.close()
    two.leave(lambda: compactions.append(compact(out)), dirty=False)  # the note from one
    assert compactions == [2]
    assert [(r["path"], r["status"]) for r in read_records(out)] == [("x", "ok"), ("y", "ok")]
    assert not one.path.exists()  # removed by the last one out


def test_without_shared_locks_a_second_run_is_refused_in_one_line(tmp_path, monkeypatch,
                                                                    capsys):
    """Windows has exclusive locks only: the second run on an output is refused at once
    with its own exit status (10), before anything is analysed."""
    from songmap.cli.main import main

    monkeypatch.setattr(locks, "SHARED_LOCKS", False)
    out = tmp_path / "out.jsonl"
    first = OutputLock(out)
    first.enter(lambda: None)
    with pytest.raises(OutputBusyError):
        OutputLock(out).enter(lambda: None)
    _library(tmp_path / "lib", 1)
    code = main(["batch", str(tmp_path / "lib"), "-o", str(out), "--store",
                 str(tmp_path / "s.sqlite"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 10
    assert len(err) == 1 and "another songmap batch is writing" in err[0], err
    first.leave(lambda: None, dirty=False)


def test_a_line_another_run_wrote_for_the_same_file_unseen_is_compacted_away(tmp_path,
                                                                              monkeypatch):
    """Two runs that take a file from the store at the same moment can each write its line
    before reading the other's; neither then knew of a rewrite and the output kept both
    lines (CI: 31 lines for 30 files). The run's last look at the output sees both."""
    sys.path.insert(0, str(FAKE.parent))
    from fake_batch import FakeRunner

    from songmap.batch import run as batch_run

    files = _library(tmp_path / "lib", 3)
    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(batch_run, "_make_runner",
                        lambda options: FakeRunner(1, 0.01, str(tmp_path / "analyses.log")))
    others: list[str] = []

    def other_run_writes_it_too(record, runner) -> None:
        if not others:  # the other run's line for the same file, written unseen
            others.append(str(record.source.path))
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps({"path": others[0], "status": "ok", "cached": True,
                                    "result": {}}) + "\n")

    summary = batch_run.run_batch([tmp_path / "lib"], store=tmp_path / "s.sqlite", output=out,
                                  workers=1, on_record=other_run_writes_it_too)
    assert summary.ok == 3
    records = list(read_records(out))
    assert sorted(r["path"] for r in records) == sorted(map(str, files))  # once each
