"""Meter and counting level decided on the tracked beats: how many beats a bar counts.

Each beat carries ``p``, the network's probability that it is a downbeat given that it
is a beat. For every candidate number of beats per bar ``m`` an HMM over beats whose
states are the positions 1..m (advancing by one each beat, with a small chance of a
re-sync jump) explains the sequence; the meter whose best path explains ``p`` best wins.
The period of the chord changes, the beat's division and the network's answer between
beats decide the close calls and the level the beats are counted at (the tempo octave).
The song's steady grid is laid from that path; where its bars begin, and bars that change
length where the music does, are ``songmap.rhythm.bar_phase``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from songmap.rhythm.bar_phase import (
    BarEvidence,
    downbeat_probability,
    evidence_on_beats,
    follow_bars,
    harmonic_change,
    tie_break_phase,
)

#: Probability per beat of leaving the regular cycle (an added or dropped beat).
_JUMP = 1e-3

if TYPE_CHECKING:
    from songmap.signals import Activations


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
    downbeat_prob: np.ndarray, *, meters: tuple[int, ...] = (2, 3, 4),
    prior: dict[int, float] | None = None,
) -> MeterDecision:
    """Choose beats per bar and each beat's position from per-beat downbeat probabilities.

    ``prior`` adds a log-prior per beat to a meter's score (missing meters get 0)."""
    prior = {6: _COMPOUND_PRIOR} if prior is None else prior
    results = {m: decode_bar_positions(downbeat_prob, m) for m in meters}
    scores = {m: r[1] + prior.get(m, 0.0) for m, r in results.items()}
    best = max(scores, key=lambda m: scores[m])
    conf = meter_confidence(scores, best, len(downbeat_prob))
    return MeterDecision(best, results[best][0], conf, scores)


def meter_confidence(scores: dict[int, float], chosen: int, n_beats: int) -> float:
    """Softmax weight of ``chosen`` over the meters' total log-likelihoods (scores are per
    beat), tempered so that a few beats do not give certainty."""
    meters = list(scores)
    vals = np.array([scores[m] for m in meters]) * min(max(n_beats, 1), 50)
    w = np.exp(vals - vals.max())
    return float(w[meters.index(chosen)] / w.sum())


#: Log-priors per beat against the rarer reading of a duple bar: two beats (2/4) when
#: the beats divide in two or show no division, four dotted-quarter beats (12/8) when they
#: divide in three. The network often cannot tell a bar from half a bar. 2/4 is rare beside
#: 4/4; 12/8 was taken as rarer than 6/8 by twice as much (-0.2), on synthetic sets with
#: 6/8 songs and no 12/8 ones; real pop and rock has 12/8 feels. A set of 16 songs in 12/8
#: (``benchmarks/corpus/make_corpus.py --meter 12/8 --seed 21``), five of them read as 6/8
#: (half bars): downbeat F .730 at -0.2, .751 at -0.1, .771 at 0 and -0.05; at -0.1 dev and
#: seed-7 keep every 6/8 song and held-out seed 3 gains one (.973 -> .982), at -0.05 and 0
#: dev, seed-7 and seed 3 each lose one (dev .962 -> .954). So both ambiguities weigh the
#: same.
_DUPLE_PRIOR = -0.1
#: How far (x) the 1/3 and 2/3 points must stand above the half-beat point and the
#: background for ``beat_division`` to call the beat divided in three.
_THIRDS_ABOVE = 1.15
#: Envelope bins per beat in ``beat_division`` (divisible by 2, 3 and 4).
_DIVISION_BINS = 12


