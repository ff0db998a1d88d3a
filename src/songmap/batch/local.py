"""The local runner: N worker processes on this machine, each with its models loaded once.

Each worker is a *slot*: its own process and pipe, one file at a time. Not
``concurrent.futures.ProcessPoolExecutor``, because one dead worker breaks that whole pool
and it cannot tell which file killed it. Here a slot whose process dies is restarted alone;
its file is tried again once (the death may have been someone else's doing: the OOM killer,
a stray ``kill``) and recorded as failed if it kills a worker twice. A file that runs past
``timeout_s`` has its worker killed and is recorded as timed out.

Single-threaded: the parent waits on every busy slot's pipe and process sentinel at once.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any

from songmap.batch.work import Job, Outcome, analyze_job, init_worker

log = logging.getLogger("songmap.batch")


def _serve(conn: Connection, settings_json: str) -> None:
    """A worker's life: load the models, then analyse whatever arrives until ``None``."""
    init_worker(settings_json)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if job is None:
            return
        conn.send(analyze_job(job, settings_json))


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: Any = None
        self.conn: Connection | None = None
        self.job: Job | None = None
        self.started = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def start(self, settings_json: str) -> None:
        ctx = mp.get_context("spawn")  # a clean process: onnxruntime's threads do not survive fork
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, settings_json), daemon=True,
                           name=f"songmap-batch-{self.index}")
        proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        log.debug("batch worker %d started (pid %s)", self.index, proc.pid)

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None


class LocalRunner:
    """Runs ``Job``s on ``workers`` local processes. Not thread-safe; one driver loop."""

    def __init__(self, settings_json: str, *, workers: int, timeout_s: float | None = None,
                 max_attempts: int = 2) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.settings_json = settings_json
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._slots = [_Slot(i) for i in range(workers)]
        self._queue: deque[Job] = deque()
        self._attempts: dict[str, int] = {}
        self._ready: list[Outcome] = []

    @property
    def workers(self) -> int:
        return len(self._slots)

    def free_slots(self) -> int:
        """How many more jobs can be submitted without queueing."""
        idle = sum(1 for s in self._slots if s.job is None)
        return idle - len(self._queue)

    def pending(self) -> int:
        busy = sum(1 for s in self._slots if s.job is not None)
        return busy + len(self._queue) + len(self._ready)

    def worker_pids(self) -> list[int]:
        return [s.proc.pid for s in self._slots if s.alive]

    def busy_workers(self) -> dict[int, str]:
        """pid -> path of the file each busy worker is analysing."""
        return {s.proc.pid: s.job.path for s in self._slots if s.alive and s.job is not None}

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        for slot in self._slots:
            if not self._queue:
                return
            if slot.job is not None:
                continue
            if not slot.alive:
                slot.kill()
                slot.start(self.settings_json)
            job = self._queue.popleft()
            assert slot.conn is not None
            try:
                slot.conn.send(job)
            except (OSError, BrokenPipeError):  # died between the check and the send
                self._queue.appendleft(job)
                slot.kill()
                continue
            slot.job, slot.started = job, time.monotonic()

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        """Outcomes finished within ``timeout`` seconds (possibly none)."""
        if self._ready:
            finished, self._ready = self._ready, []
            return finished
        busy = [s for s in self._slots if s.job is not None]
        if not busy:
            return []
        limit = timeout
        if self.timeout_s is not None:
            now = time.monotonic()
            first = min(s.started + self.timeout_s for s in busy) - now
            limit = max(0.0, first) if limit is None else max(0.0, min(limit, first))
        handles: dict[Any, _Slot] = {}
        for s in busy:
            handles[s.conn] = s
            handles[s.proc.sentinel] = s
        ready = wait(list(handles), timeout=limit)
        out: list[Outcome] = []
        done: set[int] = set()
        for h in ready:
            slot = handles[h]
            if slot.index in done or slot.job is None:
                continue
            done.add(slot.index)
            outcome = self._receive(slot)
            if outcome is not None:
                out.append(outcome)
        if self.timeout_s is not None:
            now = time.monotonic()
            for s in busy:
                if s.job is not None and now - s.started > self.timeout_s:
                    job = s.job
                    s.job = None
                    s.kill()
                    out.append(_failed(job, "AnalysisTimeoutError",
                                       f"the analysis took longer than {self.timeout_s:g} s "
                                       "and its worker was stopped"))
        self._dispatch()
        return out

    def _receive(self, slot: _Slot) -> Outcome | None:
        job = slot.job
        assert job is not None and slot.conn is not None
        try:
            if slot.conn.poll():
                outcome = slot.conn.recv()
                slot.job = None
                self._attempts.pop(job.audio_hash, None)
                return outcome
        except (EOFError, OSError):
            pass
        # The process died with the job.
        code = slot.proc.exitcode if slot.proc is not None else None
        slot.job = None
        slot.kill()
        attempts = self._attempts.get(job.audio_hash, 0) + 1
        self._attempts[job.audio_hash] = attempts
        if attempts < self.max_attempts:
            log.warning("a batch worker died (exit code %s) analysing %s; trying it again",
                        code, job.path)
            self._queue.appendleft(job)
            return None
        return _failed(job, "WorkerCrashed",
                       f"the worker process died (exit code {code}) each of the {attempts} "
                       "times it analysed this file; is the file huge or malformed?")

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker: politely (finish, then exit) or at once with ``kill``."""
        for slot in self._slots:
            if slot.alive and not kill and slot.job is None and slot.conn is not None:
                try:
                    slot.conn.send(None)
                except (OSError, BrokenPipeError):
                    pass
        deadline = time.monotonic() + (0 if kill else 10)
        for slot in self._slots:
            if slot.proc is not None and not kill:
                slot.proc.join(max(0.0, deadline - time.monotonic()))
            slot.kill()

    def __enter__(self) -> "LocalRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)


def _failed(job: Job, kind: str, message: str) -> Outcome:
    return Outcome(path=job.path, audio_hash=job.audio_hash, ok=False, error_type=kind,
                   error=message)
