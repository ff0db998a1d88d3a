"""Analysis jobs: persisted in SQLite, so none is lost when the server stops.

A job is ``receiving`` (admitted, its upload arriving; invisible to clients) -> ``queued``
-> ``running`` -> ``done`` | ``failed`` -> ``expired`` (after the retention period: the
record is emptied and answers 410; one more period later it is deleted). Its upload stays
in ``<data_dir>/uploads`` until it ends. A ``receiving`` job holds its place in the
``max_jobs`` limit, taken in one transaction before the body is read, so concurrent posts
can never pass the limit. When the server starts, jobs it left ``running``
(it was killed or crashed mid-analysis) go back to ``queued`` while they have attempts
left, else they fail with that reason; queued jobs simply run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from songmap.api.dask_pool import DaskPool
from songmap.api.errors import ServiceNotReadyError, error_payload
from songmap.api.pool import WorkerPool
from songmap.api.uploads import discard
from songmap.config import AnalysisSettings
from songmap.errors import SongmapError
from songmap.store import ResultStore, SQLiteFile
from songmap.workers.job import Job as WorkerJob
from songmap.workers.job import Task

log = logging.getLogger("songmap.api.jobs")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
RECEIVING, EXPIRED = "receiving", "expired"


@dataclass(frozen=True)
class Job:
    id: str
    state: str
    progress: float
    filename: str
    upload_path: str | None
    audio_hash: str
    settings_key: str
    attempts: int
    error_type: str | None
    error_message: str | None
    error_status: int | None
    error_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None


class JobStore(SQLiteFile):
    """The jobs table. Every state change is one transaction."""

    what = "jobs database"

    schema = """
    CREATE TABLE IF NOT EXISTS jobs (
        id            TEXT PRIMARY KEY,
        state         TEXT NOT NULL,
        progress      REAL NOT NULL DEFAULT 0,
        filename      TEXT NOT NULL,
        upload_path   TEXT,
        audio_hash    TEXT NOT NULL,
        settings_key  TEXT NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT 0,
        error_type    TEXT,
        error_message TEXT,
        error_status  INTEGER,
        error_id      TEXT,
        created_at    REAL NOT NULL,
        started_at    REAL,
        finished_at   REAL
    );
    CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created_at)
    """

    def create(self, *, filename: str, upload_path: str | None, audio_hash: str,
               settings_key: str, state: str = QUEUED, job_id: str | None = None) -> Job:
        job_id = job_id or uuid.uuid4().hex
        now = time.time()
        done = state == DONE
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, state, progress, filename, upload_path, audio_hash,"
                " settings_key, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, state, 1.0 if done else 0.0, filename, upload_path, audio_hash,
                 settings_key, now, now if done else None),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def reserve(self, *, settings_key: str, max_waiting: int) -> Job | None:
        """A ``receiving`` job holding one of ``max_waiting`` places (queued or receiving),
        or ``None`` when every place is taken. Count and insert are one transaction
        (``BEGIN IMMEDIATE``), so this holds across threads and processes."""
        job_id = uuid.uuid4().hex
        with self.transaction() as db:
            waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE state IN (?, ?)",
                                 (QUEUED, RECEIVING)).fetchone()[0]
            if waiting >= max_waiting:
                return None
            db.execute(
                "INSERT INTO jobs (id, state, filename, audio_hash, settings_key, created_at)"
                " VALUES (?, ?, '', '', ?, ?)", (job_id, RECEIVING, settings_key, time.time()))
        return self.get(job_id)

    def admit(self, job_id: str, *, filename: str, upload_path: str | None, audio_hash: str,
              settings_key: str, done: bool) -> Job:
        """A ``receiving`` job whose upload arrived: ``queued`` (or ``done`` when the store
        already has its result)."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, filename = ?, upload_path = ?, audio_hash = ?,"
                " settings_key = ?, progress = ?, created_at = ?, finished_at = ?"
                " WHERE id = ? AND state = ?",
                (DONE if done else QUEUED, filename, upload_path, audio_hash, settings_key,
                 1.0 if done else 0.0, now, now if done else None, job_id, RECEIVING))
        job = self.get(job_id)
        assert job is not None
        return job

    def drop(self, job_id: str) -> None:
        """Forget a ``receiving`` job whose upload failed."""
        with self.transaction() as db:
            db.execute("DELETE FROM jobs WHERE id = ? AND state = ?", (job_id, RECEIVING))

    def expire(self, *, retention_s: float, now: float | None = None) -> tuple[int, list[str]]:
        """Finished jobs older than ``retention_s``: emptied to ``expired`` (their id still
        answers 410), and expired ones older than twice that deleted.

        Returns ``(expired now, upload files still named by them)``.
        """
        cutoff = (time.time() if now is None else now) - retention_s
        with self.transaction() as db:
            leftovers = [r[0] for r in db.execute(
                "SELECT upload_path FROM jobs WHERE state IN (?, ?) AND finished_at < ?"
                " AND upload_path IS NOT NULL", (DONE, FAILED, cutoff)).fetchall()]
            expired = db.execute(
                "UPDATE jobs SET state = ?, filename = '', upload_path = NULL, audio_hash = '',"
                " error_message = NULL WHERE state IN (?, ?) AND finished_at < ?",
                (EXPIRED, DONE, FAILED, cutoff)).rowcount
            db.execute("DELETE FROM jobs WHERE state = ? AND finished_at < ?",
                       (EXPIRED, cutoff - retention_s))
        return expired, leftovers

    def get(self, job_id: str) -> Job | None:
        row = self.connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job(**dict(row))

    def count(self, state: str) -> int:
        return int(self.connect().execute(
            "SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0])

    def claim_next(self) -> Job | None:
        """Mark the oldest queued job running (one more attempt) and return it."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = ? ORDER BY created_at LIMIT 1", (QUEUED,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, started_at = ?, progress = 0"
                " WHERE id = ?", (RUNNING, time.time(), row["id"]),
            )
        return self.get(row["id"])

    def set_progress(self, job_id: str, progress: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET progress = ? WHERE id = ? AND state = ?",
                       (round(min(max(progress, 0.0), 1.0), 4), job_id, RUNNING))

    def finish(self, job_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET state = ?, progress = 1, finished_at = ?, upload_path = NULL"
                       " WHERE id = ?", (DONE, time.time(), job_id))

    def fail(self, job_id: str, *, error_type: str, message: str, status: int,
             error_id: str | None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, upload_path = NULL, error_type = ?,"
                " error_message = ?, error_status = ?, error_id = ? WHERE id = ?",
                (FAILED, time.time(), error_type, message, status, error_id, job_id),
            )

    def recover(self, max_attempts: int) -> tuple[int, int]:
        """After a restart: requeue interrupted jobs with attempts left, fail the others.

        Returns ``(requeued, failed)``.
        """
        with self.transaction() as db:
            # uploads that were arriving when the server stopped: gone with their connection
            db.execute("DELETE FROM jobs WHERE state = ?", (RECEIVING,))
            requeued = db.execute(
                "UPDATE jobs SET state = ?, progress = 0 WHERE state = ? AND attempts < ?",
                (QUEUED, RUNNING, max_attempts),
            ).rowcount
            failed = db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, upload_path = NULL,"
                " error_type = 'AnalysisInterruptedError', error_status = 500,"
                " error_message = 'the server stopped while analysing this file ' || attempts ||"
                " ' times; it was not tried again (it may crash the analysis: report it)'"
                " WHERE state = ?",
                (FAILED, time.time(), RUNNING),
            ).rowcount
        return requeued, failed

    def pending_uploads(self) -> set[str]:
        # (a receiving job's file has no upload_path yet: recover() runs before any arrives)
        """Upload files that queued or running jobs still need."""
        rows = self.connect().execute(
            "SELECT upload_path FROM jobs WHERE state IN (?, ?) AND upload_path IS NOT NULL",
            (QUEUED, RUNNING),
        ).fetchall()
        return {r[0] for r in rows}


def job_overrides(job: Job) -> dict[str, Any]:
    """A job's grid overrides: they live in its settings key (AnalysisSettings JSON), so a
    queued job keeps them across a restart."""
    try:
        settings = AnalysisSettings.model_validate_json(job.settings_key)
    except ValueError:  # a key written by another version: analyse with no overrides
        return {}
    return settings.overrides()


class JobRunner:
    """Feeds queued jobs to the worker pool, at most one per worker at a time."""

    def __init__(self, *, jobs: JobStore, store: ResultStore, pool: WorkerPool | DaskPool,
                 settings_key: str, task: Task, uploads_dir: Path,
                 max_attempts: int) -> None:
        self.jobs, self.store, self.pool = jobs, store, pool
        self.settings_key = settings_key
        self.task = task
        self.uploads_dir = uploads_dir
        self.max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def recover(self) -> None:
        """Requeue or fail what a previous server left running; delete orphaned uploads."""
        requeued, failed = self.jobs.recover(self.max_attempts)
        if requeued or failed:
            log.warning("jobs left running by the last server: %d requeued, %d failed",
                        requeued, failed)
        keep = self.jobs.pending_uploads()
        for path in self.uploads_dir.glob("*/*"):
            if str(path) not in keep:
                discard(path)
        for folder in self.uploads_dir.glob("*"):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def start(self) -> None:
        self._loop_task = asyncio.ensure_future(self._loop())

    def start_expiry(self, retention_s: float | None) -> None:
        """Expire finished jobs every so often (none when ``retention_s`` is ``None``)."""
        if retention_s is not None:
            self._sweep_task = asyncio.ensure_future(self._sweep(retention_s))

    async def _sweep(self, retention_s: float) -> None:
        every = min(max(retention_s / 4, 0.2), 300.0)
        while True:
            try:
                expired, leftovers = await asyncio.to_thread(self.jobs.expire,
                                                             retention_s=retention_s)
                for path in leftovers:
                    discard(path)
                if expired:
                    log.info("%d finished jobs expired (retention %g s)", expired, retention_s)
            except SongmapError as exc:  # a locked or damaged database: try again later
                log.warning("expiring old jobs failed: %s", exc)
            await asyncio.sleep(every)

    def notify(self) -> None:
        """A job was queued."""
        self._wake.set()

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, self._sweep_task, *self._running)
                 if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self) -> None:
        slots = asyncio.Semaphore(self.pool.size)
        while True:
            await slots.acquire()
            job = await asyncio.to_thread(self.jobs.claim_next)
            if job is None:
                slots.release()
                try:  # the poll also picks up jobs queued by another process
                    await asyncio.wait_for(self._wake.wait(), timeout=2.0)
                except (TimeoutError, asyncio.TimeoutError):  # one class from Python 3.11 on
                    pass
                self._wake.clear()
                continue
            task = asyncio.ensure_future(self._run(job))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _run(self, job: Job) -> None:
        log.info("job %s (%s): attempt %d", job.id, job.filename, job.attempts)
        try:
            cached = await asyncio.to_thread(self.store.contains, job.audio_hash, job.settings_key)
            if not cached:
                if job.upload_path is None or not Path(job.upload_path).exists():
                    raise SongmapError("the uploaded file of this job is missing on the server; "
                                       "upload it again")

                def progress(fraction: float) -> None:  # called in a pool thread
                    self.jobs.set_progress(job.id, fraction)

                work = WorkerJob(job.upload_path, job.filename, job.audio_hash,
                                 overrides=job_overrides(job))
                text = await self.pool.run(self.task, work, progress=progress)
                await asyncio.to_thread(self.store.put, job.audio_hash, job.settings_key, text)
            await asyncio.to_thread(self.jobs.finish, job.id)
        except (asyncio.CancelledError, ServiceNotReadyError):
            # The server is stopping: the job stays "running" and the next start retries it.
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            status, body, _ = error_payload(exc)
            err = body["error"]
            await asyncio.to_thread(self.jobs.fail, job.id, error_type=err["type"],
                                    message=err["message"], status=status, error_id=err["id"])
        if job.upload_path:
            discard(job.upload_path)
