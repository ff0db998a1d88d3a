"""What runs inside a worker process: one Analyzer, models loaded once, tasks over a pipe.

The parent (``songmap.api.pool``) sends ``(task, args)``; the worker answers
``("progress", fraction)`` any number of times, then ``("ok", value)`` or
``("error", exception, traceback_text)``. Tasks are module-level functions taking a
``WorkerContext`` first, so tests can hand the pool their own (picklable by name).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import pickle
import signal
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from songmap.errors import SongmapError

log = logging.getLogger("songmap.api.worker")


@dataclass
class WorkerContext:
    """A worker's state: its Analyzer (models loaded) and a way to report progress."""

    analyzer: Any  # songmap.pipeline.Analyzer
    conn: Connection

    def progress(self, fraction: float) -> None:
        """Tell the parent how far the current task is (0..1)."""
        self.conn.send(("progress", float(fraction)))


def analyze_file(ctx: WorkerContext, path: str, filename: str, overrides_json: str = "") -> str:
    """Analyse ``path``; returns the ``AnalysisResult`` as JSON text, reporting progress
    after every stage of the Analyzer. ``overrides_json``: grid overrides of this request
    (AnalysisSettings fields as JSON), analysed with the worker's models and its cache of
    network outputs, so a re-analysis of the same audio skips the networks."""
    analyzer = ctx.analyzer
    if overrides_json:
        analyzer = analyzer.with_settings(**json.loads(overrides_json))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes travel in result.warnings
        result = analyzer.analyze(path, filename=filename, progress=ctx.progress)
    return result.model_dump_json()


def serve(conn: Connection, settings_json: str) -> None:
    """Entry point of a worker process."""
    # The parent decides when workers stop: Ctrl-C in a terminal reaches the whole
    # process group, and a worker dying mid-task would turn it into a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.filterwarnings("ignore")
    # onnxruntime's telemetry would leave a session file in $TMPDIR (and try to phone home).
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        from songmap.config import AnalysisSettings
        from songmap.pipeline import Analyzer

        analyzer = Analyzer(AnalysisSettings.model_validate_json(settings_json))
        analyzer.registry.load_all()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which refuses to start
        conn.send(("error", picklable_error(exc), traceback.format_exc()))
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
            conn.send(("error", picklable_error(exc), traceback.format_exc()))
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


def picklable_error(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (to travel to the server), else a stand-in."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        if isinstance(exc, SongmapError):
            return SongmapError(str(exc))
        return RuntimeError(f"{type(exc).__name__}: {exc}")


Task = Callable[..., Any]
