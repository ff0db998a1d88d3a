"""The picture: headless rendering, exact size, and actual content where the beats are."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread

from songmap.export import export
from songmap.plot import plot_timeline, render_png, title_for


@pytest.fixture(scope="module")
def example_audio(example_file):
    from songmap.audio import load_audio

    return load_audio(example_file)


def _pixels(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(png), format="png")


def test_png_has_the_asked_size_and_is_not_blank(golden_result, example_audio):
    png = render_png(golden_result, example_audio.samples, example_audio.sr,
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


def test_figure_carries_title_bar_numbers_and_chords(golden_result, example_audio):
    fig = plot_timeline(golden_result, example_audio.samples, example_audio.sr)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert fig._suptitle.get_text() == title_for(golden_result)
    assert "C major" in title_for(golden_result) and "120.0 BPM" in title_for(golden_result)
    assert "4/4" in title_for(golden_result)
    bar_numbers = {t.strip() for t in texts if t.strip().isdigit()}
    assert bar_numbers == {str(d.bar) for d in golden_result.downbeat_timeline}
    chords = [t for t in texts if ":" in t]
    assert chords[:4] == ["C:maj", "A:min", "F:maj", "G:maj"]


def test_png_export_without_audio_and_for_silence():
    from tests.export.helpers import ritardando_waltz, silent_result

    for r in (ritardando_waltz(), silent_result()):
        img = _pixels(export(r, "png"))
        assert img.shape[:2] == (500, 1600)
        assert img[..., :3].std() > 0.01


def _all_texts(fig):
    """Every visible text of the figure: title, bar numbers, chord names, tick labels."""
    texts = [fig._suptitle] if fig._suptitle else []
    for ax in fig.axes:
        texts += ax.texts
        if ax.axison:  # tick labels matplotlib draws: those inside the axis' view
            lo, hi = sorted(ax.get_xlim())
            texts += [t for t in ax.get_xticklabels()
                      if t.get_text() and lo <= t.get_position()[0] <= hi]
        texts += [ax.yaxis.label] if ax.yaxis.label.get_text() else []
    return [t for t in texts if t.get_visible()]


def assert_no_text_overlaps(fig):
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _all_texts(fig)]
    width, height = fig.bbox.width, fig.bbox.height
    for text, b in boxes:  # inside the picture
        assert b.x0 >= -1 and b.x1 <= width + 1 and b.y0 >= -1 and b.y1 <= height + 1, text
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][1].x0)
    for n, i in enumerate(order):  # sweep by x: only boxes starting before this one ends
        ti, bi = boxes[i]
        for j in order[n + 1:]:
            tj, bj = boxes[j]
            if bj.x0 >= bi.x1:
                break
            overlap = Bbox.intersection(bi, bj)
            assert overlap is None or overlap.width < 0.5 or overlap.height < 0.5, (ti, tj)


def downbeat_lines_drawn(fig) -> list[float]:
    """x (s) of every red downbeat line that falls inside its axes' x range."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba

    from songmap.plot import _DOWNBEAT

    red = to_rgba(_DOWNBEAT)
    xs = []
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        for c in ax.collections:
            if isinstance(c, LineCollection) and tuple(c.get_colors()[0]) == red:
                xs += [float(seg[0][0]) for seg in c.get_segments() if lo <= seg[0][0] <= hi]
    return xs


def test_long_track_wraps_into_rows_without_overlaps():
    from tests.export.helpers import make_result

    times = [0.5 + 0.5 * i for i in range(4 * 200)]  # 200 bars, 400 s
    chords = [(0.5 + 2.0 * b, 2.5 + 2.0 * b, ("C:maj", "G:maj")[b // 4 % 2]) for b in range(200)]
    r = make_result(times, [1, 2, 3, 4] * 200, chords=chords)
    fig = plot_timeline(r, width_px=1600)
    assert fig.get_size_inches()[1] * fig.dpi > 1000  # 7 rows: the height follows the length
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("C:maj") + texts.count("G:maj") == 200 // 4  # changes only; rows start on changes here
    assert_no_text_overlaps(fig)
    assert sorted(downbeat_lines_drawn(fig)) == pytest.approx(r.downbeat_times())


@pytest.fixture(scope="module")
def ten_minute_song(analyzer, tmp_path_factory):
    """A rendered 10-minute song (310 bars at 124 BPM, an 8-bar progression) and its result."""
    import soundfile as sf

    from songmap.examples import render_song

    song = render_song(bpm=124.0, bars=310, seed=5, progression=(
        "A:min", "F:maj", "C:maj", "G:maj", "A:min", "F:maj", "E:min", "E:min"))
    path = tmp_path_factory.mktemp("long") / "ten_minutes.wav"
    sf.write(path, song.samples, song.sr, subtype="PCM_16")
    return analyzer.analyze(path), song


def test_ten_minute_song_every_bar_line_and_no_overlapping_labels(ten_minute_song):
    result, song = ten_minute_song
    assert result.audio.duration > 590 and result.total_bars >= 300
    fig = plot_timeline(result, song.samples, song.sr)
    assert_no_text_overlaps(fig)
    drawn = sorted(downbeat_lines_drawn(fig))
    assert drawn == pytest.approx(result.downbeat_times())
    bar_numbers = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text().isdigit()]
    assert len(bar_numbers) == result.total_bars  # 32 bars per row leave room for every number
    chord_texts = [t.get_text() for ax in fig.axes for t in ax.texts if ":" in t.get_text()]
    changes = 1 + sum(a[2] != b[2] for a, b in zip(result.chord_segments, result.chord_segments[1:]))
    assert 0 < len(chord_texts) <= changes + len(fig.axes) // 3  # changes (+ row starts) only


def test_narrow_picture_drops_labels_instead_of_overlapping(ten_minute_song):
    result, _ = ten_minute_song
    fig = plot_timeline(result, width_px=500, bars_per_row=64)
    assert_no_text_overlaps(fig)
    bar_numbers = [t for ax in fig.axes for t in ax.texts if t.get_text().isdigit()]
    assert 0 < len(bar_numbers) < result.total_bars
    assert sorted(downbeat_lines_drawn(fig)) == pytest.approx(result.downbeat_times())
