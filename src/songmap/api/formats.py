"""The ``?format=`` answers: ``json`` is the route's own JSON; every other name is an
exporter from ``songmap.export.EXPORTERS`` (JAMS, .lab, MIDI, rekordbox XML, ...)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi.responses import Response

from songmap.export import EXPORTERS, get_exporter
from songmap.schema import AnalysisResult


def available_formats() -> list[str]:
    return sorted(EXPORTERS)


def check_format(fmt: str) -> str:
    """The canonical format name (``InvalidParameterError`` -> 400 names the ones that exist)."""
    return "json" if fmt.strip().lower() == "json" else get_exporter(fmt).name


def download_name(filename: str, extension: str) -> str:
    """The name a download is saved under: the upload's stem (letters of any script kept,
    anything that could break a header or a path replaced by ``_``) plus ``extension``."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    safe = "".join(c if c.isalnum() or c in "-_. " else "_" for c in stem)[:100] or "result"
    return f"{safe}{extension}"


def content_disposition(filename: str, extension: str) -> str:
    """``Content-Disposition`` of a download named after ``filename`` (any script).

    HTTP headers are Latin-1, so a name like ``Кино.lab`` goes in RFC 5987's
    ``filename*=UTF-8''...`` (percent-encoded), which browsers prefer (RFC 6266), with a
    plain ASCII ``filename`` for clients that know only that one.
    """
    name = download_name(filename, extension)
    stem = name[: -len(extension)] if extension and name.endswith(extension) else name
    ascii_stem = "".join(c if c.isascii() else "_" for c in stem)
    if not any(c.isalnum() for c in ascii_stem):  # nothing readable survived: say what it is
        ascii_stem = "songmap"
    header = f'attachment; filename="{ascii_stem}{extension}"'
    if not name.isascii():
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


async def export_response(result: AnalysisResult, fmt: str) -> Response:
    """``result`` written by the exporter ``fmt``, as a file download.

    Exporters are plain CPU work (matplotlib for png), so they run in a thread, off the
    event loop.
    """
    exporter = get_exporter(fmt)
    data = await asyncio.to_thread(exporter.to_bytes, result)
    disposition = content_disposition(result.filename, exporter.extension)
    return Response(data, media_type=exporter.media_type,
                    headers={"Content-Disposition": disposition})
