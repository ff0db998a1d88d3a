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


@pytest.fixture()
def client(tmp_path):
    # no lifespan (no worker processes): /live needs none
    app = create_app(ServeSettings(data_dir=tmp_path, workers=1, max_duration_s=60.0))
    app.state.live_limits = LiveLimits(max_speed=1000.0, max_message_bytes=200_000)
    return TestClient(app)


def _closed_with(ws) -> tuple[int, str]:
    with pytest.raises(WebSocketDisconnect) as info:
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
