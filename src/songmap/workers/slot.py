"""One worker process and the parent's end of its pipe: spawn, deadline, kill, restart.

Why not ``concurrent.futures.ProcessPoolExecutor``: one dead worker breaks that whole pool
(every queued future fails), it cannot say which task killed it, and it cannot kill a
worker stuck past a time limit. Here each worker is a slot with its own process and pipe:
a slot whose process dies or overruns is killed and restarted alone, and the others go on.

A slot is used by one thread at a time: blocking (``call``, the service's pool runs it in a
thread) or polled (``send`` then ``read`` when its pipe or process is ready, the batch's
runner waiting on many slots at once).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from songmap.errors import AnalysisTimeoutError, ModelError, WorkerCrashedError
from songmap.workers.job import Answer
from songmap.workers.process import WorkerSpec, serve

log = logging.getLogger("songmap.workers")

#: Seconds a worker may take to start and load its models.
START_TIMEOUT_S = 300.0


def describe_death(exitcode: int | None, memory_mb: float | None = None) -> str:
    """How a worker ended, for the error message."""
    if exitcode is None:
        return "its pipe closed"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = ""
        if exitcode == -signal.SIGKILL:
            hint = "; out of memory, or killed from outside?"
        elif memory_mb:
            hint = f"; past the memory cap of {memory_mb:g} MB per analysis?"
        return f"killed by {name}{hint}"
    return f"exit code {exitcode}"


class Slot:
    """One worker process for ``spec``; ``name`` names the process (``ps``)."""

    def __init__(self, index: int, spec: WorkerSpec, *, name: str = "songmap-worker") -> None:
        self.index = index
        self.spec = spec
        self.name = name
        self.proc: Any = None
        self.conn: Any = None
        #: a slot can be killed from two threads at once (the pool's start-up thread,
        #: whose worker failed to start, and the service's shutdown): each takes the
        #: process and the pipe out of the slot under this lock, so only one ends them
        self._taking = threading.Lock()
        #: set by ``stop``: the slot is shut down and starts no process any more (a start
        #: still running on the pool's thread then fails instead of leaving one behind)
        self._stopped = False
        self.pid: int | None = None
        #: Called with each progress fraction of the current task.
        self.on_progress: Callable[[float], None] | None = None
        #: The current task's payload (the batch's job) and when it was sent.
        self.job: Any = None
        self.started = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    # -- life ------------------------------------------------------------------------------
    def spawn(self) -> None:
        """Start the process (not waiting for its models: its first message says so)."""
        ctx = mp.get_context("spawn")  # onnxruntime's threads do not survive fork
        with self._taking:
            if self._stopped:
                raise ModelError(f"worker {self.index} was shut down before it started")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=serve, args=(child, self.spec), daemon=True,
                               name=f"{self.name}-{self.index}")
            proc.start()
            child.close()
            self.proc, self.conn, self.pid = proc, parent, proc.pid

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the process and wait until its models are loaded (blocking)."""
        self.spawn()
        conn = self.conn
        try:
            if conn is None or not conn.poll(timeout_s):
                self.kill()
                raise ModelError(
                    f"worker {self.index} did not load its models in {timeout_s:.0f} s")
            message = conn.recv()
        except (EOFError, OSError):  # it died, or the slot was shut down meanwhile
            self.kill()
            raise ModelError(f"worker {self.index} died while loading its models") from None
        if message[0] != "ready":
            self.kill()
            raise ModelError(f"worker {self.index} could not load its models: {message[1]}")
        log.info("worker %d ready (pid %s)", self.index, self.pid)

    def kill(self) -> None:
        with self._taking:
            proc, conn = self.proc, self.conn
            self.proc = self.conn = None
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not. The slot starts nothing after."""
        with self._taking:
            self._stopped = True
            proc, conn = self.proc, self.conn
        if proc is None:
            return
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
        proc.join(timeout_s)
        self.kill()

    def death(self) -> str:
        """How the process ended (reaped first, so its exit code or signal is known)."""
        if self.proc is not None:
            self.proc.join(2)
        return describe_death(self.proc.exitcode if self.proc is not None else None,
                              self.spec.memory_mb)

    # -- work ------------------------------------------------------------------------------
    def send(self, task: Callable[..., Any], args: tuple[Any, ...], job: Any = None) -> None:
        """Hand ``task(ctx, *args)`` to the worker; ``OSError`` if it is gone."""
        self.conn.send((task, args))
        self.job, self.started = job, time.monotonic()

    def read(self) -> Answer | None:
        """The next message of the worker: its final answer, or None after a progress
        report or its "ready". ``EOFError`` / ``OSError`` when the process is gone."""
        message = self.conn.recv()
        if message[0] == "progress":
            if self.on_progress is not None:
                try:
                    self.on_progress(message[1])
                except Exception:  # progress is best effort
                    log.exception("worker %d: progress report failed", self.index)
            return None
        if message[0] == "ready":
            self.pid = message[1]
            return None
        self.job = None
        return tuple(message)

    def overdue(self, timeout_s: float | None, now: float) -> bool:
        return timeout_s is not None and self.job is not None and now - self.started > timeout_s

    def call(self, task: Callable[..., Any], args: tuple[Any, ...], timeout_s: float,
             progress: Callable[[float], None] | None) -> Answer:
        """Run ``task(ctx, *args)`` in the worker and return its answer (blocking)."""
        if not self.alive:
            raise WorkerCrashedError("the analysis worker is not running")
        deadline = time.monotonic() + timeout_s
        self.on_progress = progress
        try:
            self.send(task, args, job=args)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not self.conn.poll(left):
                    self.kill()
                    raise AnalysisTimeoutError(
                        f"the analysis took longer than {timeout_s:g} s and was stopped; "
                        "try a shorter file"
                    )
                answer = self.read()
                if answer is not None:
                    return answer
        except (EOFError, OSError):
            how = self.death()
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
        finally:
            self.on_progress = None
