"""Server faults: a crashed, killed or stuck worker answers 500/504 with an id and is
replaced; a full line of waiting analyses answers 503 with Retry-After; against a real
``songmap serve`` on loopback: malformed multipart bodies are 4xx, clients hanging up leave
no file or worker behind, and a trickled upload does not hold up other requests."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.examples import render_song
from tests.robustness.faults import ServeProcess, multipart, request_head

from .conftest import leftovers, make_settings, upload
from .tasks import faulty_analysis

pytestmark = pytest.mark.models  # every test runs the service's worker, which loads the networks


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


# -- a worker killed from outside (kill -9) ---------------------------------------------------
def _wait_for(condition, timeout_s: float = 30.0, step_s: float = 0.02) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout_s} s: {condition}")
        time.sleep(step_s)


def test_worker_sigkilled_mid_analysis_is_a_500_and_the_pool_refills(faulty, clips, tmp_path):
    """Not retried: the request gets a 500 with an id (a file that kills the decoder would
    kill the retry's worker too); the pool starts a new worker and the next request works."""
    client, settings = faulty
    pool = client.app.state.service.pool
    _wait_for(lambda: pool.workers_ready == 1)
    [slot] = pool._slots
    old_pid = slot.pid
    fresh = tmp_path / "fresh.wav"  # not in the store: it must reach the worker
    song = render_song(bars=3, seed=13)
    sf.write(fresh, song.samples, song.sr)
    started = tmp_path / "started"
    answers: list = []
    sender = threading.Thread(target=lambda: answers.append(upload(
        client, "/analyze", fresh, name=f"mark-{str(started).encode().hex()}.wav")))
    sender.start()
    try:
        _wait_for(started.exists, timeout_s=10)  # the worker is inside the task now
        os.kill(old_pid, signal.SIGKILL)
    finally:
        sender.join(30)
    r = answers[0]
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert error["type"] == "WorkerCrashedError" and error["id"] in error["message"]
    assert "killed by SIGKILL" in error["message"] and "not retried" in error["message"]
    _wait_for(lambda: client.get("/readyz").status_code == 200)
    assert client.get("/readyz").json()["workers_ready"] == 1
    assert slot.pid != old_pid and slot.alive
    _ok(client, clips["song"])
    assert leftovers(settings) == []


# -- a real server on loopback: malformed bodies, hang-ups, trickled uploads -----------------
@pytest.fixture(scope="module")
def served(tmp_path_factory, clips):
    root = tmp_path_factory.mktemp("served")
    with ServeProcess(root) as server:
        server.wait_ready()
        assert server.upload("/analyze-timeline", "warm.wav",
                             clips["song"].read_bytes()).status == 200
        yield server
        assert server.stop() == 0


_B = "songmapBoundary42"
_MULTIPART = {"Content-Type": f"multipart/form-data; boundary={_B}"}


def _malformed(kind: str, wav: bytes) -> tuple[bytes, dict[str, str]]:
    good = multipart({"file": ("a.wav", wav)}, _B)
    return {
        "bad boundary": (multipart({"file": ("a.wav", wav)}, "another"), _MULTIPART),
        "no boundary": (good, {"Content-Type": "multipart/form-data"}),
        "missing file field": (multipart({"audio": ("a.wav", wav)}, _B), _MULTIPART),
        "truncated body": (good[: len(good) // 2], _MULTIPART),
        "part without headers": (f"--{_B}\r\n\r\nabc\r\n--{_B}--\r\n".encode(), _MULTIPART),
        "binary garbage": (bytes(range(256)) * 64, _MULTIPART),
        "not multipart": (wav, {"Content-Type": "audio/wav"}),
        "no body": (b"", _MULTIPART),
    }[kind]


MALFORMED = ["bad boundary", "no boundary", "missing file field", "truncated body",
             "part without headers", "binary garbage", "not multipart", "no body"]


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_multipart_is_a_4xx_json_error(served, clips, kind):
    body, headers = _malformed(kind, clips["song"].read_bytes())
    r = served.request("POST", "/analyze", body, headers, timeout=30)
    assert 400 <= r.status < 500, r
    error = r.json()["error"]
    assert error["id"] is None and error["message"]
    assert "multipart/form-data field 'file'" in error["message"]  # says how to do it right
    assert served.leftovers() == []


def _fds_settle(server: ServeProcess, limit: int) -> int:
    deadline = time.monotonic() + 5
    while (n := server.open_fds()) > limit and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


def _leftovers_settle(server: ServeProcess) -> list:
    """The scratch files still there after up to 5 s: the server closes an abandoned
    upload's file, then deletes it and its folder (a test looking in between, on a busy
    machine, saw the empty folder)."""
    deadline = time.monotonic() + 5
    while (left := server.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_client_hanging_up_mid_upload_leaves_nothing_behind(served, clips):
    content = bytes(3_000_000)  # past the multipart parser's 1 MB in-memory spool: on disk
    body = multipart({"file": ("big.wav", content)}, _B)
    baseline = served.open_fds()
    for cut in (100, len(body) // 3, len(body) - 10):
        sock = served.raw(request_head("/analyze", len(body)) + body[:cut])
        time.sleep(0.3)  # the server has read what was sent
        sock.close()
    assert _fds_settle(served, baseline) <= baseline  # no spool file or socket kept open
    assert _leftovers_settle(served) == []
    r = served.upload("/analyze-timeline", "after.wav", clips["song"].read_bytes())
    assert r.status == 200, r


def test_client_hanging_up_during_analysis_does_not_wedge_the_worker(served, clips):
    wav = clips["other"].read_bytes()
    body = multipart({"file": ("hangup.flac", wav)}, _B)
    sock = served.raw(request_head("/analyze", len(body)) + body)
    time.sleep(0.3)  # uploaded; the worker is on it
    sock.close()
    r = served.upload("/analyze-timeline", "after.flac", wav, timeout=60)  # same audio: shared
    assert r.status == 200, r
    _wait_for(lambda: served.leftovers() == [], timeout_s=10)


def test_a_trickled_upload_does_not_block_other_requests(served, clips):
    wav = clips["song"].read_bytes()
    body = multipart({"file": ("slow.wav", wav)}, _B)
    sock = served.raw(request_head("/analyze-timeline", len(body)))
    pieces = 20  # the body over 2 s
    step = len(body) // pieces + 1

    def trickle() -> None:
        for i in range(0, len(body), step):
            sock.sendall(body[i:i + step])
            time.sleep(0.1)

    t0 = time.monotonic()
    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        assert served.request("GET", "/healthz", timeout=5).status == 200
        r = served.upload("/analyze-timeline", "meanwhile.flac", clips["other"].read_bytes())
        assert r.status == 200, r
        meanwhile = time.monotonic() - t0
        assert sender.is_alive(), "the trickle ended too soon to prove anything"
    finally:
        sender.join(10)
    sock.settimeout(60)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
        if b"\r\n\r\n" in answer and b"}" in answer.rsplit(b"\r\n\r\n", 1)[-1]:
            break
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert meanwhile < 2.0
