"""Meter and bar phase decided on the tracked beats.

Each beat carries ``p``, the network's probability that it is a downbeat given that it
is a beat. For every candidate number of beats per bar ``m`` an HMM over beats whose
states are the positions 1..m (advancing by one each beat, with a small chance of a
re-sync jump) explains the sequence; the meter whose best path explains ``p`` best wins,
and that path gives each beat its position in the bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

#: Probability per beat of leaving the regular cycle (an added or dropped beat).
_JUMP = 1e-3

if TYPE_CHECKING:
    from songmap.models.registry import Activations


@dataclass(frozen=True)
class MeterDecision:
    """``positions[i]`` is beat i's 1-based position in its bar."""

    beats_per_bar: int
    positions: np.ndarray
    confidence: float
    scores: dict[int, float]


def decode_bar_positions(
    downbeat_prob: np.ndarray, beats_per_bar: int, *, jump: float = _JUMP
) -> tuple[np.ndarray, float]:
    """Viterbi over positions 1..m; returns (positions, mean log-likelihood per beat)."""
    m = beats_per_bar
    p = np.clip(np.asarray(downbeat_prob, dtype=float), 1e-3, 1 - 1e-3)
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=int), 0.0
    # emission: state 0 is the downbeat
    emit = np.empty((n, m))
    emit[:, 0] = np.log(p)
    emit[:, 1:] = np.log1p(-p)[:, None]
    # transitions: s -> s+1 (mod m) with 1-jump, anything else shares jump
    trans = np.full((m, m), np.log(jump / max(m - 1, 1)) if m > 1 else 0.0)
    for s in range(m):
        trans[s, (s + 1) % m] = np.log1p(-jump) if m > 1 else 0.0
    delta = emit[0] - np.log(m)
    back = np.zeros((n, m), dtype=int)
    for i in range(1, n):
        cand = delta[:, None] + trans
        back[i] = cand.argmax(axis=0)
        delta = cand.max(axis=0) + emit[i]
    path = np.empty(n, dtype=int)
    path[-1] = int(delta.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path + 1, float(delta.max() / n)


#: Log-prior per beat of tracking a bar as six beats (a compound bar tracked at the
#: eighth-note level). Six-beat cycles can also fit noise in a four-beat song whose
#: network output marks every other beat, so they must explain clearly more.
_COMPOUND_PRIOR = -0.1


def decide_meter(
    downbeat_prob: np.ndarray, *, meters: tuple[int, ...] = (2, 3, 4)
) -> MeterDecision:
    """Choose beats per bar and each beat's position from per-beat downbeat probabilities."""
    results = {m: decode_bar_positions(downbeat_prob, m) for m in meters}
    scores = {m: r[1] + (_COMPOUND_PRIOR if m == 6 else 0.0) for m, r in results.items()}
    best = max(scores, key=lambda m: scores[m])
    # softmax over total log-likelihoods, tempered so a few beats do not give certainty
    n = max(len(downbeat_prob), 1)
    vals = np.array([scores[m] for m in meters]) * min(n, 50)
    w = np.exp(vals - vals.max())
    conf = float(w[list(meters).index(best)] / w.sum())
    return MeterDecision(best, results[best][0], conf, scores)


@dataclass(frozen=True)
class BarGrid:
    """Beats at the counted level with their bar positions (1-based; pickups end a bar)."""

    beat_times: np.ndarray
    positions: np.ndarray
    beats_per_bar: int
    label: str
    confidence: float


def downbeat_probability(
    beat_times: np.ndarray, beat_activation: np.ndarray, downbeat_activation: np.ndarray, fps: float
) -> np.ndarray:
    """P(downbeat | beat) for every beat, from the network's two outputs."""
    from songmap.rhythm.beats import sample_at

    d = sample_at(downbeat_activation, beat_times, fps)
    b = sample_at(beat_activation + downbeat_activation, beat_times, fps)
    return d / np.maximum(b, 1e-6)


def infer_bars(
    beat_times: np.ndarray,
    beat_activation: np.ndarray,
    downbeat_activation: np.ndarray,
    fps: float,
    *,
    meters: tuple[int, ...] = (2, 3, 4),
    min_bpm: float = 55.0,
    max_bpm: float = 215.0,
    chroma: "Activations | None" = None,
) -> BarGrid:
    """Decide bars, then how many beats a bar counts, from the tracked beats.

    1. Bars: the HMM of ``decide_meter`` over the tracked beats with 2, 3, 4 and 6
       tracked beats per bar (6 catches compound bars tracked at the eighth-note level).
    2. Counting level: a bar of 3 or 6 tracked beats may be compound (6/8, two
       dotted-quarter beats) or simple (3/4); a bar of 2 tracked beats may hold 3 or 4
       (the tracker settled on a slower level). Each reading divides the bar into k
       equal beats (positions interpolated between tracked beats) and is scored by the
       mean beat activation on its off-downbeat grid points; the tracked reading stays
       unless another scores clearly (5 %) higher, and only readings whose beats the
       network hears (off-grid activation at least a tenth of that on the bar lines)
       and whose tempo lies in ``[min_bpm, max_bpm]`` compete. Bars of 4 are counted
       as tracked.
    3. Bar phase tie-break: when ``chroma`` is given and the network's evidence for
       another choice of "one" is nearly as strong, harmony decides (``tie_break_phase``).
    """
    from songmap.rhythm.beats import regrid_beats, sample_at

    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 2:
        return BarGrid(beats, np.ones(len(beats), dtype=int), 4, "4/4", 0.0)
    p = downbeat_probability(beats, beat_activation, downbeat_activation, fps)
    tracked_bpm = 60.0 / float(np.median(np.diff(beats)))
    # six tracked beats per bar only make sense at the eighth-note level, where a
    # dotted-quarter beat (three of them) is still a tempo
    extra = {6} if tracked_bpm / 3 >= min_bpm else set()
    tracked_meters = tuple(sorted(set(meters) | extra))
    decision = decide_meter(p, meters=tracked_meters)
    n = decision.beats_per_bar
    first = int(np.argmax(decision.positions == 1)) if (decision.positions == 1).any() else 0
    any_beat = beat_activation + downbeat_activation

    scores: dict[int, float] = {}
    grids: dict[int, np.ndarray] = {}
    candidates = {2: (2, 3, 4), 3: (2, 3), 6: (2, 3)}.get(n, (n,))
    for k in candidates:
        step = n / k
        # grid anchored on the first downbeat, extended back over the pickup
        start = first - step * np.floor(first / step)
        grid = regrid_beats(beats, every=step, offset=start)
        phase = np.round((np.arange(len(grid)) * step + start - first) / step).astype(int) % k
        off = grid[phase != 0]
        if len(off) == 0 or not (min_bpm <= tracked_bpm * k / n <= max_bpm):
            continue
        on_bars = float(sample_at(any_beat, grid[phase == 0], fps).mean())
        score = float(sample_at(any_beat, off, fps).mean())
        if k != n and score < 0.1 * on_bars:
            continue
        scores[k] = score
        grids[k] = grid
    if not scores:
        grids[n], scores[n] = beats, 1.0
    best = max(scores.values())
    # the tracked count keeps the bar unless another reading is clearly stronger
    k = n if scores.get(n, 0.0) >= 0.95 * best else max(scores, key=lambda kk: scores[kk])
    grid = grids[k]
    step = n / k
    start = first - step * np.floor(first / step)
    positions = (np.round((np.arange(len(grid)) * step + start - first) / step).astype(int) % k) + 1
    if chroma is not None and k > 1:
        positions = tie_break_phase(grid, positions, k, beat_activation, downbeat_activation,
                                    fps, chroma)
    compound = k == 2 and n in (3, 6)
    label = {4: "4/4", 3: "3/4", 2: "6/8" if compound else "2/4"}.get(k, f"{k}/4")
    return BarGrid(grid, positions, k, label, decision.confidence)


#: Phases whose mean downbeat log-odds are within this of the best are a tie for the
#: network (without drums it often cannot tell beat 1 from beat 3).
_PHASE_TIE = 0.25


def harmonic_change(beat_times: np.ndarray, chroma: "Activations") -> np.ndarray:
    """Per beat: 1 - cosine similarity of the mean chroma of the beat before and after it."""
    from songmap.harmony.chords import segment_means

    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 3:
        return np.zeros(len(beats))
    bounds = np.concatenate([[max(0.0, 2 * beats[0] - beats[1])], beats,
                             [beats[-1] + (beats[-1] - beats[-2])]])
    seg = segment_means(chroma, bounds)  # seg[i] ends at beat i, seg[i + 1] starts there
    norm = np.linalg.norm(seg, axis=1) + 1e-9
    return 1.0 - np.sum(seg[:-1] * seg[1:], axis=1) / (norm[:-1] * norm[1:])


def tie_break_phase(
    beat_times: np.ndarray,
    positions: np.ndarray,
    beats_per_bar: int,
    beat_activation: np.ndarray,
    downbeat_activation: np.ndarray,
    fps: float,
    chroma: "Activations",
) -> np.ndarray:
    """Re-choose which beat is "one" among the phases the network cannot tell apart.

    Every cyclic shift of ``positions`` gets the network's mean log-odds of P(downbeat)
    on its bar lines; shifts within ``_PHASE_TIE`` of the best compete on the same
    log-odds plus the z-scored harmonic change on their bar lines (chords tend to change
    on bar lines). A clear network decision is never overruled.
    """
    k = beats_per_bar
    if len(beat_times) < 2 * k:
        return positions
    p = np.clip(downbeat_probability(beat_times, beat_activation, downbeat_activation, fps),
                1e-3, 1 - 1e-3)
    logodds = np.log(p) - np.log1p(-p)
    h = harmonic_change(beat_times, chroma)
    hz = (h - h.mean()) / h.std() if h.std() > 1e-9 else np.zeros_like(h)
    shifted = [((positions - 1 + r) % k) + 1 for r in range(k)]
    network = np.array([logodds[s == 1].mean() if (s == 1).any() else -np.inf for s in shifted])
    ties = [r for r in range(k) if network.max() - network[r] <= _PHASE_TIE]
    best = max(ties, key=lambda r: network[r] + hz[shifted[r] == 1].mean())
    return shifted[best]
