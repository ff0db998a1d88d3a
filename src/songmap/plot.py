"""A picture of a result: waveform, beat ticks, numbered bars, the chords, at any length.

A short track draws as one row; a long one wraps into rows of ``bars_per_row`` bars (32 by
default, i.e. eight 4-bar phrases), like lines of a score.
Each row fills the width (the last one keeps its bars' scale); the figure grows in height
with the number of rows. Labels (bar numbers, chord names) are
placed greedily from the left using their real text extents and dropped where they would
touch the previous one, so nothing overlaps at any size; chord names are written only where
the chord changes (and at the start of each row), the colour band shows every chord.

Matplotlib's object API with the Agg canvas (no pyplot, no display, no global state), so
it runs headless and from several threads. Without audio the upper panel shows the beat
confidences instead of the waveform; everything else comes from the result alone.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure

    from songmap.schema import AnalysisResult

_BAR_SHADES = ("#f4f6fb", "#e6eaf4")
_WAVE = "#3b5b92"
_DOWNBEAT = "#c0392b"
_BEAT = "#7f8c8d"
# One colour per chord root (C..B around the hue circle, so fifths differ clearly); minor
# and other qualities share their root's colour, "N" is grey.
_ROOT_HUES = np.linspace(0.0, 1.0, 12, endpoint=False)
_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_HEADER_PX = 56    # title
_FOOTER_PX = 34    # the last row's time axis
_ROW_PX = 190      # one row: bar numbers, waveform, chord band, time ticks
_MIN_HEIGHT_PX = 500
_LABEL_GAP_PX = 4  # smallest gap between two labels on one line
_LEFT_PX, _RIGHT_PX = 72, 14  # margins beside the rows (y labels; labels may reach in)


def title_for(result: AnalysisResult) -> str:
    r = result
    key = r.key.label if r.key.label != "N" else "no key"
    if r.key.camelot:
        key += f" ({r.key.camelot})"
    bpm = f"{r.tempo.bpm:.1f} BPM" if r.tempo.bpm > 0 else "no tempo"
    return f"{r.filename} \u2014 {key} \u00b7 {bpm} \u00b7 {r.time_signature.label}"


def _envelope(samples: np.ndarray, sr: int, n_cols: int, duration: float) -> tuple[np.ndarray, ...]:
    """Min/max per column, so a 10-minute track draws as fast as a 10-second one."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    n_cols = max(1, min(n_cols, len(x)))
    edges = np.linspace(0, len(x), n_cols + 1).astype(int)
    lo = np.minimum.reduceat(x, edges[:-1]) if len(x) else np.zeros(n_cols)
    hi = np.maximum.reduceat(x, edges[:-1]) if len(x) else np.zeros(n_cols)
    t = (edges[:-1] + edges[1:]) / 2 / sr
    return t, lo, hi


def chord_colour(harte: str) -> tuple[float, float, float]:
    """RGB (0..1) of a chord band: hue from the root, lighter for minor, grey for ``N``."""
    from matplotlib.colors import hsv_to_rgb

    root = harte.split(":")[0].split("/")[0]
    if not root or root[0] not in _PITCH:
        return (0.86, 0.86, 0.86)
    pc = (_PITCH[root[0]] + root[1:].count("#") - root[1:].count("b")) % 12
    minor = ":min" in harte or ":dim" in harte or ":hdim" in harte
    hue = _ROOT_HUES[(pc * 7) % 12]  # fifths apart = neighbours on the circle of fifths
    return tuple(hsv_to_rgb((hue, 0.28 if minor else 0.42, 0.97)))  # type: ignore[return-value]


def chord_label(harte: str) -> str:
    """The name written on the plot for a Harte label (the Harte label itself today).

    Hook for key-aware spelling: when the result carries spelled names, map them here.
    """
    return harte


def row_spans(
    downbeat_times: np.ndarray, duration_s: float, *, bars_per_row: int
) -> list[tuple[float, float]]:
    """(start_s, end_s) of each row: rows start at every ``bars_per_row``-th downbeat.

    The first row starts at 0 s (pickup beats belong to it); the last one ends at
    ``duration_s``. A track without bars is one row.
    """
    starts = [0.0] + [float(t) for t in downbeat_times[bars_per_row::bars_per_row]
                      if 0.0 < t < duration_s]
    ends = [*starts[1:], duration_s]
    return list(zip(starts, ends))


@dataclass(frozen=True)
class _Label:
    x_s: float
    text: str


