"""Where bars begin: which tracked beat is "one", and bars that follow the music.

``songmap.rhythm.meter`` decides how many beats a bar counts; this module weighs the
evidence for the bar lines themselves. Each beat carries ``P(downbeat | beat)`` from the
network (``downbeat_probability``) and the chord change at it (``harmonic_change``);
``tie_break_phase`` re-chooses the steady grid's "one" from those and the accents, and
``follow_bars`` lets bars change length where the music does (``songmap.rhythm.bars``),
holding each run of bars of the main meter to its own best phase.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from songmap.rhythm.bars import decode_bar_lengths, merge_short_bars, rank_evidence, renumber

if TYPE_CHECKING:
    from songmap.signals import Activations

def downbeat_probability(
    beat_times: np.ndarray, beat_activation: np.ndarray, downbeat_activation: np.ndarray, fps: float
) -> np.ndarray:
    """P(downbeat | beat) for every beat, from the network's two outputs."""
    from songmap.rhythm.beats import sample_at

    d = sample_at(downbeat_activation, beat_times, fps)
    b = sample_at(beat_activation + downbeat_activation, beat_times, fps)
    return d / np.maximum(b, 1e-6)


def harmonic_change(beat_times: np.ndarray, chroma: Activations) -> np.ndarray:
    """Per beat: 1 - cosine similarity of the mean chroma of the beat before and after it."""
    from songmap.signals import segment_means

    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 3:
        return np.zeros(len(beats))
    bounds = np.concatenate([[max(0.0, 2 * beats[0] - beats[1])], beats,
                             [beats[-1] + (beats[-1] - beats[-2])]])
    seg = segment_means(chroma, bounds)  # seg[i] ends at beat i, seg[i + 1] starts there
    norm = np.linalg.norm(seg, axis=1) + 1e-9
    return 1.0 - np.sum(seg[:-1] * seg[1:], axis=1) / (norm[:-1] * norm[1:])


#: Per-beat P(downbeat) from evidence beside the beat network (``songmap.models.bar_gru``):
#: beat times (s) in, probabilities out, NaN where it has none.
BarEvidence = Callable[[np.ndarray], np.ndarray]
#: Farthest (s) a beat may lie from the beat a ``BarEvidence`` value was computed for.
_SAME_BEAT_S = 0.07


def nearest_beat_values(reference_s: np.ndarray, values: np.ndarray) -> BarEvidence:
    """A ``BarEvidence`` reading ``values`` (one per beat of ``reference_s``) at the
    nearest reference beat within ``_SAME_BEAT_S``, NaN elsewhere."""
    ref = np.asarray(reference_s, dtype=float)
    vals = np.asarray(values, dtype=float)

    def at(times: np.ndarray) -> np.ndarray:
        t = np.asarray(times, dtype=float)
        out = np.full(len(t), np.nan)
        if len(ref) == 0 or len(t) == 0:
            return out
        hi = np.clip(np.searchsorted(ref, t), 0, len(ref) - 1)
        lo = np.maximum(hi - 1, 0)
        j = np.where(np.abs(ref[lo] - t) <= np.abs(ref[hi] - t), lo, hi)
        close = np.abs(ref[j] - t) <= _SAME_BEAT_S
        out[close] = vals[j[close]]
        return out

    return at


def evidence_on_beats(beats: np.ndarray, bar_evidence: BarEvidence | None) -> BarEvidence | None:
    """``bar_evidence`` computed once on the tracked ``beats`` (s), when the bar phase
    first asks for it, and read at the nearest of them wherever it asks (grid times, runs
    of bars). Songs whose network decides every bar phase alone never compute it."""
    if bar_evidence is None:
        return None
    evidence = bar_evidence

    @cache
    def table() -> BarEvidence:
        return nearest_beat_values(beats, evidence(beats))

    return lambda times: table()(times)


