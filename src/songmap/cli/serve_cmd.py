"""``songmap serve``: the HTTP API and the web page (needs the ``serve`` extra)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from songmap.errors import InvalidParameterError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="run the HTTP API and the web page",
        description="Serve the API (POST /analyze-timeline, /analyze, /jobs; docs at /docs) "
                    "and the web page at /. Every option can also be set in the environment "
                    "as SONGMAP_<OPTION> (e.g. SONGMAP_MAX_UPLOAD_MB=100).",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--workers", type=int,
                   help="analysis processes, each loads the models once (default 1)")
    p.add_argument("--data-dir", type=Path,
                   help="jobs, pending uploads and the result store "
                        "(default ~/.local/share/songmap)")
    p.add_argument("--store", type=Path, help="result store file (default <data-dir>/results.sqlite)")
    p.add_argument("--max-upload-mb", type=float, help="largest upload accepted (default 200)")
    p.add_argument("--max-duration", type=float, metavar="SECONDS",
                   help="refuse longer audio (default 3 hours)")
    p.add_argument("--analysis-threads", "--threads", dest="analysis_threads", type=int,
                   metavar="N", help="threads one analysis uses in a worker "
                                     "(default: cores / workers, at least 1)")
    p.add_argument("--max-memory", type=float, metavar="MB",
                   help="memory one analysis may use in a worker; past it the answer is 413 "
                        "(default: the machine's RAM / workers, at least 1.5 GB; 0: no cap)")
    p.add_argument("--scheduler", metavar="tls://HOST:8786",
                   help="run the analyses on this Dask cluster instead of local workers "
                        "(needs the batch extra; --workers is then ignored)")
    p.add_argument("--api-key", metavar="KEY",
                   help="clients must send it (Authorization: Bearer KEY or X-API-Key: KEY); "
                        "better given as SONGMAP_API_KEY, which other users cannot see in ps")
    p.add_argument("--no-api-key", action="store_true",
                   help="allow listening beyond loopback without a key (anyone reaching the "
                        "port can upload and read every result)")
    p.add_argument("--allowed-hosts", metavar="NAME,...",
                   help="host names clients use to reach this server, besides loopback names, "
                        "IP addresses and --host ('.example.org' includes subdomains)")
    p.add_argument("--job-retention", metavar="DURATION",
                   help="keep finished jobs this long: seconds, 30m, 12h, 7d or never "
                        "(default 7d)")
    p.add_argument("--max-connections", type=int,
                   help="open connections at once (default 200)")
    p.set_defaults(func=cmd_serve)


#: Option (its argparse dest) -> ServeSettings field: the settings given on the command
#: line, and the option an error names (the API key's value is never named).
_OPTION_FIELDS = {
    "host": "host", "port": "port", "workers": "workers", "data_dir": "data_dir",
    "store": "store_path", "max_upload_mb": "max_upload_mb", "max_duration": "max_duration_s",
    "scheduler": "dask_scheduler", "allowed_hosts": "allowed_hosts",
    "job_retention": "job_retention", "max_connections": "max_connections",
    "analysis_threads": "analysis_threads", "max_memory": "worker_memory_mb",
}


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
        from pydantic import ValidationError

        from songmap.api.app import create_app
        from songmap.api.settings import ServeSettings
    except ImportError as exc:
        raise InvalidParameterError(
            f"songmap serve needs the service extra ({exc.name} is missing): "
            'pip install "songmap[serve]"'
        ) from None
    values = {field: getattr(args, option) for option, field in _OPTION_FIELDS.items()} | {
        "api_key": args.api_key, "allow_no_api_key": True if args.no_api_key else None}
    try:
        settings = ServeSettings(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"]))
        # the option and the variable: a bad value may come from either
        option = next((f"--{o.replace('_', '-')} or " for o, f in _OPTION_FIELDS.items()
                       if f == field), "")
        raise InvalidParameterError(
            f"invalid {option}SONGMAP_{field.upper()}: {first['msg']}"
        ) from None
    from songmap.api.security import exposure_problem, is_loopback

    problem = exposure_problem(settings)
    if problem:
        raise InvalidParameterError(problem)
    log = logging.getLogger("songmap")
    if settings.api_key is None and not is_loopback(settings.host):
        log.warning("WARNING: no API key: anyone who can reach %s:%d can upload files and "
                    "read every stored result", settings.host, settings.port)
    from songmap.api.service import check_databases

    check_databases(settings)  # a damaged store: a message and exit 1, not a traceback
    if settings.dask_scheduler:
        # An unreachable scheduler: a message and exit 2 now, not a server that answers 503.
        from songmap.workers.dask import connect

        connect(settings.dask_scheduler, timeout_s=settings.dask_connect_timeout_s).close()
    from songmap.cli.startup import ensure_numba_cache_dir

    ensure_numba_cache_dir()  # before the worker processes start: they inherit it
    log.setLevel(logging.INFO)
    log.info(
        "serving on http://%s:%d (%s, data in %s)", settings.host, settings.port,
        f"Dask cluster {settings.dask_scheduler}" if settings.dask_scheduler
        else f"{settings.workers} workers", settings.data_dir,
    )
    from songmap.api.connections import uvicorn_options

    uvicorn.run(create_app(settings), **uvicorn_options(settings), log_level="info")
    return 0
