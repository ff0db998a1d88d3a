"""The grid overrides of an upload: ``bpm``, ``time_signature``, ``first_downbeat``.

Each may come as a query parameter (``/analyze?bpm=128``) or as a form field beside the
file (``curl -F file=@x.mp3 -F time_signature=3/4``). They are checked here, at the
boundary, by ``AnalysisSettings`` itself, so the service, the CLI and the library accept
the same values and a bad one is a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

from fastapi import Form, Query
from pydantic import ValidationError

from songmap.config import AnalysisSettings
from songmap.errors import InvalidParameterError

#: request parameter -> AnalysisSettings field
PARAMETERS = {"bpm": "bpm", "time_signature": "time_signature",
              "first_downbeat": "first_downbeat_s"}

_BPM = "Tempo of the beat: a value (e.g. 128; followed from 0.82x to 1.22x it) or a range (120-130)."
_TS = "Time signature of every bar, e.g. 4/4, 3/4, 6/8, 7/4."
_FD = "Seconds: the beat nearest this time is a downbeat (beat 1)."


def grid_overrides(
    bpm: str | None = Query(None, description=_BPM),
    time_signature: str | None = Query(None, description=_TS),
    first_downbeat: str | None = Query(None, description=_FD),
    bpm_form: str | None = Form(None, alias="bpm", description=_BPM),
    time_signature_form: str | None = Form(None, alias="time_signature", description=_TS),
    first_downbeat_form: str | None = Form(None, alias="first_downbeat", description=_FD),
) -> dict[str, Any]:
    """FastAPI dependency: the overrides asked for, as AnalysisSettings field values."""
    given = {"bpm": (bpm, bpm_form), "time_signature": (time_signature, time_signature_form),
             "first_downbeat": (first_downbeat, first_downbeat_form)}
    values: dict[str, Any] = {}
    for name, (query, form) in given.items():
        if query is not None and form is not None and query.strip() != form.strip():
            raise InvalidParameterError(
                f"{name} is given twice with different values ({query!r} in the query, "
                f"{form!r} in the form); give it once")
        value = query if query is not None else form
        if value is not None and value.strip():
            values[PARAMETERS[name]] = value.strip()
    check_overrides(values)
    return values


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
