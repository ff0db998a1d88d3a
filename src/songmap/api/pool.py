"""The service's pool of analysis workers, driven from asyncio behind an admission line.

Each worker is a ``songmap.workers.Slot`` (its own process and pipe, models loaded once):
one that dies or overruns is killed and restarted alone, and the others go on. The event
loop never waits on a pipe: a slot's blocking round trip runs in a thread. Capacity is
bounded: ``reserve()`` refuses (``QueueFullError``) once ``size + max_queue`` requests are
in flight, so a flood of uploads queues up to a limit and then gets 503s instead of
exhausting memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from songmap.api.errors import QueueFullError, ServiceNotReadyError
from songmap.workers.job import Job, Task, unpack
from songmap.workers.process import WorkerSpec
from songmap.workers.slot import Slot

log = logging.getLogger("songmap.api.pool")


class AdmissionLine:
    """The bounded waiting line in front of a pool: ``size`` running plus ``max_queue``
    waiting analyses, then ``QueueFullError`` at once. Subclasses set the attributes."""

    size: int
    max_queue: int
    retry_after_s: int
    _in_flight: int
    _closing: bool
    #: What is busy, for the 503 message.
    _busy: str = "workers"

    @asynccontextmanager
    async def reserve(self) -> AsyncIterator[None]:
        """A place in the line, or ``QueueFullError`` at once when the line is full."""
        if self._closing:
            raise ServiceNotReadyError("the server is shutting down")
        if self._in_flight >= self.size + self.max_queue:
            raise QueueFullError(
                f"all {self.size} {self._busy} are busy and {self.max_queue} analyses are "
                f"waiting; retry in {self.retry_after_s} s",
                self.retry_after_s,
            )
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1


class WorkerPool(AdmissionLine):
    """``size`` worker processes; ``run()`` sends a task to the next free one."""

    def __init__(self, *, size: int, spec: WorkerSpec, max_queue: int, timeout_s: float,
                 retry_after_s: int = 5) -> None:
        self.size = size
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._slots = [Slot(i, spec) for i in range(size)]
        self._free: asyncio.Queue[Slot] | None = None
        self._in_flight = 0
        self._ready = 0
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.start_error: BaseException | None = None

    # -- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every worker in the background; ``ready`` turns true as they load."""
        self._free = asyncio.Queue()
        for slot in self._slots:
            self._spawn(self._restart(slot))

    async def wait_ready(self) -> None:
        """Wait until every worker has loaded its models (raises if one could not)."""
        while self._ready < self.size:
            if self.start_error is not None:
                raise self.start_error
            await asyncio.sleep(0.05)

    @property
    def ready(self) -> bool:
        """At least one worker is up and nothing failed at start."""
        return self._ready > 0 and self.start_error is None and not self._closing

    @property
    def workers_ready(self) -> int:
        return self._ready

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in self._slots))
        self._ready = 0

    # -- work ------------------------------------------------------------------------------
    async def run(self, task: Task, job: Job,
                  progress: Callable[[float], None] | None = None) -> Any:
        """Run ``task(ctx, job)`` on the next free worker and return its value."""
        if self._free is None or self._closing:
            raise ServiceNotReadyError("the analysis workers are not running")
        if self.start_error is not None and self._ready == 0:
            raise ServiceNotReadyError(f"the analysis workers could not start: {self.start_error}")
        slot = await self._free.get()
        call = asyncio.ensure_future(
            asyncio.to_thread(slot.call, task, (job,), self.timeout_s, progress)
        )
        # The slot goes back only when its round trip is over, even if this request is
        # cancelled (a client hung up) while the worker is still busy.
        call.add_done_callback(lambda done: self._release(slot, done))
        return unpack(await asyncio.shield(call), f"worker {slot.index}", log)

    def _release(self, slot: Slot, done: asyncio.Future[Any]) -> None:
        if not done.cancelled():
            done.exception()  # retrieved here too: its request may have gone away
        if self._closing:
            return
        if slot.alive:
            assert self._free is not None
            self._free.put_nowait(slot)
        else:
            self._ready -= 1
            self._spawn(self._restart(slot))

    async def _restart(self, slot: Slot) -> None:
        try:
            await asyncio.to_thread(slot.start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - kept for readyz and the next request
            if self._closing:  # shut down while it started: nothing to report
                return
            log.error("worker %d could not start: %s", slot.index, exc)
            self.start_error = exc
            return
        if self._closing:
            await asyncio.to_thread(slot.stop)
            return
        self._ready += 1
        assert self._free is not None
        self._free.put_nowait(slot)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
