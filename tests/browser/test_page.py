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

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, REPO, SKIP_WHY, httpx, sync_api

pytestmark = pytest.mark.browser
if sync_api is None:
    pytest.skip(SKIP_WHY, allow_module_level=True)


def test_upload_example_and_read_the_map(server, tmp_path):
    from songmap.examples import example_path

    example = example_path()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # wait_for_function evaluates its predicate with eval(), which the page's CSP
            # forbids (playwright issue 7395); tests/browser/test_key.py runs the page under it
            page = browser.new_page(viewport={"width": 1280, "height": 640}, bypass_csp=True)
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
