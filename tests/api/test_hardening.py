"""Issue 15 on the service: file names of any script, and decoding cost decided at the door."""

from __future__ import annotations

from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf

from songmap.api.formats import content_disposition
from tests.api.conftest import upload
from tests.api.test_jobs import wait_for

NAMES = ["Кино.wav", "ライブ.wav"]


def _utf8_name(header: str) -> str:
    """The name in ``filename*=UTF-8''...`` of a Content-Disposition value."""
    part = next(p.strip() for p in header.split(";") if p.strip().startswith("filename*="))
    value = part.split("=", 1)[1]
    assert value.startswith("UTF-8''")
    return unquote(value[len("UTF-8''"):], encoding="utf-8", errors="strict")


def _ascii_name(header: str) -> str:
    part = next(p.strip() for p in header.split(";") if p.strip().startswith("filename="))
    return part.split("=", 1)[1].strip('"')


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("url", ["/analyze", "/analyze-timeline"])
def test_export_downloads_of_non_latin1_names(service, clips, name, url):
    client, _ = service
    r = upload(client, f"{url}?format=lab", clips["song"], name=name)
    assert r.status_code == 200, r.text
    header = r.headers["Content-Disposition"]
    header.encode("latin-1")  # what HTTP can carry
    assert _utf8_name(header) == name.replace(".wav", ".lab")
    fallback = _ascii_name(header)
    assert fallback.isascii() and fallback.endswith(".lab")


@pytest.mark.parametrize("name", NAMES)
def test_the_pages_json_download_of_a_non_latin1_name(service, clips, name):
    client, _ = service
    job = upload(client, "/jobs", clips["song"], name=name).json()
    assert wait_for(client, job["id"])["state"] == "done"
    r = client.get(f"/jobs/{job['id']}/result?download=true")
    assert r.status_code == 200, r.text
    assert _utf8_name(r.headers["Content-Disposition"]) == name.replace(".wav", ".songmap.json")
    assert r.json()["filename"] == name
    r = client.get(f"/jobs/{job['id']}/result?format=lab")
    assert r.status_code == 200, r.text
    assert _utf8_name(r.headers["Content-Disposition"]) == name.replace(".wav", ".lab")


def test_ascii_names_keep_the_plain_header():
    assert content_disposition("my song.wav", ".lab") == 'attachment; filename="my song.lab"'
    # quotes and separators cannot break out of the header value
    header = content_disposition('a";b\r\nc.wav', ".lab")
    assert header == 'attachment; filename="a__b__c.lab"'


def test_a_name_with_no_ascii_letters_gets_a_readable_fallback():
    header = content_disposition("Кино.wav", ".lab")
    assert _ascii_name(header) == "songmap.lab"
    header = content_disposition("Кино 2024.wav", ".lab")
    assert _ascii_name(header) == "____ 2024.lab"


def test_a_1_hz_wav_is_refused_with_422(service, tmp_path):
    client, _ = service
    p = tmp_path / "one_hz.wav"
    sf.write(p, np.zeros(10_700, np.float32), 1)
    r = upload(client, "/analyze", p)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "UnsupportedAudioError"
    assert "1 Hz" in r.json()["error"]["message"]


def test_a_client_gone_mid_upload_is_no_server_fault(caplog):
    """A cancelled upload (the connection closed mid-body) logged "Exception in ASGI
    application" with a traceback, every time; the one error mapping now takes it."""
    import asyncio

    from fastapi import FastAPI, Request
    from starlette.requests import ClientDisconnect

    from songmap.api.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/upload")
    async def upload(request: Request) -> dict:
        async for _ in request.stream():
            pass
        return {}

    messages = iter([{"type": "http.request", "body": b"part of a file", "more_body": True},
                     {"type": "http.disconnect"}])
    sent: list[dict] = []

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/upload", "raw_path": b"/upload",
             "query_string": b"", "root_path": "", "headers": [(b"host", b"localhost")],
             "client": ("127.0.0.1", 1), "server": ("localhost", 80)}
    with caplog.at_level("INFO"):
        asyncio.run(app(scope, receive, send))  # raised ClientDisconnect before
    assert sent[0]["status"] == 400
    assert not any(r.exc_info for r in caplog.records)
    assert ClientDisconnect in app.exception_handlers  # mapped where every error is
