from __future__ import annotations

import pytest

from tests.export.helpers import ritardando_waltz


@pytest.fixture(scope="session")
def waltz_result():
    return ritardando_waltz()


@pytest.fixture(params=["example", "waltz"])
def any_result(request, golden_result, waltz_result):
    """The real analysis of the bundled example (stored: ``golden_result``), and a
    constructed 3/4 ritardando with pickups."""
    return golden_result if request.param == "example" else waltz_result


@pytest.fixture(scope="session")
def steady_click_result(analyzer, tmp_path_factory):
    """A 128 BPM click track (sample-exact clicks) analysed by the whole pipeline."""
    import soundfile as sf

    from tests.conftest import click_track

    path = tmp_path_factory.mktemp("steady") / "click128.wav"
    sf.write(path, click_track(128.0, 40.0), 44100)
    return analyzer.analyze(path)
