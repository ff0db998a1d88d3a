"""A real ``songmap serve`` in a subprocess on loopback, and raw-HTTP helpers to hurt it.

Used by the fault tests (tests/api/test_faults.py, tests/robustness/test_faults_*.py) and by
``benchmarks/robustness.py``: disconnects and trickled uploads need a real server and
a real socket, which ``TestClient`` cannot give.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def multipart(fields: dict[str, tuple[str, bytes]], boundary: str = "songmapBoundary42") -> bytes:
    """A multipart/form-data body: ``{field: (filename, content)}``."""
    out = b""
    for field, (filename, content) in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


class ServeProcess:
    """``songmap serve`` with its own data dir and TMPDIR; ``stop()`` sends SIGINT (Ctrl-C)."""

    def __init__(self, root: Path, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.tmpdir = root / "tmp"
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = root / "serve.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        environment = {**os.environ, "TMPDIR": str(self.tmpdir), "SONGMAP_THREADS": "1",
                       "SONGMAP_MAX_DURATION_S": "60", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "songmap.cli.main", "serve", "--host", HOST,
             "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--workers", str(workers)],
            stdout=self._log, stderr=subprocess.STDOUT, env=environment,
        )

    # -- life ------------------------------------------------------------------------------
    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"songmap serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if self.request("GET", "/readyz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"songmap serve not ready after {timeout_s} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 30.0) -> int:
        """Send ``sig`` and wait; kills it (and fails) if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """Pids of the worker processes (children of the server)."""
        import psutil

        return [c.pid for c in psutil.Process(self.proc.pid).children()
                if "resource_tracker" not in " ".join(c.cmdline())]

    def open_fds(self) -> int:
        """The server's open files and sockets, except its SQLite files: those are opened
        once per thread of the (growing, bounded) thread pool, which is not a leak."""
        folder = f"/proc/{self.proc.pid}/fd"
        links = []
        for fd in os.listdir(folder):
            try:
                links.append(os.readlink(f"{folder}/{fd}"))
            except OSError:  # closed meanwhile
                pass
        return sum(".sqlite" not in link for link in links)

    def leftovers(self) -> list[Path]:
        """Files in TMPDIR, the scratch folder and the uploads folder."""
        folders = (self.tmpdir, self.data_dir / "scratch", self.data_dir / "uploads")
        return [p for d in folders if d.exists() for p in d.rglob("*")]

    # -- talking -----------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60.0) -> Answer:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()

    def upload(self, path: str, filename: str, content: bytes, timeout: float = 60.0) -> Answer:
        boundary = "songmapBoundary42"
        return self.request("POST", path, multipart({"file": (filename, content)}, boundary),
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
                            timeout=timeout)

    def raw(self, data: bytes) -> socket.socket:
        """A socket that has sent ``data`` (a request head and part of a body)."""
        sock = socket.create_connection((HOST, self.port), timeout=10)
        sock.sendall(data)
        return sock

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def request_head(path: str, content_length: int, boundary: str = "songmapBoundary42") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {content_length}\r\n\r\n").encode()
