"""The batch driver: discover, skip what the store has, analyse the rest, write outputs.

One loop in the calling process owns the store, the JSONL file and the exports; the
workers (local processes or Dask) only analyse. Every finished file is committed to the
store first and then appended to the JSONL file, so after Ctrl-C, a crash or a power cut
a rerun finds it in the store and skips it, and repairs the JSONL file from there.

Runs beside each other (the same files, the same store, the same output) share the work
(``songmap.batch.locks``): a file another run is analysing is left to it and its result
taken from the store; every run appends to the one output, which is compacted only by the
last run to finish. A second run that does nothing new gives the same outputs as the
first, without analysing anything again, so a script or a cron job that starts a batch
while one is running gets complete outputs and costs nothing twice.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from songmap.batch.discover import Source, discover_audio, escape_surrogates, hash_input
from songmap.batch.failures import FailureLog
from songmap.batch.jsonl import JsonlTail, JsonlWriter, compact, repair_torn_tail
from songmap.batch.locks import Claim, ClaimDir, OutputLock
from songmap.batch.progress import BatchSummary, Failure, Progress
from songmap.config import AnalysisSettings
from songmap.errors import InvalidParameterError, storage_error
from songmap.store import ResultStore
from songmap.workers import Job, Outcome, WorkerSpec, default_memory_mb

log = logging.getLogger("songmap.batch")

PathLike = str | os.PathLike[str]

#: How often a run looks whether files another run was analysing are done (seconds).
DEFERRED_POLL_S = 0.5


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


#: Threads one analysis uses in a batch worker: 1, measured faster than 2 even for a lone
#: worker on 2 cores (benchmarks/batch.py: onnxruntime's extra threads spin on a busy
#: machine). More workers beat more threads.
DEFAULT_ANALYSIS_THREADS = 1


@dataclass(frozen=True)
class RunOptions:
    """How the files are analysed: the workers, not what the analysis does."""

    workers: int
    scheduler: str | Any | None
    upload: bool
    timeout_s: float | None
    spec: WorkerSpec
    #: ``--max-memory`` as given, for Dask workers (None: each sizes its own from its
    #: memory limit; 0: no cap)
    cluster_memory_mb: float | None = None


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
    analysis_threads: int | None = None,
    memory_mb: float | None = None,
    progress: Progress | None = None,
    on_record: Callable[[Record, Any], None] | None = None,
    threads: int | None = None,
) -> BatchSummary:
    """Analyse every audio file under ``paths``; return what happened.

    ``store``: the result store (default: the service's). ``output``: a JSONL file, one
    line per file. ``exports``: format names from ``songmap.export.EXPORTERS``, written to
    ``export_dir`` (default: beside ``output``, else the current folder) under each file's
    relative name. ``workers``: local processes (default: one per core) unless
    ``scheduler`` (an address like ``tcp://host:8786`` or a ``distributed.Client``) is
    given. ``analysis_threads`` (old name ``threads``): threads one analysis uses in a
    worker (default 1); it does not change the results, so it is not part of the store's
    key. ``memory_mb``: each local worker's memory cap in MB (default: sized from the
    machine, ``songmap.workers.default_memory_mb``; 0: none); a file needing more is
    recorded as failed (``MemoryLimitError``). On Dask workers the same cap per analysis
    thread (default: each worker's ``--memory-limit`` / threads; ``songmap.workers.dask``).
    ``on_record(record, runner)`` is called after every file is recorded.
    """
    t0 = time.monotonic()
    settings = settings or AnalysisSettings()
    options = _run_options(settings, workers=workers, scheduler=scheduler, upload=upload,
                           timeout_s=timeout_s, threads=analysis_threads or threads,
                           memory_mb=memory_mb)
    exporters = _resolve_exporters(exports)
    export_root = Path(".")
    if exports:
        export_root = Path(export_dir) if export_dir else (
            Path(output).parent if output else Path.cwd())
        try:  # a folder that cannot be made is said now, not as every file's failure
            export_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(f"--export-dir {export_root}", exc) from exc
    discovery = discover_audio(paths)
    own_store = not isinstance(store, ResultStore)
    results = store if isinstance(store, ResultStore) else \
        ResultStore(store or default_store_path())
    batch = _Batch(results, settings.cache_key(), options, output=output,
                   exporters=exporters, export_root=export_root,
                   progress=progress or Progress(quiet=True, show_summary=False),
                   on_record=on_record)
    try:
        batch.run(discovery)
    finally:
        if own_store:
            results.close()
        batch.summary.wall_seconds = time.monotonic() - t0
    batch.progress.finish(batch.summary)
    return batch.summary


def _run_options(settings: AnalysisSettings, *, workers: int | None, scheduler: Any,
                 upload: bool, timeout_s: float | None, threads: int | None,
                 memory_mb: float | None) -> RunOptions:
    """The workers' options, checked before anything starts."""
    if upload and scheduler is None:
        raise InvalidParameterError("--upload sends files to Dask workers; give --scheduler too")
    n_workers = workers or default_workers()
    if n_workers < 1:
        raise InvalidParameterError("--workers must be at least 1")
    if memory_mb is not None and not 0 <= memory_mb < math.inf:
        raise InvalidParameterError("--max-memory must be positive (0: no cap)")
    if timeout_s is not None and not 0 < timeout_s < math.inf:
        raise InvalidParameterError("--timeout must be a positive number of seconds")
    given = memory_mb
    if memory_mb is None:
        memory_mb = default_memory_mb(n_workers)
    threads = threads or DEFAULT_ANALYSIS_THREADS
    spec = WorkerSpec(settings.model_copy(update={"threads": threads}), blas_threads=threads,
                      memory_mb=memory_mb or None)
    return RunOptions(n_workers, scheduler, upload, timeout_s, spec, given)


class _Batch:
    """One run's state: the files in flight, the outputs, the counts."""

    def __init__(self, results: ResultStore, settings_key: str, options: RunOptions, *,
                 output: PathLike | None, exporters: dict[str, Any], export_root: Path,
                 progress: Progress, on_record: Callable[[Record, Any], None] | None) -> None:
        self.results, self.settings_key, self.options = results, settings_key, options
        self.output, self.exporters, self.export_root = output, exporters, export_root
        self.progress, self.on_record = progress, on_record
        self.summary = BatchSummary()
        self.failures = FailureLog(results.path)
        self.written: dict[str, str] = {}  # path -> audio_hash of an ok line in the JSONL
        # paths of the lines read back from the JSONL (by ``_catch_up``, every line: this
        # run's too): one read twice is a line written twice, a rewrite of an earlier run's
        # line or two runs side by side, and the output needs compacting
        self.in_file: set[str] = set()
        self.writer: JsonlWriter | None = None
        self.rewrites = 0
        self.runner: Any = None
        self.waiting: dict[str, list[Source]] = {}  # audio hash -> files with those bytes
        # Files another run is analysing (audio hash -> files), looked at every
        # DEFERRED_POLL_S; the claims this run holds on the files it sends.
        self.claims = ClaimDir(results.path.with_name(results.path.name + ".claims"))
        self.deferred: dict[str, list[Source]] = {}
        self.held: dict[str, Claim] = {}
        self.next_poll = 0.0
        self.started_at = time.time()
        self.output_lock: OutputLock | None = None
        self.tail: JsonlTail | None = None

    def run(self, discovery: Any) -> None:
        self.summary.total = len(discovery.sources) + len(discovery.missing)
        crashed = False
        try:
            self._read_output()
            self.progress.start(self.summary)
            for arg, reason in discovery.missing:
                self.record(Source(Path(arg), arg), "failed", "", kind="InputNotFoundError",
                            message=reason)
            self._loop(iter(discovery.sources))
        except KeyboardInterrupt:
            self.summary.interrupted = True
        except BaseException:
            crashed = True
            raise
        finally:
            self._close(kill=self.summary.interrupted or crashed)

    def _read_output(self) -> None:
        """Join the JSONL file's writers; read what it holds, so a rerun adds no duplicate
        lines."""
        if self.output is None:
            return
        from songmap.outputs import is_special_file

        out = Path(self.output)
        self.output_lock = OutputLock(out)
        try:
            self.output_lock.enter(lambda: repair_torn_tail(out))
            if not is_special_file(out):  # /dev/null, a pipe: nothing to read back
                self.tail = JsonlTail(out)
                self._catch_up()
            self.writer = JsonlWriter(out, repair=False)
        except OSError as exc:  # a folder given as -o, a name too long
            raise storage_error(f"the output {out}", exc) from exc

    def _catch_up(self) -> None:
        """Take in the lines written since the last look (by this run or one beside it)."""
        if self.tail is None:
            return
        for rec in self.tail.read_new():
            p = rec.get("path")
            if isinstance(p, str):
                if p in self.in_file:
                    # (two runs can each write a file's line before reading the other's,
                    # when both took it from the store at once)
                    self.rewrites += 1
                self.in_file.add(p)
                if rec.get("status") == "ok":
                    self.written[p] = rec.get("audio_hash", "")
                else:
                    self.written.pop(p, None)

    def _loop(self, sources: Iterator[Source]) -> None:
        exhausted = False
        while True:
            if not exhausted:
                exhausted = self._feed(sources)
            self._poll_deferred()
            if self.runner is None or self.runner.pending() == 0:
                if exhausted and not self.deferred:
                    return
                if exhausted:  # only files another run is analysing are left
                    time.sleep(max(0.0, self.next_poll - time.monotonic()))
                    self.progress.draw()
                continue
            for outcome in self.runner.wait(timeout=1.0):
                self._finished(outcome)
            self.progress.draw()

    def _feed(self, sources: Iterator[Source]) -> bool:
        """Send files until the runner is full; True when there are no more."""
        while self.runner is None or self.runner.free_slots() > 0:
            source = next(sources, None)
            if source is None:
                return True
            self._start(source)
        return False

    def _start(self, source: Source) -> None:
        """Skip, group or send one file."""
        try:
            audio_hash = hash_input(source.path)
        except OSError as exc:
            self.record(source, "failed", "", kind="InputNotFoundError",
                        message=f"cannot read the file ({exc.strerror or exc})")
            return
        if audio_hash in self.waiting:  # the same bytes under another name
            self.waiting[audio_hash].append(source)
            return
        text = self.results.get(audio_hash, self.settings_key)
        if text is not None:
            self.record(source, "skipped", audio_hash, result_text=text)
            return
        if audio_hash in self.deferred:
            self.deferred[audio_hash].append(source)
            return
        claim = self.claims.try_claim(audio_hash, self.settings_key)
        if claim is None:  # another run is analysing these bytes: its result is awaited
            if not self.deferred:
                log.info("%s is being analysed by another batch run; its result will be "
                         "taken from the store", escape_surrogates(str(source.path)))
            self.deferred[audio_hash] = [source]
            return
        self._send(audio_hash, [source], claim)

    def _send(self, audio_hash: str, group: list[Source], claim: Claim) -> None:
        """Analyse ``group`` (files with the same bytes) under this run's ``claim``."""
        # Another run may have finished them between our look in the store and our claim.
        text = self.results.get(audio_hash, self.settings_key)
        if text is not None:
            claim.release()
            for source in group:
                self.record(source, "skipped", audio_hash, result_text=text)
            return
        if self.runner is None:
            self.runner = _make_runner(self.options)
        self.held[audio_hash] = claim
        self.waiting[audio_hash] = group
        self.runner.submit(Job(str(group[0].path), _display_name(group[0].path), audio_hash))

    def _poll_deferred(self) -> None:
        """Take up the files another run was analysing once it is done with them: its
        result (skipped), its failure in this run's time (failed, the same reason), or,
        when it gave them up without either (it died), analyse them here."""
        if not self.deferred or time.monotonic() < self.next_poll:
            return
        self.next_poll = time.monotonic() + DEFERRED_POLL_S
        for audio_hash, group in list(self.deferred.items()):
            text = self.results.get(audio_hash, self.settings_key)
            claim = None if text is not None else \
                self.claims.try_claim(audio_hash, self.settings_key)
            if text is None and claim is None:
                continue  # still being analysed
            del self.deferred[audio_hash]
            failure = None if claim is None else \
                self.failures.find(audio_hash, self.settings_key, since=self.started_at)
            if text is not None:
                for source in group:
                    self.record(source, "skipped", audio_hash, result_text=text)
            elif failure is not None:
                assert claim is not None
                claim.release()
                for source in group:
                    self.record(source, "failed", audio_hash, kind=failure[0],
                                message=failure[1])
            else:
                assert claim is not None
                self._send(audio_hash, group, claim)

    def _finished(self, outcome: Outcome) -> None:
        group = self.waiting.pop(outcome.audio_hash, [])
        if outcome.ok:
            assert outcome.result_json is not None
            # Committed before anything else is written: the store is the truth a rerun
            # starts from.
            self.results.put(outcome.audio_hash, self.settings_key, outcome.result_json)
        for i, source in enumerate(group):
            if outcome.ok:
                self.record(source, "ok" if i == 0 else "skipped", outcome.audio_hash,
                            result_text=outcome.result_json, outcome=outcome)
            else:
                self.record(source, "failed", outcome.audio_hash, outcome=outcome,
                            kind=outcome.error_type or "Error", message=outcome.error or "")
        claim = self.held.pop(outcome.audio_hash, None)
        if claim is not None:  # after the store and the failure log have it
            claim.release()

    def record(self, source: Source, status: str, audio_hash: str, *,
               result_text: str | None = None, outcome: Outcome | None = None,
               kind: str = "", message: str = "") -> None:
        """Count, log and write one file's outcome."""
        self._catch_up()
        path = str(source.path)  # lossless (surrogates for bytes that are not UTF-8)
        shown = escape_surrogates(path)  # for the failure log and the terminal
        audio_s = 0.0
        quick = status == "skipped" and not self.exporters and self.written.get(path) == audio_hash
        if status in ("ok", "skipped") and not quick:
            assert result_text is not None
            try:
                result_text, audio_s = _for_file(result_text, source, self.exporters,
                                                 self.export_root, fresh=status == "ok")
            except Exception as exc:  # noqa: BLE001 - an export failure fails this file only
                status, kind, message = "failed", type(exc).__name__, f"export failed: {exc}"
        if status == "failed":
            # an error's text names the file: it must be encodable text too
            kind, message = escape_surrogates(kind), escape_surrogates(message)
        self._count(status, shown, audio_hash, audio_s, kind, message)
        self._write_line(source, status, audio_hash, result_text, kind, message)
        wall = outcome.wall_seconds if outcome else 0.0
        self.progress.record(status, shown, audio_seconds=audio_s, wall_seconds=wall,
                             error=f"{kind}: {message}" if status == "failed" else None)
        if self.on_record is not None:
            self.on_record(Record(source, status, audio_hash, outcome), self.runner)

    def _count(self, status: str, shown: str, audio_hash: str, audio_s: float, kind: str,
               message: str) -> None:
        if status == "ok":
            self.summary.ok += 1
            self.summary.audio_seconds += audio_s
        elif status == "skipped":
            self.summary.skipped += 1
        else:
            self.summary.failed += 1
            self.summary.failures.append(Failure(shown, kind, message))
            self.failures.record(shown, self.settings_key, audio_hash, kind, message)
        if status != "failed":
            self.failures.clear(shown, self.settings_key)

    def _write_line(self, source: Source, status: str, audio_hash: str,
                    result_text: str | None, kind: str, message: str) -> None:
        path = str(source.path)
        if self.writer is None or (status == "skipped" and self.written.get(path) == audio_hash):
            return
        head = {"path": path, "name": source.name, "audio_hash": audio_hash, "status": "ok"}
        if status == "failed":
            line = json.dumps({**head, "status": "failed",
                               "error": {"type": kind, "message": message}},
                              ensure_ascii=False, separators=(",", ":"))
        else:
            text = json.dumps({**head, "cached": status == "skipped"}, ensure_ascii=False,
                              separators=(",", ":"))
            line = text[:-1] + ',"result":' + str(result_text) + "}"
        try:
            self.writer.append_line(line)
        except OSError as exc:  # a full disk: the batch stops; the store keeps what is done
            raise storage_error(f"the output {self.output}", exc) from exc
        self.written[path] = audio_hash if status != "failed" else ""

    def _close(self, *, kill: bool) -> None:
        if self.runner is not None:
            self.runner.close(kill=kill)
        for claim in self.held.values():
            claim.release()
        self.held.clear()
        if self.writer is not None:
            self.writer.close()
        # the lines written since the last look (also a run's beside this one): a path
        # twice in them makes this run compact, or ask the last one out to
        self._catch_up()
        if self.output_lock is not None:
            output = self.output
            self.output_lock.leave(lambda: compact(output) if output else 0,
                                   dirty=self.rewrites > 0)
        self.claims.close()
        self.failures.close()


def _make_runner(options: RunOptions) -> Any:
    if options.scheduler is not None:
        from songmap.workers.dask import DaskRunner

        return DaskRunner(options.spec.settings, options.scheduler, upload=options.upload,
                          memory_mb=options.cluster_memory_mb)
    from songmap.workers.local import LocalRunner

    return LocalRunner(options.spec, workers=options.workers, timeout_s=options.timeout_s)


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

    data = json.loads(text)
    name = _display_name(source.path)
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


def _display_name(path: Path) -> str:
    from songmap.audio import display_name  # numpy: not at import (a quick --help)

    return display_name(path)


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
