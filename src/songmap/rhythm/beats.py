"""Beat tracking on the network's beat activation."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from songmap.rhythm.attacks import SEARCH_BEFORE_S, attack_shift, segment_attacks, weak_look_back
from songmap.rhythm.tempo_map import TempoSegmentFit, fit_tempo_map, place_on_grid
from songmap.signals import Activations, peak_offset

#: A tracked beat whose beat-network probability reaches this is heard. On the synthetic
#: dev and seed-7 sets, and on the 7 real fof recordings, the median beat is marked at
#: 0.33-0.61; beats in silence or a drone's gaps are marked below 0.05.
HEARD_ACTIVATION = 0.15


def beat_probability(activations: Activations) -> np.ndarray:
    """Probability that a frame holds any beat (beat or downbeat), shape ``(frames,)``."""
    values = activations.values
    if values.ndim == 2:
        return np.clip(values[:, 0] + values[:, 1], 0.0, 1.0)
    return np.clip(values, 0.0, 1.0)


#: Leading and trailing frames below this fraction of the beat probability's 99th
#: percentile are not part of the song for the beat tracker.
_EDGE_FRACTION = 0.2


def track_beats(
    activations: Activations, *, min_bpm: float = 55.0, max_bpm: float = 215.0
) -> np.ndarray:
    """Beat times (s, increasing) decoded by a dynamic Bayesian network (bar-pointer HMM).

    Uses madmom's DBN beat tracker (Krebs, Böck, Widmer 2015) with its defaults except the
    tempo range and the threshold that trims the song's ends (relative to the song's own
    activation level), on the summed beat+downbeat probability. It is decoded by
    ``songmap.rhythm.viterbi`` (same model and path as madmom's decoder, a fraction of its
    time and memory).
    """
    from songmap.rhythm.viterbi import decode_beats

    prob = beat_probability(activations).astype(np.float32)
    if len(prob) < 2 or float(prob.max(initial=0.0)) < 0.05:
        return np.zeros(0)
    # exact zeros make the HMM's log-densities -inf and Viterbi finds no path
    prob = np.clip(prob, 1e-5, 1.0 - 1e-5)
    # the song starts and ends where the network's output first and last reaches a fifth
    # of its typical peak: beats are not tracked through leading noise or the ring-out
    # of a final chord, where the network still answers weakly
    threshold = max(0.05, _EDGE_FRACTION * float(np.percentile(prob, 99)))
    beats = decode_beats(prob, min_bpm=min_bpm, max_bpm=max_bpm, fps=activations.fps,
                         transition_lambda=100, threshold=threshold)
    beats = np.unique(np.asarray(beats, dtype=float))
    return hold_phase(beats, prob, activations.fps)


#: Shortest steady stretch (beats) whose phase is compared with its neighbour's.
_PHASE_STRETCH_BEATS = 16
#: Most beats between two steady stretches for them to count as neighbours (the DBN slides
#: its phase over a few beats of odd intervals).
_PHASE_GAP_BEATS = 8
#: A stretch is ambiguous when the points halfway between its beats carry at least this
#: share of the activation on its beats (the network hears both phases), and clearly
#: phased when they carry at most half of it.
_AMBIGUOUS_PHASE = 0.5


def _phase_ratio(beats: np.ndarray, activation: np.ndarray, fps: float) -> float:
    """Mean activation halfway between consecutive ``beats`` over the mean on them."""
    on = float(np.mean(sample_at(activation, beats, fps)))
    off = float(np.mean(sample_at(activation, (beats[1:] + beats[:-1]) / 2, fps)))
    return off / max(on, 1e-9)


def hold_phase(beat_times: np.ndarray, activation: np.ndarray, fps: float) -> np.ndarray:
    """Beat times (s) with the tracker's slips between steady stretches undone.

    The bar-pointer HMM models tempo, not phase: sliding half a beat costs it only two
    tempo changes, so where the network answers on both phases of the beat (an intro's
    guitar on the off-beats), it follows the stronger local peaks and slides back to the
    beat when the drums come in. Steady stretches of the same tempo whose lines lie half a
    beat apart are one song's beat at two phases: when one stretch is ambiguous (the
    points halfway between its beats carry at least ``_AMBIGUOUS_PHASE`` of its beats'
    activation) and its neighbour is clearly phased, the ambiguous stretch (and the slide
    between them) takes its neighbour's phase: its beats move to those halfway points.

    Likewise, through a break or a fill the HMM may stretch a few intervals and drop a
    beat (or squeeze one in) and then return to the same line: two steady stretches of one
    tempo on one line (``_whole_beat_slip``) with a wrong number of beats between them. The
    beats between them are then laid evenly on that line (``refine_beat_times`` later puts
    each on the activation's peak at it, where there is one).
    """
    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 2 * _PHASE_STRETCH_BEATS:
        return beats
    segs = [x for x in fit_tempo_map(beats) if x.beats >= _PHASE_STRETCH_BEATS and x.bpm > 0]
    for left, right in itertools.pairwise(segs):
        shifted = _half_beat_repair(beats, left, right, activation, fps)
        if shifted is None:
            shifted = _whole_beat_repair(beats, left, right)
        if shifted is not None:
            # one slip at a time: the tempo map of the result decides the next
            return hold_phase(np.concatenate(shifted), activation, fps)
    return beats


def _half_beat_repair(beats: np.ndarray, left: TempoSegmentFit, right: TempoSegmentFit,
                      activation: np.ndarray, fps: float) -> list[np.ndarray] | None:
    """The pieces of ``beats`` with the ambiguous one of two stretches of one tempo half a
    beat apart moved onto the other's phase; None when they are not such a pair."""
    gap = right.first - left.last - 1
    if gap > _PHASE_GAP_BEATS or abs(left.bpm / right.bpm - 1.0) > 0.02:
        return None
    period = right.step_s
    # where the right stretch's line puts beats at the left stretch's last beat
    slip = ((beats[left.last] - right.start_s) / period) % 1.0
    if abs(slip - 0.5) > 0.15:
        return None
    ratio_left = _phase_ratio(beats[left.first:left.last + 1], activation, fps)
    ratio_right = _phase_ratio(beats[right.first:right.last + 1], activation, fps)
    if ratio_left >= _AMBIGUOUS_PHASE and ratio_right <= _AMBIGUOUS_PHASE / 2:
        mid = _halfway(beats[left.first:left.last + 1])
        return [beats[:left.first], mid, _fill(mid[-1], beats[right.first], period),
                beats[right.first:]]
    if ratio_right >= _AMBIGUOUS_PHASE and ratio_left <= _AMBIGUOUS_PHASE / 2:
        mid = _halfway(beats[right.first:right.last + 1])
        return [beats[:left.last + 1], _fill(beats[left.last], mid[0], period), mid,
                beats[right.last + 1:]]
    return None


#: Most beats (counted on the stretches' line) between two steady stretches for a wrong
#: count between them to be repaired: a break or a fill of up to four 4/4 bars.
_SLIP_GAP_BEATS = 16
#: Two stretches are on one line when each one's line meets the other's nearest beat
#: within this fraction of a beat (a tenth: 50 ms at 120 BPM; the half-beat slips above
#: are 0.35 beat or more away).
_SAME_LINE_BEATS = 0.1


def _whole_beat_repair(beats: np.ndarray, left: TempoSegmentFit,
                       right: TempoSegmentFit) -> list[np.ndarray] | None:
    """The pieces of ``beats`` with the beats between two stretches of one tempo on one line
    laid evenly on that line, when the tracker put a wrong number of beats between them;
    None otherwise."""
    n = _whole_beat_slip(beats, left, right)
    if n is None:
        return None
    return [beats[:left.last + 1], _fill(beats[left.last], beats[right.first],
                                         (beats[right.first] - beats[left.last]) / n),
            beats[right.first:]]


def _whole_beat_slip(beats: np.ndarray, left: TempoSegmentFit,
                     right: TempoSegmentFit) -> int | None:
    """How many beat intervals lie between the last beat of ``left`` and the first of
    ``right`` on their common line, when that differs from the number tracked; None when
    they do not share one tempo (within 1 %) and one line (within ``_SAME_LINE_BEATS``
    either way), or the gap is longer than ``_SLIP_GAP_BEATS``."""
    if abs(left.bpm / right.bpm - 1.0) > 0.01:
        return None
    a, b = float(beats[left.last]), float(beats[right.first])
    # each stretch's own line, carried across the gap to the other's nearest beat
    from_left = (b - left.times()[-1]) / left.step_s
    from_right = (right.start_s - a) / right.step_s
    n = round(from_right)
    if (round(from_left) != n or n > _SLIP_GAP_BEATS or n < 1
            or max(abs(from_left - n), abs(from_right - n)) > _SAME_LINE_BEATS):
        return None
    return n if n != right.first - left.last else None


def _halfway(beats: np.ndarray) -> np.ndarray:
    """The points (s) halfway between consecutive ``beats``."""
    return (beats[1:] + beats[:-1]) / 2


def _fill(start_s: float, end_s: float, period: float) -> np.ndarray:
    """Evenly spaced beats (s) strictly between two beats about whole ``period``s apart."""
    n = max(round((end_s - start_s) / period), 1)
    return start_s + (end_s - start_s) * np.arange(1, n) / n


def sample_at(activation: np.ndarray, times: np.ndarray, fps: float, *, radius: int = 2) -> np.ndarray:
    """Maximum of a frame-wise ``activation`` within ``radius`` frames of each time."""
    if len(times) == 0:
        return np.zeros(0)
    frames = np.clip(np.round(np.asarray(times) * fps).astype(int), 0, len(activation) - 1)
    offsets = np.arange(-radius, radius + 1)
    idx = np.clip(frames[:, None] + offsets[None, :], 0, len(activation) - 1)
    return activation[idx].max(axis=1)


def regrid_beats(beat_times: np.ndarray, *, every: float, offset: float = 0.0) -> np.ndarray:
    """Beats at every ``every``-th tracked beat, starting at tracked beat ``offset``.

    Positions between tracked beats are interpolated linearly, so ``every=0.5`` doubles
    the rate and ``every=1.5`` puts two beats where three were tracked.
    """
    n = len(beat_times)
    if n < 2:
        return np.asarray(beat_times, dtype=float)
    idx = np.arange(offset, n - 1 + 1e-9, every)
    return np.interp(idx, np.arange(n), beat_times)


#: Lag (s) of the beat network's activation peak behind the sound of a beat, measured on
#: the synthetic dev set's songs with drums (where every beat has a sharp attack at the
#: annotated time): median of clip medians +0.9 ms (seed-7 set, same measurement: +0.7 ms).
NETWORK_LAG_S = 0.0008


def refine_beat_times(
    beat_times: np.ndarray,
    activation: np.ndarray,
    fps: float,
    *,
    radius_frames: int = 1,
    lag_s: float = NETWORK_LAG_S,
) -> np.ndarray:
    """Beat times (s) placed between frames, where the activation peaks.

    For each beat, the highest frame of ``activation`` (beat probability, frame ``i``
    centred at ``i / fps``) within ``radius_frames`` of it and its two neighbours give a
    parabola whose vertex is the peak (at most half a frame from the highest frame);
    ``lag_s`` is then taken off. A beat without a peak (a flat or rising edge, e.g. a beat
    interpolated between tracked ones) keeps its time. The result stays increasing: a
    refined beat never moves past the midpoint to its neighbours.
    """
    beats = np.asarray(beat_times, dtype=float)
    act = np.asarray(activation, dtype=float)
    if len(beats) == 0 or len(act) < 3:
        return beats.copy()
    n = len(act)
    centre = np.clip(np.round(beats * fps).astype(int), 0, n - 1)
    offsets = np.arange(-radius_frames, radius_frames + 1)
    window = np.clip(centre[:, None] + offsets[None, :], 0, n - 1)
    peak = window[np.arange(len(beats)), act[window].argmax(axis=1)]
    inner = (peak > 0) & (peak < n - 1)
    k = np.clip(peak, 1, n - 2)
    y0, y1, y2 = act[k - 1], act[k], act[k + 1]
    curvature = y0 - 2.0 * y1 + y2
    # a true maximum only (curvature < 0, highest of the three); elsewhere no shift
    ok = inner & (curvature < 0) & (y1 >= y0) & (y1 >= y2)
    shift = np.zeros(len(beats))
    shift[ok] = peak_offset(y0[ok], y1[ok], y2[ok])
    refined = np.where(ok, (peak + shift) / fps - lag_s, beats)
    # keep the order: never past the midpoint towards a neighbour
    if len(beats) > 1:
        mids = (beats[1:] + beats[:-1]) / 2
        lo = np.concatenate([[-np.inf], mids])
        hi = np.concatenate([mids, [np.inf]])
        refined = np.clip(refined, lo + 1e-6, hi - 1e-6)
    return np.maximum(refined, 0.0)


def onto_attacks(beat_times: np.ndarray, tempo_map: list[TempoSegmentFit],
                 feet: np.ndarray, spread_starts: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, list[TempoSegmentFit]]:
    """Beat times (s) and tempo map with every segment moved as a whole by
    ``attacks.attack_shift`` of its beats' distances to their attack ``feet`` (s; NaN:
    none found): a segment keeps its shape and tempo and starts where its attacks start
    when they clearly start earlier than the network hears them.

    ``spread_starts`` (s relative to the beats, one per segment, NaN: none) says where a
    segment's spread attack starts, clearly before its beats (``attacks.segment_attacks``:
    a strum's first string); a segment moves there when that is earlier than where its
    feet would move it.

    Beats the network marks weakly count as much as the others: a weak answer on a slow
    attack (a choir, bowed strings) is still placed late, and the attack says where it
    starts. Beats in silence have no foot, and a drone's scattered feet fail the test."""
    beats = np.array(beat_times, dtype=float)
    gaps = np.asarray(feet, dtype=float) - beats
    moved = []
    for i, seg in enumerate(tempo_map):
        part = slice(seg.first, seg.last + 1)
        shift = attack_shift(gaps[part])
        spread = np.nan if spread_starts is None else float(spread_starts[i])
        if np.isfinite(spread):
            shift = min(shift, spread)
        beats[part] += shift
        moved.append(replace(seg, start_s=seg.start_s + shift) if shift else seg)
    return beats, moved


def grid_beat_times(
    beat_times: np.ndarray, beat_activation: np.ndarray, fps: float, *, duration: float,
    samples: np.ndarray | None = None, sr: int | None = None,
) -> tuple[np.ndarray, list[TempoSegmentFit], np.ndarray]:
    """Sub-frame beat times, their tempo map and each beat's attack start (s; NaN where
    none was found or without audio), for the final (counted) beats.

    Beats are refined between frames (``refine_beat_times``), the tempo map is fitted to
    them (beats the network marks below ``HEARD_ACTIVATION`` do not decide the lines), and
    the beats of every snapped segment are placed on its line. Given the audio (mono
    ``samples`` at ``sr`` Hz), each segment then moves onto where its beats' attacks start
    (``onto_attacks``: slow or spread attacks the network hears late), looked for further
    back in segments the network hears weakly (``attacks.weak_look_back``). Times stay in
    ``[0, duration]``.
    """
    beats = np.asarray(beat_times, dtype=float)
    feet = np.full(len(beats), np.nan)
    if len(beats) < 2:
        return beats, [], feet
    refined = refine_beat_times(beats, beat_activation, fps)
    strength = sample_at(beat_activation, refined, fps)
    tempo_map = fit_tempo_map(refined, unheard=strength < HEARD_ACTIVATION, strength=strength)
    placed = place_on_grid(refined, tempo_map)
    if samples is not None and sr is not None and len(samples):
        heard = sample_at(beat_activation, placed, fps)
        spread = np.full(len(tempo_map), np.nan)
        for i, seg in enumerate(tempo_map):
            part = slice(seg.first, seg.last + 1)
            look_back = SEARCH_BEFORE_S
            # weakly heard segments: the attacks start earlier still
            if seg.last > seg.first and np.median(heard[part]) < HEARD_ACTIVATION:
                look_back = weak_look_back(float(np.median(np.diff(placed[part]))))
            feet[part], spread[i] = segment_attacks(samples, sr, placed[part],
                                                    look_back_s=look_back)
        placed, tempo_map = onto_attacks(placed, tempo_map, feet, spread)
    placed = np.clip(placed, 0.0, duration)
    if np.any(np.diff(placed) <= 0):  # clipping at the ends merged beats: keep the refined ones
        return np.clip(refined, 0.0, duration), tempo_map, feet
    return placed, tempo_map, feet
