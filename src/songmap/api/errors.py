"""Errors of the service and the one place that turns any exception into an HTTP answer.

Every error body is ``{"error": {"type", "message", "id"}}``. ``id`` is null for a
client's mistake and a fresh hex id for a server fault (500): the same id is in the
server's log next to the traceback, so a user can quote it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from songmap import errors
from songmap.errors import AnalysisFailedError, WorkerCrashedError  # raised by the workers
from songmap.export import MissingDependencyError

log = logging.getLogger("songmap.api")


# -- errors only the service raises ---------------------------------------------------------
class ServiceError(errors.SongmapError):
    """Root of the errors the service itself raises."""


class UploadTooLargeError(ServiceError):
    """The request body is larger than ``max_upload_mb``."""


class QueueFullError(ServiceError):
    """Every worker is busy and the waiting line is full; try again later."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.retry_after_s))


class JobNotFoundError(ServiceError):
    """No job has this id."""


class UploadTimeoutError(ServiceError):
    """The client stopped sending its upload (a stalled or deliberately slow client)."""


class JobExpiredError(JobNotFoundError):
    """The job finished longer ago than the retention period and was removed."""


class NotAuthorizedError(ServiceError):
    """The server has an API key and the request did not carry it."""


class HostNotAllowedError(ServiceError):
    """The request's Host header is not a name this server answers to (DNS rebinding)."""


class CrossSiteRequestError(ServiceError):
    """A state-changing request sent by a page of another site (a cross-site form post)."""


class DiskFullError(ServiceError):
    """The server's disk filled up while receiving an upload (the server's problem)."""


class JobNotFinishedError(ServiceError):
    """The job has no result yet (or failed)."""


class ServiceNotReadyError(ServiceError):
    """The workers are not running (starting up or shutting down)."""


# -- the mapping: first match wins (subclasses before their parents) -----------------------
STATUS_CODES: list[tuple[type[BaseException], int]] = [
    (UploadTooLargeError, 413),
    (NotAuthorizedError, 401),
    (HostNotAllowedError, 400),
    (CrossSiteRequestError, 403),
    (DiskFullError, 507),
    (UploadTimeoutError, 408),
    (JobExpiredError, 410),
    (QueueFullError, 503),
    (ServiceNotReadyError, 503),
    (JobNotFoundError, 404),
    (JobNotFinishedError, 409),
    (WorkerCrashedError, 500),
    (AnalysisFailedError, 500),
    (errors.NotAudioError, 415),
    (errors.UndecodableAudioError, 422),
    (errors.AudioTooShortError, 422),
    (errors.AudioTooLongError, 413),
    (errors.InvalidParameterError, 400),
    (MissingDependencyError, 501),  # a format whose optional package is not installed
    (errors.InputNotFoundError, 400),
    (errors.AnalysisTimeoutError, 504),
    (errors.MemoryLimitError, 413),  # the audio needs more memory than a worker may use
    (errors.ModelError, 500),
    (errors.StorageError, 507),  # the server's disk or store, not the client's request
    (errors.SongmapError, 500),
]


def status_for(exc: BaseException) -> int:
    """The HTTP status for an exception (500 for anything unexpected)."""
    for cls, status in STATUS_CODES:
        if isinstance(exc, cls):
            return status
    return 500


class ErrorDetail(BaseModel):
    type: str
    message: str
    id: str | None = None


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


def error_payload(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, body, headers)`` for ``exc``; logs server faults with their id."""
    status = status_for(exc)
    error_id = None
    if status >= 500 and not isinstance(exc, (QueueFullError, ServiceNotReadyError,
                                              DiskFullError)):
        error_id = uuid.uuid4().hex[:12]
        log.error("error %s: %s: %s", error_id, type(exc).__name__, exc, exc_info=exc)
    if isinstance(exc, errors.SongmapError):
        kind, message = type(exc).__name__, str(exc)
    else:  # never leak internals of an unexpected failure to the client
        kind, message = "InternalError", "the server failed unexpectedly"
    if error_id:
        message = f"{message} (error id {error_id}; the server log has the details)"
    headers: dict[str, str] = {}
    if isinstance(exc, QueueFullError):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, NotAuthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="songmap"'
    if isinstance(exc, DiskFullError):
        headers["Retry-After"] = "60"
    body = ErrorBody(error=ErrorDetail(type=kind, message=message, id=error_id))
    return status, body.model_dump(), headers


def error_response(exc: BaseException) -> JSONResponse:
    status, body, headers = error_payload(exc)
    return JSONResponse(body, status_code=status, headers=headers)


#: Documented error answers for the OpenAPI schema of the analysis routes.
ANALYSIS_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad parameter or missing file field."},
    413: {"model": ErrorBody, "description": "Upload or audio longer than the limits, or "
                                             "an analysis past the worker's memory cap."},
    415: {"model": ErrorBody, "description": "Not audio, or a format no decoder reads."},
    422: {"model": ErrorBody, "description": "Undecodable (truncated, corrupt) or too short."},
    401: {"model": ErrorBody, "description": "The server has an API key; send it."},
    500: {"model": ErrorBody, "description": "Server fault; the body carries an error id."},
    503: {"model": ErrorBody, "description": "Queue full: retry after Retry-After seconds."},
    507: {"model": ErrorBody, "description": "The server's disk is full."},
}


_HOW = "send the recording as the multipart/form-data field 'file' (curl -F file=@song.mp3 URL)"


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through ``error_payload`` so all bodies share one shape."""

    @app.exception_handler(errors.SongmapError)
    async def _songmap(_: Request, exc: errors.SongmapError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = tuple(first.get("loc", ()))
        if loc == ("body", "file") and first.get("type") == "missing":
            return error_response(errors.InvalidParameterError(f"no file in the request; {_HOW}"))
        where = ".".join(str(x) for x in loc if x != "body") or "request"
        return error_response(errors.InvalidParameterError(f"{where}: {first.get('msg')}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400 and request.headers.get("content-type", "").startswith(
                "multipart/"):  # the multipart parser refused the body
            message = f"the upload is not valid multipart/form-data ({message}); {_HOW}"
        body = ErrorBody(error=ErrorDetail(type="HTTPError", message=message))
        return JSONResponse(body.model_dump(), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # the client went away mid-upload (a cancelled upload): nobody reads an answer, and
        # its partial file is already removed; not a server fault with a traceback
        log.info("%s %s: the client went away before its request was received",
                 request.method, request.url.path)
        return error_response(errors.InvalidParameterError("the request ended early"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)
