"""Liveness, readiness and version."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from songmap._version import __version__
from songmap.api.formats import available_formats
from songmap.api.models import Health, Readiness, VersionInfo
from songmap.schema import SCHEMA_VERSION

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}},
            summary="The workers have loaded their models")
async def readyz(request: Request) -> JSONResponse:
    pool = request.app.state.service.pool
    if pool.start_error is not None and pool.workers_ready == 0:
        body = Readiness(status="failed", workers=pool.size, workers_ready=0,
                         detail=str(pool.start_error))
    else:
        body = Readiness(status="ready" if pool.ready else "starting", workers=pool.size,
                         workers_ready=pool.workers_ready)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)


@router.get("/version", response_model=VersionInfo, summary="Versions, settings, models")
async def version(request: Request) -> VersionInfo:
    from songmap.models.registry import ModelRegistry

    service = request.app.state.service
    return VersionInfo(
        songmap=__version__, schema_version=SCHEMA_VERSION,
        analysis_settings={**service.analysis_settings.model_dump(mode="json"),
                           "formats": available_formats()},
        models=ModelRegistry().describe(),
    )
