"""The batch's local runner: ``Job``s on N worker slots of this machine, one driver loop.

A slot whose process dies is restarted alone; its file is tried again once (the death may
have been someone else's doing: the OOM killer, a stray ``kill``) and recorded as failed
if it kills a worker twice. A file that runs past ``timeout_s`` has its worker killed and
is recorded as timed out. Single-threaded: the parent waits on every busy slot's pipe and
process sentinel at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from multiprocessing.connection import wait
from typing import Any

from songmap.workers.job import Job, Outcome, analyze, failed, outcome, worker_id
from songmap.workers.process import WorkerSpec
from songmap.workers.slot import Slot

log = logging.getLogger("songmap.batch")


class LocalRunner:
    """Runs ``Job``s on ``workers`` local processes. Not thread-safe; one driver loop."""

    def __init__(self, spec: WorkerSpec, *, workers: int, timeout_s: float | None = None,
                 max_attempts: int = 2) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._slots = [Slot(i, spec, name="songmap-batch") for i in range(workers)]
        self._queue: deque[Job] = deque()
        self._attempts: dict[str, int] = {}

    @property
    def workers(self) -> int:
        return len(self._slots)

    def free_slots(self) -> int:
        """How many more jobs can be submitted without queueing."""
        idle = sum(1 for s in self._slots if s.job is None)
        return idle - len(self._queue)

    def pending(self) -> int:
        busy = sum(1 for s in self._slots if s.job is not None)
        return busy + len(self._queue)

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
                slot.spawn()
            job = self._queue.popleft()
            try:
                slot.send(analyze, (job,), job=job)
            except OSError:  # died between the check and the send
                self._queue.appendleft(job)
                slot.kill()

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        """Outcomes finished within ``timeout`` seconds (possibly none)."""
        busy = [s for s in self._slots if s.job is not None]
        if not busy:
            return []
        handles: dict[Any, Slot] = {}
        for s in busy:
            handles[s.conn] = s
            handles[s.proc.sentinel] = s
        ready = wait(list(handles), timeout=self._wait_limit(busy, timeout))
        out: list[Outcome] = []
        for slot in dict.fromkeys(handles[h] for h in ready):
            if slot.job is not None:
                out.extend(self._receive(slot))
        out.extend(self._stop_overdue(busy))
        self._dispatch()
        return out

    def _wait_limit(self, busy: list[Slot], timeout: float | None) -> float | None:
        """How long to wait: ``timeout``, cut short by the first deadline of a busy slot."""
        if self.timeout_s is None:
            return timeout
        first = max(0.0, min(s.started + self.timeout_s for s in busy) - time.monotonic())
        return first if timeout is None else max(0.0, min(timeout, first))

    def _stop_overdue(self, busy: list[Slot]) -> list[Outcome]:
        now = time.monotonic()
        out = []
        for s in busy:
            if s.overdue(self.timeout_s, now):
                job, pid, started = s.job, s.pid, s.started
                s.job = None
                s.kill()
                out.append(failed(job, "AnalysisTimeoutError",
                                  f"the analysis took longer than {self.timeout_s:g} s "
                                  "and its worker was stopped",
                                  wall_seconds=now - started, worker=worker_id(pid)))
        return out

    def _receive(self, slot: Slot) -> list[Outcome]:
        """The slot's finished job (if its answer came, or its death was its last)."""
        job, started = slot.job, slot.started
        assert job is not None
        try:
            while slot.conn.poll():
                answer = slot.read()
                if answer is not None:
                    self._attempts.pop(job.audio_hash, None)
                    return [outcome(job, answer, wall_seconds=time.monotonic() - started,
                                    worker=worker_id(slot.pid))]
            if slot.alive:
                return []  # a progress report or its "ready": still working
        except (EOFError, OSError):
            pass
        return self._died(slot, job)

    def _died(self, slot: Slot, job: Job) -> list[Outcome]:
        """The process died with ``job``: retried, or failed after ``max_attempts``."""
        how = slot.death()
        slot.job = None
        slot.kill()
        attempts = self._attempts.get(job.audio_hash, 0) + 1
        self._attempts[job.audio_hash] = attempts
        if attempts < self.max_attempts:
            log.warning("a batch worker died (%s) analysing %s; trying it again", how, job.path)
            self._queue.appendleft(job)
            return []
        return [failed(job, "WorkerCrashed",
                       f"the worker process died ({how}) each of the {attempts} times it "
                       "analysed this file; is the file huge or malformed?")]

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker: politely (finish, then exit) or at once with ``kill``."""
        for slot in self._slots:
            if slot.alive and not kill and slot.job is None:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
        deadline = time.monotonic() + (0 if kill else 10)
        for slot in self._slots:
            if slot.proc is not None and not kill:
                slot.proc.join(max(0.0, deadline - time.monotonic()))
            slot.kill()

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)
