"""A picture of a result: waveform, beat ticks, numbered bars, the chord of each bar.

Matplotlib's object API with the Agg canvas (no pyplot, no display, no global state), so
it runs headless and from several threads. Without audio the upper panel shows the beat
confidences instead of the waveform; everything else comes from the result alone.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from songmap.schema import AnalysisResult

_BAR_SHADES = ("#f4f6fb", "#e6eaf4")
_WAVE = "#3b5b92"
_DOWNBEAT = "#c0392b"
_BEAT = "#7f8c8d"


def title_for(result: "AnalysisResult") -> str:
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


def plot_timeline(
    result: "AnalysisResult",
    samples: np.ndarray | None = None,
    sr: int | None = None,
    *,
    width_px: int = 1600,
    height_px: int = 500,
    dpi: int = 100,
) -> "Figure":
    """A :class:`matplotlib.figure.Figure` of ``result``.

    ``samples``: mono ``(n,)`` or ``(n, channels)`` at ``sr`` Hz; without them the upper
    panel shows the beat confidences.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = result
    duration = max(r.audio.duration, 1e-3)
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax, cax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [5, 1], "hspace": 0.05})
    # margins in pixels, so labels fit at any figure size
    fig.subplots_adjust(left=min(0.4, 72 / width_px), right=1 - min(0.1, 12 / width_px),
                        top=1 - min(0.4, 42 / height_px), bottom=min(0.4, 48 / height_px))

    bars = r.downbeat_timeline
    bar_px = (width_px - 84) * (r.average_bar_duration or duration) / duration
    for i, d in enumerate(bars):
        for a in (ax, cax):
            a.axvspan(d.timestamp, d.timestamp + d.duration, color=_BAR_SHADES[i % 2],
                      zorder=0, lw=0)

    if samples is not None and sr:
        t, lo, hi = _envelope(samples, sr, width_px * 2, duration)
        ax.fill_between(t, lo, hi, color=_WAVE, lw=0, zorder=2)
        peak = float(max(np.abs(lo).max(initial=0), np.abs(hi).max(initial=0), 1e-6))
        ax.set_ylim(-peak * 1.15, peak * 1.3)
        ax.set_ylabel("waveform")
        top = peak * 1.18
    else:
        bt = [b.beat_time for b in r.beat_transient_markers]
        conf = [b.confidence for b in r.beat_transient_markers]
        ax.vlines(bt, 0, conf, color=_WAVE, lw=2, zorder=2)
        ax.set_ylim(0, 1.3)
        ax.set_ylabel("beat confidence")
        top = 1.18

    beats = r.beat_transient_markers
    ax.vlines([b.beat_time for b in beats if b.beat_position != 1 or b.bar == 0],
              *ax.get_ylim(), color=_BEAT, lw=0.6, alpha=0.7, zorder=3)
    ax.vlines([d.timestamp for d in bars], *ax.get_ylim(), color=_DOWNBEAT, lw=1.4, zorder=4)

    # bar numbers: every bar when there is room, else every 2nd/4th/8th...
    step = 1
    while bar_px * step < 28 and step < 1024:
        step *= 2
    for d in bars:
        if (d.bar - 1) % step == 0:
            ax.text(d.timestamp, top, f" {d.bar}", color=_DOWNBEAT, fontsize=8,
                    va="center", ha="left", zorder=5, clip_on=True)

    # chord per bar, centred; only changes when bars are too narrow for every label
    fontsize = 9 if bar_px >= 45 else 7
    last_label, last_end_px = None, -1e9
    px_per_s = (width_px - 84) / duration
    for c in r.chord_progression:
        label = "/".join(c.chords) if bar_px >= 90 else c.chord
        x = c.timestamp + c.duration / 2 if bar_px >= 45 else c.timestamp
        start_px = x * px_per_s - (len(label) * fontsize * 0.35 if bar_px >= 45 else 0)
        if bar_px < 45 and label == last_label:
            continue
        if start_px < last_end_px + 4:
            continue
        if bar_px >= 45 and c.duration * px_per_s < len(label) * fontsize * 0.7:
            continue  # a bar cut short by the end of the track: no room for its label
        cax.text(x, 0.5, label, fontsize=fontsize, va="center",
                 ha="center" if bar_px >= 45 else "left", clip_on=True)
        last_label, last_end_px = label, start_px + len(label) * fontsize * 0.7
    cax.set_ylim(0, 1)
    cax.set_yticks([])
    cax.set_ylabel("chords", rotation=0, ha="right", va="center")
    ax.set_yticks([])
    ax.set_xlim(0, duration)
    cax.set_xlabel("time (s)")
    fig.suptitle(title_for(r), fontsize=12)
    return fig


def render_png(
    result: "AnalysisResult",
    samples: np.ndarray | None = None,
    sr: int | None = None,
    *,
    width_px: int = 1600,
    height_px: int = 500,
) -> bytes:
    """PNG bytes of :func:`plot_timeline`, exactly ``width_px`` x ``height_px``."""
    fig = plot_timeline(result, samples, sr, width_px=width_px, height_px=height_px, dpi=100)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def save_plot(result: "AnalysisResult", path: str | os.PathLike[str],
              samples: np.ndarray | None = None, sr: int | None = None, **kwargs: int) -> Path:
    p = Path(path)
    p.write_bytes(render_png(result, samples, sr, **kwargs))
    return p
