"""POST /analyze-timeline and /analyze: the contract, the store, every limit and bad input."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.schema import AnalysisResult
from songmap.store import ResultStore, content_hash

from .conftest import leftovers, make_settings, upload


@pytest.fixture(autouse=True)
def _no_files_left(service):
    yield
    assert leftovers(service[1]) == []


def test_timeline_contract(service, clips):
    client, _ = service
    r = upload(client, "/analyze-timeline", clips["song"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["filename"] == "song.wav"
    tf = body["timeline_features"]
    for key in ("downbeat_timeline", "beat_transient_markers", "chord_progression",
                "total_bars", "total_beats", "tempo", "key", "time_signature"):
        assert key in tf
    assert tf["total_bars"] == len(tf["downbeat_timeline"]) >= 3
    assert tf["time_signature"]["label"] == "4/4"
    assert abs(tf["tempo"]["bpm"] - 120.0) < 2.0
    pm = body["performance_metrics"]
    assert pm["analysis_time"] > 0 and pm["realtime_factor"] > 0
    assert body["audio"]["duration"] == pytest.approx(9.5, abs=0.05)


def test_full_result_is_an_analysis_result(service, clips):
    client, _ = service
    r = upload(client, "/analyze", clips["other"])
    assert r.status_code == 200, r.text
    result = AnalysisResult.model_validate_json(r.text)
    assert result.filename == "other.flac"
    assert abs(result.tempo.bpm - 100.0) < 2.0


def test_same_audio_twice_comes_from_the_store(service, clips):
    client, settings = service
    first = upload(client, "/analyze", clips["song"], name="first.wav")
    again = upload(client, "/analyze", clips["song"], name="renamed.wav")
    assert first.status_code == again.status_code == 200
    assert again.headers["X-Songmap-Cache"] == "hit"
    a, b = first.json(), again.json()
    assert b["filename"] == "renamed.wav"  # the stored result, under this upload's name
    assert a["downbeat_timeline"] == b["downbeat_timeline"]
    assert a["performance_metrics"] == b["performance_metrics"]  # not analysed again
    with ResultStore(settings.result_store_path) as store:
        key = settings.analysis_settings().cache_key()
        assert store.contains(content_hash(clips["song"]), key)


def test_store_survives_a_restart(tmp_path, clips):
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        assert upload(client, "/analyze", clips["song"]).headers["X-Songmap-Cache"] == "miss"
    with TestClient(create_app(settings)) as client:
        assert upload(client, "/analyze", clips["song"]).headers["X-Songmap-Cache"] == "hit"


@pytest.mark.parametrize("name, status, kind", [
    ("empty", 415, "NotAudioError"),
    ("text", 415, "NotAudioError"),
    ("truncated", 422, "UndecodableAudioError"),
    ("truncated_flac", 422, "UndecodableAudioError"),
    ("short", 422, "AudioTooShortError"),
    ("long", 413, "AudioTooLongError"),
])
@pytest.mark.parametrize("url", ["/analyze", "/analyze-timeline"])
def test_bad_input_gets_its_status(service, clips, name, status, kind, url):
    client, _ = service
    r = upload(client, url, clips[name])
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == kind
    assert clips[name].name in error["message"]  # names the user's file, not a temp name
    assert error["id"] is None  # the client's mistake: nothing to look up in the log


def test_upload_over_the_limit_is_413(service):
    client, settings = service
    body = b"\0" * (settings.max_upload_bytes + 1)
    r = client.post("/analyze", files={"file": ("big.wav", body, "audio/wav")})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "UploadTooLargeError"


def test_upload_over_the_limit_without_content_length_is_413(service):
    """A chunked body is counted as it arrives and cut off."""
    client, settings = service
    boundary = "songmapboundary"

    def chunks():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
        for _ in range(int(settings.max_upload_bytes / 2**20) + 2):
            yield b"\0" * 2**20
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/analyze", content=chunks(),
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "UploadTooLargeError"


def test_file_just_over_the_limit_inside_the_envelope_is_413(service, clips):
    """The body limit leaves room for the multipart envelope; the file itself is counted too."""
    client, settings = service
    body = b"RIFF" + b"\0" * settings.max_upload_bytes
    r = client.post("/analyze", files={"file": ("big.wav", body, "audio/wav")})
    assert r.status_code == 413


@pytest.mark.parametrize("url", ["/analyze", "/analyze-timeline"])
def test_export_formats(service, clips, url):
    client, _ = service
    with open(clips["song"], "rb") as f:
        r = client.post(f"{url}?format=lab", files={"file": ("my song.wav", f)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert 'filename="my song.lab"' in r.headers["Content-Disposition"]
    rows = [line.split("\t") for line in r.text.strip().splitlines()]
    assert len(rows) >= 3 and all(len(row) == 3 for row in rows)
    assert {row[2] for row in rows} & {"C:maj", "A:min", "F:maj", "G:maj"}


def test_missing_file_field_is_400(service):
    client, _ = service
    r = client.post("/analyze-timeline", files={"other": ("x.wav", b"abc", "audio/wav")})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "InvalidParameterError"


def test_unknown_format_is_400(service, clips):
    client, _ = service
    with open(clips["song"], "rb") as f:
        r = client.post("/analyze-timeline?format=mp4", files={"file": ("s.wav", f)})
    assert r.status_code == 400
    assert "json" in r.json()["error"]["message"]


def test_unknown_route_uses_the_error_shape(service):
    client, _ = service
    r = client.get("/nothing-here")
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"type", "message", "id"}
