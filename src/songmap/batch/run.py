"""The batch driver: discover, skip what the store has, analyse the rest, write outputs.

One loop in the calling process owns the store, the JSONL file and the exports; the
workers (local processes or Dask) only analyse. Every finished file is committed to the
store first and then appended to the JSONL file, so after Ctrl-C, a crash or a power cut
a rerun finds it in the store and skips it, and repairs the JSONL file from there.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from songmap.batch.discover import Source, discover_audio, escape_surrogates, hash_input
from songmap.batch.failures import FailureLog
from songmap.batch.jsonl import JsonlWriter, compact, read_records
from songmap.batch.progress import BatchSummary, Failure, Progress
from songmap.batch.work import Job, Outcome
from songmap.config import AnalysisSettings
from songmap.errors import InvalidParameterError
from songmap.store import ResultStore

log = logging.getLogger("songmap.batch")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Record:
    """One file's outcome as the driver saw it (passed to ``on_record``)."""

    source: Source
    status: str  # "ok", "skipped" or "failed"
    audio_hash: str
    outcome: Outcome | None = None  # None for skipped files and files never sent


def default_store_path() -> Path:
    """The service's result store (``SONGMAP_STORE_PATH`` / ``SONGMAP_DATA_DIR``), so batch
    runs and ``songmap serve`` share results."""
    if os.environ.get("SONGMAP_STORE_PATH"):
        return Path(os.environ["SONGMAP_STORE_PATH"]).expanduser()
    data = os.environ.get("SONGMAP_DATA_DIR")
    if data:
        return Path(data).expanduser() / "results.sqlite"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "songmap" / "results.sqlite"


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


