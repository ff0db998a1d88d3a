"""The same jobs on a Dask ``distributed`` cluster: the plugin, the remote call, the runner.

Start a cluster with ``dask scheduler`` and ``dask worker tcp://HOST:8786`` (any number of
machines, each with songmap installed). Every worker process loads the models once,
through ``SongmapWorkerPlugin`` (registered by the client; workers that join or restart
later get it too). A task is ``run_remote(task, job, settings, key)``: the task and job of
a local worker, answered the same way, so the batch and the service read a Dask answer
like a local one. Workers open files by path unless the job carries its bytes.

Memory: a worker under a nanny (``dask worker``'s default, a ``LocalCluster`` of processes)
caps its own address space once its models are loaded, as a local worker does
(``songmap.workers.memory``): ``memory_mb`` per analysis thread (default: the worker's
``--memory-limit`` / threads, at least ``FLOOR_MB``), so an analysis past it fails with
``MemoryLimitError`` instead of the OOM killer ending the worker. RLIMIT_AS is per
process: with several threads a worker's analyses share one cap (``--nthreads 1`` makes
it exactly per analysis). A worker without a nanny may live in another program's process
(``LocalCluster(processes=False)``, the client's own): it is left uncapped.

A worker that dies mid-task is Dask's business: the scheduler reruns its tasks elsewhere;
a task whose workers keep dying (``distributed.scheduler.allowed-failures``) ends as
``KilledWorker``. Needs the ``batch`` extra: ``pip install "songmap[batch]"``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Any

from songmap.config import AnalysisSettings
from songmap.errors import InvalidParameterError
from songmap.workers.job import (
    Answer,
    Job,
    Outcome,
    Task,
    analyze,
    error_answer,
    failed,
    outcome,
    worker_id,
)
from songmap.workers.memory import (
    FLOOR_MB,
    address_space_mb,
    can_cap,
    default_memory_mb,
    load_before_cap,
)
from songmap.workers.process import analyzer_for

log = logging.getLogger("songmap.workers")

try:
    from distributed import WorkerPlugin as _PluginBase
except ImportError:  # connect() raises a clear error when it is actually used
    _PluginBase = object  # type: ignore[assignment,misc]

PLUGIN_NAME = "songmap-analyzer"

#: Dask event topic on which tasks report progress: ``[task key, fraction]``.
PROGRESS_TOPIC = "songmap-progress"

#: What a file whose every worker died is told.
KILLED_WORKER_MESSAGE = ("every worker that tried this file died (Dask's KilledWorker); "
                         "is the file huge or malformed?")


#: The memory cap of each analysis in this worker process (MB), once the plugin set it.
_cap_mb: float | None = None
#: RLIMIT_AS's soft limit before the plugin capped this process (restored by teardown).
_soft_before: int | None = None


class SongmapWorkerPlugin(_PluginBase):  # type: ignore[misc,valid-type]
    """Loads an Analyzer (and its networks) once in every worker process, then caps the
    process's memory (``memory_mb`` per analysis thread; None: sized from the worker's
    memory limit; 0: no cap)."""

    name = PLUGIN_NAME

    def __init__(self, settings: AnalysisSettings, memory_mb: float | None = None) -> None:
        self.settings = settings
        self.memory_mb = memory_mb

    async def setup(self, worker: Any) -> None:
        # Loading (and one warm-up analysis, so that the cap is for the analyses: see
        # ``load_before_cap``) takes a second or two; off the event loop so heartbeats
        # keep flowing.
        await asyncio.get_running_loop().run_in_executor(None, _load, self.settings)
        cap_worker(worker, self.memory_mb)

    def teardown(self, worker: Any) -> None:
        uncap_worker()


def _load(settings: AnalysisSettings) -> None:
    load_before_cap(analyzer_for(settings))


def analysis_cap_mb(memory_mb: float | None, *, memory_limit_bytes: float | None,
                    nthreads: int) -> float | None:
    """What one analysis on a Dask worker may use (MB): ``memory_mb`` when given (0: no
    cap), else the worker's memory limit (bytes; Dask's ``--memory-limit``, by default its
    share of the machine) shared by its ``nthreads`` analyses, at least ``FLOOR_MB``; with
    no limit, the machine's RAM / ``nthreads`` (``default_memory_mb``)."""
    if memory_mb is not None:
        return memory_mb or None
    if memory_limit_bytes:
        return max(FLOOR_MB, memory_limit_bytes / 2**20 / max(nthreads, 1))
    return default_memory_mb(nthreads)


def cap_worker(worker: Any, memory_mb: float | None) -> float | None:
    """Cap this Dask worker process (see the module's description); the cap per analysis
    in MB, or None when it is left uncapped."""
    global _cap_mb, _soft_before
    if not can_cap() or getattr(worker, "nanny", None) is None:
        return None
    nthreads = int(getattr(worker, "state", worker).nthreads or 1)
    limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    per_analysis = analysis_cap_mb(memory_mb, memory_limit_bytes=limit, nthreads=nthreads)
    if per_analysis is None:
        uncap_worker()
        return None
    import resource

    from songmap.limits import BLAS_CALLERS_PER_ANALYSIS, limit_memory, map_blas_buffers

    if _soft_before is None:
        _soft_before = resource.getrlimit(resource.RLIMIT_AS)[0]
    map_blas_buffers(callers=BLAS_CALLERS_PER_ANALYSIS * nthreads)  # (OpenBLAS: see there)
    limit_memory(address_space_mb() + per_analysis * nthreads)
    _cap_mb = per_analysis
    log.info("Dask worker %s: memory capped at %.0f MB per analysis (%d threads)",
             getattr(worker, "address", "?"), per_analysis, nthreads)
    return per_analysis