def _sign_z(values: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
    """Sign-test z of ``values[first] > values[second]`` (paired by index): (wins - losses)
    / sqrt(wins + losses). Robust to outliers such as the silence after the last note."""
    diff = values[first] - values[second]
    wins, losses = int(np.sum(diff > 0)), int(np.sum(diff < 0))
    if wins + losses == 0:
        return 0.0
    return (wins - losses) / np.sqrt(wins + losses)


#: Network sign-test |z| (``_sign_z``) at which the network alone decides between two bar
#: phases and ``bar_evidence`` has no say: 2, a preference significant at about the 5 %
#: level. Heard everywhere, the second opinion moved the bars of 6 of 21 realmusic tracks
#: (real, unlabelled), two against a network sure of them; at 2 it moves one, r13
#: (orchestral, no drums; the network even, 12 of 27 bars), at 3 also r09's intro (the
#: network at z 2.36, median P(downbeat) .50 on its bars against .08). Chorales: downbeat
#: F .391 / .312 -> .462 / .456 at 2 (as with no gate), .427 / .401 at 1; fof (real), dev,
#: seed-7, seed 3 and irregular unchanged at 1, 2 and 3.
_DECISIVE_NETWORK_Z = 2.0


def _mean_log_odds(log_odds: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The mean of ``log_odds`` and the log-odds of ``probability`` (clipped to
    [1e-3, 1 - 1e-3]); ``log_odds`` alone where ``probability`` is NaN."""
    g = np.asarray(probability, dtype=float)
    heard = np.isfinite(g)
    g = np.clip(np.where(heard, g, 0.5), 1e-3, 1 - 1e-3)
    return np.where(heard, 0.5 * (log_odds + np.log(g) - np.log1p(-g)), log_odds)


def tie_break_phase(
    beat_times: np.ndarray,
    positions: np.ndarray,
    beats_per_bar: int,
    beat_activation: np.ndarray,
    downbeat_activation: np.ndarray,
    fps: float,
    chroma: Activations | None = None,
    loudness: Activations | None = None,
    bar_evidence: BarEvidence | None = None,
) -> np.ndarray:
    """Re-choose which beat is "one" from up to three kinds of evidence.

    For the decoded bar lines and every cyclic shift of them, each bar gives a paired
    difference (shifted minus decoded) of: the network's downbeat log-odds, the harmonic
    change (chords tend to change on bar lines) and, for the shift by half a bar only,
    the level in the first 100 ms after the beat (beat 1 tends to be louder than beat 3;
    against beats 2 and 4 a loud backbeat would mislead). Each kind of evidence becomes
    a sign-test z (``_sign_z``), so none counts for more because of its units, and a
    shift wins when the sum is positive and the largest: harmony and accents overrule
    the network only where it is unsure and they agree.

    ``bar_evidence`` (the beat-synchronous downbeat networks, ``songmap.models.bar_gru``)
    is a second view of the network's question, asked only where the network leaves it
    open: for a shift whose network sign test is not decisive (``|z| <
    _DECISIVE_NETWORK_Z``), the network's term is taken instead from the mean of both
    networks' log-odds (the network's alone where ``bar_evidence`` has no value). Where
    the frame-wise network is sure, a second opinion cannot overrule it (realmusic r06:
    P(downbeat) .93 on its bars against .04). ``bar_evidence`` is called only then.
    """
    k = beats_per_bar
    n = len(beat_times)
    if n < 2 * k or k < 2:
        return positions
    p = np.clip(downbeat_probability(beat_times, beat_activation, downbeat_activation, fps),
                1e-3, 1 - 1e-3)
    log_odds = np.log(p) - np.log1p(-p)
    evidence_of = bar_evidence

    @cache
    def both() -> np.ndarray:
        """The mean log-odds of both networks (asked only when a shift needs them)."""
        return _mean_log_odds(log_odds, evidence_of(beat_times)) if evidence_of else log_odds

    def network_z(first: np.ndarray, second: np.ndarray) -> float:
        z = _sign_z(log_odds, first, second)
        if bar_evidence is None or abs(z) >= _DECISIVE_NETWORK_Z:
            return z
        return _sign_z(both(), first, second)

    evidence: list[np.ndarray] = []
    if chroma is not None:
        evidence.append(harmonic_change(beat_times, chroma))
    accent = None
    if loudness is not None and len(loudness.values) and k % 2 == 0:
        accent = _accent(loudness, beat_times)
    bar_lines = np.flatnonzero(positions == 1)
    best_shift, best_total = 0, 0.0
    for shift in range(1, k):
        # the bar lines of a shift are ``shift`` beats after the decoded ones
        here = bar_lines[bar_lines + shift < n]
        if len(here) < 2:
            continue
        total = network_z(here + shift, here)
        total += sum(_sign_z(e, here + shift, here) for e in evidence)
        if accent is not None and 2 * shift == k:
            total += _sign_z(accent, here + shift, here)
        if total > best_total:
            best_shift, best_total = shift, total
    if best_shift == 0:
        return positions
    return ((positions - 1 - best_shift) % k) + 1


#: Most (nats) the chord change at one beat says for or against a bar line there. Chosen
#: on the irregular synthetic set (1.0: downbeat F .951, 1.5: .974, where songs without
#: drums leave the network unsure); fof (real) .893 -> .896, dev and seed7 unchanged.
_HARMONY_WEIGHT = 1.5


def follow_bars(
    beat_times: np.ndarray,
    grid_times: np.ndarray,
    downbeat_prob: np.ndarray,
    *,
    beats_per_bar: int,
    beat_activation: np.ndarray,
    downbeat_activation: np.ndarray,
    fps: float,
    chroma: Activations | None = None,
    loudness: Activations | None = None,
    bar_evidence: BarEvidence | None = None,
) -> np.ndarray:
    """Positions (1-based) on ``grid_times`` of bars that may change length where the
    music does, for bars counted at the tracked level.

    ``bars.decode_bar_lengths`` on ``downbeat_prob`` (one per tracked beat of
    ``beat_times``, s) and the rank of the chord change lets bars take another length
    (2-7 beats) where the network and the chords earn it. A first free pass finds the
    song's body (its longest run of bars of its meter, ``body_grid``); the second holds
    the song's ends to the body's phase; each run of bars of the main meter then gets its
    own ``tie_break_phase`` on ``grid_times`` (``_tie_break_runs``).
    """
    k = beats_per_bar
    cue = None
    if chroma is not None:
        cue = rank_evidence(harmonic_change(beat_times, chroma), weight=_HARMONY_WEIGHT)
    body = body_grid(decode_bar_lengths(downbeat_prob, beats_per_bar=k, bar_line_evidence=cue), k)
    positions = decode_bar_lengths(downbeat_prob, beats_per_bar=k, bar_line_evidence=cue,
                                   reference=body)
    return _tie_break_runs(grid_times, positions, k, beat_activation, downbeat_activation,
                           fps, chroma, loudness, bar_evidence)


def body_grid(positions: np.ndarray, beats_per_bar: int) -> np.ndarray:
    """Positions of a steady grid in the phase of the longest run of ``beats_per_bar``-beat
    bars in ``positions`` (the song's body); the steady grid from 1 if there is none."""
    k = beats_per_bar
    pos = np.asarray(positions, dtype=int)
    lines = np.flatnonzero(pos == 1)
    best_len, best_line = 0, 0
    b = 0
    lengths = np.diff(np.append(lines, len(pos)))
    while b < len(lines):
        e = b
        while e + 1 < len(lines) and lengths[e + 1] == lengths[b]:
            e += 1
        if lengths[b] == k and e - b + 1 > best_len:
            best_len, best_line = e - b + 1, int(lines[b])
        b = e + 1
    return ((np.arange(len(pos)) - best_line) % k) + 1


#: A run of bars of the main length shorter than this keeps the decoded phase.
_MIN_RUN_BARS = 4


def _tie_break_runs(
    beat_times: np.ndarray, positions: np.ndarray, beats_per_bar: int,
    beat_activation: np.ndarray, downbeat_activation: np.ndarray, fps: float,
    chroma: Activations | None, loudness: Activations | None,
    bar_evidence: BarEvidence | None = None,
) -> np.ndarray:
    """``tie_break_phase`` on each run of at least ``_MIN_RUN_BARS`` bars of the main
    length, as if it were a song of its own; a run whose "one" moves gives its first
    beats to the bar before it (or to the pickup) and ends on a shorter bar."""
    k = beats_per_bar
    pos = np.asarray(positions, dtype=int)
    lines = np.flatnonzero(pos == 1)
    if len(lines) == 0:
        return pos
    lengths = np.diff(np.append(lines, len(pos)))
    mask = pos == 1
    b = 0
    while b < len(lines):
        if lengths[b] != k:
            b += 1
            continue
        e = b
        while e + 1 < len(lines) and lengths[e + 1] == k:
            e += 1
        # the song's last bar may be cut short: it extends the run before it
        if e + 2 == len(lines) and lengths[e + 1] < k:
            e += 1
        start, stop = int(lines[b]), int(lines[e] + lengths[e])
        if e - b + 1 >= _MIN_RUN_BARS:
            run = np.arange(start, stop)
            local = ((np.arange(len(run))) % k) + 1
            shifted = tie_break_phase(beat_times[run], local, k, beat_activation,
                                      downbeat_activation, fps, chroma, loudness, bar_evidence)
            if not np.array_equal(shifted, local):
                mask[run] = shifted == 1
        b = e + 1
    out = renumber(mask, pickup_bar=k)
    return merge_short_bars(out) if not np.array_equal(mask, pos == 1) else pos


def _accent(
    loudness: Activations, beat_times: np.ndarray, *, window_s: float = 0.1,
) -> np.ndarray:
    """Level (dB) of the sound from 10 ms before each beat to ``window_s`` after it."""
    values = np.asarray(loudness.values, dtype=float)
    if len(values) == 0:
        return np.zeros(len(beat_times))
    power = np.concatenate([[0.0], np.cumsum(10.0 ** (values / 10.0))])
    frames = np.asarray(beat_times) * loudness.fps
    start = np.clip(np.round(frames - 0.01 * loudness.fps).astype(int), 0, len(values) - 1)
    stop = np.clip(np.round(frames + window_s * loudness.fps).astype(int), start + 1, len(values))
    return 10.0 * np.log10((power[stop] - power[start]) / (stop - start) + 1e-10)
