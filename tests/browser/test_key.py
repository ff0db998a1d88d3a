"""The page on a server with an API key (issue 15): it asks for the key once, sends it with
every request and download, and breaks none of its own Content-Security-Policy."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SKIP_WHY, httpx, serving, sync_api

pytestmark = pytest.mark.browser
if sync_api is None:
    pytest.skip(SKIP_WHY, allow_module_level=True)

KEY = "page-test-key-7"


def test_the_page_asks_for_the_key_and_uses_it(tmp_path_factory):
    from songmap.examples import example_path

    with serving(tmp_path_factory.mktemp("keyed-serve"), {"SONGMAP_API_KEY": KEY}) as server:
        assert httpx.get(f"{server}/library").status_code == 401
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 640},
                                        accept_downloads=True)
                problems: list[str] = []
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                page.on("console", lambda msg: problems.append(msg.text)
                        if "Content Security Policy" in msg.text else None)
                page.goto(server + "/")
                page.wait_for_selector("#key-form:not([hidden])", timeout=10_000)
                page.fill("#key-input", KEY)
                page.click("#key-form button[type=submit]")
                page.wait_for_selector("#key-form", state="hidden")
                page.set_input_files("#file", str(example_path()))
                page.wait_for_selector("#result:not([hidden])", timeout=90_000)
                assert page.evaluate("localStorage.getItem('songmap.apiKey')") == KEY
                page.click("#play")  # the dropped file plays from a blob: URL under the CSP
                for _ in range(200):
                    if page.evaluate("Number(document.getElementById('playhead').dataset.time)"
                                     ) > 0.5:
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError("the playhead did not move")
                page.click("#play")
                with page.expect_download() as download:
                    page.click("#dl-json")
                saved = download.value.path()
                assert '"total_bars"' in Path(saved).read_text(encoding="utf-8")
                # a reload finds the key remembered: no prompt, the library opens
                page.reload()
                page.click("#library summary")
                page.wait_for_selector(".lib-entry", timeout=10_000)
                assert page.is_hidden("#key-form")
                assert problems == []
            finally:
                browser.close()
