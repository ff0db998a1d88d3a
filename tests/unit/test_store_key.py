"""The result store serves only results made by this songmap and its model backend: after
an upgrade (or with the other backend) a stored result is analysed again, not served."""

from __future__ import annotations

import sqlite3

import pytest

from songmap._version import __version__
from songmap.store import ResultStore, result_producer

KEY = '{"chord_vocabulary":"sevenths"}'


def test_producer_names_the_version_and_the_backend(monkeypatch):
    monkeypatch.delenv("SONGMAP_MODEL_BACKEND", raising=False)
    assert result_producer() == f"songmap {__version__}; songmap networks"
    monkeypatch.setenv("SONGMAP_MODEL_BACKEND", " Madmom ")
    assert result_producer() == f"songmap {__version__}; madmom networks"
    assert ResultStore.__init__.__kwdefaults__["producer"] is None  # the default follows the env


def test_a_result_of_another_version_is_not_served(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path, producer="songmap 0.0.9; songmap networks") as old:
        old.put("h", KEY, '{"old": true}')
        assert old.get("h", KEY) == '{"old": true}'
    with ResultStore(path) as store:
        assert store.get("h", KEY) is None
        assert not store.contains("h", KEY)
        assert store.count() == 0
        store.put("h", KEY, '{"new": true}')  # the re-analysis replaces the old row
        assert store.get("h", KEY) == '{"new": true}'
        assert store.count() == 1
    with ResultStore(path, producer="songmap 0.0.9; songmap networks") as old:
        assert old.get("h", KEY) is None  # one row per key: the old one is gone


def test_a_result_of_the_other_backend_is_not_served(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path, producer=result_producer("madmom")) as reference:
        reference.put("h", KEY, '{"madmom": true}')
    with ResultStore(path, producer=result_producer("songmap")) as fast:
        assert fast.get("h", KEY) is None


@pytest.mark.parametrize("rows", [0, 2])
def test_a_store_written_before_producers_opens_and_serves_nothing_old(tmp_path, rows):
    """A file of the previous layout (no producer column): opened, upgraded in place,
    its rows kept but not served."""
    path = tmp_path / "r.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE results (audio_hash TEXT NOT NULL, settings_key TEXT NOT NULL,"
               " result_json TEXT NOT NULL, created_at REAL NOT NULL,"
               " PRIMARY KEY (audio_hash, settings_key)) WITHOUT ROWID")
    for i in range(rows):
        db.execute("INSERT INTO results VALUES (?, ?, ?, ?)", (f"h{i}", KEY, '{"stale": 1}', 0.0))
    db.commit()
    db.close()
    with ResultStore(path) as store:
        assert store.get("h0", KEY) is None
        assert not store.contains("h0", KEY)
        store.put("h0", KEY, '{"fresh": 1}')
        assert store.get("h0", KEY) == '{"fresh": 1}'
    with ResultStore(path) as again:  # reopening does not upgrade twice
        assert again.get("h0", KEY) == '{"fresh": 1}'
        assert again.count() == 1
        total = again.connect().execute("SELECT COUNT(*) FROM results").fetchone()[0]
        assert total == max(rows, 1)
