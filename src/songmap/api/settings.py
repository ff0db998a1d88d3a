"""Service settings, read from the environment (``SONGMAP_*``) by pydantic-settings."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from songmap.config import AnalysisSettings
from songmap.workers import WorkerSpec, default_memory_mb


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "songmap"


class ServeSettings(BaseSettings):
    """How ``songmap serve`` runs. Every field can be set as ``SONGMAP_<FIELD>``."""

    # allow_inf_nan: an infinite limit crashed the start-up (--max-duration inf) or every
    # worker (--max-memory inf); "never" is how a limit is switched off
    model_config = SettingsConfigDict(env_prefix="SONGMAP_", frozen=True, extra="ignore",
                                      populate_by_name=True, allow_inf_nan=False)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(
        1, ge=1, le=64,
        description="Analysis processes, each with its own models loaded once (~0.5-3 GiB each).",
    )
    max_queue: int = Field(
        8, ge=0, description="Synchronous analyses that may wait for a worker before 503."
    )
    max_jobs: int = Field(100, ge=1, description="Queued jobs accepted before POST /jobs says 503.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with a 503.")
    max_upload_mb: float = Field(200.0, gt=0, description="Largest accepted upload (MB, 10^6 bytes).")
    analysis_timeout_s: float = Field(
        900.0, gt=0, description="Wall time one analysis may take before its worker is replaced."
    )
    job_attempts: int = Field(
        2, ge=1, description="Times a job is started before a server restart marks it failed."
    )
    process_jobs: bool = Field(
        True, description="Run queued jobs here (false: only accept and report them)."
    )
    data_dir: Path = Field(default_factory=_default_data_dir,
                           description="Jobs database, pending uploads, and the default store.")
    store_path: Path | None = Field(
        None, description="Result store (SQLite); default <data_dir>/results.sqlite."
    )
    max_duration_s: float | None = Field(
        None, gt=0, description="Refuse longer audio (default: the analysis default, 3 h)."
    )
    analysis_threads: int | None = Field(
        None, ge=1, le=64,
        # SONGMAP_THREADS (and ``threads=``): its name before it was told apart from the
        # other "threads". Only prefixed names: an alias is read from the environment as is.
        validation_alias=AliasChoices("SONGMAP_ANALYSIS_THREADS", "SONGMAP_THREADS"),
        description="Threads one analysis uses in a worker (default: cores / workers, at "
                    "least 1; with 1 a worker runs its stages in turn instead of competing "
                    "with the others). SONGMAP_THREADS is read too.",
    )
    worker_memory_mb: float | None = Field(
        None, ge=0,
        description="Memory one analysis may use in a worker (MB of address space beyond "
                    "the loaded worker's; past it the analysis answers 413). Default: the "
                    "machine's RAM / workers (at least 1.5 GB); 0 turns the cap off. With "
                    "--dask-scheduler: the cap on the cluster's workers when set, else "
                    "each worker's --memory-limit / threads (README).",
    )
    dask_scheduler: str | None = Field(
        None, description="Run the analyses on this Dask cluster (tls://HOST:8786; README) instead of "
                          "local worker processes; uploads are sent to it as bytes, results "
                          "come back to this server's store. Needs the batch extra.",
    )
    dask_connect_timeout_s: float = Field(
        20.0, gt=0, description="How long to try reaching the Dask scheduler at start."
    )

    # -- access control (songmap.api.security) ----------------------------------------------
    api_key: SecretStr | None = Field(
        None, description="Clients send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'. "
                          "Required when listening beyond loopback (unless allow_no_api_key).",
    )
    allow_no_api_key: bool = Field(
        False, description="Serve beyond loopback without a key (anyone who reaches the port "
                           "can upload and read every result).",
    )
    allowed_hosts: str = Field(
        "", description="Host names clients may use besides loopback names, IP addresses and "
                        "the listen address (comma-separated; '.example.org' also allows its "
                        "subdomains; '*' allows any). Other Host headers get 400: a web page "
                        "on another site cannot reach this server by DNS rebinding.",
    )
    job_retention: float | None = Field(
        7 * 86400.0, gt=0,
        description="Seconds (or 30m, 12h, 7d) a finished job is kept; after it the job "
                    "answers 410 and its record goes. 'never' keeps jobs for ever.",
    )
    # -- connection limits (songmap serve) ---------------------------------------------------
    max_connections: int = Field(
        200, ge=1, description="Open connections at once; past it a new one is closed at once "
                               "(and requests past it get 503 from uvicorn).")
    keep_alive_s: int = Field(5, ge=1, description="Idle keep-alive connections close after it.")
    header_timeout_s: float = Field(
        10.0, gt=0, description="A connection whose request head has not arrived in this "
                                "time is closed (slow or silent clients).")
    body_idle_timeout_s: float = Field(
        30.0, gt=0, description="An upload that sends nothing for this long is dropped (408).")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _join_hosts(cls, value: object) -> object:
        # a plain string, so that pydantic-settings does not read the variable as JSON
        return ",".join(value) if isinstance(value, (list, tuple)) else value

    @property
    def allowed_host_names(self) -> tuple[str, ...]:
        """``allowed_hosts`` as lower-case names."""
        return tuple(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())

    @field_validator("job_retention", mode="before")
    @classmethod
    def _retention_seconds(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _no_empty_key(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """``threads=`` (the old name of ``analysis_threads``) still works; given in code,
        it wins over the environment as every argument does."""
        if isinstance(data, dict) and "threads" in data:
            data = {k: v for k, v in data.items()
                    if k not in ("SONGMAP_ANALYSIS_THREADS", "SONGMAP_THREADS")}
            data.setdefault("analysis_threads", data.pop("threads"))
        return data

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def result_store_path(self) -> Path:
        return self.store_path or self.data_dir / "results.sqlite"

    @property
    def jobs_path(self) -> Path:
        return self.data_dir / "jobs.sqlite"

    @property
    def uploads_dir(self) -> Path:
        """Uploads of queued jobs (kept until the job ends)."""
        return self.data_dir / "uploads"

    @property
    def scratch_dir(self) -> Path:
        """Uploads being analysed synchronously (deleted when the request ends)."""
        return self.data_dir / "scratch"

    def analysis_settings(self) -> AnalysisSettings:
        values: dict[str, object] = {}
        if self.max_duration_s is not None:
            values["max_duration_s"] = self.max_duration_s
        values["threads"] = self.analysis_threads or max(
            1, (os.cpu_count() or 1) // max(self.workers, 1))
        return AnalysisSettings(**values)

    def worker_spec(self) -> WorkerSpec:
        """How each local worker process is set up."""
        memory = self.worker_memory_mb
        if memory is None:
            memory = default_memory_mb(self.workers)
        return WorkerSpec(self.analysis_settings(), memory_mb=memory or None)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float | None:
    """Seconds in ``"90"``, ``"30m"``, ``"12h"`` or ``"7d"``; ``None`` for ``"never"``."""
    value = text.strip().lower()
    if value in ("never", "none", "off"):
        return None
    unit = _UNITS.get(value[-1:]) if value[-1:].isalpha() else 1.0
    number = value[:-1] if value[-1:].isalpha() else value
    try:
        if unit is None:
            raise ValueError
        return float(number) * unit
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 3600, 30m, 12h, 7d, never)") from None


@lru_cache(maxsize=1)
def get_settings() -> ServeSettings:
    """The process's settings (tests pass their own to ``create_app`` instead)."""
    return ServeSettings()