def uncap_worker() -> None:
    """Undo ``cap_worker`` in this process (the plugin is removed or replaced)."""
    global _cap_mb, _soft_before
    if _soft_before is not None:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (_soft_before, hard))
    _cap_mb = _soft_before = None


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
    except ValueError as exc:  # an address Dask cannot parse: an unknown scheme, no host
        raise InvalidParameterError(
            f"--scheduler {scheduler}: not a Dask scheduler address ({exc}); write it like "
            "tls://HOST:8786 or tcp://HOST:8786"
        ) from None


def task_key(job: Job, kind: str) -> str:
    return f"songmap-{kind}-{job.audio_hash[:16] or 'file'}-{uuid.uuid4().hex[:8]}"


class RemoteContext:
    """What a task gets on a Dask worker in place of a local worker's context: this
    process's Analyzer, and progress sent back to the client as a Dask event."""

    def __init__(self, settings: AnalysisSettings, key: str) -> None:
        self.settings = settings
        self.key = key

    @property
    def analyzer(self) -> Any:
        """This process's Analyzer (loaded by the plugin; here on first use otherwise)."""
        return analyzer_for(self.settings)

    def progress(self, fraction: float) -> None:
        from distributed import get_worker

        try:
            get_worker().log_event(PROGRESS_TOPIC, [self.key, float(fraction)])
        except (ValueError, RuntimeError):  # not in a worker (called directly): no one to tell
            pass


def run_remote(task: Task, job: Job, settings: AnalysisSettings,
               key: str) -> tuple[Answer, str, float]:
    """Run ``task(ctx, job)`` on a Dask worker: ``(answer, worker id, wall seconds)``.

    A failure is an answer, not a task error Dask would log; songmap's exception types
    come back intact. Only the death of the worker process escapes, and Dask reruns the
    task elsewhere."""
    t0 = time.monotonic()
    try:
        answer: Answer = ("ok", task(RemoteContext(settings, key), job))
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the client
        answer = error_answer(exc, _cap_mb)
    return answer, worker_id(), time.monotonic() - t0


class DaskRunner:
    """Runs ``Job``s on a Dask cluster; the interface of ``LocalRunner``.

    ``upload``: send each file's bytes (the workers cannot see the paths). ``memory_mb``:
    each analysis's memory cap on the workers (None: each worker's share; 0: none)."""

    def __init__(self, settings: AnalysisSettings, scheduler: str | Any, *,
                 upload: bool = False, in_flight: int | None = None,
                 memory_mb: float | None = None) -> None:
        from distributed import as_completed

        self.settings = settings
        self.upload = upload
        self._own_client = isinstance(scheduler, str)
        self.client = connect(scheduler)
        self.client.register_plugin(SongmapWorkerPlugin(settings, memory_mb), name=PLUGIN_NAME)
        self._in_flight = in_flight
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Any] = {}
        self._ac = as_completed()

    @property
    def workers(self) -> int:
        return cluster_threads(self.client)

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
        if self.upload:
            job = job.with_data()
        # Plain arguments, not scattered data: the task's bytes live on the scheduler with
        # the task, so a rerun after a worker's death still has them.
        key = task_key(job, "analyze")
        future = self.client.submit(run_remote, analyze, job, self.settings, key, key=key,
                                    pure=False)
        self._jobs[future.key] = job
        self._futures[future.key] = future
        self._ac.add(future)

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        if not self._jobs:
            return []
        out: list[Outcome] = []
        for future in self._next_batch(timeout):
            job = self._jobs.pop(future.key)
            self._futures.pop(future.key, None)
            if future.status == "finished":
                answer, worker, wall = future.result()
                out.append(outcome(job, answer, wall_seconds=wall, worker=worker))
            else:
                exc = future.exception()
                if type(exc).__name__ == "KilledWorker":
                    out.append(failed(job, "WorkerCrashed", KILLED_WORKER_MESSAGE))
                else:
                    out.append(failed(job, type(exc).__name__,
                                      f"the task failed on the cluster: {exc}"))
            future.release()
        return out

    def _next_batch(self, timeout: float | None) -> list[Any]:
        if timeout is None:
            return list(self._ac.next_batch(block=True))
        # as_completed has no timed wait; poll it so the progress display stays alive.
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

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)


def cluster_threads(client: Any) -> int:
    """Analyses the cluster runs at once: the sum of its workers' threads (at least 1)."""
    import inspect

    takes_n = "n_workers" in inspect.signature(client.scheduler_info).parameters
    info = client.scheduler_info(n_workers=-1) if takes_n else client.scheduler_info()
    return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