def run_batch(
    paths: Sequence[PathLike],
    *,
    store: ResultStore | PathLike | None = None,
    settings: AnalysisSettings | None = None,
    output: PathLike | None = None,
    exports: Sequence[str] = (),
    export_dir: PathLike | None = None,
    workers: int | None = None,
    scheduler: str | Any | None = None,
    upload: bool = False,
    timeout_s: float | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    on_record: Callable[[Record, Any], None] | None = None,
) -> BatchSummary:
    """Analyse every audio file under ``paths``; return what happened.

    ``store``: the result store (default: the service's). ``output``: a JSONL file, one
    line per file. ``exports``: format names from ``songmap.export.EXPORTERS``, written to
    ``export_dir`` (default: beside ``output``, else the current folder) under each file's
    relative name. ``workers``: local processes (default: one per core) unless
    ``scheduler`` (an address like ``tcp://host:8786`` or a ``distributed.Client``) is
    given. ``threads``: network threads per worker (default 1); it does not change the
    results, so it is not part of the store's key.
    ``on_record(record, runner)`` is called after every file is recorded.
    """
    t0 = time.monotonic()
    settings = settings or AnalysisSettings()
    settings_key = settings.cache_key()
    if upload and scheduler is None:
        raise InvalidParameterError("--upload sends files to Dask workers; give --scheduler too")
    n_workers = workers or default_workers()
    if n_workers < 1:
        raise InvalidParameterError("--workers must be at least 1")
    if threads is None:
        # One network thread per worker: measured faster than 2 even for a lone worker on
        # 2 cores (benchmarks/batch.py: onnxruntime's extra threads spin on a busy machine).
        threads = 1
    worker_settings = settings.model_copy(update={"threads": threads}).model_dump_json()
    exporters = _resolve_exporters(exports)
    if exports:
        export_root = Path(export_dir) if export_dir else (
            Path(output).parent if output else Path.cwd())
    else:
        export_root = Path(".")

    discovery = discover_audio(paths)
    summary = BatchSummary(total=len(discovery.sources) + len(discovery.missing))
    progress = progress or Progress(quiet=True, show_summary=False)

    own_store = not isinstance(store, ResultStore)
    results = store if isinstance(store, ResultStore) else ResultStore(
        store or default_store_path())
    failures = FailureLog(results.path)
    written: dict[str, str] = {}  # path -> audio_hash of an ok line already in the JSONL
    seen_paths: set[str] = set()
    if output is not None:
        for rec in read_records(output):
            p = rec.get("path")
            if isinstance(p, str):
                seen_paths.add(p)
                if rec.get("status") == "ok":
                    written[p] = rec.get("audio_hash", "")
                else:
                    written.pop(p, None)
    writer = JsonlWriter(output) if output is not None else None
    rewrites = 0
    runner: Any = None

    def record(source: Source, status: str, audio_hash: str, *, result_text: str | None = None,
               outcome: Outcome | None = None, kind: str = "", message: str = "") -> None:
        nonlocal rewrites
        path = str(source.path)  # lossless (surrogates for bytes that are not UTF-8)
        shown = escape_surrogates(path)  # for the failure log and the terminal
        audio_s = 0.0
        quick = status == "skipped" and not exporters and written.get(path) == audio_hash
        if status in ("ok", "skipped") and not quick:
            assert result_text is not None
            try:
                result_text, audio_s = _for_file(result_text, source, exporters, export_root,
                                                 fresh=status == "ok")
            except Exception as exc:  # noqa: BLE001 - an export failure fails this file only
                status, kind, message = "failed", type(exc).__name__, f"export failed: {exc}"
        if status == "ok":
            summary.ok += 1
            summary.audio_seconds += audio_s
        elif status == "skipped":
            summary.skipped += 1
        else:
            summary.failed += 1
            # an error's text names the file: it must be encodable text too
            kind, message = escape_surrogates(kind), escape_surrogates(message)
            summary.failures.append(Failure(shown, kind, message))
            failures.record(shown, settings_key, audio_hash, kind, message)
        if writer is not None and not (status == "skipped" and written.get(path) == audio_hash):
            if status == "failed":
                line = json.dumps({"path": path, "name": source.name, "audio_hash": audio_hash,
                                   "status": "failed",
                                   "error": {"type": kind, "message": message}},
                                  ensure_ascii=False, separators=(",", ":"))
            else:
                head = json.dumps({"path": path, "name": source.name, "audio_hash": audio_hash,
                                   "status": "ok", "cached": status == "skipped"},
                                  ensure_ascii=False, separators=(",", ":"))
                assert result_text is not None  # ok and skipped files come with their result
                line = head[:-1] + ',"result":' + result_text + "}"
            writer.append_line(line)
            if path in seen_paths:
                rewrites += 1
            seen_paths.add(path)
            written[path] = audio_hash if status != "failed" else ""
        if status != "failed":
            failures.clear(shown, settings_key)
        wall = outcome.wall_seconds if outcome else 0.0
        progress.record(status, shown, audio_seconds=audio_s, wall_seconds=wall,
                        error=f"{kind}: {message}" if status == "failed" else None)
        if on_record is not None:
            on_record(Record(source, status, audio_hash, outcome), runner)

    progress.start(summary)
    waiting: dict[str, list[Source]] = {}  # audio hash -> files with those bytes, in flight
    sources = iter(discovery.sources)
    exhausted = False
    crashed = False
    try:
        for arg, reason in discovery.missing:
            record(Source(Path(arg), arg), "failed", "", kind="InputNotFoundError",
                   message=reason)
        while True:
            while not exhausted and (runner is None or runner.free_slots() > 0):
                source = next(sources, None)
                if source is None:
                    exhausted = True
                    break
                try:
                    audio_hash = hash_input(source.path)
                except OSError as exc:
                    record(source, "failed", "", kind="InputNotFoundError",
                           message=f"cannot read the file ({exc.strerror or exc})")
                    continue
                if audio_hash in waiting:  # the same bytes under another name
                    waiting[audio_hash].append(source)
                    continue
                text = results.get(audio_hash, settings_key)
                if text is not None:
                    record(source, "skipped", audio_hash, result_text=text)
                    continue
                if runner is None:
                    runner = _make_runner(worker_settings, n_workers, scheduler, upload,
                                          timeout_s)
                waiting[audio_hash] = [source]
                runner.submit(Job(str(source.path), source.name, audio_hash))
            if runner is None or runner.pending() == 0:
                if exhausted:
                    break
                continue
            for outcome in runner.wait(timeout=1.0):
                group = waiting.pop(outcome.audio_hash, [])
                if outcome.ok:
                    assert outcome.result_json is not None
                    # Committed before anything else is written: the store is the truth
                    # a rerun starts from.
                    results.put(outcome.audio_hash, settings_key, outcome.result_json)
                for i, source in enumerate(group):
                    if outcome.ok:
                        record(source, "ok" if i == 0 else "skipped", outcome.audio_hash,
                               result_text=outcome.result_json, outcome=outcome)
                    else:
                        record(source, "failed", outcome.audio_hash, outcome=outcome,
                               kind=outcome.error_type or "Error",
                               message=outcome.error or "")
            progress.draw()
    except KeyboardInterrupt:
        summary.interrupted = True
    except BaseException:
        crashed = True
        raise
    finally:
        if runner is not None:
            runner.close(kill=summary.interrupted or crashed)
        if writer is not None:
            writer.close()
            if rewrites and output is not None:
                compact(output)
        failures.close()
        if own_store:
            results.close()
        summary.wall_seconds = time.monotonic() - t0
    progress.finish(summary)
    return summary


