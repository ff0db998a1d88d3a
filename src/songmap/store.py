"""The result store: analysis results in SQLite, keyed by audio content and settings.

A result is stored under ``(content_hash(file), AnalysisSettings.cache_key())``, so the same
bytes analysed with the same settings are found again whatever the file was called, and
with the producer that made it (``result_producer()``: songmap's version and the model
backend). A store serves only its own producer's results: after an upgrade, or with the
other backend, a stored result is analysed again (and replaced), never served stale. The
service (``songmap serve``) and batch analysis share this module::

    store = ResultStore("results.sqlite")
    key = settings.cache_key()
    digest = content_hash(path)
    if (text := store.get(digest, key)) is None:
        text = analyzer.analyze(path).model_dump_json()
        store.put(digest, key, text)

The database runs in WAL mode: readers never block the writer, and several processes may
write (each write is one short transaction; a busy database is waited for, up to
``timeout_s``). Connections are opened per thread, so one ``ResultStore`` may be shared by
the threads of a process; each process opens its own.

A damaged file is never overwritten or recreated: opening checks the header and runs
``PRAGMA quick_check`` (measured: 0.08 s for a 300 MB store, warm cache), and any sign of corruption, then
or later, raises ``StoreCorruptError`` naming the file and the fix (move it aside).
A writer killed with ``kill -9`` is not damage: WAL recovery on the next open keeps every
committed result and drops the unfinished transaction.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from songmap._version import __version__
from songmap.errors import StoreCorruptError

#: Bytes read per step while hashing.
_CHUNK = 1 << 20

#: The first 16 bytes of every SQLite 3 database file.
_MAGIC = b"SQLite format 3\x00"

#: SQLite result codes that mean the file itself is damaged (SQLITE_CORRUPT, SQLITE_NOTADB).
_CORRUPT_CODES = {11, 26}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    audio_hash   TEXT NOT NULL,
    settings_key TEXT NOT NULL,
    result_json  TEXT NOT NULL,
    created_at   REAL NOT NULL,
    producer     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (audio_hash, settings_key)
) WITHOUT ROWID;
"""


def result_producer(backend: str | None = None) -> str:
    """What makes this process's results: songmap's version and the model backend
    (``SONGMAP_MODEL_BACKEND``'s choice unless ``backend`` is given), e.g.
    ``"songmap 0.1.0; songmap networks"``."""
    if backend is None:
        from songmap.models.backends import backend_name

        backend = backend_name()
    return f"songmap {__version__}; {backend} networks"


