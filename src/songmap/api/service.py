"""The service's state and its two verbs: analyse an upload now, or queue it as a job.

Built in the app's lifespan and kept on ``app.state.service``; routes stay thin.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from typing import Any

from songmap.api.dask_pool import DaskPool
from songmap.api.errors import JobExpiredError, JobNotFoundError, QueueFullError
from songmap.api.jobs import EXPIRED, RECEIVING, Job, JobRunner, JobStore
from songmap.api.overrides import grid_overrides
from songmap.api.pool import WorkerPool
from songmap.api.settings import ServeSettings
from songmap.api.uploads import IncomingUpload
from songmap.errors import NotAudioError
from songmap.schema import AnalysisResult
from songmap.store import ResultStore
from songmap.workers.job import Job as WorkerJob
from songmap.workers.job import Task, analyze

log = logging.getLogger("songmap.api")


def check_databases(settings: ServeSettings) -> None:
    """Open (and close) the result store and the jobs database: ``StoreCorruptError`` if one
    is damaged, so ``songmap serve`` refuses to start with that message instead of a trace."""
    ResultStore(settings.result_store_path).close()
    JobStore(settings.jobs_path).close()


class Service:
    def __init__(self, settings: ServeSettings, *, task: Task | None = None) -> None:
        self.settings = settings
        self.analysis_settings = settings.analysis_settings()
        self.settings_key = self.analysis_settings.cache_key()
        self.task = task or analyze
        self.store: ResultStore | None = None
        self.jobs: JobStore | None = None
        self.pool: WorkerPool | DaskPool
        if settings.dask_scheduler:
            self.pool = DaskPool(
                scheduler=settings.dask_scheduler, settings=self.analysis_settings,
                max_queue=settings.max_queue, timeout_s=settings.analysis_timeout_s,
                retry_after_s=settings.retry_after_s,
                connect_timeout_s=settings.dask_connect_timeout_s,
                memory_mb=settings.worker_memory_mb,
            )
        else:
            self.pool = WorkerPool(
                size=settings.workers, spec=settings.worker_spec(),
                max_queue=settings.max_queue, timeout_s=settings.analysis_timeout_s,
                retry_after_s=settings.retry_after_s,
            )
        self.runner: JobRunner | None = None
        # Identical uploads arriving together are analysed once.
        self._in_flight: dict[str, asyncio.Future[str]] = {}

    async def start(self) -> None:
        s = self.settings
        s.uploads_dir.mkdir(parents=True, exist_ok=True)
        # Scratch files belong to requests; any still here are from a server that was killed.
        shutil.rmtree(s.scratch_dir, ignore_errors=True)
        s.scratch_dir.mkdir(parents=True, exist_ok=True)
        self.store = ResultStore(s.result_store_path)
        self.jobs = JobStore(s.jobs_path)
        await self.pool.start()
        self.runner = JobRunner(
            jobs=self.jobs, store=self.store, pool=self.pool, settings_key=self.settings_key,
            task=self.task, uploads_dir=s.uploads_dir, max_attempts=s.job_attempts,
        )
        await asyncio.to_thread(self.runner.recover)
        if s.process_jobs:
            self.runner.start()
        self.runner.start_expiry(s.job_retention)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
        await self.pool.close()
        for db in (self.store, self.jobs):
            if db is not None:
                db.close()

    def settings_key_for(self, overrides: dict[str, Any] | None) -> str:
        """The store key of this server's settings with a request's grid overrides."""
        if not overrides:
            return self.settings_key
        changed = {**self.analysis_settings.model_dump(), **overrides}
        return type(self.analysis_settings).model_validate(changed).cache_key()

    # -- analyse now ---------------------------------------------------------------------
    async def analyze_upload(self, incoming: IncomingUpload, query: dict[str, str] | None = None
                             ) -> tuple[AnalysisResult, str]:
        """Analyse an upload, or find it in the store. ``query`` holds the grid overrides
        given in the query (``bpm``, ``time_signature``, ``first_downbeat``); the upload's
        form fields may add them.

        A place in the line is taken *before* the body is read (503 at once when the line
        is full, with no byte of the upload read or stored).

        Returns ``(result, source)``; source is ``"hit"`` (from the store), ``"shared"``
        (the same audio was being analysed for another request) or ``"miss"``.
        """
        assert self.store is not None
        async with self.pool.reserve():
            saved, fields = await incoming.save(self.settings.scratch_dir)
            try:
                overrides = grid_overrides(query or {}, fields)
                settings_key = self.settings_key_for(overrides)
                if saved.size == 0:  # the one check cheap enough to skip the worker line for
                    raise NotAudioError(f"{saved.filename}: the file is empty (0 bytes)")
                text = await asyncio.to_thread(self.store.get, saved.audio_hash, settings_key)
                source = "hit"
                if text is None:
                    text, source = await self._analyze_once(
                        saved.audio_hash, str(saved.path), saved.filename, settings_key,
                        overrides)
            finally:
                saved.discard()
        return _named(AnalysisResult.model_validate_json(text), saved.filename), source

    async def _analyze_once(self, audio_hash: str, path: str, filename: str,
                            settings_key: str, overrides: dict[str, Any]) -> tuple[str, str]:
        flight = f"{audio_hash}:{settings_key}"
        running = self._in_flight.get(flight)
        if running is not None:
            return await asyncio.shield(running), "shared"
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._in_flight[flight] = future
        try:
            job = WorkerJob(path, filename, audio_hash, overrides=overrides)
            text = await self.pool.run(self.task, job)
            assert self.store is not None
            await asyncio.to_thread(self.store.put, audio_hash, settings_key, text)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                future.set_exception(exc)
                future.exception()  # no warning when nobody else was waiting
            else:
                future.cancel()
            raise
        finally:
            self._in_flight.pop(flight, None)
        future.set_result(text)
        return text, "miss"

    # -- jobs ----------------------------------------------------------------------------
    async def submit_job(self, incoming: IncomingUpload, query: dict[str, str] | None = None
                         ) -> Job:
        """Queue an upload (overrides as for ``analyze_upload``; the job keeps them in its
        settings key, so they survive a restart).

        The job's place among ``max_jobs`` is taken atomically before the body is read.
        """
        assert self.jobs is not None
        assert self.store is not None
        assert self.runner is not None
        s = self.settings
        reserved = await asyncio.to_thread(self.jobs.reserve, settings_key=self.settings_key,
                                           max_waiting=s.max_jobs)
        if reserved is None:
            raise QueueFullError(
                f"{s.max_jobs} jobs are already waiting; retry in {s.retry_after_s} s",
                s.retry_after_s,
            )
        try:
            saved, fields = await incoming.save(s.uploads_dir)
        except BaseException:
            await asyncio.to_thread(self.jobs.drop, reserved.id)
            raise
        try:
            settings_key = self.settings_key_for(grid_overrides(query or {}, fields))
            done = await asyncio.to_thread(self.store.contains, saved.audio_hash, settings_key)
            if done:
                saved.discard()
            job = await asyncio.to_thread(
                self.jobs.admit, reserved.id, filename=saved.filename,
                upload_path=None if done else str(saved.path), audio_hash=saved.audio_hash,
                settings_key=settings_key, done=done,
            )
        except BaseException:
            saved.discard()
            await asyncio.to_thread(self.jobs.drop, reserved.id)
            raise
        self.runner.notify()
        return job

    async def get_job(self, job_id: str) -> Job:
        assert self.jobs is not None
        job = await asyncio.to_thread(self.jobs.get, job_id)
        if job is None or job.state == RECEIVING:
            raise JobNotFoundError(f"no job has the id {job_id!r}")
        retention = self.settings.job_retention
        if job.state == EXPIRED or (retention is not None and job.finished_at is not None
                                    and time.time() - job.finished_at > retention):
            kept = f"more than {retention:g} s ago " if retention is not None else ""
            raise JobExpiredError(
                f"job {job_id} finished {kept}and was removed (SONGMAP_JOB_RETENTION); "
                "upload the file again")
        return job

    async def job_result(self, job: Job) -> AnalysisResult | None:
        assert self.store is not None
        text = await asyncio.to_thread(self.store.get, job.audio_hash, job.settings_key)
        return None if text is None else _named(AnalysisResult.model_validate_json(text),
                                                job.filename)


def _named(result: AnalysisResult, filename: str) -> AnalysisResult:
    """The stored result under the name this client gave the file."""
    if result.filename == filename:
        return result
    return result.model_copy(update={"filename": filename})
