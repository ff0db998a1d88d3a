"""What a batch worker process runs: one Analyzer per process, one file per call.

Used by both runners (the local process pool and Dask workers). A failure to analyse a
file is returned as data (``Outcome.ok`` False with the error), never raised, so one bad
file cannot take anything else down; only the death of the process itself escapes, and the
runners deal with that.

Kept free of heavy imports at module level: the thread limits below must be set before
numpy and onnxruntime are loaded in a fresh worker.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from songmap.errors import SongmapError

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Job:
    """One file to analyse. ``data`` carries the file's bytes when the worker cannot see
    ``path`` (``--upload``); otherwise the worker opens ``path`` itself."""

    path: str
    name: str
    audio_hash: str
    data: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    path: str
    audio_hash: str
    ok: bool
    result_json: str | None = None
    error_type: str | None = None
    error: str | None = None
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    worker: str = ""


_analyzers: dict[str, Any] = {}
_lock = threading.Lock()


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP pools for this process (effective before numpy is imported)."""
    for var in _THREAD_ENV:
        os.environ.setdefault(var, str(threads))


def get_analyzer(settings_json: str) -> Any:
    """This process's Analyzer for these settings, created (models loaded) on first use."""
    analyzer = _analyzers.get(settings_json)
    if analyzer is None:
        with _lock:
            analyzer = _analyzers.get(settings_json)
            if analyzer is None:
                from songmap.config import AnalysisSettings
                from songmap.pipeline import Analyzer

                analyzer = Analyzer(AnalysisSettings.model_validate_json(settings_json))
                analyzer.registry.load_all()
                _analyzers[settings_json] = analyzer
    return analyzer


def init_worker(settings_json: str) -> None:
    """Process-pool initializer: ignore Ctrl-C (the parent handles it), load the models."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from songmap.config import AnalysisSettings

    limit_threads(AnalysisSettings.model_validate_json(settings_json).threads)
    get_analyzer(settings_json)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def analyze_job(job: Job, settings_json: str) -> Outcome:
    """Analyse one file; every error becomes a failed ``Outcome``."""
    t0 = time.perf_counter()
    try:
        analyzer = get_analyzer(settings_json)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes travel in result.warnings
            if job.data is None:
                from songmap.audio import display_name

                result = analyzer.analyze(job.path, filename=display_name(job.path))
            else:
                result = _analyze_bytes(analyzer, job)
        return Outcome(
            path=job.path, audio_hash=job.audio_hash, ok=True,
            result_json=result.model_dump_json(), audio_seconds=result.audio.duration,
            wall_seconds=time.perf_counter() - t0, worker=worker_id(),
        )
    except MemoryError:
        return _failed(job, "MemoryError", "out of memory analysing this file", t0)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        return _failed(job, type(exc).__name__, str(exc) or repr(exc), t0)


def _analyze_bytes(analyzer: Any, job: Job) -> Any:
    # The decoders read files; a private temporary file keeps the original extension, which
    # the decoder uses as a hint, and is removed whatever happens.
    suffix = Path(job.path).suffix[:16]
    fd, tmp = tempfile.mkstemp(prefix="songmap-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(job.data or b"")
        from songmap.audio import display_name

        return analyzer.analyze(tmp, filename=display_name(job.path))
    except SongmapError as exc:
        # Name the user's file, not our temporary one, in the message.
        text = str(exc).replace(tmp, job.path).replace(Path(tmp).name, Path(job.path).name)
        if text == str(exc):
            raise
        raise type(exc)(text) from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _failed(job: Job, kind: str, message: str, t0: float) -> Outcome:
    return Outcome(path=job.path, audio_hash=job.audio_hash, ok=False, error_type=kind,
                   error=message, wall_seconds=time.perf_counter() - t0, worker=worker_id())
