"""``songmap batch``: analyse whole libraries, resumably, locally or on a Dask cluster."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "batch", help="analyse many files (folders, globs); resumable; local or Dask",
        description="Analyse every audio file under PATH... Results go to the result store "
        "(shared with `songmap serve`), so a rerun skips what is done. Exit status 0 when "
        "every file was analysed, 1 when some failed, 130 when interrupted, 10 when another "
        "run writes the same -o and cannot share it (Windows).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="audio files, folders (searched recursively) or globs ('**/*.mp3')")
    p.add_argument("-o", "--output", metavar="FILE.jsonl",
                   help="also write one JSON line per file (result or error) here")
    p.add_argument("--export", action="append", default=[], metavar="FORMAT",
                   help="also write each result in this format (repeatable; "
                        "see songmap.export, e.g. jams, midi, lab, rekordbox)")
    p.add_argument("--export-dir", metavar="DIR",
                   help="where exports go (default: beside -o, else the current folder)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: one per core)")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="send the work to this Dask scheduler instead of local processes")
    p.add_argument("--upload", action="store_true",
                   help="with --scheduler: send each file's bytes (workers cannot see the paths)")
    p.add_argument("--store", metavar="PATH",
                   help="result store (SQLite; default: the service's, "
                        "$SONGMAP_STORE_PATH or ~/.local/share/songmap/results.sqlite)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", default=900.0,
                   help="stop an analysis (local worker) after this long (default 900)")
    p.add_argument("--max-duration", type=float, metavar="SECONDS",
                   help="refuse longer audio (default 3 hours)")
    p.add_argument("--vocabulary", choices=["majmin", "sevenths"], help="chord labels")
    p.add_argument("--analysis-threads", "--threads", dest="analysis_threads", type=int,
                   metavar="N", help="threads one analysis uses in a worker (default 1: more "
                                     "workers beat more threads; --threads is the old name)")
    p.add_argument("--max-memory", type=float, metavar="MB",
                   help="memory one analysis may use in a worker (local or Dask); a file needing more "
                        "is recorded as failed (default: the machine's RAM / workers, at "
                        "least 1.5 GB; a Dask worker's --memory-limit / threads; 0: no cap)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary at the end")
    from songmap.cli.options import add_override_options

    add_override_options(p)  # the same grid for every file (e.g. a DJ set's --bpm 120-130)
    p.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    from songmap.cli.analyze_files import export_formats

    export_formats(args.export)  # a typo in --export is answered before anything loads
    from songmap.batch import Progress, run_batch
    from songmap.cli.options import settings_from_args
    from songmap.errors import InvalidParameterError

    settings = settings_from_args(args)  # (the threads are the workers', passed separately)
    if args.analysis_threads is not None and args.analysis_threads < 1:
        raise InvalidParameterError("--analysis-threads must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise InvalidParameterError("--timeout must be positive")
    from songmap.cli.startup import announce_kernel_compile, ensure_numba_cache_dir

    ensure_numba_cache_dir()  # before the worker processes start: they inherit it
    if not args.scheduler and any(Path(p).exists() or any(c in p for c in "*?[")
                                  for p in args.paths):
        announce_kernel_compile()  # (Dask workers have caches of their own, elsewhere)
    _stop_on_sigterm()
    summary = run_batch(
        args.paths, store=args.store, settings=settings, output=args.output,
        exports=args.export, export_dir=args.export_dir, workers=args.workers,
        scheduler=args.scheduler, upload=args.upload, timeout_s=args.timeout,
        analysis_threads=args.analysis_threads, memory_mb=args.max_memory,
        progress=Progress(quiet=args.quiet),
    )
    return summary.exit_code


def _stop_on_sigterm() -> None:
    """``kill`` (SIGTERM) stops a batch like Ctrl-C: workers stopped, outputs closed cleanly,
    summary printed; the next run continues from the store."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
