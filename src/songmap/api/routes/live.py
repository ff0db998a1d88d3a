"""``/live``: a WebSocket that takes PCM blocks and sends songmap.live events.

    ws://HOST/live?rate=48000&channels=1&format=f32le

The client sends binary messages of interleaved PCM in that format (``s16le``,
``s32le``, ``f32le``, ``f64le``, ``u8``) and an empty binary message at the end; the
server sends one JSON text message per event (the ``songmap live --json`` lines: beat,
downbeat, tempo, chord, key, revise) and, after the end, ``{"type": "end"}`` and closes
with 1000. Refusals close the socket with a code and a one-line reason:

* 1003: a text message (only binary PCM is accepted), or a block that is not whole frames;
* 1008: a bad query (unknown format, rate or channels out of range), audio arriving
  faster than ``max_speed`` times real time (after a ``burst_s`` allowance), or more than
  ``max_duration_s`` of audio;
* 1009: a message larger than ``max_message_bytes``;
* 1013: more than ``max_streams`` streams at once (try again later).

The analysis runs on a worker thread, never on the event loop; one ``Analyzer`` (models
loaded on the first stream) serves every stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, replace

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

router = APIRouter(tags=["live"])


@dataclass(frozen=True)
class LiveLimits:
    """What one ``/live`` stream may send (``app.state.live_limits`` overrides)."""

    max_message_bytes: int = 1 << 20
    max_speed: float = 2.0
    burst_s: float = 10.0
    max_duration_s: float = 3 * 3600.0
    max_streams: int = 4


_analyzer_lock = threading.Lock()
_active = {"streams": 0}


def _shared_analyzer(app):
    """One Analyzer for every stream of this app (single-threaded: streams share cores)."""
    with _analyzer_lock:
        analyzer = getattr(app.state, "live_analyzer", None)
        if analyzer is None:
            from songmap.config import AnalysisSettings
            from songmap.pipeline import Analyzer

            analyzer = Analyzer(AnalysisSettings(threads=1))
            app.state.live_analyzer = analyzer
        return analyzer


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    await ws.close(code=code, reason=reason[:120])


@router.websocket("/live")
async def live(ws: WebSocket, rate: str = "44100", channels: str = "1",
               format: str = "f32le") -> None:
    # rate and channels are read here, not typed for FastAPI: its refusal of rate=abc was
    # a bare 403 at the handshake, with no reason a client could show
    from songmap.errors import InvalidParameterError, SongmapError
    from songmap.live.pcm import raw_format

    limits: LiveLimits = getattr(ws.app.state, "live_limits", None) or LiveLimits()
    settings = getattr(ws.app.state, "settings", None)
    if settings is not None and settings.max_duration_s:  # the service's own duration limit
        limits = replace(limits, max_duration_s=min(limits.max_duration_s, settings.max_duration_s))
    await ws.accept()
    try:
        numbers = {}
        for name, text in (("rate", rate), ("channels", channels)):
            try:
                numbers[name] = int(text)
            except ValueError:
                raise InvalidParameterError(f"{name}={text!r} is not a whole number") from None
        fmt = raw_format(format, sample_rate=numbers["rate"], channels=numbers["channels"])
    except SongmapError as exc:
        await _refuse(ws, 1008, str(exc))
        return
    if _active["streams"] >= limits.max_streams:
        await _refuse(ws, 1013, f"{limits.max_streams} live streams are running; try again later")
        return
    _active["streams"] += 1
    try:
        await _serve(ws, fmt, limits)
    except WebSocketDisconnect:  # the client closed while events were sent: nothing to say
        return
    finally:
        _active["streams"] -= 1


async def _serve(ws: WebSocket, fmt, limits: LiveLimits) -> None:
    from songmap.errors import SongmapError
    from songmap.live import LiveAnalyzer

    # the pace is measured from the handshake: a client streaming in real time while the
    # models load (seconds on a busy machine) has sent no more audio than the time gone by
    started = time.monotonic()
    analyzer = await asyncio.to_thread(_shared_analyzer, ws.app)
    live = await asyncio.to_thread(LiveAnalyzer, analyzer, sample_rate=fmt.sample_rate,
                                   channels=fmt.channels)
    received_s = 0.0
    while True:
        try:
            msg = await ws.receive()
        except WebSocketDisconnect:
            return
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") is not None:
            await _refuse(ws, 1003, "send binary PCM blocks; text messages are not accepted")
            return
        data = msg.get("bytes") or b""
        if len(data) > limits.max_message_bytes:
            await _refuse(ws, 1009, f"a message of {len(data)} bytes; at most "
                                    f"{limits.max_message_bytes} per message")
            return
        if not data:  # the end of the stream
            events = await asyncio.to_thread(live.finish)
            await _send(ws, events)
            await ws.send_text(json.dumps({"type": "end", "time": round(live.time, 3)}))
            await ws.close(code=1000)
            return
        if len(data) % fmt.frame_bytes:
            await _refuse(ws, 1003, f"a block of {len(data)} bytes is not whole "
                                    f"{fmt.frame_bytes}-byte frames")
            return
        received_s += len(data) / fmt.frame_bytes / fmt.sample_rate
        if received_s > limits.max_duration_s:
            await _refuse(ws, 1008, f"more than {limits.max_duration_s:g} s of audio in one stream")
            return
        elapsed = time.monotonic() - started
        if received_s > limits.burst_s + limits.max_speed * elapsed:
            await _refuse(ws, 1008, f"audio arrives faster than {limits.max_speed:g}x real time")
            return
        try:
            events = await asyncio.to_thread(live.push, fmt.decode(data))
        except SongmapError as exc:
            await _refuse(ws, 1003, str(exc))
            return
        await _send(ws, events)


async def _send(ws: WebSocket, events) -> None:
    for event in events:
        await ws.send_text(json.dumps(event.to_dict()))
