"""What a user knows about the grid, applied to the tracked beats.

A time-signature override fixes how many beats a bar counts and its label; a
first-downbeat override fixes the bar phase. (A BPM override only narrows the beat
tracker's tempo range: ``AnalysisSettings.beat_tempo_range``.) These are the steps a DJ
takes in rekordbox or Mixxx when the automatic grid is wrong, so they override songmap's
own meter and phase decisions instead of being weighed against them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from songmap.config import counted_beats, parse_time_signature
from songmap.rhythm.meter import (
    BarGrid,
    decode_bar_positions,
    downbeat_probability,
    tie_break_phase,
)

if TYPE_CHECKING:
    from songmap.models.registry import Activations


def fixed_meter_grid(
    activations: Activations,
    tracked_beat_times: np.ndarray,
    *,
    time_signature: str,
    min_bpm: float = 55.0,
    chroma: Activations | None = None,
    loudness: Activations | None = None,
) -> BarGrid:
    """Bars of the given time signature on the tracked beats (s).

    Beats per bar are ``counted_beats(time_signature)``. The tracked beats are taken as
    the counted level, except in a compound metre (6/8, 9/8, 12/8) where the tracker may
    have followed the eighth notes: there bars of ``3 * k`` tracked beats compete with
    bars of ``k`` (the HMM of ``decode_bar_positions`` on the network's downbeat
    probability, the better mean log-likelihood wins) as long as the dotted beat is at
    least ``min_bpm``, and eighth-note beats are merged three to one. Which beat is "one"
    is then chosen as for songmap's own meters (``tie_break_phase``). The confidence is
    1: the user said so.
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
        positions = tie_break_phase(grid, positions, k, b, d, fps, chroma, loudness)
    return BarGrid(grid, positions, k, time_signature, 1.0, tracked_per_beat=float(r))


def rephase_bars(
    beat_times: np.ndarray, positions: np.ndarray, *, beats_per_bar: int, first_downbeat_s: float
) -> np.ndarray:
    """Positions (1-based) with the beat nearest ``first_downbeat_s`` (s) as a downbeat.

    When every bar has ``beats_per_bar`` beats or fewer, all positions shift by the same
    number of beats, so bars that songmap shortened or lengthened stay so; otherwise the
    bars are laid strictly every ``beats_per_bar`` beats from that beat. As in DJ
    software, the grid extends backwards too: beats a bar or more before that time are
    counted in bars (the beat is bar 1 when it is in the first bar of beats).
    """
    beats = np.asarray(beat_times, dtype=float)
    pos = np.asarray(positions, dtype=int)
    k = max(int(beats_per_bar), 1)
    if len(beats) == 0:
        return pos
    i0 = int(np.argmin(np.abs(beats - first_downbeat_s)))
    if len(pos) == len(beats) and pos.max(initial=1) <= k:
        shift = int(pos[i0]) - 1
        return ((pos - 1 - shift) % k) + 1
    return ((np.arange(len(beats)) - i0) % k) + 1
