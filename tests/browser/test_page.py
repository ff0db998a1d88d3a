"""The web page in a real browser: Debian's Chromium driven by Playwright (Python).

Starts ``songmap serve`` on 127.0.0.1, uploads the bundled example through the page,
and checks what a person sees: one marker per bar, chord labels, the header, a playhead
that moves while the audio plays, a click on a bar that jumps there. Saves a screenshot
under the test's output (and to docs/screenshot.png when that file is missing or
SONGMAP_UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

IN_CI = bool(os.environ.get("CI"))
try:
    import httpx
    from playwright import sync_api
except ImportError:
    if IN_CI:  # CI must run this test, not skip it
        raise
    pytest.skip("needs playwright and httpx (pip install -e '.[test]')", allow_module_level=True)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``songmap serve`` in a subprocess on loopback; yields its base URL."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    data = tmp_path_factory.mktemp("serve-data")
    port = _free_port()
    log = open(data / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "songmap.cli.main", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--data-dir", str(data)],
        stdout=log, stderr=subprocess.STDOUT,
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


def test_upload_example_and_read_the_map(server, tmp_path):
    from songmap.examples import example_path

    example = example_path()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 640})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server + "/")
            page.set_input_files("#file", str(example))
            page.wait_for_selector("#result:not([hidden])", timeout=90_000)

            # what the API says about the same file (now a stored result)
            with open(example, "rb") as f:
                api = httpx.post(f"{server}/analyze-timeline", timeout=60,
                                 files={"file": (example.name, f, "audio/flac")}).json()
            tf = api["timeline_features"]
            total_bars = tf["total_bars"]
            assert total_bars > 0
            assert page.locator(".bar-marker").count() == total_bars
            assert page.locator(".bar-marker span").all_text_contents() == [
                str(i) for i in range(1, total_bars + 1)]
            labels = page.locator(".chord-label").all_text_contents()
            expected_labels = sum(max(len(bar["chords"]), 1) for bar in tf["chord_progression"])
            assert len(labels) == expected_labels >= total_bars
            assert all(label.strip() for label in labels)
            assert {"C", "Am", "F", "G"} & set(labels)
            assert page.text_content("#fact-bars") == str(total_bars)
            assert page.text_content("#fact-meter") == tf["time_signature"]["label"]
            assert tf["key"]["camelot"] in page.text_content("#fact-key")
            assert page.text_content("#fact-bpm").startswith(f"{tf['tempo']['bpm']:.1f}")
            assert page.text_content("#fact-duration") == "0:21"

            # play: the playhead moves
            page.click("#play")
            page.wait_for_function(
                "Number(document.getElementById('playhead').dataset.time) > 0.5",
                timeout=20_000)
            page.click("#play")  # pause
            # click bar 5: the playhead jumps to its downbeat
            bar5 = tf["downbeat_timeline"][4]["timestamp"]
            page.click(".bar-marker[data-bar='5']")
            page.wait_for_function(
                f"Math.abs(Number(document.getElementById('playhead').dataset.time) - {bar5}) < 0.05",
                timeout=10_000)
            page.click(".bar-marker[data-bar='3']")
            page.wait_for_function(
                "Number(document.getElementById('playhead').dataset.time) > 0", timeout=10_000)
            # downloads
            href = page.get_attribute("#dl-json", "href")
            assert httpx.get(server + href).json()["total_bars"] == total_bars
            assert page.locator("#dl-more a").count() >= 1
            assert errors == []

            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            docs = REPO / "docs" / "screenshot.png"
            if not docs.exists() or os.environ.get("SONGMAP_UPDATE_SCREENSHOT") == "1":
                docs.parent.mkdir(exist_ok=True)
                shutil.copyfile(shot, docs)

            # a file that is not audio: the page says so, in the server's words
            notes = tmp_path / "notes.mp3"
            notes.write_text("not a song\n" * 40)
            page.set_input_files("#file", str(notes))
            page.wait_for_selector("#error:not([hidden])", timeout=30_000)
            assert "notes.mp3 is not audio" in page.text_content("#error")
            assert page.is_hidden("#result")
            assert errors == []
        finally:
            browser.close()
