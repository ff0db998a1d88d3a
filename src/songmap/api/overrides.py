"""The grid overrides of an upload: ``bpm``, ``time_signature``, ``first_downbeat``.

Each may come as a query parameter (``/analyze?bpm=128``) or as a form field beside the
file (``curl -F file=@x.mp3 -F time_signature=3/4``). They are checked here, at the
boundary, by ``AnalysisSettings`` itself, so the service, the CLI and the library accept
the same values and a bad one is a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query
from pydantic import ValidationError

from songmap.config import AnalysisSettings
from songmap.errors import InvalidParameterError

#: request parameter -> AnalysisSettings field
PARAMETERS = {"bpm": "bpm", "time_signature": "time_signature",
              "first_downbeat": "first_downbeat_s"}

_BPM = "Tempo of the beat: a value (e.g. 128; followed from 0.82x to 1.22x it) or a range (120-130)."
_TS = "Time signature of every bar, e.g. 4/4, 3/4, 6/8, 7/4."
_FD = "Seconds: the beat nearest this time is a downbeat (beat 1)."


def query_overrides(
    bpm: str | None = Query(None, description=_BPM),
    time_signature: str | None = Query(None, description=_TS),
    first_downbeat: str | None = Query(None, description=_FD),
) -> dict[str, str]:
    """FastAPI dependency: the overrides given in the query, by request parameter name.

    Checked at once, so a bad one is a 400 before the upload is read; the form fields come
    with the body and are merged by ``grid_overrides``.
    """
    given = {name: value for name, value in
             (("bpm", bpm), ("time_signature", time_signature),
              ("first_downbeat", first_downbeat)) if value is not None}
    grid_overrides(given, {})
    return given


def grid_overrides(query: dict[str, str], form: dict[str, str]) -> dict[str, Any]:
    """The overrides asked for in the query and the form, as AnalysisSettings field values
    (other form fields are ignored)."""
    values: dict[str, Any] = {}
    for name, field in PARAMETERS.items():
        in_query, in_form = query.get(name), form.get(name)
        if in_query is not None and in_form is not None and in_query.strip() != in_form.strip():
            raise InvalidParameterError(
                f"{name} is given twice with different values ({in_query!r} in the query, "
                f"{in_form!r} in the form); give it once")
        value = in_query if in_query is not None else in_form
        if value is not None and value.strip():
            values[field] = value.strip()
    check_overrides(values)
    return values


#: The multipart body of the upload routes, for the OpenAPI schema (the routes read the body
#: themselves, after admission, so FastAPI cannot derive it from their parameters).
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "The recording (WAV, FLAC, MP3, OGG, Opus, M4A, AIFF, ...)."},
            "bpm": {"type": "string", "description": _BPM},
            "time_signature": {"type": "string", "description": _TS},
            "first_downbeat": {"type": "string", "description": _FD},
        }}}}}}


def check_overrides(values: dict[str, Any]) -> AnalysisSettings:
    """``AnalysisSettings`` with these overrides, or ``InvalidParameterError`` naming the
    request parameter and what is wrong with it."""
    try:
        return AnalysisSettings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = next((p for p, f in PARAMETERS.items() if f == field), field or "parameter")
        message = str(first["msg"]).removeprefix("Value error, ")
        if first.get("type") == "float_parsing":
            message = f"{values.get(field)!r} is not a number of seconds"
        raise InvalidParameterError(f"invalid {name}: {message}") from None
