"""The picture: headless rendering, exact size, and actual content where the beats are."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from songmap.export import export  # noqa: E402
from songmap.plot import plot_timeline, render_png, title_for  # noqa: E402


@pytest.fixture(scope="module")
def example_audio(example_file):
    from songmap.audio import load_audio

    return load_audio(example_file)


def _pixels(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(png), format="png")


def test_png_has_the_asked_size_and_is_not_blank(example_result, example_audio):
    png = render_png(example_result, example_audio.samples, example_audio.sr,
                     width_px=1200, height_px=400)
    img = _pixels(png)
    assert img.shape[:2] == (400, 1200)
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not a flat image
    # the waveform colour covers a real part of the upper panel
    wave = np.all(np.abs(rgb - np.array([0x3b, 0x5b, 0x92]) / 255) < 0.08, axis=-1)
    assert wave[: 300].mean() > 0.02
    # and red downbeat lines exist
    red = (rgb[..., 0] > 0.6) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
    assert red.sum() > 200


def test_figure_carries_title_bar_numbers_and_chords(example_result, example_audio):
    fig = plot_timeline(example_result, example_audio.samples, example_audio.sr)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert fig._suptitle.get_text() == title_for(example_result)
    assert "C major" in title_for(example_result) and "120.0 BPM" in title_for(example_result)
    assert "4/4" in title_for(example_result)
    bar_numbers = {t.strip() for t in texts if t.strip().isdigit()}
    assert bar_numbers == {str(d.bar) for d in example_result.downbeat_timeline}
    chords = [t for t in texts if ":" in t]
    assert chords[:4] == ["C:maj", "A:min", "F:maj", "G:maj"]


def test_png_export_without_audio_and_for_silence():
    from tests.export.helpers import ritardando_waltz, silent_result

    for r in (ritardando_waltz(), silent_result()):
        img = _pixels(export(r, "png"))
        assert img.shape[:2] == (500, 1600)
        assert img[..., :3].std() > 0.01


def test_long_track_thins_out_labels():
    from tests.export.helpers import make_result

    times = [0.5 + 0.5 * i for i in range(4 * 200)]  # 200 bars, 400 s
    chords = [(0.5 + 2.0 * b, 2.5 + 2.0 * b, ("C:maj", "G:maj")[b // 4 % 2]) for b in range(200)]
    r = make_result(times, [1, 2, 3, 4] * 200, chords=chords)
    fig = plot_timeline(r, width_px=1600, height_px=400)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert 5 < sum(t.strip().isdigit() for t in texts) <= 60
    assert 5 < sum(":" in t for t in texts) <= 60
