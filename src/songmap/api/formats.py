"""The ``?format=`` answers of the analysis routes: one place lists what exists."""

from __future__ import annotations

from songmap.errors import InvalidParameterError

#: format name -> media type. Exports (JAMS, .lab, MIDI, ...) are added here as they land.
FORMATS: dict[str, str] = {"json": "application/json"}


def check_format(fmt: str) -> str:
    """The format's media type, or ``InvalidParameterError`` naming the ones that exist."""
    if fmt not in FORMATS:
        raise InvalidParameterError(
            f"format {fmt!r} is not available; choose one of: {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[fmt]
