"""``create_app(settings)``: the FastAPI application of ``songmap serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from songmap import __version__
from songmap.api.errors import install_error_handlers
from songmap.api.routes import analyze, health, jobs, web
from songmap.api.service import Service
from songmap.api.settings import ServeSettings, get_settings
from songmap.api.uploads import BodySizeLimit

#: Room for the multipart envelope around the file itself.
_MULTIPART_SLACK = 64 * 1024


def create_app(settings: ServeSettings | None = None, *,
               task: Callable[..., Any] | None = None) -> FastAPI:
    """The app. Workers start (and load their models) in the lifespan, not here.

    ``task`` replaces the function the workers run (``songmap.api.worker.analyze_file``);
    it must be a module-level function so a worker process can import it.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, task=task)
        app.state.service = service
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="songmap",
        version=__version__,
        description="Map a recording in time: tempo, key, meter, bars, beats with "
                    "transients, and the chord of each bar. Upload a file to "
                    "`/analyze-timeline`, `/analyze`, or `/jobs` for long ones.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes + _MULTIPART_SLACK,
                       upload_limit=settings.max_upload_bytes)
    for module in (analyze, jobs, health, web):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=web.WEB_DIR), name="static")
    return app
