"""Files a batch could not analyse, kept beside the results in the store's SQLite file.

The result store keeps only results; this table remembers what failed, why and when, so
a run without ``-o`` still leaves a record, and a later success clears the entry.
"""

from __future__ import annotations

import time

from songmap.store import SQLiteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_failures (
    path         TEXT NOT NULL,
    settings_key TEXT NOT NULL,
    audio_hash   TEXT NOT NULL,
    error_type   TEXT NOT NULL,
    message      TEXT NOT NULL,
    failed_at    REAL NOT NULL,
    PRIMARY KEY (path, settings_key)
) WITHOUT ROWID;
"""


class FailureLog(SQLiteFile):
    schema = _SCHEMA

    def record(self, path: str, settings_key: str, audio_hash: str, error_type: str,
               message: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO batch_failures VALUES (?, ?, ?, ?, ?, ?)",
                (path, settings_key, audio_hash, error_type, message, time.time()),
            )

    def clear(self, path: str, settings_key: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM batch_failures WHERE path = ? AND settings_key = ?",
                       (path, settings_key))

    def find(self, audio_hash: str, settings_key: str, *,
             since: float) -> tuple[str, str] | None:
        """``(error type, message)`` of a failure of these bytes with these settings recorded
        at or after ``since`` (epoch seconds; by this run or one beside it), else None."""
        row = self.connect().execute(
            "SELECT error_type, message FROM batch_failures WHERE audio_hash = ? AND "
            "settings_key = ? AND failed_at >= ? ORDER BY failed_at DESC LIMIT 1",
            (audio_hash, settings_key, since)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def list(self, settings_key: str | None = None) -> list[dict[str, object]]:
        sql = "SELECT * FROM batch_failures"
        args: tuple[str, ...] = ()
        if settings_key is not None:
            sql += " WHERE settings_key = ?"
            args = (settings_key,)
        return [dict(row) for row in self.connect().execute(sql + " ORDER BY path", args)]