def _place_labels(
    ax: Axes, renderer: RendererBase, labels: list[_Label], *, y: float, right_limit_px: float,
    **text_kw: Any,
) -> None:
    """Draw ``labels`` left-aligned at their x, skipping any that would touch the previous one."""
    from matplotlib.transforms import offset_copy

    # a few points right of its line, so the text never sits on the line it names
    # (typed for a Figure; a SubFigure serves as well: only its dpi_scale_trans is read)
    shifted = offset_copy(ax.transData, fig=ax.figure, x=3, y=0,  # type: ignore[arg-type]
                          units="points")
    last_right = -math.inf
    for lab in labels:
        t = ax.text(lab.x_s, y, lab.text, ha="left", va="center", clip_on=False,
                    transform=shifted, **text_kw)
        box = t.get_window_extent(renderer)
        if box.x0 < last_right + _LABEL_GAP_PX or box.x1 > right_limit_px:
            t.remove()
            continue
        last_right = box.x1


@dataclass(frozen=True)
class _View:
    """What every row of the picture draws from (times in s)."""

    bars: list
    bar_times: np.ndarray
    beats: list
    beat_t: np.ndarray
    beat_is_down: np.ndarray
    segments: list[tuple[float, float, str]]
    #: (times, low, high) of the waveform, or None without audio; ``peak`` its largest level
    env: tuple[np.ndarray, ...] | None
    peak: float
    bars_per_row: int
    n_rows: int


def _view(result: AnalysisResult, env: tuple[np.ndarray, ...] | None, *,
          bars_per_row: int, n_rows: int) -> _View:
    peak = 0.0
    if env is not None:
        peak = float(max(np.abs(env[1]).max(initial=0), np.abs(env[2]).max(initial=0), 1e-6))
    beats = result.beat_transient_markers
    return _View(
        bars=result.downbeat_timeline,
        bar_times=result.downbeat_times(),
        beats=beats,
        beat_t=result.beat_times(),
        beat_is_down=np.array([b.beat_position == 1 and b.bar > 0 for b in beats], dtype=bool),
        segments=[(float(s), float(e), str(lab)) for s, e, lab in result.chord_segments],
        env=env, peak=peak, bars_per_row=bars_per_row, n_rows=n_rows,
    )


def _figure(
    width_px: int, height_px: int, dpi: int, n_rows: int, title: str,
) -> tuple[Figure, RendererBase, np.ndarray]:
    """(figure, renderer, axes): three axes a row (waveform, chord band, spacer)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    fig.subplots_adjust(left=min(0.4, _LEFT_PX / width_px),
                        right=1 - min(0.1, _RIGHT_PX / width_px),
                        top=1 - min(0.4, _HEADER_PX / height_px),
                        bottom=min(0.4, _FOOTER_PX / height_px))
    ratios = []
    for _ in range(n_rows):
        ratios += [5, 1.3, 0.9]  # waveform, chord band, spacer holding the time ticks
    axes = fig.subplots(3 * n_rows, 1, gridspec_kw={"height_ratios": [*ratios[:-1], 0.01],
                                                    "hspace": 0.0})
    axes = np.atleast_1d(axes)
    fig.suptitle(title, fontsize=12, y=1 - 10 / height_px, va="top")
    return fig, renderer, axes


def _row_seconds(v: _View, row: int, t0: float, t1: float, in_row: np.ndarray) -> float:
    """Seconds the row's width stands for: each row fills the width, so bars look alike
    even where the tempo changes; the last, shorter row keeps the scale of its own bars
    (no stretching)."""
    bar_s = float(np.mean([v.bars[i].duration for i in np.flatnonzero(in_row)])) \
        if in_row.any() else t1 - t0
    return max(t1 - t0, bar_s * v.bars_per_row) if row == v.n_rows - 1 and v.n_rows > 1 \
        else t1 - t0


def _draw_signal(ax: Axes, v: _View, t0: float, t1: float) -> float:
    """The waveform (or the beat confidences) of the row; returns the bar numbers' height."""
    if v.env is not None:
        t, lo, hi = v.env
        m = (t >= t0) & (t <= t1)
        ax.fill_between(t[m], lo[m], hi[m], color=_WAVE, lw=0, zorder=2)
        ax.set_ylim(-v.peak * 1.1, v.peak * 1.45)
        return v.peak * 1.27
    m = (v.beat_t >= t0) & (v.beat_t < t1)
    ax.vlines(v.beat_t[m], 0, [b.confidence for b, k in zip(v.beats, m) if k],
              color=_WAVE, lw=2, zorder=2)
    ax.set_ylim(0, 1.35)
    return 1.2


def _draw_chords(cax: Axes, renderer: RendererBase, v: _View, t0: float, t1: float,
                 x_limit: float) -> None:
    """The chord band of a row, named where the chord changes and where the row starts."""
    labels: list[_Label] = []
    previous = None
    for s, e, lab in v.segments:
        if e <= t0 or s >= t1:
            continue
        s_row, e_row = max(s, t0), min(e, t1)
        cax.axvspan(s_row, e_row, ymin=0.08, ymax=0.92, color=chord_colour(lab), lw=0,
                    zorder=1)
        if lab != previous or s < t0:  # changes only, and the chord a row starts in
            labels.append(_Label(s_row, chord_label(lab)))
        previous = lab
    _place_labels(cax, renderer, labels, y=0.5, right_limit_px=x_limit, fontsize=8.5,
                  zorder=4)


