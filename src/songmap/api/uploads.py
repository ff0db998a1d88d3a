"""Receiving uploads: to a named file on disk, hashed on the way, bounded in size.

``IncomingUpload`` reads a multipart request body itself, as it arrives, straight into the
one file the analysis reads: the route takes no ``UploadFile`` (FastAPI would read and spool
the whole body before the handler runs), so the service admits a request (a place in the
line, a job slot) *before* a byte of the body is read, and no spool copy exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import Request

from songmap.api.errors import (
    DiskFullError,
    UploadTimeoutError,
    UploadTooLargeError,
    error_response,
)
from songmap.errors import InvalidParameterError

try:
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # python-multipart before 0.0.13 has only the old module name
    from multipart.exceptions import FormParserError  # type: ignore[no-redef,import-untyped]
    from multipart.multipart import (  # type: ignore[no-redef,import-untyped]
        MultipartParser,
        parse_options_header,
    )

log = logging.getLogger("songmap.api")

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
    """Delete an upload saved by ``IncomingUpload.save`` and its private folder."""
    p = Path(path)
    p.unlink(missing_ok=True)
    try:
        p.parent.rmdir()
    except OSError:  # not empty or already gone
        pass


def client_filename(raw: str | None) -> str:
    """The client's file name without folders (at most 200 characters)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or "upload"


def _safe_name(filename: str) -> str:
    return _UNSAFE.sub("_", filename).lstrip(".")[-100:] or "upload"


def _disk_full(exc: OSError) -> DiskFullError | None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        log.warning("the disk is full: an upload could not be saved (%s)", exc)
        return DiskFullError("the server's disk is full, so the upload could not be saved; "
                             "try again later (and tell the server's admin)")
    return None


def _too_large(limit: int) -> UploadTooLargeError:
    return UploadTooLargeError(
        f"the upload is larger than the limit of {limit / 1e6:g} MB "
        "(set SONGMAP_MAX_UPLOAD_MB to raise it)"
    )


def _hash_and_write(digest: Any, out: BinaryIO, chunk: bytes) -> None:
    digest.update(chunk)
    out.write(chunk)


_HOW = "send the recording as the multipart/form-data field 'file' (curl -F file=@song.mp3 URL)"
_MAX_FIELDS, _MAX_FIELD_BYTES = 16, 4096


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


class _FormReader:
    """Callbacks of python-multipart's push parser: the ``file`` part's bytes are queued
    for writing, other fields kept (few and small), so memory stays at one chunk."""

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.file_name: str | None = None  # the client's name, once the file part began
        self.file_done = False
        self.size = 0
        self.pending: list[bytes] = []
        self.problem: Exception | None = None
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._part_end}

    def _part_begin(self) -> None:
        self._part = _Part()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._part.headers[name] = bytes(self._header_value)  # UTF-8 names stay bytes here
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get("content-disposition", b""))
        self._part.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw = options.get(b"filename")
        self._part.filename = None if raw is None else raw.decode("utf-8", "replace")
        if self._is_file:
            if self.file_name is not None:
                self.problem = InvalidParameterError("send one file per request")
            self.file_name = client_filename(self._part.filename)

    @property
    def _is_file(self) -> bool:
        return self._part.name == "file"

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.problem is not None:
            return
        if self._is_file:
            self.size += end - start
            if self.size > self.max_bytes:
                self.problem = _too_large(self.max_bytes)
                return
            self.pending.append(bytes(data[start:end]))
            return
        if self._part.filename is not None:  # a file under another name: not read
            return
        self._part.value += data[start:end]
        if len(self._part.value) > _MAX_FIELD_BYTES:
            self.problem = InvalidParameterError(f"the form field {self._part.name!r} is too long")

    def _part_end(self) -> None:
        if self._is_file:
            self.file_done = True
        elif self._part.name and self._part.filename is None:
            if len(self.fields) >= _MAX_FIELDS:
                self.problem = InvalidParameterError("too many form fields")
            self.fields[self._part.name] = self._part.value.decode("utf-8", "replace")


class IncomingUpload:
    """The multipart body of a request, not read yet: ``save`` reads it into one file.

    ``idle_timeout_s`` drops a client that sends nothing for that long (408), so a stalled
    upload does not hold its admission slot (and a file) for ever.
    """

    def __init__(self, request: Request, *, max_bytes: int, idle_timeout_s: float) -> None:
        self.request = request
        self.max_bytes = max_bytes
        self.idle_timeout_s = idle_timeout_s
        content_type, params = parse_options_header(request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise InvalidParameterError(f"the request is not multipart/form-data; {_HOW}")
        self.boundary: bytes = boundary

    async def save(self, folder: Path, *, stem: str | None = None
                   ) -> tuple[SavedUpload, dict[str, str]]:
        """The file part saved to ``folder/<stem>/<client's name>`` and the other form
        fields; the file is removed again on any error."""
        reader = _FormReader(max_bytes=self.max_bytes)
        parser = MultipartParser(self.boundary, reader.callbacks())  # type: ignore[arg-type]
        folder_for_file = folder / (stem or uuid.uuid4().hex)
        digest = hashlib.sha256()
        path: Path | None = None
        out: BinaryIO | None = None
        try:
            async for chunk in self._chunks():
                try:
                    parser.write(chunk)
                except FormParserError as exc:
                    raise InvalidParameterError(
                        f"the upload is not valid multipart/form-data ({exc}); {_HOW}") from None
                if reader.problem is not None:
                    raise reader.problem
                if reader.pending:
                    if out is None:
                        path = folder_for_file / _safe_name(reader.file_name or "upload")
                        # on this thread: a cancelled to_thread would create the file
                        # after the cleanup below had run, and leave it behind
                        out = _open_new(path)
                    data, reader.pending = b"".join(reader.pending), []
                    await asyncio.to_thread(_hash_and_write, digest, out, data)
            parser.finalize()
            if reader.file_name is None or not reader.file_done:
                what = ("no file in the request" if reader.file_name is None
                        else "the upload ended before the file did")
                raise InvalidParameterError(f"{what}; {_HOW}")
            if out is None:  # an empty file part
                path = folder_for_file / _safe_name(reader.file_name)
                out = _open_new(path)
            await asyncio.to_thread(out.close)
        except BaseException as exc:
            if out is not None:
                with contextlib.suppress(OSError):  # a full disk fails the flush again
                    out.close()
            if path is not None:
                discard(path)
            full = _disk_full(exc) if isinstance(exc, OSError) else None
            if full is not None:
                raise full from None
            raise
        assert path is not None
        return SavedUpload(path, reader.file_name, digest.hexdigest(), reader.size), reader.fields

    async def _chunks(self) -> Any:
        stream = self.request.stream().__aiter__()
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), self.idle_timeout_s)
            except StopAsyncIteration:
                return
            except (TimeoutError, asyncio.TimeoutError):  # one class from Python 3.11 on
                raise UploadTimeoutError(
                    f"the upload sent nothing for {self.idle_timeout_s:g} s and was dropped"
                ) from None
            if chunk:
                yield chunk


def _open_new(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "xb")


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

        with contextlib.suppress(UploadTooLargeError):
            await self.app(scope, limited_receive, guarded_send)
        if state["exceeded"] and not state["started"]:
            await error_response(_too_large(self.upload_limit))(scope, receive, send)