def _make_runner(settings_json: str, workers: int, scheduler: Any, upload: bool,
                 timeout_s: float | None) -> Any:
    if scheduler is not None:
        from songmap.batch.cluster import DaskRunner

        return DaskRunner(settings_json, scheduler, upload=upload)
    from songmap.batch.local import LocalRunner

    return LocalRunner(settings_json, workers=workers, timeout_s=timeout_s)


def _resolve_exporters(names: Sequence[str]) -> dict[str, Any]:
    """Exporters by name, checked (and their packages imported) before any work starts."""
    if not names:
        return {}
    try:
        from songmap.export import get_exporter
    except ImportError:  # pragma: no cover - the export package is part of songmap
        raise InvalidParameterError("this songmap has no exporters (songmap.export)") from None
    out = {}
    for name in names:
        exporter = get_exporter(name)
        exporter.function()  # MissingDependencyError now, not after an hour of analysis
        out[exporter.name] = exporter
    return out


def _for_file(text: str, source: Source, exporters: dict[str, Any], root: Path,
              *, fresh: bool) -> tuple[str, float]:
    """The result JSON for this file (one line, this file's name) and its audio seconds;
    writes the exports (for a skipped file only those missing)."""
    from songmap.audio import display_name  # numpy: not at import (see batch.work)

    data = json.loads(text)
    name = display_name(source.path)
    if data.get("filename") != name or "\n" in text:
        data["filename"] = name
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    audio_s = float(data.get("audio", {}).get("duration", 0.0))
    if exporters:
        from songmap.export import save
        from songmap.schema import AnalysisResult

        result = None
        targets = export_paths(source, exporters, root)
        for fmt, target in targets.items():
            if not fresh and target.exists():
                continue
            if result is None:
                result = AnalysisResult.model_validate(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            options = {"location": str(source.path.resolve())} \
                if "location" in exporters[fmt].options else {}
            save(result, fmt, target, **options)
    return text, audio_s


def export_paths(source: Source, exporters: dict[str, Any], root: Path) -> dict[str, Path]:
    """Where each format of ``source`` goes: ``root/<relative name minus extension><ext>``,
    with the format's name added when two chosen formats share an extension."""
    stem = Path(source.name).with_suffix("")
    exts = [e.extension for e in exporters.values()]
    out = {}
    for fmt, e in exporters.items():
        tag = f".{fmt}" if exts.count(e.extension) > 1 else ""
        out[fmt] = root / f"{stem}{tag}{e.extension}"
    return out
