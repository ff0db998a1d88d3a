"""The one job type, the one analysis task, and the answers a worker gives.

A worker runs ``task(ctx, job)``: ``ctx`` is what the process holds (its Analyzer, a way to
report progress), ``job`` the file. The answer is ``("ok", value)`` or ``("error",
exception, traceback_text)``, whoever ran it (a local worker process or a Dask worker);
``unpack`` turns it back into the value or the exception, ``outcome`` into a batch record.

Kept free of heavy imports at module level: a fresh worker sets its thread limits before
numpy and the network runtimes are loaded.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from songmap.errors import AnalysisFailedError, MemoryLimitError, SongmapError

#: A worker's final answer: ``("ok", value)`` or ``("error", exception, traceback_text)``.
Answer = tuple[Any, ...]


@dataclass(frozen=True)
class Job:
    """One file to analyse.

    ``path``: where the worker opens it, unless ``data`` carries its bytes (the worker
    cannot see the path: a Dask cluster). ``name``: the file name the result carries.
    ``audio_hash``: the content hash (the store's key; empty when nobody needs it).
    ``overrides``: AnalysisSettings fields for this file only (``bpm``, ...), analysed
    with the worker's models and its cache of network outputs.
    """

    path: str
    name: str
    audio_hash: str = ""
    data: bytes | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def with_data(self) -> Job:
        """This job carrying the file's bytes (read here), for workers that cannot see it."""
        if self.data is not None:
            return self
        return Job(self.path, self.name, self.audio_hash, Path(self.path).read_bytes(),
                   self.overrides)


@dataclass(frozen=True)
class Outcome:
    """What became of a batch job: the result's JSON, or the error's type and text."""

    path: str
    audio_hash: str
    ok: bool
    result_json: str | None = None
    error_type: str | None = None
    error: str | None = None
    wall_seconds: float = 0.0
    worker: str = ""


class Context(Protocol):
    """What a task gets from the process it runs in."""

    analyzer: Any  # songmap.pipeline.Analyzer, models loaded

    def progress(self, fraction: float) -> None: ...


Task = Callable[..., Any]


def analyze(ctx: Context, job: Job) -> str:
    """Analyse ``job``; the ``AnalysisResult`` as JSON text, progress reported after every
    stage."""
    analyzer = ctx.analyzer
    if job.overrides:
        analyzer = analyzer.with_settings(**job.overrides)
    with warnings.catch_warnings(), _local_copy(job) as path:
        warnings.simplefilter("ignore")  # notes travel in result.warnings
        result = analyzer.analyze(path, filename=job.name, progress=ctx.progress)
    return result.model_dump_json()


def as_memory_limit(exc: BaseException, memory_mb: float | None) -> BaseException:
    """``exc`` as the ``MemoryLimitError`` it is when a task ran out of memory, else itself.

    Under an address-space cap an allocation fails in C code in many shapes besides
    ``MemoryError`` (a failed mmap, a library that cannot be mapped, a thread that cannot
    start); only those that say so are taken for the cap."""
    if isinstance(exc, SongmapError):
        return exc
    if isinstance(exc, MemoryError) or (
            memory_mb and isinstance(exc, (OSError, RuntimeError, ImportError))
            and _says_out_of_memory(exc)):
        if memory_mb:
            message = (f"the analysis needs more memory than the cap of {memory_mb:g} MB "
                       "per analysis; try a shorter file or raise the cap")
        else:
            message = "the analysis ran out of memory; try a shorter file"
        return MemoryLimitError(message)
    return exc


_OUT_OF_MEMORY = ("cannot allocate memory", "out of memory", "bad_alloc", "unable to allocate",
                  "can't start new thread", "failed to allocate", "failed to map segment")


def _says_out_of_memory(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(phrase in text for phrase in _OUT_OF_MEMORY)


@contextlib.contextmanager
def _local_copy(job: Job) -> Iterator[str]:
    """The path to analyse: ``job.path``, or a private temporary copy of ``job.data`` with
    the same extension (the decoders use it as a hint), removed whatever happens; errors
    name the user's file, not the copy."""
    if job.data is None:
        yield job.path
        return
    fd, tmp = tempfile.mkstemp(prefix="songmap-", suffix=Path(job.path).suffix[:16])
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(job.data)
        yield tmp
    except SongmapError as exc:
        text = str(exc).replace(tmp, job.path).replace(Path(tmp).name, Path(job.path).name)
        if text == str(exc):
            raise
        raise type(exc)(text) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# -- answers ------------------------------------------------------------------------------
def picklable_error(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (to travel to the parent), else a stand-in."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - whatever breaks pickling, send something that will not
        if isinstance(exc, SongmapError):
            return SongmapError(str(exc))
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def error_answer(exc: BaseException, memory_mb: float | None = None) -> Answer:
    """The answer for a task that raised ``exc`` (in an ``except`` block: its traceback)."""
    import traceback

    return ("error", picklable_error(as_memory_limit(exc, memory_mb)), traceback.format_exc())


def unpack(answer: Answer, where: str, log: Any) -> Any:
    """The value of an answer; else the songmap error it carries, or ``AnalysisFailedError``
    for anything else (its traceback logged and kept on the exception)."""
    if answer[0] == "ok":
        return answer[1]
    exc, text = answer[1], answer[2]
    if isinstance(exc, SongmapError):
        raise exc
    failure = AnalysisFailedError("the analysis failed unexpectedly")
    failure.remote_traceback = text  # type: ignore[attr-defined]
    log.error("%s: unexpected failure:\n%s", where, text)
    raise failure


def outcome(job: Job, answer: Answer, *, wall_seconds: float, worker: str) -> Outcome:
    """A batch record of an answer: a failure is data (its type and text), never raised."""
    if answer[0] == "ok":
        return Outcome(path=job.path, audio_hash=job.audio_hash, ok=True, result_json=answer[1],
                       wall_seconds=wall_seconds, worker=worker)
    exc = answer[1]
    return failed(job, type(exc).__name__, str(exc) or repr(exc), wall_seconds=wall_seconds,
                  worker=worker)


def failed(job: Job, kind: str, message: str, *, wall_seconds: float = 0.0,
           worker: str = "") -> Outcome:
    return Outcome(path=job.path, audio_hash=job.audio_hash, ok=False, error_type=kind,
                   error=message, wall_seconds=wall_seconds, worker=worker)


def worker_id(pid: int | None = None) -> str:
    """``host:pid`` of a worker process (this one by default)."""
    import socket

    return f"{socket.gethostname()}:{pid or os.getpid()}"
