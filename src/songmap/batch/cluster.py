"""The Dask runner: the same jobs on a ``distributed`` cluster.

Start a cluster with ``dask scheduler`` and ``dask worker tcp://HOST:8786`` (any number of
machines, each with songmap installed), then ``songmap batch ... --scheduler
tcp://HOST:8786``. Every worker process loads the models once, through
``SongmapWorkerPlugin`` (registered by the runner; workers that join or restart later get
it too). Workers open the files by path, so the paths must be valid on them (a shared
folder), unless ``upload`` is set: then the client reads each file and sends its bytes.

Results come back to the client, which alone writes the store and the outputs, so the
store stays a local SQLite file. A worker that dies mid-task is Dask's business: the
scheduler reruns its tasks elsewhere; a task whose workers keep dying
(``distributed.scheduler.allowed-failures``) ends as ``KilledWorker`` and is recorded as a
failed file.

Needs the ``batch`` extra: ``pip install "songmap[batch]"``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import traceback
import uuid
from typing import Any

from songmap.batch.work import Job, Outcome, analyze_job, get_analyzer
from songmap.errors import InvalidParameterError

try:
    from distributed import WorkerPlugin as _PluginBase
except ImportError:  # the runner raises a clear error when it is actually used
    _PluginBase = object  # type: ignore[assignment,misc]

PLUGIN_NAME = "songmap-analyzer"


class SongmapWorkerPlugin(_PluginBase):  # type: ignore[misc,valid-type]
    """Loads an Analyzer (and its networks) once in every worker process."""

    name = PLUGIN_NAME

    def __init__(self, settings_json: str) -> None:
        self.settings_json = settings_json

    async def setup(self, worker: Any) -> None:
        # Loading takes a second or two; off the event loop so heartbeats keep flowing.
        await asyncio.get_running_loop().run_in_executor(None, get_analyzer, self.settings_json)


def connect(scheduler: str | Any, *, timeout_s: float = 20.0) -> Any:
    """A ``distributed.Client`` for an address (``tcp://host:8786``) or an existing client."""
    try:
        from distributed import Client
    except ImportError:
        raise InvalidParameterError(
            "--scheduler needs Dask distributed, which is not installed; "
            'install it with: pip install "songmap[batch]"'
        ) from None
    if not isinstance(scheduler, str):
        return scheduler
    try:
        return Client(scheduler, timeout=f"{timeout_s:g}s")
    except (OSError, TimeoutError) as exc:
        raise InvalidParameterError(
            f"could not reach the Dask scheduler at {scheduler} ({exc}); is `dask scheduler` "
            "running there and the port open?"
        ) from None


class DaskRunner:
    """Runs ``Job``s on a Dask cluster; the same interface as ``LocalRunner``."""

    def __init__(self, settings_json: str, scheduler: str | Any, *, upload: bool = False,
                 in_flight: int | None = None) -> None:
        from distributed import as_completed

        self.settings_json = settings_json
        self.upload = upload
        self._own_client = isinstance(scheduler, str)
        self.client = connect(scheduler)
        self.client.register_plugin(SongmapWorkerPlugin(settings_json), name=PLUGIN_NAME)
        self._in_flight = in_flight
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Any] = {}
        self._ac = as_completed()

    @property
    def workers(self) -> int:
        info = self.client.scheduler_info(n_workers=-1) if _takes_n_workers(self.client) \
            else self.client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def free_slots(self) -> int:
        # Enough queued on the scheduler to keep every worker thread busy, and no more:
        # uploads sit in the scheduler's memory until they run.
        limit = self._in_flight or 2 * self.workers
        return limit - len(self._jobs)

    def pending(self) -> int:
        return len(self._jobs)

    def worker_pids(self) -> dict[str, int]:
        return self.client.run(os.getpid)

    def submit(self, job: Job) -> None:
        if self.upload and job.data is None:
            with open(job.path, "rb") as f:
                job = Job(job.path, job.name, job.audio_hash, f.read())
        key = f"songmap-analyze-{job.audio_hash[:16]}-{uuid.uuid4().hex[:8]}"
        # Plain arguments, not scattered data: the task's bytes live on the scheduler with
        # the task, so a rerun after a worker's death still has them.
        future = self.client.submit(analyze_job, job, self.settings_json, key=key, pure=False)
        self._jobs[future.key] = job
        self._futures[future.key] = future
        self._ac.add(future)

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        if not self._jobs:
            return []
        futures = self._next_batch(timeout)
        out: list[Outcome] = []
        for future in futures:
            job = self._jobs.pop(future.key)
            self._futures.pop(future.key, None)
            if future.status == "finished":
                out.append(future.result())
            else:
                exc = future.exception()
                name = type(exc).__name__
                if name == "KilledWorker":
                    message = ("every worker that tried this file died (Dask's KilledWorker); "
                               "is the file huge or malformed?")
                else:
                    message = f"the task failed on the cluster: {exc}"
                out.append(Outcome(path=job.path, audio_hash=job.audio_hash, ok=False,
                                   error_type="WorkerCrashed" if name == "KilledWorker" else name,
                                   error=message))
            future.release()
        return out

    def _next_batch(self, timeout: float | None) -> list[Any]:
        if timeout is None:
            return list(self._ac.next_batch(block=True))
        # as_completed has no timed wait; poll it so the progress display stays alive.
        import time

        deadline = time.monotonic() + timeout
        while True:
            batch = list(self._ac.next_batch(block=False))
            if batch or time.monotonic() >= deadline:
                return batch
            time.sleep(0.05)

    def close(self, *, kill: bool = False) -> None:
        if kill and self._futures:
            self.client.cancel(list(self._futures.values()))
        self._jobs.clear()
        self._futures.clear()
        if self._own_client:
            self.client.close()

    def __enter__(self) -> "DaskRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)


