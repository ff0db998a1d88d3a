"""Shared by the browser tests: ``songmap serve`` on loopback and Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = bool(os.environ.get("CI"))
SKIP_WHY = "needs playwright and httpx (pip install -e '.[test]')"
try:
    import httpx
    from playwright import sync_api
except ImportError:
    if IN_CI:  # CI must run this test, not skip it
        raise
    httpx = sync_api = None  # the test modules skip themselves

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(data: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``songmap serve`` on loopback in a subprocess (``env`` added to ours); yields its URL."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    port = _free_port()
    log = open(data / "server.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "songmap.cli.main", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--data-dir", str(data)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to ~60 s for the worker to load its models
            if proc.poll() is not None:
                raise RuntimeError(f"songmap serve exited: {(data / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("songmap serve did not become ready")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``songmap serve`` in a subprocess on loopback; yields its base URL."""
    with serving(tmp_path_factory.mktemp("serve-data")) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a module's tests."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
