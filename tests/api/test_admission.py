"""Issue 15, admission before upload: places are taken before the body is read, atomically;
one copy of an upload on disk; 507 on a full disk; slow and silent clients are dropped."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from songmap.api import uploads
from songmap.api.app import create_app
from songmap.api.connections import uvicorn_config
from tests.api.conftest import leftovers, make_settings, upload

uvicorn = pytest.importorskip("uvicorn")

BOUNDARY = "songmapAdmission42"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(settings):
    """``create_app(settings)`` under real uvicorn (songmap serve's config) in a thread."""
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("uvicorn did not start")
        yield server
    finally:
        server.should_exit = True
        thread.join(30)


def _head(url: str, length: int) -> bytes:
    return (f"POST {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n").encode()


def _part_head(name: str = "song.wav") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _status(sock: socket.socket, timeout: float = 10.0) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed without an answer after {data!r}")
        data += chunk
    return int(data.split(b" ", 2)[1])


def _closed(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closed ``sock`` (without a full answer) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_max_jobs_is_enforced_atomically_under_40_concurrent_posts(tmp_path, clips):
    settings = make_settings(tmp_path, max_jobs=5, process_jobs=False)
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda i: upload(client, "/jobs", clips["short"],
                                                 name=f"s{i}.wav"), range(40)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(202) == 5, codes
    assert codes.count(503) == 35, codes
    assert all(r.headers["Retry-After"] for r in answers if r.status_code == 503)
    assert len([p for p in settings.uploads_dir.rglob("*") if p.is_file()]) == 5


def test_a_full_job_queue_answers_503_before_the_body_is_read(tmp_path, clips):
    settings = make_settings(tmp_path, max_jobs=1, process_jobs=False, port=_free_port(),
                             host="127.0.0.1")
    with live_server(settings):
        # the first client's upload is arriving slowly: it holds the only place
        slow = _connect(settings.port)
        slow.sendall(_head("/jobs", 3_000_000) + _part_head() + b"\0" * 1000)
        time.sleep(0.5)
        second = _connect(settings.port)
        t0 = time.monotonic()
        second.sendall(_head("/jobs", 4_000_000))  # the head only: no byte of the body
        assert _status(second, timeout=5) == 503
        assert time.monotonic() - t0 < 3
        stored = [p for p in settings.uploads_dir.rglob("*") if p.is_file()]
        assert len(stored) == 1  # only the admitted upload is on disk
        slow.close()
        second.close()


def test_a_full_analysis_line_answers_503_before_the_body_is_read(tmp_path):
    settings = make_settings(tmp_path, max_queue=0, port=_free_port(), host="127.0.0.1")
    with live_server(settings):
        holder = _connect(settings.port)  # one worker, no waiting line: one place
        holder.sendall(_head("/analyze", 3_000_000) + _part_head() + b"\0" * 1000)
        time.sleep(0.5)
        second = _connect(settings.port)
        second.sendall(_head("/analyze", 3_000_000))
        assert _status(second, timeout=5) == 503
        holder.close()
        second.close()


def test_an_upload_is_streamed_to_its_one_file_with_no_spool_copy(tmp_path, monkeypatch):
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(spool))
    settings = make_settings(tmp_path / "data", process_jobs=False, port=_free_port(),
                             host="127.0.0.1")
    sent = 3_000_000
    with live_server(settings):
        sock = _connect(settings.port)
        sock.sendall(_head("/jobs", 4_500_000) + _part_head("big.wav"))
        for _ in range(sent // 100_000):
            sock.sendall(b"\1" * 100_000)
        files: list = []
        for _ in range(100):  # written as it arrives (a busy machine may take a while)
            files = [p for p in settings.data_dir.rglob("*") if p.is_file()
                     and p.parent.parent == settings.uploads_dir]
            if len(files) == 1 and files[0].stat().st_size >= sent - 200_000:
                break
            time.sleep(0.1)
        assert len(files) == 1 and files[0].name == "big.wav"
        assert files[0].stat().st_size >= sent - 200_000
        spooled = [fd for fd in os.listdir("/proc/self/fd") if _link(fd).startswith(str(spool))]
        assert not spooled and not list(spool.iterdir())
        sock.close()
        for _ in range(50):  # the client left: its partial upload is removed
            if not any(p.is_file() for p in settings.uploads_dir.rglob("*")):
                break
            time.sleep(0.1)
        assert not any(p.is_file() for p in settings.uploads_dir.rglob("*"))


def _link(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@pytest.mark.parametrize("url", ["/analyze", "/jobs"])
def test_a_full_disk_is_507_json_and_leaves_nothing(tmp_path, clips, monkeypatch, url):
    def no_space(digest, out, chunk):
        raise OSError(errno.ENOSPC, "No space left on device")

    settings = make_settings(tmp_path, process_jobs=False, max_jobs=1)
    with TestClient(create_app(settings)) as client:
        monkeypatch.setattr(uploads, "_hash_and_write", no_space)
        r = upload(client, url, clips["song"])
        assert r.status_code == 507, r.text
        assert r.json()["error"]["type"] == "DiskFullError"
        assert "disk is full" in r.json()["error"]["message"]
        assert not [p for p in leftovers(settings) if p.is_file()]
        monkeypatch.undo()
        if url == "/jobs":  # the only place, which it held, is free again
            assert upload(client, url, clips["song"]).status_code == 202


def test_a_stalled_upload_is_dropped_with_408(tmp_path):
    settings = make_settings(tmp_path, body_idle_timeout_s=1.0, process_jobs=False,
                             port=_free_port(), host="127.0.0.1")
    with live_server(settings):
        sock = _connect(settings.port)
        sock.sendall(_head("/jobs", 1_000_000) + _part_head() + b"\0" * 1000)
        assert _status(sock, timeout=5) == 408
        sock.close()
        time.sleep(0.3)
        assert not [p for p in leftovers(settings) if p.is_file()]


def test_silent_connections_are_closed_and_capped(tmp_path):
    settings = make_settings(tmp_path, header_timeout_s=1.0, max_connections=4,
                             process_jobs=False, port=_free_port(), host="127.0.0.1")
    with live_server(settings):
        idle = [_connect(settings.port) for _ in range(8)]
        idle[0].sendall(b"GET /healthz HTTP/1.1\r\nHo")  # a head that never ends
        time.sleep(0.3)
        # past the cap: closed at once
        assert sum(_closed(s, 0.2) for s in idle[4:]) == 4
        # the silent ones: closed after the head deadline
        assert all(_closed(s, 3.0) for s in idle[:4])
        for s in idle:
            s.close()
        ok = _connect(settings.port)
        ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _status(ok) == 200
        ok.close()


@pytest.mark.models  # the app's lifespan starts its workers
def test_a_job_with_its_body_missing_the_file_frees_its_place(tmp_path, clips):
    settings = make_settings(tmp_path, max_jobs=1, process_jobs=False)
    with TestClient(create_app(settings)) as client:
        with open(clips["short"], "rb") as f:
            bad = client.post("/jobs", files={"audio": ("s.wav", f)})
        assert bad.status_code == 400 and "no file" in bad.json()["error"]["message"]
        assert upload(client, "/jobs", clips["short"]).status_code == 202
