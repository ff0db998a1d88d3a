"""Receiving uploads: to a named file on disk, hashed on the way, bounded in size."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import UploadFile

from songmap.api.errors import UploadTooLargeError, error_response

_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class SavedUpload:
    path: Path
    filename: str  # the client's name, without folders
    audio_hash: str  # sha256 of the bytes, the result store's key
    size: int

    def discard(self) -> None:
        """Delete the file and its private folder."""
        discard(self.path)


def discard(path: str | Path) -> None:
    """Delete an upload saved by ``save_upload`` and its private folder."""
    p = Path(path)
    p.unlink(missing_ok=True)
    try:
        p.parent.rmdir()
    except OSError:  # not empty or already gone
        pass


def client_filename(upload: UploadFile) -> str:
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or "upload"


def _too_large(limit: int) -> UploadTooLargeError:
    return UploadTooLargeError(
        f"the upload is larger than the limit of {limit / 1e6:g} MB "
        "(set SONGMAP_MAX_UPLOAD_MB to raise it)"
    )


async def save_upload(upload: UploadFile, folder: Path, *, max_bytes: int,
                      stem: str | None = None) -> SavedUpload:
    """Copy ``upload`` to ``folder/<stem>/<client's name>``; removed again on any error.

    Keeping the client's (sanitised) name lets decoder messages name the file the user
    knows, and its suffix is a hint for the decoders (the content decides).
    """
    filename = client_filename(upload)
    safe = _UNSAFE.sub("_", filename).lstrip(".")[-100:] or "upload"
    path = folder / (stem or uuid.uuid4().hex) / safe
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    try:
        out = await asyncio.to_thread(open, path, "wb")
        try:
            while chunk := await upload.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                # hashing and writing a megabyte are blocking work: off the event loop
                await asyncio.to_thread(_hash_and_write, digest, out, chunk)
        finally:
            await asyncio.to_thread(out.close)
    except BaseException:
        discard(path)
        raise
    return SavedUpload(path, filename, digest.hexdigest(), size)


def _hash_and_write(digest: Any, out: BinaryIO, chunk: bytes) -> None:
    digest.update(chunk)
    out.write(chunk)


class BodySizeLimit:
    """ASGI middleware: 413 for a request body past ``max_bytes``, before it is all read.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is
    counted as it arrives and cut off when it passes the limit (so neither the multipart
    parser's spool nor memory fills up with it).
    """

    def __init__(self, app: Any, *, max_bytes: int, upload_limit: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_limit = upload_limit  # what the message tells the user

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await error_response(_too_large(self.upload_limit))(scope, receive, send)
                return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["exceeded"] = True
                    raise _too_large(self.upload_limit)
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if state["exceeded"] and not state["started"]:
                return  # the app's answer to the cut-off body is replaced by our 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except UploadTooLargeError:
            pass
        if state["exceeded"] and not state["started"]:
            await error_response(_too_large(self.upload_limit))(scope, receive, send)
