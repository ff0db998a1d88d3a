"""The ``?format=`` answers: ``json`` is the route's own JSON; every other name is an
exporter from ``songmap.export.EXPORTERS`` (JAMS, .lab, MIDI, rekordbox XML, ...)."""

from __future__ import annotations

import asyncio

from fastapi.responses import Response

from songmap.export import EXPORTERS, get_exporter
from songmap.schema import AnalysisResult


def available_formats() -> list[str]:
    return sorted(EXPORTERS)


def check_format(fmt: str) -> str:
    """The canonical format name (``InvalidParameterError`` -> 400 names the ones that exist)."""
    return "json" if fmt.strip().lower() == "json" else get_exporter(fmt).name


def download_name(filename: str, extension: str) -> str:
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    safe = "".join(c if c.isalnum() or c in "-_. " else "_" for c in stem)[:100] or "result"
    return f"{safe}{extension}"


async def export_response(result: AnalysisResult, fmt: str) -> Response:
    """``result`` written by the exporter ``fmt``, as a file download.

    Exporters are plain CPU work (matplotlib for png), so they run in a thread, off the
    event loop.
    """
    exporter = get_exporter(fmt)
    data = await asyncio.to_thread(exporter.to_bytes, result)
    name = download_name(result.filename, exporter.extension)
    return Response(data, media_type=exporter.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
