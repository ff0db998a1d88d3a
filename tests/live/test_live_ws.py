"""The ``/live`` WebSocket: a rendered song in, events out; refusals with close codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from songmap.api.app import create_app
from songmap.api.routes.live import LiveLimits
from songmap.api.settings import ServeSettings
from songmap.examples import render_song


@pytest.fixture
def client(tmp_path):
    # no lifespan (no worker processes): /live needs none
    app = create_app(ServeSettings(data_dir=tmp_path, workers=1, max_duration_s=60.0,
                                   allowed_hosts=("testserver",)))  # TestClient's Host
    app.state.live_limits = LiveLimits(max_speed=1000.0, max_message_bytes=200_000)
    return TestClient(app)


def _closed_with(ws) -> tuple[int, str]:
    with pytest.raises(WebSocketDisconnect) as info:  # noqa: PT012 - read until the close
        while True:
            ws.receive_text()
    return info.value.code, info.value.reason


@pytest.mark.slow
def test_a_song_streamed_gives_events(client):
    song = render_song(bpm=120.0, bars=10, sr=44100, seed=4)
    pcm = np.stack([song.samples, song.samples], axis=1).astype("<f4")
    events = []
    with client.websocket_connect("/live?rate=44100&channels=2&format=f32le") as ws:
        for i in range(0, len(pcm), 4410):
            ws.send_bytes(pcm[i:i + 4410].tobytes())
        ws.send_bytes(b"")
        while True:
            event = json.loads(ws.receive_text())
            if event["type"] == "end":
                break
            events.append(event)
    kinds = {e["type"] for e in events}
    assert {"beat", "downbeat", "chord", "tempo", "key"} <= kinds
    beats = [e["time"] for e in events if e["type"] == "beat"]
    assert beats == sorted(beats) and abs(len(beats) - len(song.beat_times)) <= 3
    bars = [e["bar"] for e in events if e["type"] == "downbeat"]
    assert bars == list(range(1, len(bars) + 1))


def test_text_is_refused(client):
    with client.websocket_connect("/live") as ws:
        ws.send_text("hello")
        code, reason = _closed_with(ws)
    assert code == 1003 and "binary PCM" in reason


@pytest.mark.parametrize("query", ["rate=abc", "rate=1e99", "channels=two"])
def test_a_query_of_the_wrong_type_is_refused_with_a_reason(client, query):
    """These were a bare 403 at the handshake (FastAPI's own check), with nothing to say why."""
    with client.websocket_connect(f"/live?{query}") as ws:
        code, reason = _closed_with(ws)
    assert code == 1008 and "is not a whole number" in reason


def test_bad_query_and_bad_blocks(client):
    with client.websocket_connect("/live?format=mp3") as ws:
        code, reason = _closed_with(ws)
    assert code == 1008 and "format" in reason
    with client.websocket_connect("/live?rate=10") as ws:
        assert _closed_with(ws)[0] == 1008
    with client.websocket_connect("/live?format=s16le&channels=2") as ws:
        ws.send_bytes(b"\0" * 6)  # 1.5 frames of 4 bytes
        code, reason = _closed_with(ws)
    assert code == 1003 and "whole" in reason
    with client.websocket_connect("/live") as ws:
        ws.send_bytes(b"\0" * 400_000)
        assert _closed_with(ws)[0] == 1009


def test_too_fast_and_too_long(client):
    client.app.state.live_limits = LiveLimits(max_speed=1.0, burst_s=1.0)
    with client.websocket_connect("/live?rate=8000") as ws:
        ws.send_bytes(np.zeros(8000 * 3, "<f4").tobytes())  # 3 s at once
        code, reason = _closed_with(ws)
    assert code == 1008 and "faster" in reason
    client.app.state.live_limits = LiveLimits(max_speed=1e9, max_message_bytes=1 << 24)
    with client.websocket_connect("/live?rate=8000&format=u8") as ws:
        for _ in range(7):  # 70 s > the service's 60 s limit
            ws.send_bytes(np.full(80_000, 128, np.uint8).tobytes())
        code, reason = _closed_with(ws)
    assert code == 1008 and "60 s" in reason


KEY = "live-key-for-tests"


@pytest.fixture
def keyed(tmp_path):
    app = create_app(ServeSettings(data_dir=tmp_path, workers=1, api_key=KEY,
                                   allowed_hosts=("testserver",)))
    return TestClient(app)


def _refused(client, url: str, **headers: str) -> str:
    with pytest.raises(WebSocketDisconnect) as info:  # noqa: SIM117 - the handshake is refused
        with client.websocket_connect(url, headers=headers):
            pass
    assert info.value.code == 1008
    return info.value.reason


def test_a_keyed_server_refuses_a_stream_without_its_key(keyed):
    assert "API key" in _refused(keyed, "/live?format=mp3")
    assert "not this server's" in _refused(keyed, "/live?format=mp3&key=wrong")
    assert "not this server's" in _refused(keyed, "/live?format=mp3", **{"X-API-Key": "x"})


@pytest.mark.parametrize("how", ["query", "header", "bearer"])
def test_the_key_opens_a_stream_in_the_query_or_a_header(keyed, how):
    url, headers = "/live?format=mp3", {}
    if how == "query":
        url += f"&key={KEY}"
    else:
        headers = {"X-API-Key": KEY} if how == "header" else {"Authorization": f"Bearer {KEY}"}
    with keyed.websocket_connect(url, headers=headers) as ws:  # past the guard: the route
        code, reason = _closed_with(ws)                       # itself refuses the format
    assert code == 1008 and "format" in reason


def test_a_page_of_another_site_cannot_open_a_stream(client, keyed):
    reason = _refused(client, "/live?format=mp3", origin="https://evil.example")
    assert "another site" in reason
    assert "another site" in _refused(keyed, f"/live?key={KEY}", origin="https://evil.example")
    with client.websocket_connect("/live?format=mp3", headers={"origin": "http://testserver"}) as ws:
        assert _closed_with(ws)[0] == 1008  # its own page is let through (to the format check)


def test_a_rebinding_host_name_cannot_open_a_stream(client):
    assert "host name" in _refused(client, "/live?format=mp3", host="evil.example")


def test_a_client_gone_while_events_are_sent_ends_the_stream_quietly(client, monkeypatch):
    """Sending to a client that had closed raised WebSocketDisconnect out of the route: the
    server logged "Exception in ASGI application" with a traceback for every such client."""
    import songmap.api.routes.live as route

    async def gone(ws, fmt, limits):
        raise WebSocketDisconnect(code=1006)  # what ws.send_text raises then

    monkeypatch.setattr(route, "_serve", gone)
    with client.websocket_connect("/live") as ws:
        ws.send_bytes(b"\0" * 4096)
    assert route._active["streams"] == 0
