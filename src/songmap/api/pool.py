"""A pool of analysis processes, each with its models loaded once, driven from asyncio.

Why not ``concurrent.futures.ProcessPoolExecutor``: one dead worker breaks that whole pool
(every queued future fails), and it cannot kill a worker stuck past a time limit. Here
each worker is a *slot* with its own process and pipe: a slot whose process dies or
overruns is killed and restarted alone, and the others go on.

The event loop never waits on a pipe: a slot's blocking round trip runs in a thread.
Capacity is bounded: ``reserve()`` refuses (``QueueFullError``) once ``size + max_queue``
requests are in flight, so a flood of uploads queues up to a limit and then gets 503s
instead of exhausting memory.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from songmap.api.errors import (
    AnalysisFailedError,
    QueueFullError,
    ServiceNotReadyError,
    WorkerCrashedError,
)
from songmap.api.worker import serve
from songmap.errors import AnalysisTimeoutError, ModelError, SongmapError

log = logging.getLogger("songmap.api.pool")

#: Seconds a worker may take to start and load its models.
_START_TIMEOUT_S = 300.0


def _death(exitcode: int | None) -> str:
    """How a worker ended, for the error message."""
    if exitcode is None:
        return "its pipe closed"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = "; out of memory, or killed from outside?" if exitcode == -signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {exitcode}"


class _Slot:
    """One worker process and the parent's end of its pipe. Used by one thread at a time."""

    def __init__(self, index: int, settings_json: str) -> None:
        self.index = index
        self.settings_json = settings_json
        self.proc: Any = None
        self.conn: Any = None
        self.pid: int | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def start(self) -> None:
        """Start the process and wait until its models are loaded (blocking)."""
        ctx = mp.get_context("spawn")  # onnxruntime's threads do not survive fork
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(child, self.settings_json), daemon=True,
                           name=f"songmap-worker-{self.index}")
        proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        if not parent.poll(_START_TIMEOUT_S):
            self.kill()
            raise ModelError(f"worker {self.index} did not load its models in {_START_TIMEOUT_S:.0f} s")
        try:
            message = parent.recv()
        except EOFError:
            self.kill()
            raise ModelError(f"worker {self.index} died while loading its models") from None
        if message[0] != "ready":
            self.kill()
            raise ModelError(f"worker {self.index} could not load its models: {message[1]}")
        self.pid = message[1]
        log.info("worker %d ready (pid %s)", self.index, self.pid)

    def call(self, task: Callable[..., Any], args: tuple[Any, ...], timeout_s: float,
             progress: Callable[[float], None] | None) -> Any:
        """Run ``task(ctx, *args)`` in the worker (blocking); re-raises its exception."""
        if not self.alive:
            raise WorkerCrashedError("the analysis worker is not running")
        deadline = time.monotonic() + timeout_s
        try:
            self.conn.send((task, args))
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not self.conn.poll(left):
                    self.kill()
                    raise AnalysisTimeoutError(
                        f"the analysis took longer than {timeout_s:g} s and was stopped; "
                        "try a shorter file"
                    )
                message = self.conn.recv()
                if message[0] == "progress":
                    if progress is not None:
                        try:
                            progress(message[1])
                        except Exception:
                            log.exception("worker %d: progress report failed", self.index)
                    continue
                break
        except (EOFError, OSError):
            if self.proc is not None:
                self.proc.join(2)  # reaped, so its exit code or signal is known
            how = _death(self.proc.exitcode if self.proc is not None else None)
            self.kill()
            # Not retried: a file that crashes the decoder would crash the next worker too.
            raise WorkerCrashedError(
                f"the analysis worker died ({how}) while working on this file; "
                "it has been restarted, and this file was not retried"
            ) from None
        except BaseException:
            # Whatever else broke the conversation (an unpicklable answer, an interrupt),
            # the worker may still be mid-task: never hand its pipe to the next request.
            self.kill()
            raise
        return unpack_answer(message, f"worker {self.index}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not."""
        if self.proc is None:
            return
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(timeout_s)
        self.kill()


def unpack_answer(message: tuple[Any, ...], where: str) -> Any:
    """A worker's final answer (``("ok", value)`` or ``("error", exc, traceback)``) as the
    value, the songmap error it raised, or ``AnalysisFailedError`` for anything else (its
    traceback logged and kept on the exception)."""
    if message[0] == "ok":
        return message[1]
    exc, text = message[1], message[2]
    if isinstance(exc, SongmapError):
        raise exc
    failure = AnalysisFailedError("the analysis failed unexpectedly")
    failure.remote_traceback = text  # type: ignore[attr-defined]
    log.error("%s: unexpected failure:\n%s", where, text)
    raise failure


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

    def __init__(self, *, size: int, settings_json: str, max_queue: int, timeout_s: float,
                 retry_after_s: int = 5) -> None:
        self.size = size
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._slots = [_Slot(i, settings_json) for i in range(size)]
        self._free: asyncio.Queue[_Slot] | None = None
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
    async def run(self, task: Callable[..., Any], *args: Any,
                  progress: Callable[[float], None] | None = None) -> Any:
        """Run ``task(ctx, *args)`` on the next free worker and return its value."""
        if self._free is None or self._closing:
            raise ServiceNotReadyError("the analysis workers are not running")
        if self.start_error is not None and self._ready == 0:
            raise ServiceNotReadyError(f"the analysis workers could not start: {self.start_error}")
        slot = await self._free.get()
        call = asyncio.ensure_future(
            asyncio.to_thread(slot.call, task, args, self.timeout_s, progress)
        )
        # The slot goes back only when its round trip is over, even if this request is
        # cancelled (a client hung up) while the worker is still busy.
        call.add_done_callback(lambda done: self._release(slot, done))
        return await asyncio.shield(call)

    def _release(self, slot: _Slot, done: asyncio.Future[Any]) -> None:
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

    async def _restart(self, slot: _Slot) -> None:
        try:
            await asyncio.to_thread(slot.start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - kept for readyz and the next request
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
