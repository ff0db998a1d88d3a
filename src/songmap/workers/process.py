"""What runs inside a worker process: one Analyzer, models loaded once, tasks over a pipe.

The parent (a ``Slot``) sends ``(task, args)``; the worker answers ``("ready", pid)`` once
its models are loaded, then for every task ``("progress", fraction)`` any number of times
and a final answer (``songmap.workers.job``). ``None`` asks it to exit.

Kept free of heavy imports at module level: the thread limits must be set before numpy
and the network runtimes are loaded in a fresh process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from songmap.config import AnalysisSettings
from songmap.workers.job import error_answer
from songmap.workers.memory import cap_this_process, load_before_cap

#: The BLAS/OpenMP pools a worker caps (read by the libraries when they load).
_BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class WorkerSpec:
    """How a worker process is set up; pickled to it whole when it starts.

    ``settings``: its Analyzer's settings (``settings.threads``: threads one analysis uses).
    ``blas_threads``: BLAS/OpenMP threads of the process (None: the libraries' default).
    ``memory_mb``: what one analysis may add to the process's address space once its
    models are loaded, MB (None: no cap); an analysis beyond it fails with
    ``MemoryLimitError``.
    """

    settings: AnalysisSettings
    blas_threads: int | None = None
    memory_mb: float | None = None


@dataclass
class WorkerContext:
    """A worker's state: its Analyzer (models loaded) and a way to report progress."""

    analyzer: Any  # songmap.pipeline.Analyzer
    conn: Connection

    def progress(self, fraction: float) -> None:
        """Tell the parent how far the current task is (0..1)."""
        self.conn.send(("progress", float(fraction)))


_analyzers: dict[str, Any] = {}
_lock = threading.Lock()


def analyzer_for(settings: AnalysisSettings) -> Any:
    """This process's Analyzer for these settings, created (models loaded) on first use.

    Keyed by the settings' JSON: the one place settings are serialised in the workers."""
    key = settings.model_dump_json()
    analyzer = _analyzers.get(key)
    if analyzer is None:
        with _lock:
            analyzer = _analyzers.get(key)
            if analyzer is None:
                from songmap.pipeline import Analyzer

                analyzer = Analyzer(settings)
                analyzer.registry.load_all()
                _analyzers[key] = analyzer
    return analyzer


def prepare(spec: WorkerSpec) -> Any:
    """Set up this process for ``spec`` (signals, threads, models, then the memory cap);
    its Analyzer."""
    # The parent decides when workers stop: Ctrl-C in a terminal reaches the whole
    # process group, and a worker dying mid-task would turn it into a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.filterwarnings("ignore")
    # onnxruntime's telemetry would leave a session file in $TMPDIR (and try to phone home).
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    if spec.blas_threads is not None:
        for var in _BLAS_ENV:
            os.environ.setdefault(var, str(spec.blas_threads))
    analyzer = analyzer_for(spec.settings)
    if spec.memory_mb:
        load_before_cap(analyzer)  # the cap is for the analysis itself
        cap_this_process(spec.memory_mb)
    return analyzer


def serve(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process."""
    try:
        analyzer = prepare(spec)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which gives up
        conn.send(error_answer(exc))
        return
    ctx = WorkerContext(analyzer, conn)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        task, args = message
        try:
            value = task(ctx, *args)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent
            conn.send(error_answer(exc, spec.memory_mb))
        else:
            conn.send(("ok", value))
        _trim_heap()


def _trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc keeps them otherwise).

    Measured on the load benchmark: without it a worker's RSS rose by the size of its
    largest recent analysis buffers and stayed there; this takes about a millisecond.
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc: nothing to do
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None