def _minutes_seconds(x: float, _pos: object) -> str:
    """A time axis label: seconds as m:ss."""
    return f"{int(x // 60)}:{int(x % 60):02d}"


def _draw_row(axes: np.ndarray, renderer: RendererBase, v: _View, row: int,
              t0: float, t1: float) -> None:
    """Row ``row`` (``t0``..``t1`` s): bars, beats, waveform, bar numbers and chords."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax, cax, spacer = axes[3 * row], axes[3 * row + 1], axes[3 * row + 2]
    spacer.axis("off")
    in_row = (v.bar_times >= t0) & (v.bar_times < t1)
    row_s = _row_seconds(v, row, t0, t1, in_row)
    for a in (ax, cax):
        a.set_xlim(t0, t0 + row_s)
        a.set_yticks([])
        for side in ("top", "right"):
            a.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelbottom=False, length=0)
    for i in np.flatnonzero(in_row):
        d = v.bars[i]
        end = min(d.timestamp + d.duration, t1)
        for a in (ax, cax):
            a.axvspan(d.timestamp, end, color=_BAR_SHADES[i % 2], zorder=0, lw=0)
    top = _draw_signal(ax, v, t0, t1)
    if row == 0:
        ax.set_ylabel("waveform" if v.env is not None else "beat conf.", fontsize=9)
        cax.set_ylabel("chords", rotation=0, ha="right", va="center", fontsize=9)
    ylim = ax.get_ylim()
    m = (v.beat_t >= t0) & (v.beat_t < t1) & ~v.beat_is_down
    ax.vlines(v.beat_t[m], *ylim, color=_BEAT, lw=0.6, alpha=0.7, zorder=3)
    ax.vlines(v.bar_times[in_row], *ylim, color=_DOWNBEAT, lw=1.2, zorder=4)
    cax.vlines(v.bar_times[in_row], 0, 1, color="white", lw=1.0, zorder=3)

    x_limit = ax.bbox.x1 + _RIGHT_PX - 2  # labels may reach into the right margin, not past it
    _place_labels(ax, renderer, [_Label(v.bars[i].timestamp, str(v.bars[i].bar))
                                 for i in np.flatnonzero(in_row)],
                  y=top, right_limit_px=x_limit, color=_DOWNBEAT, fontsize=8,
                  zorder=5)
    _draw_chords(cax, renderer, v, t0, t1, x_limit)
    cax.set_ylim(0, 1)
    cax.xaxis.set_major_formatter(FuncFormatter(_minutes_seconds))
    # whole seconds in steps of 1, 2, 5, 10, ... so the m:ss labels read exactly
    cax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 5, 10], integer=True))
    cax.tick_params(axis="x", labelsize=8, pad=2)


def plot_timeline(
    result: AnalysisResult,
    samples: np.ndarray | None = None,
    sr: int | None = None,
    *,
    width_px: int = 1600,
    height_px: int | None = None,
    dpi: int = 100,
    bars_per_row: int = 32,
) -> Figure:
    """A :class:`matplotlib.figure.Figure` of ``result``.

    ``samples``: mono ``(n,)`` or ``(n, channels)`` at ``sr`` Hz; without them the upper
    panel shows the beat confidences. ``height_px=None`` sizes the figure to its rows
    (at least 500 px); ``bars_per_row`` is how many bars one row holds.
    """
    if bars_per_row < 1:
        raise ValueError("bars_per_row must be at least 1")
    duration = max(result.audio.duration, 1e-3)
    bar_times = result.downbeat_times()
    spans = row_spans(bar_times, duration, bars_per_row=bars_per_row)
    n_rows = len(spans)
    if height_px is None:
        height_px = max(_MIN_HEIGHT_PX, _HEADER_PX + _FOOTER_PX + n_rows * _ROW_PX)
    fig, renderer, axes = _figure(width_px, height_px, dpi, n_rows, title_for(result))
    env = None
    if samples is not None and sr:
        env = _envelope(samples, sr, int(width_px * 2 * n_rows) + 1, duration)
    v = _view(result, env, bars_per_row=bars_per_row, n_rows=n_rows)
    for row, (t0, t1) in enumerate(spans):
        _draw_row(axes, renderer, v, row, t0, t1)
    return fig


def render_png(
    result: AnalysisResult,
    samples: np.ndarray | None = None,
    sr: int | None = None,
    *,
    width_px: int = 1600,
    height_px: int | None = None,
    bars_per_row: int = 32,
) -> bytes:
    """PNG bytes of :func:`plot_timeline`: ``width_px`` wide; ``height_px`` high, or sized
    to the rows when ``None``."""
    fig = plot_timeline(result, samples, sr, width_px=width_px, height_px=height_px, dpi=100,
                        bars_per_row=bars_per_row)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()

