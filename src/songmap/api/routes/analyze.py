"""``POST /analyze`` (the full result) and ``POST /analyze-timeline`` (the timeline contract)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from songmap.api.errors import ANALYSIS_ERRORS
from songmap.api.formats import check_format, export_response
from songmap.api.models import TimelineResponse
from songmap.api.overrides import UPLOAD_BODY, query_overrides
from songmap.api.service import Service
from songmap.api.uploads import IncomingUpload
from songmap.api.views import timeline_features
from songmap.schema import AnalysisResult

router = APIRouter(tags=["analysis"])

_FORMAT = Query("json", description="json (default) or an export format: jams, lab, beats, "
                "sv-beats, sv-chords, midi, rekordbox, csv, jsonl, png (GET /version lists them).")

#: bpm, time_signature, first_downbeat: query parameters here, or form fields beside the file
_OVERRIDES = Depends(query_overrides)


def _service(request: Request) -> Service:
    return request.app.state.service


def incoming_upload(request: Request) -> IncomingUpload:
    """The request's body, unread: the service reads it once the request is admitted."""
    settings = request.app.state.settings
    return IncomingUpload(request, max_bytes=settings.max_upload_bytes,
                          idle_timeout_s=settings.body_idle_timeout_s)


def _json(body: str, source: str) -> Response:
    # X-Songmap-Cache: hit (stored result), shared (analysed once for simultaneous
    # identical uploads), miss (analysed for this request). With an API key only key
    # holders get here; a keyless server keeps it, since its open /library already lists
    # every stored result by audio hash (README, "Access, limits").
    return Response(body, media_type="application/json", headers={"X-Songmap-Cache": source})


def timeline_response(result: AnalysisResult, cached: bool) -> TimelineResponse:
    return TimelineResponse(
        filename=result.filename,
        timeline_features=timeline_features(result),
        performance_metrics=result.performance_metrics,
        audio=result.audio,
        cached=cached,
    )


@router.post("/analyze", response_model=AnalysisResult, responses=ANALYSIS_ERRORS,
             summary="Analyse a recording and return the full result",
             openapi_extra=UPLOAD_BODY)
async def analyze(request: Request, format: str = _FORMAT,
                  overrides: dict[str, str] = _OVERRIDES) -> Response:
    fmt = check_format(format)
    result, source = await _service(request).analyze_upload(incoming_upload(request), overrides)
    if fmt != "json":
        return await export_response(result, fmt)
    return _json(result.model_dump_json(), source)


@router.post("/analyze-timeline", response_model=TimelineResponse, responses=ANALYSIS_ERRORS,
             summary="Analyse a recording and return its bar/beat/chord timeline",
             openapi_extra=UPLOAD_BODY)
async def analyze_timeline(request: Request, format: str = _FORMAT,
                           overrides: dict[str, str] = _OVERRIDES) -> Response:
    fmt = check_format(format)
    result, source = await _service(request).analyze_upload(incoming_upload(request), overrides)
    if fmt != "json":
        return await export_response(result, fmt)
    return _json(timeline_response(result, source != "miss").model_dump_json(), source)
