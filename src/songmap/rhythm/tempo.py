"""Tempo from the tracked beats (never from a separate estimator that can halve it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TempoEstimate:
    bpm: float
    confidence: float
    alternative_bpm: float | None
    alternative_confidence: float | None
    stability: float


def estimate_tempo(
    beat_times: np.ndarray,
    *,
    beat_activation: np.ndarray | None = None,
    fps: float = 100.0,
    bar_tempi: np.ndarray | None = None,
    bpm: float | None = None,
) -> TempoEstimate:
    """Global BPM (``bpm`` if given: the tempo map's main tempo, ``tempo_map.track_bpm``;
    otherwise 60 / median inter-beat interval), with a half/double alternative.

    The alternative is double time when the activation between beats is strong (the
    off-beats are beats too), half time otherwise; its confidence is the ratio of the
    activation between beats (or on every other beat) to the activation on the beats.
    """
    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 2:
        return TempoEstimate(0.0, 0.0, None, None, 0.0)
    ibi = np.diff(beats)
    bpm = float(bpm) if bpm else float(60.0 / np.median(ibi))
    spread = float(np.std(ibi) / np.mean(ibi))
    confidence = float(np.clip(1.0 - spread, 0.0, 1.0))
    tempi = bar_tempi if bar_tempi is not None and len(bar_tempi) > 1 else 60.0 / ibi
    stability = float(np.clip(1.0 - np.std(tempi) / np.mean(tempi), 0.0, 1.0))

    alt_bpm, alt_conf = None, None
    if beat_activation is not None and len(beat_activation):
        from songmap.rhythm.beats import sample_at

        on = sample_at(beat_activation, beats, fps)
        mids = (beats[:-1] + beats[1:]) / 2
        off = sample_at(beat_activation, mids, fps)
        on_mean = float(on.mean()) + 1e-9
        double_ratio = float(off.mean()) / on_mean
        half_ratio = float(np.abs(on[::2].mean() - on[1::2].mean()) / on_mean) if len(on) > 3 else 0.0
        if double_ratio > 0.5 or bpm < 80:
            alt_bpm, alt_conf = 2 * bpm, float(np.clip(double_ratio, 0, 1))
        else:
            alt_bpm, alt_conf = bpm / 2, float(np.clip(1.0 - half_ratio, 0, 1) * 0.5)
    return TempoEstimate(bpm, confidence, alt_bpm, alt_conf, stability)
