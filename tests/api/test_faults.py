"""Server faults: a crashed or stuck worker answers 500/504 with an id and is replaced;
a full line of waiting analyses answers 503 with Retry-After."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.examples import render_song

from .conftest import leftovers, make_settings, upload
from .tasks import faulty_analysis


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("faulty"), analysis_timeout_s=3.0,
                             max_queue=0)
    # raise_server_exceptions=False: a client sees what a real one would, the 500 answer.
    with TestClient(create_app(settings, task=faulty_analysis),
                    raise_server_exceptions=False) as client:
        yield client, settings


def _ok(client: TestClient, clip: Path) -> None:
    r = upload(client, "/analyze-timeline", clip, name="fine.wav")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("name, status, kind", [
    ("crash.wav", 500, "WorkerCrashedError"),
    ("raise.wav", 500, "AnalysisFailedError"),
    ("hang.wav", 504, "AnalysisTimeoutError"),
])
def test_fault_answers_with_an_id_and_the_server_stays_up(faulty, clips, name, status, kind,
                                                          caplog):
    client, settings = faulty
    r = upload(client, "/analyze", clips["other"], name=name)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == kind
    assert error["id"] and error["id"] in error["message"]
    assert any(error["id"] in rec.getMessage() for rec in caplog.records)  # in the log too
    assert "KeyError" not in error["message"]  # no internals leak to the client
    assert client.get("/healthz").status_code == 200
    _ok(client, clips["song"])  # a fresh worker took over
    assert leftovers(settings) == []


def test_crashed_job_fails_with_an_id(faulty, clips):
    client, settings = faulty
    job = upload(client, "/jobs", clips["other"], name="crash-job.wav").json()
    for _ in range(600):
        info = client.get(f"/jobs/{job['id']}").json()
        if info["state"] == "failed":
            break
        time.sleep(0.05)
    assert info["state"] == "failed"
    assert info["error"]["type"] == "WorkerCrashedError" and info["error"]["id"]
    assert client.get(f"/jobs/{job['id']}/result").status_code == 500
    _ok(client, clips["song"])
    assert leftovers(settings) == []


def test_full_queue_is_503_with_retry_after(faulty, clips, tmp_path):
    """One worker, no waiting line: while one analysis runs, the next upload is refused."""
    client, settings = faulty
    fresh = tmp_path / "fresh.wav"
    song = render_song(bars=3, seed=11)
    sf.write(fresh, song.samples, song.sr)
    flag = tmp_path / "release"
    name = f"wait-{str(flag).encode().hex()}.wav"
    answers: list = []
    first = threading.Thread(target=lambda: answers.append(
        upload(client, "/analyze", clips["other"], name=name)))
    first.start()
    try:
        pool = client.app.state.service.pool
        for _ in range(2000):  # until the first upload holds the only place
            if pool.in_flight == 1:
                break
            time.sleep(0.01)
        assert pool.in_flight == 1
        r = upload(client, "/analyze", fresh, name="second.wav")  # not in the store yet
        assert r.status_code == 503
        assert int(r.headers["Retry-After"]) == settings.retry_after_s
        assert r.json()["error"]["type"] == "QueueFullError"
    finally:
        flag.touch()
        first.join()
    assert answers[0].status_code == 200
    _ok(client, clips["song"])
    assert leftovers(settings) == []


def test_simultaneous_identical_uploads_are_analysed_once(tmp_path, clips):
    settings = make_settings(tmp_path / "data", max_queue=2)
    fresh = tmp_path / "fresh.wav"
    song = render_song(bars=3, seed=12)
    sf.write(fresh, song.samples, song.sr)
    flag = tmp_path / "release"
    answers: dict = {}
    with TestClient(create_app(settings, task=faulty_analysis)) as client:
        pool = client.app.state.service.pool

        def send(key: str, name: str) -> None:
            answers[key] = upload(client, "/analyze-timeline", fresh, name=name)

        def wait_in_flight(n: int) -> None:
            for _ in range(2000):
                if pool.in_flight == n:
                    return
                time.sleep(0.01)
            raise AssertionError(f"{pool.in_flight} in flight, expected {n}")

        first = threading.Thread(target=send, args=("first", f"wait-{str(flag).encode().hex()}.wav"))
        first.start()
        wait_in_flight(1)
        twin = threading.Thread(target=send, args=("twin", "twin.wav"))
        twin.start()
        wait_in_flight(2)
        flag.touch()
        first.join()
        twin.join()
    assert answers["first"].headers["X-Songmap-Cache"] == "miss"
    assert answers["twin"].headers["X-Songmap-Cache"] == "shared"
    assert answers["twin"].json()["filename"] == "twin.wav"
    assert answers["twin"].json()["cached"] is True
    assert (answers["twin"].json()["timeline_features"]
            == answers["first"].json()["timeline_features"])
