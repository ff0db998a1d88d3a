"""``POST /analyze`` (the full result) and ``POST /analyze-timeline`` (the timeline contract)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response

from songmap.api.errors import ANALYSIS_ERRORS
from songmap.api.formats import check_format, export_response
from songmap.api.models import TimelineResponse
from songmap.api.overrides import grid_overrides
from songmap.api.service import Service
from songmap.api.views import timeline_features
from songmap.schema import AnalysisResult

router = APIRouter(tags=["analysis"])

_FILE = File(..., description="The recording (WAV, FLAC, MP3, OGG, Opus, M4A, AIFF, ...).")
_FORMAT = Query("json", description="json (default) or an export format: jams, lab, beats, "
                "sv-beats, sv-chords, midi, rekordbox, csv, jsonl, png (GET /version lists them).")

#: bpm, time_signature, first_downbeat: query parameters or form fields
_OVERRIDES = Depends(grid_overrides)


def _service(request: Request) -> Service:
    return request.app.state.service


def _json(body: str, source: str) -> Response:
    # X-Songmap-Cache: hit (stored result), shared (analysed once for simultaneous
    # identical uploads), miss (analysed for this request)
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
             summary="Analyse a recording and return the full result")
async def analyze(request: Request, file: UploadFile = _FILE, format: str = _FORMAT,
                  overrides: dict[str, Any] = _OVERRIDES) -> Response:
    fmt = check_format(format)
    result, source = await _service(request).analyze_upload(file, overrides)
    if fmt != "json":
        return await export_response(result, fmt)
    return _json(result.model_dump_json(), source)


@router.post("/analyze-timeline", response_model=TimelineResponse, responses=ANALYSIS_ERRORS,
             summary="Analyse a recording and return its bar/beat/chord timeline")
async def analyze_timeline(request: Request, file: UploadFile = _FILE,
                           format: str = _FORMAT,
                           overrides: dict[str, Any] = _OVERRIDES) -> Response:
    fmt = check_format(format)
    result, source = await _service(request).analyze_upload(file, overrides)
    if fmt != "json":
        return await export_response(result, fmt)
    return _json(timeline_response(result, source != "miss").model_dump_json(), source)
