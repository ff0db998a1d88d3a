"""Grid overrides through the service: query and form parameters on /analyze,
/analyze-timeline and /jobs, their own store entries, and 400s for bad values."""

from __future__ import annotations

import time

import pytest

from tests.api.conftest import upload

pytestmark = pytest.mark.slow


def post(client, url, path, *, params=None, data=None):
    with open(path, "rb") as f:
        return client.post(url, params=params or {},
                           data=data or {}, files={"file": (path.name, f, "audio/wav")})


def downbeats(body):
    return [d["timestamp"] for d in body["downbeat_timeline"]]


def test_overrides_change_the_result_and_are_stored_apart(service, clips):
    client, _ = service
    plain = upload(client, "/analyze", clips["song"])  # 120 BPM, 4/4
    assert plain.status_code == 200, plain.text
    base = plain.json()
    assert base["time_signature"]["label"] == "4/4"

    waltz = post(client, "/analyze", clips["song"], params={"time_signature": "3/4"})
    assert waltz.status_code == 200, waltz.text
    assert waltz.headers["X-Songmap-Cache"] == "miss"  # not the stored 4/4 result
    body = waltz.json()
    assert body["time_signature"]["label"] == "3/4"
    assert body["time_signature"]["beats_per_bar"] == 3
    assert body["provenance"]["settings"]["time_signature"] == "3/4"
    assert {b["beat_position"] for b in body["beat_transient_markers"]} == {1, 2, 3}
    # the worker kept the networks' outputs of this audio: they did not run again
    assert "beat_network" in base["performance_metrics"]["stage_seconds"]
    assert "beat_network" not in body["performance_metrics"]["stage_seconds"]

    # the same override as a form field is the same analysis: found in the store
    again = post(client, "/analyze", clips["song"], data={"time_signature": "3/4"})
    assert again.headers["X-Songmap-Cache"] == "hit"
    assert again.json()["time_signature"]["label"] == "3/4"
    # and the plain analysis is still there under its own key
    assert upload(client, "/analyze", clips["song"]).headers["X-Songmap-Cache"] == "hit"


def test_first_downbeat_and_bpm_on_the_timeline(service, clips):
    client, _ = service
    base = upload(client, "/analyze", clips["song"]).json()
    beats = [b["beat_time"] for b in base["beat_transient_markers"]]
    target = beats[1]  # a beat that songmap does not call "one"
    answer = post(client, "/analyze-timeline", clips["song"],
                  params={"first_downbeat": f"{target:.3f}", "bpm": "118-122"})
    assert answer.status_code == 200, answer.text
    features = answer.json()["timeline_features"]
    assert features["downbeat_timeline"][0]["timestamp"] == pytest.approx(target, abs=0.03)
    assert 118 <= features["tempo"]["bpm"] <= 122


@pytest.mark.parametrize("params, data, name", [
    ({"bpm": "fast"}, {}, "bpm"),
    ({"bpm": "130-120"}, {}, "bpm"),
    ({}, {"time_signature": "4/5"}, "time_signature"),
    ({"first_downbeat": "soon"}, {}, "first_downbeat"),
    ({"first_downbeat": "-1"}, {}, "first_downbeat"),
    ({"first_downbeat": "inf"}, {}, "first_downbeat"),  # was a 500 (OverflowError)
    ({}, {"first_downbeat": "1e400"}, "first_downbeat"),
    ({"bpm": "120"}, {"bpm": "128"}, "bpm"),  # two different values
])
def test_bad_override_is_400_naming_it(service, clips, params, data, name):
    client, _ = service
    for url in ("/analyze", "/analyze-timeline", "/jobs"):
        answer = post(client, url, clips["song"], params=params, data=data)
        assert answer.status_code == 400, (url, answer.text)
        error = answer.json()["error"]
        assert error["type"] == "InvalidParameterError" and name in error["message"]


def test_job_keeps_its_overrides(service, clips):
    client, _ = service
    answer = post(client, "/jobs", clips["other"], params={"time_signature": "7/4"})
    assert answer.status_code == 202, answer.text
    job = answer.json()["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/jobs/{job}").json()["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    result = client.get(f"/jobs/{job}/result").json()
    assert result["time_signature"]["label"] == "7/4"
    assert result["provenance"]["settings"]["time_signature"] == "7/4"