def content_hash(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file's bytes (the store's audio key)."""
    with open(path, "rb") as f:
        return hash_stream(f)


def hash_stream(stream: BinaryIO) -> str:
    """Hex SHA-256 of everything left in a binary stream."""
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


class SQLiteFile:
    """One SQLite file in WAL mode with a connection per thread (a base for stores)."""

    #: SQL run once when the file is opened (``CREATE TABLE IF NOT EXISTS ...``).
    schema = ""
    #: What the file is, for messages.
    what = "database"

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        try:
            self._check_intact()
            if self.schema:
                with self.transaction() as db:
                    for statement in self.schema.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    self.migrate(db)
        except BaseException:
            self.close()
            raise

    def migrate(self, db: sqlite3.Connection) -> None:
        """Bring a file written by an older songmap up to ``schema`` (in the opening
        transaction, so two processes opening it at once do it once)."""

    def corrupt(self, detail: str) -> StoreCorruptError:
        """The error for this file being damaged (``detail``: what SQLite said)."""
        p = self.path
        return StoreCorruptError(
            f"the {self.what} {p} is damaged ({detail}); songmap will not overwrite it. "
            f"Move it aside, with any {p.name}-wal and {p.name}-shm beside it "
            f"(e.g. mv '{p}' '{p}.broken'), and songmap will create a new one "
            "(results stored in it will be analysed again)"
        )

    def _check_intact(self) -> None:
        """Refuse a file that is not an intact SQLite database (an empty one is new)."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_MAGIC))
        except FileNotFoundError:
            return
        if not head:
            return  # a new (or never written) database
        if head != _MAGIC:
            raise self.corrupt("it is not an SQLite database: its header is wrong")
        with self.guarded():
            rows = self.connect().execute("PRAGMA quick_check").fetchall()
        problems = [r[0] for r in rows if r[0] != "ok"]
        if problems:
            more = f" and {len(problems) - 1} more problems" if len(problems) > 1 else ""
            raise self.corrupt(f"quick_check: {problems[0]}{more}")

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """Turn SQLite's "malformed" / "not a database" errors into ``StoreCorruptError``."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) in _CORRUPT_CODES or \
                    "malformed" in str(exc) or "not a database" in str(exc):
                raise self.corrupt(str(exc)) from exc
            raise

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (WAL, autocommit; use ``transaction()`` to group writes)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a committed write survives a process crash; only a power cut
            # can lose the last transactions, never corrupt the file.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error).

        IMMEDIATE takes the write lock up front, so two writers wait for each other
        instead of failing halfway with "database is locked".
        """
        with self.guarded():
            db = self.connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (corruption)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._all_lock:
            for db in self._all:
                try:
                    db.close()
                except sqlite3.ProgrammingError:  # pragma: no cover - closed elsewhere
                    pass
            self._all.clear()
        self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ResultStore(SQLiteFile):
    """Analysis results (JSON text) keyed by ``(audio_hash, settings_key)``, each marked
    with its ``producer``.

    ``path`` is a file (created with its folder if missing). Values are the JSON text of
    ``AnalysisResult``; the store does not parse them, so readers choose how (and whether)
    to validate. ``get``, ``contains`` and ``count`` see only the results of ``producer``
    (default: ``result_producer()``, this songmap and its model backend); ``put`` replaces
    whatever another producer stored under the same key.
    """

    schema = _SCHEMA
    what = "result store"

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0,
                 producer: str | None = None) -> None:
        self.producer = producer or result_producer()
        super().__init__(path, timeout_s=timeout_s)

    def migrate(self, db: sqlite3.Connection) -> None:
        # stores written before results were marked: their rows get producer '' (served
        # by no songmap, so analysed again and replaced)
        columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
        if "producer" not in columns:
            db.execute("ALTER TABLE results ADD COLUMN producer TEXT NOT NULL DEFAULT ''")

    # -- results ---------------------------------------------------------------
    def get(self, audio_hash: str, settings_key: str) -> str | None:
        """The stored result JSON, or None."""
        with self.guarded():
            row = self.connect().execute(
                "SELECT result_json FROM results"
                " WHERE audio_hash = ? AND settings_key = ? AND producer = ?",
                (audio_hash, settings_key, self.producer),
            ).fetchone()
        return None if row is None else row[0]

    def put(self, audio_hash: str, settings_key: str, result_json: str) -> None:
        """Store (or replace) a result."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO results"
                " (audio_hash, settings_key, result_json, created_at, producer)"
                " VALUES (?, ?, ?, ?, ?)",
                (audio_hash, settings_key, result_json, time.time(), self.producer),
            )

    def contains(self, audio_hash: str, settings_key: str) -> bool:
        with self.guarded():
            row = self.connect().execute(
                "SELECT 1 FROM results WHERE audio_hash = ? AND settings_key = ? AND producer = ?",
                (audio_hash, settings_key, self.producer),
            ).fetchone()
        return row is not None

    def delete(self, audio_hash: str, settings_key: str | None = None) -> int:
        """Forget one result, or every result of the audio when ``settings_key`` is None."""
        with self.transaction() as db:
            if settings_key is None:
                cur = db.execute("DELETE FROM results WHERE audio_hash = ?", (audio_hash,))
            else:
                cur = db.execute(
                    "DELETE FROM results WHERE audio_hash = ? AND settings_key = ?",
                    (audio_hash, settings_key),
                )
            return cur.rowcount

    def count(self) -> int:
        """Number of stored results this store serves (its producer's)."""
        with self.guarded():
            return int(self.connect().execute(
                "SELECT COUNT(*) FROM results WHERE producer = ?", (self.producer,)
            ).fetchone()[0])

    def __len__(self) -> int:
        return self.count()
