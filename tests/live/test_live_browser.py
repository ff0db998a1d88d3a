"""The web page's Live mode in Debian's Chromium: a fake microphone plays a rendered song
(``--use-file-for-fake-audio-capture``), the page streams it to ``/live`` and shows bar
numbers advancing and chords changing. Saves a screenshot (docs/live.png when missing)."""

from __future__ import annotations

import re
import time

import pytest
import soundfile as sf

from songmap.examples import render_song
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, REPO, server, sync_api  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _wait_for(page, expression: str, *, timeout_s: float) -> None:
    """Poll ``expression`` until it is true. The page runs under its own CSP (no eval), which
    is part of what this test checks (the WebSocket must pass ``connect-src``), so
    ``page.wait_for_function`` (it evaluates its predicate with eval) cannot be used."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise sync_api.TimeoutError(f"not true within {timeout_s:g} s: {expression}")
        time.sleep(0.2)


def test_live_mode_follows_the_microphone(server, tmp_path):  # noqa: F811
    if sync_api is None:
        pytest.skip("needs playwright")
    song = render_song(bpm=120.0, bars=16, sr=44100, seed=6,
                       progression=("C:maj", "A:min", "F:maj", "G:maj"))
    wav = tmp_path / "mic.wav"
    sf.write(wav, song.samples, song.sr, subtype="PCM_16")
    args = [a for a in CHROMIUM_ARGS if a != "--mute-audio"] + [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 700})
            logs: list[str] = []
            page.on("console", lambda m: logs.append(m.text))
            page.goto(server + "/")
            page.click("#live-start")
            try:
                _wait_for(page,
                          "document.querySelectorAll('#live-grid .live-bar[data-bar]').length >= 4",
                          timeout_s=60)
            except sync_api.TimeoutError:
                pytest.fail(f"no bars: status {page.inner_text('#live-status')!r}, "
                            f"position {page.inner_text('#live-pos')!r}, console {logs[-5:]}")
            bars = [int(x) for x in page.eval_on_selector_all(
                "#live-grid .live-bar[data-bar]", "els => els.map(e => e.dataset.bar)")]
            assert bars == sorted(bars) and bars[-1] >= 4
            _wait_for(page, "new Set([...document.querySelectorAll('#live-grid .live-bar-chord')]"
                            ".map(e => e.textContent).filter(Boolean)).size >= 2", timeout_s=30)
            assert re.fullmatch(r"\d+\.\d", page.inner_text("#live-pos"))
            shot = tmp_path / "live.png"
            page.screenshot(path=str(shot))
            docs = REPO / "docs" / "live.png"
            if not docs.exists():
                docs.write_bytes(shot.read_bytes())
            page.click("#live-stop")
        finally:
            browser.close()
