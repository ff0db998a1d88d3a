"""The library: results already in the store, listed for the web page and fetched by id.

The store keeps each result under (audio hash, settings key); an entry's id is the audio
hash and a short digest of the settings key, so the same song analysed with two settings
shows twice. Name, BPM and key are read inside SQLite (``json_extract``), so listing does
not parse whole results in Python.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime, timezone

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from songmap.api.errors import JobNotFoundError
from songmap.schema import AnalysisResult
from songmap.store import ResultStore

router = APIRouter(prefix="/library", tags=["library"])

_ID = re.compile(r"^[0-9a-f]{64}-[0-9a-f]{12}$")


class StoredResultNotFoundError(JobNotFoundError):
    """No stored result has this id (a 404, like an unknown job)."""


class LibraryEntry(BaseModel):
    id: str = Field(description="Audio hash and settings digest; GET /library/{id} is the result.")
    filename: str
    bpm: float = Field(description="Global tempo (BPM).")
    key: str = Field(description='e.g. "A minor"; "N" if undecided.')
    camelot: str | None = None
    duration: float = Field(description="Seconds of audio.")
    bars: int
    analysed_at: datetime = Field(description="When the result was stored (UTC).")


class LibraryList(BaseModel):
    entries: list[LibraryEntry] = Field(description="Newest first.")
    total: int = Field(description="Entries matching the search (may exceed the limit).")


def entry_id(audio_hash: str, settings_key: str) -> str:
    return f"{audio_hash}-{hashlib.sha256(settings_key.encode()).hexdigest()[:12]}"


_FIELDS = """
    json_extract(result_json, '$.filename') AS filename,
    json_extract(result_json, '$.tempo.bpm') AS bpm,
    json_extract(result_json, '$.key.label') AS key,
    json_extract(result_json, '$.key.camelot') AS camelot,
    json_extract(result_json, '$.audio.duration') AS duration,
    json_extract(result_json, '$.total_bars') AS bars
"""


def list_entries(store: ResultStore, *, query: str, limit: int) -> LibraryList:
    """Stored results whose file name or key contains ``query`` (any case), newest first."""
    like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = f"""
        SELECT audio_hash, settings_key, created_at, {_FIELDS} FROM results
        WHERE ? = '' OR json_extract(result_json, '$.filename') LIKE ? ESCAPE '\\'
              OR json_extract(result_json, '$.key.label') LIKE ? ESCAPE '\\'
        ORDER BY created_at DESC
    """
    with store.guarded():
        rows = store.connect().execute(sql, (query, like, like)).fetchall()
    entries = [
        LibraryEntry(id=entry_id(r["audio_hash"], r["settings_key"]), filename=r["filename"] or "",
                     bpm=r["bpm"] or 0.0, key=r["key"] or "N", camelot=r["camelot"],
                     duration=r["duration"] or 0.0, bars=r["bars"] or 0,
                     analysed_at=datetime.fromtimestamp(r["created_at"], tz=timezone.utc))
        for r in rows[:limit]
    ]
    return LibraryList(entries=entries, total=len(rows))


def stored_result(store: ResultStore, result_id: str) -> str:
    """The stored JSON text of entry ``result_id``."""
    audio_hash = result_id.split("-")[0]
    with store.guarded():
        rows = store.connect().execute(
            "SELECT settings_key, result_json FROM results WHERE audio_hash = ?", (audio_hash,)
        ).fetchall()
    for r in rows:
        if entry_id(audio_hash, r["settings_key"]) == result_id:
            return str(r["result_json"])
    raise StoredResultNotFoundError(f"no stored result has the id {result_id}")


def _store(request: Request) -> ResultStore:
    store = request.app.state.service.store
    if store is None:
        from songmap.api.errors import ServiceNotReadyError

        raise ServiceNotReadyError("the result store is not open yet; try again in a moment")
    return store


@router.get("", response_model=LibraryList, summary="Past analyses in the store")
async def library(
    request: Request,
    q: str = Query("", max_length=200, description="Part of the file name or key, any case."),
    limit: int = Query(100, ge=1, le=1000, description="At most this many entries."),
) -> LibraryList:
    return await asyncio.to_thread(list_entries, _store(request), query=q.strip(), limit=limit)


@router.get("/{result_id}", response_model=AnalysisResult, summary="One stored result",
            responses={404: {"description": "No stored result has this id."}})
async def library_result(
    request: Request,
    result_id: str = Path(..., pattern=_ID.pattern, description="An id from GET /library."),
) -> Response:
    text = await asyncio.to_thread(stored_result, _store(request), result_id)
    return Response(text, media_type="application/json")