def beat_division(envelope: np.ndarray, beat_times: np.ndarray, fps: float) -> int:
    """3 if the onsets between beats fall on thirds of the beat, else 2.

    The onset envelope is sampled (maximum over each bin) at twelve equal divisions of
    every beat interval and averaged over the song. Thirds win when both the 1/3 and
    the 2/3 points stand ``_THIRDS_ABOVE`` times above the half-beat point and above
    the background (the bins that are neither halves, thirds nor quarters). Swung
    eighths raise only the late third, so they count as two.
    """
    beats = np.asarray(beat_times, dtype=float)
    env = np.asarray(envelope, dtype=float)
    if len(beats) < 4 or len(env) == 0:
        return 2
    nb = _DIVISION_BINS
    starts, lengths = beats[:-1], np.diff(beats)
    centres = (starts[:, None] + lengths[:, None] * np.arange(nb)[None, :] / nb) * fps
    half_width = np.maximum(lengths * fps / nb / 2.0, 0.5)[:, None]
    lo = np.clip(np.floor(centres - half_width).astype(int), 0, len(env) - 1)
    hi = np.clip(np.ceil(centres + half_width).astype(int), 0, len(env) - 1)
    # maximum of env[lo:hi + 1] per bin
    profile = np.array([[env[a:b + 1].max() for a, b in zip(lr, hr)]
                        for lr, hr in zip(lo.T, hi.T)]).mean(axis=1)
    background = float(np.median(profile[[1, 2, 5, 7, 10, 11]]))
    floor = max(float(profile[nb // 2]), background, 1e-9)
    return 3 if min(profile[nb // 3], profile[2 * nb // 3]) > _THIRDS_ABOVE * floor else 2


@dataclass(frozen=True)
class BarGrid:
    """Beats at the counted level with their bar positions (1-based; pickups end a bar)."""

    beat_times: np.ndarray
    positions: np.ndarray
    beats_per_bar: int
    label: str
    confidence: float
    #: tracked beats per counted beat (1 when the tracker found the counted level)
    tracked_per_beat: float = 1.0


#: The slowest dotted-quarter beat (BPM) of a compound meter read from its tracked eighths
#: (``slowest_compound_bpm``, when the tempo range is not the user's): a slow 12/8 blues
#: counts dotted quarters at 45-60 while its eighths, at 135-180, are what the tracker
#: follows, and 40 (its eighths at 120) is about the slowest beat conducted. A set of 16
#: songs in 12/8 (make_corpus.py --meter 12/8 --seed 21): beat F .850 -> .945, downbeat F
#: .751 -> .792 (two songs at 51 BPM read at their eighths, two at 82 read at their
#: quarters, now read in dotted beats, the latter two at half tempo); every other labelled
#: set and realmusic unchanged. At 45: beat F .912, downbeat F .769.
COMPOUND_MIN_BPM = 40.0

#: When the counted level differs from the tracked one, beats are tracked again within
#: this factor range of the counted tempo: wide enough for ritardandos and tempo steps,
#: narrow enough to exclude the neighbouring levels (x2/3, x1.5, x2).
_RETRACK_RANGE = (0.7, 1.4)


def track_bars(
    activations: Activations,
    *,
    meters: tuple[int, ...] = (2, 3, 4),
    min_bpm: float = 55.0,
    max_bpm: float = 215.0,
    chroma: Activations | None = None,
    onset_envelope: Activations | None = None,
    loudness: Activations | None = None,
    tracked: np.ndarray | None = None,
    bar_evidence: BarEvidence | None = None,
    tempo_evidence: TempoEvidence | None = None,
    slowest_compound_bpm: float | None = None,
) -> BarGrid:
    """Beats and bars from the beat network's output (``tracked``: its beats if already
    tracked with the same tempo range; ``bar_evidence``: see ``infer_bars``).

    The DBN tracks beats at whichever level the network marks best; ``infer_bars``
    decides bars and the counted level. When those differ (a 6/8 song tracked in
    eighths, a 3/4 song in dotted quarters), the tracker may have switched levels where
    the tempo changes, so beats are tracked again around the counted tempo and the bars
    decided on those.

    A song tracked at one level may be a fast song heard in half time: beats are tracked
    again at twice the tempo when the network marks the points halfway between the
    tracked beats as beats of their own (``_heard_in_half_time``), asking
    ``tempo_evidence`` (a tempo distribution, computed only when asked) where its answer
    there is weaker.
    """
    from songmap.rhythm.beats import track_beats

    b, d = activations.values[:, 0], activations.values[:, 1]
    fps = activations.fps

    def bars(beats: np.ndarray) -> BarGrid:
        return infer_bars(beats, b, d, fps, meters=meters, min_bpm=min_bpm, max_bpm=max_bpm,
                          chroma=chroma, onset_envelope=onset_envelope, loudness=loudness,
                          bar_evidence=bar_evidence, slowest_compound_bpm=slowest_compound_bpm)

    if tracked is None:
        tracked = track_beats(activations, min_bpm=min_bpm, max_bpm=max_bpm)
    grid = bars(tracked)
    if abs(grid.tracked_per_beat - 1.0) < 1e-6 and len(tracked) >= 8:
        bpm = 60.0 / float(np.median(np.diff(tracked)))
        if 2 * bpm <= max_bpm and _heard_in_half_time(tracked, b + d, fps, bpm, tempo_evidence):
            lo = max(min_bpm, 2 * bpm * _RETRACK_RANGE[0])
            hi = min(max_bpm, 2 * bpm * _RETRACK_RANGE[1])
            faster = bars(track_beats(activations, min_bpm=lo, max_bpm=hi))
            if (abs(faster.tracked_per_beat - 1.0) < 1e-6
                    and len(faster.beat_times) > 1.5 * len(tracked)):
                return faster
    if abs(grid.tracked_per_beat - 1.0) < 1e-6 or len(grid.beat_times) < 4:
        return grid
    bpm = 60.0 / float(np.median(np.diff(grid.beat_times)))
    lo, hi = max(min_bpm, _RETRACK_RANGE[0] * bpm), min(max_bpm, _RETRACK_RANGE[1] * bpm)
    if hi <= lo or bpm < min_bpm:  # a compound beat slower than the tracker's range
        return grid
    again = bars(track_beats(activations, min_bpm=lo, max_bpm=hi))
    if grid.label == "6/8" and again.beats_per_bar == 2:
        # the first tracking heard the three eighths of each beat
        again = replace(again, label="6/8")
    return again


#: The probability (index = BPM, 0-299) of each tempo from evidence beside the beat
#: network (``songmap.models.tcn_tempo``), computed when first called; None if it has none.
TempoEvidence = Callable[[], "np.ndarray | None"]


def _heard_in_half_time(beats: np.ndarray, any_beat: np.ndarray, fps: float, bpm: float,
                        tempo_evidence: TempoEvidence | None) -> bool:
    """Whether ``beats`` (s, at ``bpm``) are every other beat of the song: the network
    answers halfway between them as a beat of its own (``midpoint_peak`` at least
    ``_HALFWAY_PEAK``) and at least ``_HALFWAY_BEATS`` as strongly as on them; or at
    least ``_HALFWAY_ASK`` as strongly, with a peak of ``_HALFWAY_ASK_PEAK``, and
    ``tempo_evidence`` puts more probability within 4 % of twice the tempo than of it."""
    peak = midpoint_peak(beats, any_beat, fps)
    if peak < _HALFWAY_PEAK:
        return False
    ratio = midpoint_ratio(beats, any_beat, fps)
    if ratio >= _HALFWAY_BEATS:
        return True
    if ratio < _HALFWAY_ASK or peak < _HALFWAY_ASK_PEAK or tempo_evidence is None:
        return False
    from songmap.models.tcn_tempo import tempo_mass

    distribution = tempo_evidence()
    return distribution is not None and tempo_mass(distribution, 2 * bpm) > tempo_mass(distribution, bpm)


#: ``midpoint_ratio`` from which the points halfway between tracked beats count as beats
#: too. On real recordings the network answers an off-beat eighth at a tenth to a
#: quarter of its answer on the beat (fof: 0.04-0.15; a song tracked in half time: 0.48).
_HALFWAY_BEATS = 0.4


#: ``midpoint_peak`` from which the network's answer halfway between tracked beats is a
#: beat of its own (a peak), not the spread answer of slow attacks reaching there. Bach
#: chorales rendered on organ, piano, strings and choir (benchmarks/corpus/chorales.py,
#: --seed 0 and 1, 60 each), tracked at their notated tempo: where the answer halfway
#: reaches ``_HALFWAY_BEATS`` (0.41-0.64, all sung by the choir) it reads 1.0-2.8; a peak
#: reads 6 and more: eighth-note onsets on the organ (6.1-7.3, which still count), songs
#: heard in half time 52 (fof's internal_degeneration) to 1500 (synthetic).
_HALFWAY_PEAK = 4.0

#: Between ``_HALFWAY_ASK`` and ``_HALFWAY_BEATS`` the network's answer halfway is weaker
#: than a beat's but no off-beat eighth's of the real band recordings (fof: up to 0.15);
#: where it also peaks there at least ``_HALFWAY_ASK_PEAK`` times its answer a quarter of
#: a beat either side (chorales' slow attacks and eighth notes: at most 8; beats heard in
#: half time: 52 and more), the tempo networks decide. Asked on 4 of the 339 labelled
#: songs (dev, seed-7, seed 3, both irregular sets, fof, three chorale sets), all fast
#: songs heard in half time, which they doubled (synthetic seed-7 0021, seed 3 0005 and
#: 0019, irregular seed 13 0003), and on 1 of 21 realmusic tracks, r17, left at 70 BPM.
#: Asked wherever the answer halfway reaches 0.2 (no peak test), they would double 15 of
#: the 180 chorales read right at 60 BPM.
_HALFWAY_ASK = 0.2
_HALFWAY_ASK_PEAK = 20.0


def midpoint_peak(beat_times: np.ndarray, beat_activation: np.ndarray, fps: float) -> float:
    """Median beat activation halfway between consecutive beats over its median a
    quarter of the way and three quarters of the way: above 1 where the network marks
    the midpoint as a beat, about 1 where its answer is merely spread over the beat."""
    from songmap.rhythm.beats import sample_at

    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 3:
        return 0.0
    step = np.diff(beats)

    def at(share: float) -> np.ndarray:
        return sample_at(beat_activation, beats[:-1] + share * step, fps)

    mid = float(np.median(at(0.5)))
    quarters = float(np.median(np.concatenate([at(0.25), at(0.75)])))
    return mid / max(quarters, 1e-9)


def midpoint_ratio(beat_times: np.ndarray, beat_activation: np.ndarray, fps: float) -> float:
    """Median beat activation halfway between consecutive beats over the median on them."""
    from songmap.rhythm.beats import sample_at

    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 3:
        return 0.0
    on = float(np.median(sample_at(beat_activation, beats, fps)))
    mid = float(np.median(sample_at(beat_activation, (beats[:-1] + beats[1:]) / 2, fps)))
    return mid / max(on, 1e-9)


def infer_bars(
    beat_times: np.ndarray,
    beat_activation: np.ndarray,
    downbeat_activation: np.ndarray,
    fps: float,
    *,
    meters: tuple[int, ...] = (2, 3, 4),
    min_bpm: float = 55.0,
    max_bpm: float = 215.0,
    chroma: Activations | None = None,
    onset_envelope: Activations | None = None,
    loudness: Activations | None = None,
    follow: bool = True,
    bar_evidence: BarEvidence | None = None,
    slowest_compound_bpm: float | None = None,
) -> BarGrid:
    """Decide bars, then how many beats a bar counts, from the tracked beats.

    1. Bars: the HMM of ``decide_meter`` over the tracked beats with 2, 3, 4 and 6
       tracked beats per bar (6 catches compound bars tracked at the eighth-note level);
       when it scores 3 and 4 within ``_METER_TIE``, the period of the chord changes
       (``harmonic_period`` of ``chroma``) decides between them.
    2. Counting level: a bar of 3 or 6 tracked beats may be compound (6/8, two dotted
       beats) or simple (3/4); a bar of 2 may hold 3 or 4 (the tracker settled on a
       slower level). Each reading divides the bar into k equal beats (interpolated) and
       scores the mean beat activation on its off-downbeat grid points; the tracked
       reading stays unless another scores 5 % higher. Only readings the network hears
       (off-grid activation a tenth of that on the bar lines) and in ``[min_bpm,
       max_bpm]`` compete (a dotted beat from ``slowest_compound_bpm``). Bars of 4 stay.
    3. Two or four: when the bar is counted at the tracked level with 2 or 4 beats, the
       rarer reading for the beat's division (``beat_division`` on ``onset_envelope``:
       2/4 when beats divide in two or show nothing, 12/8 when in three) must explain
       ``_DUPLE_PRIOR`` nats per beat more; two beats divided in three are 6/8.
    4. Bar phase: ``tie_break_phase`` with the network, ``chroma`` and ``loudness``
       gives the song's steady grid; ``bar_evidence`` (P(downbeat) per beat from the
       beat-synchronous networks), computed once on the tracked beats when first asked,
       joins the network where its sign test is not decisive.
    5. Bars that follow the music (``follow``, bars counted at the tracked level):
       ``bar_phase.follow_bars`` lets bars take another length (2-7 beats) where the
       network and the chord changes earn it, holding the song's ends to the phase of
       its body and giving each run of bars of the main meter its own
       ``tie_break_phase``. Bars counted at another level keep the steady grid of step 4.
    """
    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 2:
        return BarGrid(beats, np.ones(len(beats), dtype=int), 4, "4/4", 0.0)
    p = downbeat_probability(beats, beat_activation, downbeat_activation, fps)
    tracked_bpm = 60.0 / float(np.median(np.diff(beats)))
    # six tracked beats a bar: eighths whose dotted-quarter beat (three) is still a tempo
    slowest = min(min_bpm, slowest_compound_bpm or min_bpm)
    extra = {6} if tracked_bpm / 3 >= slowest else set()
    decision = decide_meter(p, meters=tuple(sorted(set(meters) | extra)))
    level = partial(counting_level, beats, beat_activation=beat_activation + downbeat_activation,
                    fps=fps, tracked_bpm=tracked_bpm, min_bpm=min_bpm, max_bpm=max_bpm,
                    slowest_compound_bpm=slowest)
    # the evidence beside the network, as log-priors per beat, for the confidence
    n, tracked_positions, adjusted = _three_or_four(decision, p, beats, chroma)
    k, grid, positions = level(tracked_positions, n)
    division = 2
    if onset_envelope is not None and len(onset_envelope.values):
        division = beat_division(onset_envelope.values, beats, onset_envelope.fps)
    if k == n:
        duple, prior = _duple_reading(decision.scores, n, division)
        if prior:
            adjusted[n] += prior
        if duple != n:
            n = duple
            k, grid, positions = level(decode_bar_positions(p, n)[0], n)
    heard = evidence_on_beats(beats, bar_evidence) if k > 1 else None
    if k == n and k > 1 and follow:
        positions = follow_bars(beats, grid, p, beats_per_bar=k, beat_activation=beat_activation,
                                downbeat_activation=downbeat_activation, fps=fps, chroma=chroma,
                                loudness=loudness, bar_evidence=heard)
    elif k > 1:
        positions = tie_break_phase(grid, positions, k, beat_activation, downbeat_activation,
                                    fps, chroma, loudness, heard)
    confidence = meter_confidence(adjusted, n, len(beats))
    return BarGrid(grid, positions, k, _meter_label(k, n, division), confidence,
                   tracked_per_beat=n / k)


def _three_or_four(
    decision: MeterDecision, downbeat_prob: np.ndarray, beat_times: np.ndarray,
    chroma: Activations | None,
) -> tuple[int, np.ndarray, dict[int, float]]:
    """Tracked beats per bar, their positions and the meters' scores with the chords'
    log-prior: when the HMM scores 3 and 4 within ``_METER_TIE`` the network is unsure,
    and the period of the chord changes (``harmonic_period``) decides."""
    n, positions = decision.beats_per_bar, decision.positions
    adjusted = dict(decision.scores)
    if chroma is None or n not in (3, 4) or not {3, 4} <= set(decision.scores):
        return n, positions, adjusted
    other = 7 - n
    if not decision.scores[n] - decision.scores[other] < _METER_TIE:
        return n, positions, adjusted
    period = harmonic_period(harmonic_change(beat_times, chroma))
    if period is not None:
        adjusted[7 - period] -= _METER_TIE
    if period == other:
        return other, decode_bar_positions(downbeat_prob, other)[0], adjusted
    return n, positions, adjusted


def _duple_reading(
    scores: dict[int, float], beats_per_bar: int, division: int,
) -> tuple[int, float]:
    """Beats per bar for a bar counted at the tracked level, and the log-prior per beat
    (0 if none) added to its reading's score.

    For a duple bar the rarer reading for this division of the beat (2/4 against 4/4,
    12/8 against 6/8) must explain clearly more than the common one."""
    rare, common = (4, 2) if division == 3 else (2, 4)
    if beats_per_bar != rare or common not in scores:
        return beats_per_bar, 0.0
    return (common if scores[rare] + _DUPLE_PRIOR < scores[common] else rare), _DUPLE_PRIOR


def _meter_label(beats_per_bar: int, tracked_per_bar: int, division: int) -> str:
    """Time signature of bars of ``beats_per_bar`` counted beats (``tracked_per_bar``
    tracked beats): two beats are 6/8 when compound (three tracked, or divided in three).
    Four beats stay 4/4 when they divide in three: a shuffle (swung eighths near a
    triplet's two thirds) is written 4/4 as often as a 12/8 feel is 12/8 (make_corpus.py's
    4/4 songs swung .62-.66 read as 12/8, 3 of its 12/8 songs did; the bars are the same)."""
    k = beats_per_bar
    compound = k == 2 and (tracked_per_bar in (3, 6) or division == 3)
    return {4: "4/4", 3: "3/4", 2: "6/8" if compound else "2/4"}.get(k, f"{k}/4")

#: Meters whose HMM scores (nats per beat) are closer than this are a tie for the network.
_METER_TIE = 0.1
#: How much more one period's chord-change autocorrelation must reach to count.
_PERIOD_MARGIN = 0.2


def harmonic_period(change: np.ndarray) -> int | None:
    """3 or 4: whether chord changes recur every 3 (or 6) beats or every 2, 4 or 8.

    The autocorrelation of the per-beat harmonic change at those lags; the better of the
    two families wins if it is ``_PERIOD_MARGIN`` ahead, else None (no clear period).
    """
    x = np.asarray(change, dtype=float)
    x = x - x.mean()
    energy = float(np.sum(x * x))
    if len(x) < 17 or energy < 1e-12:
        return None
    acf = {lag: float(np.sum(x[:-lag] * x[lag:]) / energy) for lag in (2, 3, 4, 6, 8)}
    ternary = max(acf[3], acf[6])
    binary = max(acf[2], acf[4], acf[8])
    if abs(ternary - binary) < _PERIOD_MARGIN:
        return None
    return 3 if ternary > binary else 4


def counting_level(
    beats: np.ndarray, tracked_positions: np.ndarray, n: int, *, beat_activation: np.ndarray,
    fps: float, tracked_bpm: float, min_bpm: float, max_bpm: float,
    slowest_compound_bpm: float | None = None,
) -> tuple[int, np.ndarray, np.ndarray]:
    """Beats per bar ``k``, beat times (s) and positions for bars of ``n`` tracked beats
    (``beats``, s; ``tracked_positions`` 1-based; ``tracked_bpm`` their tempo, BPM).

    ``beat_activation`` is the network's probability of any beat (beat or downbeat) per
    frame at ``fps``; readings are scored by it as ``infer_bars`` step 2 says."""
    any_beat = beat_activation
    from songmap.rhythm.beats import regrid_beats, sample_at

    first = int(np.argmax(tracked_positions == 1)) if (tracked_positions == 1).any() else 0
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
        # a dotted beat (three tracked eighths) may be slower than the tracker's range
        slowest = min_bpm if n != 3 * k else min(min_bpm, slowest_compound_bpm or min_bpm)
        if len(off) == 0 or not (slowest <= tracked_bpm * k / n <= max_bpm):
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
    step = n / k
    start = first - step * np.floor(first / step)
    grid = grids[k]
    positions = (np.round((np.arange(len(grid)) * step + start - first) / step).astype(int) % k) + 1
    return k, grid, positions
