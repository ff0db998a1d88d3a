"""The SQLite result store shared by the service and batch analysis."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import sqlite3
import threading

from songmap.store import ResultStore, content_hash


def test_put_get_replace_delete(tmp_path):
    with ResultStore(tmp_path / "sub" / "r.sqlite") as store:
        assert store.get("h", "k") is None and not store.contains("h", "k")
        store.put("h", "k", '{"a": 1}')
        store.put("h", "k2", '{"a": 2}')
        assert store.get("h", "k") == '{"a": 1}' and store.contains("h", "k")
        store.put("h", "k", '{"a": 3}')  # replaced, not duplicated
        assert store.get("h", "k") == '{"a": 3}' and len(store) == 2
        assert store.delete("h", "k") == 1 and store.get("h", "k") is None
        assert store.delete("h") == 1 and len(store) == 0


def test_persists_and_uses_wal(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.put("h", "k", "x")
    with ResultStore(path) as store:
        assert store.get("h", "k") == "x"
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_content_hash_is_sha256_of_the_bytes(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"abc" * 1_000_000)
    assert content_hash(p) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def _write_many(path: str, prefix: str, n: int) -> None:
    with ResultStore(path) as store:
        for i in range(n):
            store.put(f"{prefix}{i}", "k", f'{{"i": {i}}}')


def test_concurrent_writers_threads_and_processes(tmp_path):
    path = str(tmp_path / "r.sqlite")
    ResultStore(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, f"p{j}-", 100)) for j in range(2)]
    for p in procs:
        p.start()
    store = ResultStore(path)
    threads = [threading.Thread(target=lambda j=j: [store.put(f"t{j}-{i}", "k", "{}")
                                                    for i in range(100)]) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert len(store) == 400
    store.close()