def _takes_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


# -- the service's analyses on the cluster (``songmap serve`` with SONGMAP_DASK_SCHEDULER) ---

#: Dask event topic on which service tasks report progress: ``[task key, fraction]``.
PROGRESS_TOPIC = "songmap-progress"


class ClusterTaskContext:
    """What a service task (``songmap.api.worker.analyze_file``) gets on a Dask worker in
    place of the pool's ``WorkerContext``: this process's Analyzer, and progress sent back to
    the server as a Dask event."""

    def __init__(self, analyzer: Any, key: str) -> None:
        self.analyzer = analyzer
        self.key = key

    def progress(self, fraction: float) -> None:
        from distributed import get_worker

        try:
            get_worker().log_event(PROGRESS_TOPIC, [self.key, float(fraction)])
        except (ValueError, RuntimeError):  # not in a worker (called directly): no one to tell
            pass


def run_service_task(task: Any, data: bytes, basename: str, filename: str,
                     settings_json: str, key: str, *extra: Any) -> tuple[Any, ...]:
    """Run ``task(ctx, path, filename, *extra)`` on a worker, on a private copy of the upload.

    The upload travels as bytes (workers need not see the server's disk). Returns
    ``("ok", value)`` or ``("error", exception, traceback_text)``, the answers of the
    service's own worker processes: songmap's exception types come back intact so the
    server maps them to the same HTTP statuses, and a failure is an answer, not a task
    error Dask would log. Only the death of the worker process escapes, and Dask reruns the
    task elsewhere.
    """
    from songmap.api.worker import picklable_error

    folder = tempfile.mkdtemp(prefix="songmap-serve-")
    try:
        # The server's (sanitised) name, so decoder messages name the file the user sent.
        path = os.path.join(folder, os.path.basename(basename) or "upload")
        with open(path, "wb") as f:
            f.write(data)
        ctx = ClusterTaskContext(get_analyzer(settings_json), key)
        return ("ok", task(ctx, path, filename, *extra))
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the server
        return ("error", picklable_error(exc), traceback.format_exc())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
