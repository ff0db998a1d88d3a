"""What a user knows about the grid, applied to the tracked beats.

A time-signature override fixes how many beats a bar counts and its label; a
first-downbeat override fixes the bar phase. (A BPM override only narrows the beat
tracker's tempo range: ``AnalysisSettings.beat_tempo_range``.) These are the steps a DJ
takes in rekordbox or Mixxx when the automatic grid is wrong, so they override songmap's
own meter and phase decisions instead of being weighed against them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from songmap.config import counted_beats, parse_time_signature
from songmap.rhythm.bar_phase import (
    BarEvidence,
    downbeat_probability,
    evidence_on_beats,
    tie_break_phase,
)
from songmap.rhythm.meter import BarGrid, decode_bar_positions

if TYPE_CHECKING:
    from songmap.signals import Activations


def fixed_meter_grid(
    activations: Activations,
    tracked_beat_times: np.ndarray,
    *,
    time_signature: str,
    min_bpm: float = 55.0,
    chroma: Activations | None = None,
    loudness: Activations | None = None,
    bar_evidence: BarEvidence | None = None,
) -> BarGrid:
    """Bars of the given time signature on the tracked beats (s).

    Beats per bar are ``counted_beats(time_signature)``. The tracked beats are taken as
    the counted level, except in a compound metre (6/8, 9/8, 12/8) where the tracker may
    have followed the eighth notes: there bars of ``3 * k`` tracked beats compete with
    bars of ``k`` (the HMM of ``decode_bar_positions`` on the network's downbeat
    probability, the better mean log-likelihood wins) as long as the dotted beat is at
    least ``min_bpm``, and eighth-note beats are merged three to one. Which beat is "one"
    is then chosen as for songmap's own meters (``tie_break_phase``, ``bar_evidence``
    computed on the tracked beats if it is asked). The confidence is 1: the user said so.
    """
    from songmap.rhythm.beats import regrid_beats

    beats = np.asarray(tracked_beat_times, dtype=float)
    num, _ = parse_time_signature(time_signature)
    k = counted_beats(time_signature)
    if len(beats) < 2:
        return BarGrid(beats, np.ones(len(beats), dtype=int), k, time_signature, 1.0)
    b, d = activations.values[:, 0], activations.values[:, 1]
    fps = activations.fps
    p = downbeat_probability(beats, b, d, fps)
    tracked_bpm = 60.0 / float(np.median(np.diff(beats)))
    per_beat = [1]
    if k != num and tracked_bpm / 3.0 >= min_bpm and len(beats) >= 6 * k:
        per_beat.append(3)
    fits = {r: decode_bar_positions(p, k * r) for r in per_beat}
    r = max(fits, key=lambda x: fits[x][1])
    positions = fits[r][0]
    grid = beats
    if r > 1:
        first = int(np.argmax(positions == 1)) if (positions == 1).any() else 0
        start = first % r  # the merged grid reaches back over the pickup
        grid = regrid_beats(beats, every=float(r), offset=float(start))
        positions = (((np.arange(len(grid)) * r + start - first) // r) % k) + 1
    positions = np.asarray(positions, dtype=int)
    if k > 1:
        positions = tie_break_phase(grid, positions, k, b, d, fps, chroma, loudness,
                                    evidence_on_beats(beats, bar_evidence))
    return BarGrid(grid, positions, k, time_signature, 1.0, tracked_per_beat=float(r))


def apply_time_signature(
    grid: BarGrid,
    activations: Activations,
    tracked_beat_times: np.ndarray,
    *,
    time_signature: str,
    min_bpm: float = 55.0,
    chroma: Activations | None = None,
    loudness: Activations | None = None,
    bar_evidence: BarEvidence | None = None,
) -> BarGrid:
    """songmap's own ``grid`` under the user's time signature.

    When songmap's main meter counts as many beats per bar as the signature does, its
    bars stand with the user's label, the short or long bars it found at stops and
    breaks included (its counting level and bar phase use more evidence than a fixed
    meter can: on fof, downbeat F .923 with them, .865 with every bar laid strictly);
    otherwise the bars are laid again by ``fixed_meter_grid``. The
    confidence is 1: the user said so.
    """
    if grid.beats_per_bar == counted_beats(time_signature) and len(grid.beat_times) >= 2:
        return replace(grid, label=time_signature, confidence=1.0)
    return fixed_meter_grid(activations, tracked_beat_times, time_signature=time_signature,
                            min_bpm=min_bpm, chroma=chroma, loudness=loudness,
                            bar_evidence=bar_evidence)


def rephase_bars(
    beat_times: np.ndarray, positions: np.ndarray, *, beats_per_bar: int, first_downbeat_s: float
) -> np.ndarray:
    """Positions (1-based) with a downbeat at ``first_downbeat_s`` (s).

    The beat nearest that time becomes "one"; when the time lies a beat or more away
    from every tracked beat (a downbeat in an intro the tracker left out, or before the
    first tracked beat), the grid is counted from it in beats of the local beat period,
    so the bar phase still follows (a chart's bar 1 at 0.0 s and a first tracked beat at
    0.43 s at 140 BPM make that beat the second of its bar). When every bar has
    ``beats_per_bar`` beats or fewer, all positions shift by the same number of beats,
    so bars that songmap shortened or lengthened stay so; otherwise the bars are laid
    strictly every ``beats_per_bar`` beats. As in DJ software the grid extends backwards
    too: beats a bar or more before that time are counted in bars.
    """
    beats = np.asarray(beat_times, dtype=float)
    pos = np.asarray(positions, dtype=int)
    k = max(int(beats_per_bar), 1)
    if len(beats) == 0:
        return pos
    i0 = int(np.argmin(np.abs(beats - first_downbeat_s)))
    beats_away = 0
    if len(beats) >= 2:
        near = beats[max(0, i0 - 4):i0 + 5]
        period = float(np.median(np.diff(near)))
        beats_away = round((beats[i0] - first_downbeat_s) / period) if period > 0 else 0
    target = beats_away % k  # 0-based position of beat i0
    if len(pos) == len(beats) and pos.max(initial=1) <= k:
        return ((pos - pos[i0] + target) % k) + 1
    return ((np.arange(len(beats)) - i0 + target) % k) + 1
