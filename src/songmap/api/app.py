"""``create_app(settings)``: the FastAPI application of ``songmap serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from songmap._version import __version__
from songmap.api.errors import install_error_handlers
from songmap.api.routes import analyze, health, jobs, library, live, web
from songmap.api.security import AccessGuard
from songmap.api.service import Service
from songmap.api.settings import ServeSettings, get_settings
from songmap.api.uploads import BodySizeLimit

#: Room for the multipart envelope around the file itself.
_MULTIPART_SLACK = 64 * 1024


def create_app(settings: ServeSettings | None = None, *,
               task: Callable[..., Any] | None = None) -> FastAPI:
    """The app. Workers start (and load their models) in the lifespan, not here.

    ``task`` replaces the function the workers run (``songmap.workers.analyze``);
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

    docs_assets = _offline_docs_assets()
    app = FastAPI(
        title="songmap",
        # FastAPI's own /docs and /redoc load their scripts from a CDN; when the assets are
        # installed (fastapi-offline, in the serve extra) they are served from here instead.
        docs_url=None if docs_assets else "/docs",
        redoc_url=None if docs_assets else "/redoc",
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
    # outermost: refusals of the guard carry the security headers too
    app.add_middleware(AccessGuard, settings=settings)
    for module in (analyze, jobs, health, library, web, live):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=web.WEB_DIR), name="static")
    if docs_assets:
        _serve_docs(app, docs_assets)
    if settings.api_key is not None:
        _document_the_key(app)
    return app


def _document_the_key(app: FastAPI) -> None:
    """Name the API key in the OpenAPI schema, so /docs offers "Authorize" and sends it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        schema["security"] = [{"bearer": []}, {"apiKey": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _offline_docs_assets() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").exists() else None


def _serve_docs(app: FastAPI, assets: Path) -> None:
    app.mount("/docs-static", StaticFiles(directory=assets), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} API",
            redoc_js_url="/docs-static/redoc.standalone.js",
            redoc_favicon_url="/docs-static/favicon.png", with_google_fonts=False,
        )
