"""The worker pool's interface over a Dask cluster (``SONGMAP_DASK_SCHEDULER``).

``Service`` uses this instead of ``WorkerPool`` when a scheduler is set: the same
``reserve()`` / ``run()`` / readiness, so the synchronous routes and the jobs behave as
with local workers. Differences, all on purpose:

- The upload's bytes go with the task (the cluster's machines need not see this disk);
  the result comes back here, and only this server writes its SQLite store.
- Models are loaded once per Dask worker process by ``SongmapWorkerPlugin`` (songmap.workers).
- A Dask worker that dies mid-task is Dask's business: the scheduler reruns the task on
  another worker (up to ``distributed.scheduler.allowed-failures`` deaths, then
  ``KilledWorker``, answered here as ``WorkerCrashedError``, a 500).
- Past ``analysis_timeout_s`` the task is cancelled and the answer is a 504, but Dask
  cannot stop a task that has started: its worker thread finishes it and drops the result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

from songmap.api.errors import ServiceNotReadyError, WorkerCrashedError
from songmap.api.pool import AdmissionLine
from songmap.config import AnalysisSettings
from songmap.errors import AnalysisTimeoutError
from songmap.workers.dask import (
    KILLED_WORKER_MESSAGE,
    PLUGIN_NAME,
    PROGRESS_TOPIC,
    SongmapWorkerPlugin,
    cluster_threads,
    connect,
    run_remote,
    task_key,
)
from songmap.workers.job import Job, Task, unpack

log = logging.getLogger("songmap.api.dask")


class DaskPool(AdmissionLine):
    """Runs the service's tasks on a Dask cluster; the interface of ``WorkerPool``."""

    _busy = "cluster workers"

    def __init__(self, *, scheduler: str, settings: AnalysisSettings, max_queue: int,
                 timeout_s: float, retry_after_s: int = 5, connect_timeout_s: float = 20.0,
                 memory_mb: float | None = None) -> None:
        self.scheduler = scheduler
        self.settings = settings
        #: The cap per analysis on the cluster's workers (MB; 0 none; None: each worker's
        #: own --memory-limit / threads, see songmap.workers.dask.analysis_cap_mb).
        self.memory_mb = memory_mb
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.connect_timeout_s = connect_timeout_s
        #: Analyses sent to the cluster at once: its worker threads when we connected.
        self.size = 1
        self.client: Any = None
        self.start_error: BaseException | None = None
        self._in_flight = 0
        self._closing = False
        self._futures: dict[str, Any] = {}
        self._progress: dict[str, Callable[[float], None]] = {}

    # -- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and register the plugin (every worker loads its models); on failure the
        reason is kept for ``/readyz`` and every analysis answers 503."""
        try:
            self.client = await asyncio.to_thread(self._connect)
        except Exception as exc:  # noqa: BLE001 - kept for readyz and the next request
            log.error("Dask scheduler %s: %s", self.scheduler, exc)
            self.start_error = exc
            return
        log.info("analyses run on the Dask cluster at %s (%d worker threads)",
                 self.scheduler, self.size)

    def _connect(self) -> Any:
        client = connect(self.scheduler, timeout_s=self.connect_timeout_s)
        try:
            client.register_plugin(SongmapWorkerPlugin(self.settings, self.memory_mb),
                                   name=PLUGIN_NAME)
            client.subscribe_topic(PROGRESS_TOPIC, self._on_progress)
            self.size = cluster_threads(client)
        except BaseException:
            client.close()
            raise
        return client

    async def wait_ready(self) -> None:
        while not self.ready:
            if self.start_error is not None:
                raise self.start_error
            await asyncio.sleep(0.05)

    @property
    def workers_ready(self) -> int:
        """Dask workers known to the scheduler (the client's view, refreshed every few s)."""
        if self.client is None or self._closing:
            return 0
        try:
            return len(self.client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - a lost scheduler is "not ready", not a crash
            return 0

    @property
    def ready(self) -> bool:
        return self.start_error is None and self.workers_ready > 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def close(self) -> None:
        self._closing = True
        client, self.client = self.client, None
        if client is None:
            return
        futures = list(self._futures.values())
        await asyncio.to_thread(_close_client, client, futures)

    # -- work ------------------------------------------------------------------------------
    async def run(self, task: Task, job: Job,
                  progress: Callable[[float], None] | None = None) -> Any:
        """Run ``task(ctx, job)`` on a Dask worker (the file's bytes go with it); its value."""
        if self.client is None or self._closing:
            reason = f": {self.start_error}" if self.start_error is not None else ""
            raise ServiceNotReadyError(f"the Dask cluster is not connected{reason}")
        job = await asyncio.to_thread(job.with_data)
        key = task_key(job, "serve")
        if progress is not None:
            self._progress[key] = progress
        try:
            answer = await asyncio.to_thread(self._call, key, task, job)
        except asyncio.CancelledError:
            # The request went away (or the server is stopping): free the cluster.
            future = self._futures.get(key)
            if future is not None and self.client is not None:
                asyncio.get_running_loop().run_in_executor(None, future.cancel)
            raise
        finally:
            self._progress.pop(key, None)
        return unpack(answer, f"Dask task {key}", log)

    def _call(self, key: str, task: Task, job: Job) -> tuple[Any, ...]:
        """Submit and wait (blocking; runs in a thread); the task's answer."""
        from distributed import KilledWorker

        # The bytes are a plain argument, not scattered: they live on the scheduler with
        # the task, so a rerun after a worker's death still has them.
        future = self.client.submit(run_remote, task, job, self.settings, key, key=key,
                                    pure=False)
        self._futures[key] = future
        try:
            answer, _, _ = future.result(timeout=self.timeout_s)
            return answer
        except (TimeoutError, asyncio.TimeoutError):  # one class from Python 3.11 on
            future.cancel()
            raise AnalysisTimeoutError(
                f"the analysis took longer than {self.timeout_s:g} s and was stopped; "
                "try a shorter file"
            ) from None
        except concurrent.futures.CancelledError:
            # Only the server cancels: it is stopping (the job stays for the next start).
            raise ServiceNotReadyError("the analysis was cancelled: the server is stopping") \
                from None
        except KilledWorker:
            raise WorkerCrashedError(KILLED_WORKER_MESSAGE) from None
        finally:
            self._futures.pop(key, None)
            future.release()

    def _on_progress(self, event: tuple[float, Any]) -> None:
        # Called on the Dask client's thread.
        _, (key, fraction) = event
        report = self._progress.get(key)
        if report is not None:
            try:
                report(fraction)
            except Exception:  # progress is best effort
                log.exception("progress report for %s failed", key)


def _close_client(client: Any, futures: list[Any]) -> None:
    if futures:
        try:
            client.cancel(futures)
        except Exception as exc:  # noqa: BLE001 - the cluster may be gone already
            log.info("could not cancel %d analyses on the cluster: %s", len(futures), exc)
    client.close()
