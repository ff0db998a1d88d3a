"""Store faults (issue 7): a writer killed with ``kill -9`` loses no committed result, and a
damaged store file is refused with a message naming it and the fix, never overwritten."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from songmap.errors import StoreCorruptError
from songmap.store import ResultStore

# A writer that prints each key after its transaction committed. Results of ~20 KB make the
# WAL pass its auto-checkpoint size every ~200 writes, so a kill can land mid-checkpoint too.
_LOOP_WRITER = textwrap.dedent("""
    import sys
    from songmap.store import ResultStore
    store = ResultStore(sys.argv[1])
    i = 0
    while True:
        store.put(f"h{i}", "k", '{"i": %d, "pad": "%s"}' % (i, "x" * 20000))
        print(f"h{i}", flush=True)
        i += 1
""")

# A writer that commits two rows, then opens a transaction, writes into it and waits there.
_OPEN_TX_WRITER = textwrap.dedent("""
    import sys, time
    from songmap.store import ResultStore
    store = ResultStore(sys.argv[1])
    store.put("before-1", "k", "{}")
    store.put("before-2", "k", "{}")
    with store.transaction() as db:
        for i in range(500):
            db.execute("INSERT INTO results (audio_hash, settings_key, result_json, created_at)"
                       " VALUES (?, ?, ?, ?)", (f"open-{i}", "k", "{}", 0.0))
        print("in transaction", flush=True)
        time.sleep(60)
""")


def _writer(script: str, path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE,
                            text=True)


def _kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_kill9_of_a_writer_in_a_loop_keeps_every_committed_result(tmp_path):
    path = tmp_path / "r.sqlite"
    proc = _writer(_LOOP_WRITER, path)
    committed = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while len(committed) < 400 and time.monotonic() < deadline:  # past 1-2 checkpoints
            line = proc.stdout.readline().strip()
            if not line:
                break
            committed.append(line)
    finally:
        _kill9(proc)
    assert len(committed) >= 400, "the writer did not get going"
    assert proc.stdout is not None
    committed += [line for line in proc.stdout.read().split("\n") if line]  # printed meanwhile
    assert (tmp_path / "r.sqlite-wal").exists()  # the kill left a WAL for recovery to replay
    with ResultStore(path) as store:
        missing = [key for key in committed if store.get(key, "k") is None]
        assert missing == []
        assert store.count() >= len(committed)  # at most one more, committed but not printed
        assert store.count() <= len(committed) + 1
        store.put("after", "k", '{"new": true}')
        assert store.get("after", "k") == '{"new": true}'
    assert _integrity(path) == "ok"


def test_kill9_inside_an_open_transaction_drops_only_that_transaction(tmp_path):
    path = tmp_path / "r.sqlite"
    proc = _writer(_OPEN_TX_WRITER, path)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "in transaction"
    finally:
        _kill9(proc)
    # The dead writer's lock went with it: a new writer gets in at once, not after a timeout.
    t0 = time.monotonic()
    with ResultStore(path, timeout_s=5.0) as store:
        store.put("after", "k", "{}")
        assert time.monotonic() - t0 < 2.0
        assert store.get("before-1", "k") == "{}" and store.get("before-2", "k") == "{}"
        assert store.get("open-0", "k") is None and store.count() == 3
    assert _integrity(path) == "ok"


def _good_store(path: Path) -> bytes:
    with ResultStore(path) as store:
        for i in range(200):
            store.put(f"h{i}", "k", f'{{"i": {i}, "pad": "{"y" * 3000}"}}')
    assert not Path(f"{path}-wal").exists()  # checkpointed on close: the file is whole
    return path.read_bytes()


def _damage(kind: str, data: bytes) -> bytes:
    n = len(data)
    if kind == "random bytes":
        return os.urandom(n)
    if kind == "header kept, middle overwritten":
        return data[: n // 2 - 8192] + os.urandom(16384) + data[n // 2 + 8192:]
    if kind == "header kept, first page overwritten":
        return data[:100] + os.urandom(3996) + data[4096:]
    if kind == "truncated to half":
        return data[: n // 2]
    raise AssertionError(kind)


DAMAGES = ["random bytes", "header kept, middle overwritten",
           "header kept, first page overwritten", "truncated to half"]


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_store_is_refused_and_left_untouched(tmp_path, kind):
    path = tmp_path / "results.sqlite"
    path.write_bytes(_damage(kind, _good_store(tmp_path / "good.sqlite")))
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError) as info:
        ResultStore(path)
    message = str(info.value)
    assert str(path) in message and "damaged" in message
    assert "Move it aside" in message and "create a new one" in message
    assert path.read_bytes() == before  # never overwritten, never recreated


def test_the_jobs_database_is_checked_too(tmp_path):
    from songmap.api.jobs import JobStore

    path = tmp_path / "jobs.sqlite"
    path.write_bytes(b"not a database at all\n" * 100)
    with pytest.raises(StoreCorruptError, match=r"jobs database .*jobs\.sqlite is damaged"):
        JobStore(path)


def test_a_new_or_empty_file_is_a_new_store(tmp_path):
    (tmp_path / "empty.sqlite").write_bytes(b"")
    for name in ("empty.sqlite", "missing.sqlite"):
        with ResultStore(tmp_path / name) as store:
            store.put("h", "k", "{}")
            assert store.count() == 1


def test_open_check_is_cheap(tmp_path):
    """quick_check reads every page: measured so a big store does not slow every start."""
    path = tmp_path / "big.sqlite"
    with ResultStore(path) as store, store.transaction() as db:
        db.executemany("INSERT INTO results (audio_hash, settings_key, result_json, created_at)"
                       " VALUES (?, ?, ?, ?)",
                       ((f"h{i}", "k", "z" * 50_000 + str(i), 0.0) for i in range(1000)))
    assert path.stat().st_size > 45e6
    t0 = time.perf_counter()
    ResultStore(path).close()
    assert time.perf_counter() - t0 < 1.0


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "songmap.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def test_batch_reports_a_damaged_store(tmp_path):
    store = tmp_path / "results.sqlite"
    store.write_bytes(_damage("random bytes", b"\0" * 40960))
    before = store.read_bytes()
    song = tmp_path / "song.wav"
    song.write_bytes(b"")  # never reached: the store is opened first
    proc = _cli("batch", str(song), "--store", str(store), "--workers", "1", "-q")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"songmap: error: the result store {store} is damaged" in proc.stderr
    assert "Move it aside" in proc.stderr
    assert store.read_bytes() == before


def test_serve_refuses_to_start_on_a_damaged_store(tmp_path):
    store = tmp_path / "results.sqlite"
    store.write_bytes(_damage("header kept, middle overwritten", _good_store(tmp_path / "g.sqlite")))
    proc = _cli("serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
                "--store", str(store), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"songmap: error: the result store {store} is damaged" in proc.stderr
