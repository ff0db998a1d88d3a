"""A tempo map: piecewise-constant tempo fitted to the beat times.

Each segment is a straight line through its beats (time against beat number), so its
tempo is 60 / slope. Segments are found by optimal segmentation (dynamic programming)
of the squared residuals, measured in units of the beats' own jitter, plus a penalty
per segment: a new segment appears only where one line cannot explain the beats as
well as the jitter allows (a tempo step, a ritardando, rubato), not where the tracker
wobbles.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

#: Floor (s) of the beat jitter used to weigh residuals: below it the beats are as
#: exact as the 0.1 ms times written and the segmentation would chase rounding.
_MIN_JITTER_S = 0.0005
#: Penalty per segment, in multiples of ln(number of beats) (BIC-like; a segment adds a
#: start, a slope and a change point). Raised above BIC's 1.5 so that a steady song's
#: heavy-tailed jitter (a few beats the tracker put 20 ms off) does not split it.
_PENALTY_PER_LN_BEATS = 6.0
#: A segment is not steady (not snapped) if the parabola through its beats strays more
#: than this (s) from the line, significantly: a tempo bending inside it (an accelerando),
#: which a line would flatten.
_MAX_BEND_S = 0.0025
#: Neighbouring segments are merged when splitting them explains their beats this little
#: better (Chow test F statistic, 2 extra parameters; 10 is p < 0.001 for 20+ beats): the
#: DP weighs residuals by the song's median jitter, and the few beats the tracker puts far
#: off in a strummed or bowed song would otherwise split a steady tempo.
_MERGE_F = 10.0
#: A snapped segment moves no beat the network hardly marks (nor any other inlier) further
#: than this (s): half the 70 ms window within which a beat counts as hit. Beyond it the
#: beat belongs to other music (a tempo change the unheard beats bridge), not to the line.
_UNHEARD_MAX_S = 0.035
#: Fewest beats in a segment.
_MIN_SEGMENT_BEATS = 4
#: A segment's beats are placed on its line (a DJ grid) when every one of them lies this
#: close to it (s); further, the tracked beats are kept as they are.
SNAP_TOLERANCE_S = 0.012
#: A line's tempo is the nearest whole BPM when the line at that tempo strays no further
#: than this (s) from the fitted one at the ends of its beats, else the fitted tempo itself.
#: Music made to a click or in a DAW sits on a whole tempo: the free fit follows the
#: tracker's bias from section to section (fof's two songs with exact chart tempos, 95 and
#: 135 BPM: beats 1.4-1.6 ms (std) off the chart's grid on the fitted line, 0.05-0.07 ms
#: on the whole-BPM one); a tempo between whole ones keeps its fitted line, which no
#: rounding drags up to ~5 ms off at the ends of a long segment (a 4.4-minute song at
#: 106.5639 BPM, synthetic). 5 ms: the tolerance the exported grids are held to.
WHOLE_BPM_DRIFT_S = 0.005


@dataclass(frozen=True)
class TempoSegmentFit:
    """One steady stretch: beats ``first..last`` (indices, inclusive) on the line
    ``start_s + (k - first) * period_s``; ``bpm`` is its tempo as shown (two decimals;
    exporters that hold only that start a new grid entry where it would drift)."""

    first: int
    last: int
    start_s: float
    bpm: float
    rms_s: float
    max_abs_s: float
    snapped: bool
    #: Seconds per beat of the line (0: the shown ``bpm``'s).
    period_s: float = 0.0

    @property
    def step_s(self) -> float:
        """Seconds per beat of the line."""
        return self.period_s if self.period_s > 0 else 60.0 / self.bpm

    @property
    def beats(self) -> int:
        return self.last - self.first + 1

    def times(self) -> np.ndarray:
        """The segment's grid: one time (s) per beat."""
        return self.start_s + np.arange(self.beats) * self.step_s

    def at(self, k: np.ndarray) -> np.ndarray:
        """The line's time (s) at beat indices ``k`` of the song, carried on past the
        segment's own beats."""
        return self.start_s + (np.asarray(k, dtype=float) - self.first) * self.step_s


def beat_jitter(beat_times: np.ndarray, *, window_beats: int = 8) -> float:
    """Robust typical deviation (s) of the beats from a locally straight line.

    The median, over every run of ``window_beats`` beats (two bars of 4/4), of the RMS
    residual of the run's own line (scaled for the two fitted parameters). A tempo step
    or a ritardando bends few runs or bends each only a little, so it does not count;
    a beat pattern that sways around the tempo within every two bars (beats tracked on
    a syncopated figure) does, and is not mistaken for tempo changes.
    """
    beats = np.asarray(beat_times, dtype=float)
    w = window_beats
    if len(beats) < w + 1:
        return _MIN_JITTER_S
    runs = np.lib.stride_tricks.sliding_window_view(beats, w)
    k = np.arange(w, dtype=float) - (w - 1) / 2.0
    slope = runs @ k / float(k @ k)
    resid = runs - runs.mean(axis=1, keepdims=True) - slope[:, None] * k[None, :]
    rms = np.sqrt(np.sum(resid ** 2, axis=1) / (w - 2))
    return max(float(np.median(rms)), _MIN_JITTER_S)


#: A beat is an outlier when the line through its ``_OUTLIER_NEIGHBOURS`` nearest beats
#: (itself left out) misses it by more than this many times the song's jitter: one beat
#: the tracker put off (a flam, a fill, the ring-out after the last chord), not a drift,
#: which moves its neighbours with it.
_OUTLIER_JITTERS = 5.0
_OUTLIER_NEIGHBOURS = 8


def outlier_beats(beat_times: np.ndarray, *, jitter_s: float | None = None) -> np.ndarray:
    """Mask of isolated displaced beats: each beat is predicted by the line through its
    ``_OUTLIER_NEIGHBOURS`` nearest beats (one-sided at the song's ends) and is an
    outlier when it misses by more than ``_OUTLIER_JITTERS`` jitters (``beat_jitter``)
    while the next beat on either side does not (a jump of the whole beat pattern moves
    both sides and is a segment boundary, not an outlier)."""
    t = np.asarray(beat_times, dtype=float)
    n, w = len(t), _OUTLIER_NEIGHBOURS
    if n < w + 1:
        return np.zeros(n, dtype=bool)
    sigma = jitter_s if jitter_s is not None else beat_jitter(t)
    limit = _OUTLIER_JITTERS * sigma

    def miss(i: int, without: tuple[int, ...]) -> float:
        """How far the line through the nearest beats (not ``without``) misses beat i."""
        around = np.arange(max(i - w - 2, 0), min(i + w + 3, n))
        around = around[~np.isin(around, without)]
        idx = np.sort(around[np.argsort(np.abs(around - i), kind="stable")[:w]])
        a, b = _line_fit(idx.astype(float), t[idx])
        return abs(t[i] - a - b * i)

    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if miss(i, (i,)) <= limit:
            continue
        # isolated: with it left out, its neighbours sit on their line
        out[i] = all(miss(j, (i, j)) <= limit for j in (i - 1, i + 1) if 0 <= j < n)
    return out


def _line_fit(k: np.ndarray, t: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """Intercept and slope of the (weighted) least-squares line ``t = a + b * k``."""
    b, a = np.polyfit(k, t, 1, w=None if w is None else np.sqrt(w))
    return float(a), float(b)


def segment_beats(beat_times: np.ndarray, *, jitter_s: float | None = None,
                  min_beats: int = _MIN_SEGMENT_BEATS,
                  penalty: float | None = None,
                  weights: np.ndarray | None = None) -> list[tuple[int, int]]:
    """``(first, last)`` beat indices (inclusive) of the optimal piecewise-linear fit.

    Minimises sum over segments of (weighted residual sum of squares / ``jitter_s``^2) +
    ``penalty`` (default ``_PENALTY_PER_LN_BEATS * ln(n)``), every segment at least
    ``min_beats`` long. ``weights`` (default 1) per beat: 0 leaves an outlier beat out of
    the lines (it still belongs to a segment). Exact dynamic programming in O(n^2)
    vector operations, with the line fits from prefix sums.
    """
    t = np.asarray(beat_times, dtype=float)
    n = len(t)
    if n == 0:
        return []
    if n < 2 * min_beats:
        return [(0, n - 1)]
    sigma = jitter_s if jitter_s is not None else beat_jitter(t)
    beta = penalty if penalty is not None else _PENALTY_PER_LN_BEATS * np.log(n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    k = np.arange(n, dtype=float)
    # residuals of the global line: same piecewise lines, far better conditioned sums
    a0, b0 = _line_fit(k, t, w)
    y = (t - a0 - b0 * k) / sigma

    def prefix(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros(1), np.cumsum(x)])

    s_w, s_k, s_kk = prefix(w), prefix(w * k), prefix(w * k * k)
    s_y, s_ky, s_yy = prefix(w * y), prefix(w * k * y), prefix(w * y * y)

    best = np.full(n + 1, np.inf)  # best[j]: cost of beats 0..j-1
    best[0] = 0.0
    start_of = np.zeros(n + 1, dtype=int)
    for j in range(min_beats, n + 1):
        i = np.arange(0, j - min_beats + 1)  # segment = beats i..j-1
        m = np.maximum(s_w[j] - s_w[i], 1e-12)
        sk, skk = s_k[j] - s_k[i], s_kk[j] - s_kk[i]
        sy, sky, syy = s_y[j] - s_y[i], s_ky[j] - s_ky[i], s_yy[j] - s_yy[i]
        var_k = skk - sk * sk / m
        cov = sky - sk * sy / m
        rss = syy - sy * sy / m - np.where(var_k > 1e-9, cov * cov / np.maximum(var_k, 1e-9), 0.0)
        total = best[i] + np.maximum(rss, 0.0) + beta
        pick = int(np.argmin(total))
        best[j], start_of[j] = total[pick], int(i[pick])
    bounds = []
    j = n
    while j > 0:
        i = start_of[j]
        bounds.append((i, j - 1))
        j = i
    return bounds[::-1]


def _fit_segment(t: np.ndarray, first: int, last: int, snap_tolerance_s: float,
                 inlier: np.ndarray | None = None,
                 heard: np.ndarray | None = None, *,
                 period: float | None = None) -> TempoSegmentFit:
    """Line through beats ``first..last`` (their ``inlier`` beats that are also ``heard``;
    default all) at its fitted tempo (or the given ``period``, s per beat), shown as
    ``line_period`` says, its start fitted for that tempo. Residuals and the snap test
    are over those beats: a snapped segment puts its other beats on the line. Whether
    the tempo bends is asked of every inlier beat (an unheard beat still follows the
    tempo as well as the tracker could place it)."""
    seg = t[first:last + 1]
    k = np.arange(len(seg), dtype=float)
    use = np.ones(len(seg), dtype=bool) if inlier is None else np.asarray(inlier[first:last + 1])
    if use.sum() < 2:
        use = np.ones(len(seg), dtype=bool)
    fit = use if heard is None else use & np.asarray(heard[first:last + 1])
    if fit.sum() < 3:
        fit = use
    ks, ts = k[fit], seg[fit]
    if period is None:
        period = _line_fit(ks, ts)[1] if len(ts) > 1 else 0.0
    if period <= 0:
        return TempoSegmentFit(first, last, float(seg[0]), 0.0, 0.0, 0.0, False)
    fits = []
    # the whole BPM first (``line_period``), unless the beats are no longer steady on
    # its line while they are on the fitted one
    for step in dict.fromkeys((line_period(period, _half_span(ks, len(seg))), period)):
        start = float(np.mean(ts - ks * step))
        resid = ts - (start + ks * step)
        rms, worst = float(np.sqrt(np.mean(resid ** 2))), float(np.max(np.abs(resid)))
        off = seg - (start + k * step)
        steady = (len(seg) >= _MIN_SEGMENT_BEATS and len(ts) >= 3
                  and _holds(off, snap_tolerance_s, fit)
                  and float(np.max(np.abs(off[use]), initial=0.0)) <= _UNHEARD_MAX_S
                  and not bends_away(k[use], seg[use]))
        fits.append(TempoSegmentFit(first, last, start, round(60.0 / step, 2), rms, worst,
                                    steady, step))
    return next((x for x in fits if x.snapped), fits[0])


def line_period(fitted_s: float, half_span_beats: float) -> float:
    """The period (s per beat) of a line fitted at ``fitted_s`` whose beats reach
    ``half_span_beats`` beats either side of the point it pivots on: the nearest whole
    BPM's when that line strays at most ``WHOLE_BPM_DRIFT_S`` from the fitted one there,
    else ``fitted_s``."""
    if fitted_s <= 0:
        return 0.0
    whole = round(60.0 / fitted_s)
    if whole <= 0:
        return fitted_s
    period = 60.0 / whole
    return period if abs(period - fitted_s) * half_span_beats <= WHOLE_BPM_DRIFT_S else fitted_s


def _half_span(fitted_k: np.ndarray, n_beats: int) -> float:
    """How many beats (of ``0..n_beats - 1``) the furthest lies from the mean of the beat
    numbers a line was fitted to (where a refitted start pivots it)."""
    centre = float(np.mean(fitted_k)) if len(fitted_k) else (n_beats - 1) / 2.0
    return max(centre, n_beats - 1 - centre)


def bends_away(k: np.ndarray, t: np.ndarray) -> bool:
    """Whether beats ``t`` (s) at beat numbers ``k`` bend away from a line (an accelerando
    a line would cut through): the best parabola strays from the best line by more than
    ``_MAX_BEND_S``, significantly (F test of the square term, as for merging)."""
    if len(t) <= 3:
        return False
    line = np.polyval(np.polyfit(k, t, 1), k)
    bent = np.polyval(np.polyfit(k, t, 2), k)
    rss_line, rss_bent = float(np.sum((t - line) ** 2)), float(np.sum((t - bent) ** 2))
    f = (rss_line - rss_bent) / max(rss_bent / (len(t) - 3), 1e-12)
    return f > _MERGE_F and float(np.max(np.abs(bent - line))) > _MAX_BEND_S


#: Beats may sway around a steady line by up to this many snap tolerances when every
#: two-bar run of them holds the line on average: a pattern that pushes and drags the
#: same beats of every bar (an instrument the network hears early or late) is no tempo.
_SWAY_TOLERANCES = 2.0
_SWAY_WINDOW_BEATS = 8


def _holds(resid: np.ndarray, tolerance_s: float, use: np.ndarray) -> bool:
    """Whether a line holds beats with these residuals (s; the ``use`` beats count):
    every beat within ``tolerance_s``, or, in a segment of at least two two-bar runs,
    every run's mean within it and every beat within ``_SWAY_TOLERANCES`` of it."""
    kept = resid[use]
    if float(np.max(np.abs(kept))) <= tolerance_s:
        return True
    w = _SWAY_WINDOW_BEATS
    if len(kept) < 2 * w or float(np.max(np.abs(kept))) > _SWAY_TOLERANCES * tolerance_s:
        return False
    means = np.convolve(kept, np.ones(w) / w, mode="valid")
    return float(np.max(np.abs(means))) <= tolerance_s


def fit_tempo_map(beat_times: np.ndarray, *, snap_tolerance_s: float = SNAP_TOLERANCE_S,
                  jitter_s: float | None = None,
                  unheard: np.ndarray | None = None,
                  strength: np.ndarray | None = None) -> list[TempoSegmentFit]:
    """The tempo map of ``beat_times`` (s, increasing): one ``TempoSegmentFit`` per
    steady stretch, in order, covering every beat.

    Segments from ``segment_beats``; then neighbours are merged while one line holds
    both within ``snap_tolerance_s`` (the pair whose merged line fits best first): the
    segmentation also splits where the beats jump by a few ms without changing tempo
    (the tracker hears an instrument enter a little later), and a DJ grid needs no new
    tempo there. Each segment's tempo is its least-squares line's (``line_period``: the
    nearest whole BPM where that holds the line within ``WHOLE_BPM_DRIFT_S``), its start
    refitted for that tempo; ``snapped`` says whether every beat lies within
    ``snap_tolerance_s`` of that line.

    ``unheard`` (bool per beat, default none) marks beats the network hardly marks: the
    tracker bridged them (a break, a fill) and their times say little. They do not
    decide a segment's tempo nor hold it to the snap tolerance; a snapped segment puts
    them on its line, so it snaps only if none lies further than ``_UNHEARD_MAX_S`` from
    it (where they lie further, other music is there: a tempo change they bridge). They
    still count in the segmentation and the bend test (they follow the tempo as well as
    the tracker could place them).

    ``strength`` (the network's answer per beat, optional) finds the quiet stretches
    between louder ones that keep their line (``_bridge_quiet``).

    Finally the main tempo's snapped segments share one tempo where it holds them
    (``_share_tempo``): a beat that jumps without a tempo change is a new start, not a
    new tempo; a song whose beats wander around one line is that line
    (``_one_line``), and so is a stretch whose beats wander around its snapped
    neighbour's line (``_join_loose``).
    """
    t = np.asarray(beat_times, dtype=float)
    if len(t) < 2:
        return []
    sigma = jitter_s if jitter_s is not None else beat_jitter(t)
    inlier = ~outlier_beats(t, jitter_s=sigma)
    heard = None if unheard is None else ~np.asarray(unheard, dtype=bool)
    use = inlier if heard is None else inlier & heard
    segs = [_fit_segment(t, a, b, snap_tolerance_s, inlier, heard)
            for a, b in segment_beats(t, jitter_s=sigma, weights=inlier.astype(float))]
    # the stretches (first, last) of each segment that are offset from one another: a
    # merged segment's tempo is their common slope, each on its own start
    steps: dict[int, list[tuple[int, int]]] = {x.first: [(x.first, x.last)] for x in segs}

    def pair(x: TempoSegmentFit, y: TempoSegmentFit) -> tuple[TempoSegmentFit, float]:
        """The merged fit of two neighbours and how strongly the split beats it (inf:
        they stay apart)."""
        f = _split_f(t, x.first, x.last, y.last, inlier)
        # a significant split that one line still holds is a step in phase (an
        # instrument heard later than the drums), not a change of tempo: the line
        # through both would tilt to bridge the step, so its tempo is the stretches'
        # common slope (each on its own start) and only its start spans the step
        period = (_common_period(t, steps[x.first] + steps[y.first], use) or None
                  if f >= _MERGE_F else None)
        merged = _fit_segment(t, x.first, y.last, snap_tolerance_s, inlier, heard, period=period)
        return merged, (f if merged.snapped or f < _MERGE_F else np.inf)

    pairs = [pair(x, y) for x, y in itertools.pairwise(segs)]
    while pairs:
        i = int(np.argmin([f for _, f in pairs]))
        if not np.isfinite(pairs[i][1]):
            break
        x, y = segs[i], segs[i + 1]
        steps[x.first] = (steps[x.first] + steps.pop(y.first) if pairs[i][1] >= _MERGE_F
                          else [(x.first, y.last)])
        segs[i:i + 2] = [pairs[i][0]]
        # only the merged segment's two pairs change
        new = [pair(segs[j], segs[j + 1]) for j in (i - 1, i) if 0 <= j < len(segs) - 1]
        lo = max(i - 1, 0)
        pairs[lo:i + 2] = new
    if strength is not None:
        segs = _bridge_quiet(t, segs, snap_tolerance_s, inlier, heard, np.asarray(strength), steps)
    segs = _share_tempo(t, segs, snap_tolerance_s, inlier, heard, steps)
    return _join_loose(t, _one_line(t, segs, snap_tolerance_s, inlier, heard),
                       snap_tolerance_s, inlier)


#: A song whose tracked beats mostly wander off every line (at least this share of its
#: beats in segments that do not snap) is one steady line when one line holds every beat
#: within the 70 ms a beat counts as hit (``_ONE_LINE_MAX_S``) and every run of
#: ``_ONE_LINE_RUN_BEATS`` beats within half that on average (``_ONE_LINE_RUN_S``): the
#: tracker's placement wanders with the drum pattern, the music does not (a band playing
#: to a click: fof's Armygeddon, cut into 18 segments of 168.5-173 BPM around the chart's
#: 170; on one line its beats scatter 7.6 ms around the chart instead of 20.7, beat F .987
#: -> .996). Music that drifts, slows down or steps in tempo moves further from any line
#: over a song; songs whose segments snap keep them (their phase steps are finer than
#: this tolerance).
_ONE_LINE_LOOSE = 0.5
_ONE_LINE_MAX_S = 0.07
_ONE_LINE_RUN_S = 0.035
_ONE_LINE_RUN_BEATS = 16


def _one_line(t: np.ndarray, segs: list[TempoSegmentFit], snap_tolerance_s: float,
              inlier: np.ndarray, heard: np.ndarray | None) -> list[TempoSegmentFit]:
    """``segs``, or one snapped segment over every beat where ``_ONE_LINE_LOOSE`` and
    ``_ONE_LINE_MAX_S`` / ``_ONE_LINE_RUN_S`` say the song is on one line (outliers
    aside): at the nearest whole BPM where its line holds the song as well (music on a
    click sits on a whole tempo, and beats that wander this much cannot tell 170.02 from
    170), else at the fitted tempo."""
    n = len(t)
    if len(segs) < 2 or n < 2 * _ONE_LINE_RUN_BEATS:
        return segs
    if sum(x.beats for x in segs if not x.snapped) < _ONE_LINE_LOOSE * n:
        return segs
    line = _fit_segment(t, 0, n - 1, snap_tolerance_s, inlier, heard)
    if line.bpm <= 0:
        return segs
    use = np.asarray(inlier, dtype=bool)
    # the whole BPM's line, its start fitted to every inlier beat
    whole = _fit_segment(t, 0, n - 1, snap_tolerance_s, inlier, None,
                         period=60.0 / round(line.bpm))
    for candidate in (whole, line):
        if _holds_song(t - candidate.times(), use):
            return [replace(candidate, snapped=True)]
    return segs


def _join_loose(t: np.ndarray, segs: list[TempoSegmentFit], snap_tolerance_s: float,
                inlier: np.ndarray) -> list[TempoSegmentFit]:
    """``segs`` with every segment that does not snap joined to a snapped neighbour of its
    tempo (within ``_SAME_TEMPO``) whose line, carried on over it, holds its beats as
    ``_holds_song`` holds a song (every inlier beat within ``_ONE_LINE_MAX_S``, every run
    of ``_ONE_LINE_RUN_BEATS`` within ``_ONE_LINE_RUN_S`` on average; at least that many
    beats) while they do not trend away from it (the slope of their residuals carries
    them at most ``snap_tolerance_s`` from end to end: a ritardando or an accelerando
    does); the neighbour that holds it closer on average when both do.

    What ``_one_line`` says of a song, said of a stretch of it: beats that wander around
    their neighbour's grid with the drum pattern (an intro whose percussion the network
    hears every other beat 30 ms late, realmusic r06) are the tracker's placement, not a
    tempo of their own; the snapped neighbour's line, not a line through the wandering
    beats, is the grid. A stretch that drifts, slows or steps moves further than that
    from the neighbour's line and keeps its own segment."""
    out = list(segs)
    use = np.asarray(inlier, dtype=bool)
    i = 0
    while i < len(out):
        x = out[i]
        if x.snapped or x.bpm <= 0:
            i += 1
            continue
        best, best_score = None, np.inf
        for j in (i - 1, i + 1):
            if not 0 <= j < len(out):
                continue
            y = out[j]
            if not y.snapped or y.bpm <= 0 or abs(x.bpm / y.bpm - 1.0) > _SAME_TEMPO:
                continue
            k = np.arange(x.first, x.last + 1)
            resid = t[x.first:x.last + 1] - y.at(k)
            kept = use[x.first:x.last + 1]
            if not _holds_song(resid, kept):
                continue
            # wandering around the line, not away from it: the beats' own tempo keeps
            # them within the snap tolerance of it from end to end
            slope = _line_fit(np.flatnonzero(kept).astype(float), resid[kept])[1]
            if abs(slope) * (len(resid) - 1) > snap_tolerance_s:
                continue
            score = float(np.abs(np.mean(resid[kept])))
            if score < best_score:
                best, best_score = j, score
        if best is None:
            i += 1
            continue
        y = out[best]
        first, last = min(x.first, y.first), max(x.last, y.last)
        k = np.arange(first, last + 1)
        resid = (t[first:last + 1] - y.at(k))[use[first:last + 1]]
        joined = replace(y, first=first, last=last,
                         start_s=float(y.at(np.array(first))),
                         rms_s=float(np.sqrt(np.mean(resid ** 2))),
                         max_abs_s=float(np.max(np.abs(resid))))
        lo = min(i, best)
        out[lo:lo + 2] = [joined]
        i = max(lo - 1, 0)
    return out


def _holds_song(resid: np.ndarray, use: np.ndarray) -> bool:
    """Whether a line with these residuals (s, one per beat; the ``use`` beats count)
    holds a whole song: every beat within ``_ONE_LINE_MAX_S``, every run of
    ``_ONE_LINE_RUN_BEATS`` within ``_ONE_LINE_RUN_S`` on average; fewer beats than one
    run say nothing."""
    kept = resid[use]
    if len(kept) < _ONE_LINE_RUN_BEATS:  # np.convolve's "valid" would swap the two
        return False
    runs = np.convolve(kept, np.ones(_ONE_LINE_RUN_BEATS) / _ONE_LINE_RUN_BEATS, mode="valid")
    return (float(np.max(np.abs(kept))) <= _ONE_LINE_MAX_S
            and float(np.max(np.abs(runs))) <= _ONE_LINE_RUN_S)


#: A run of segments is quiet between two others when the network's median answer on each
#: of its segments is at most this share of its answer on either neighbour: the drums
#: left and came back (realmusic r02: 0.10-0.19 against 0.5-0.7).
_QUIET_RATIO = 0.5


def _bridge_quiet(t: np.ndarray, segs: list[TempoSegmentFit], snap_tolerance_s: float,
                  inlier: np.ndarray, heard: np.ndarray | None, strength: np.ndarray,
                  steps: dict[int, list[tuple[int, int]]]) -> list[TempoSegmentFit]:
    """The tempo map with every run of quiet segments between two louder ones put on
    their line: the network's median answer (``strength``, per beat) on each segment of
    the run at most ``_QUIET_RATIO`` of its answer on either neighbour, both neighbours
    snapped and their lines within ``snap_tolerance_s`` of one line through their beats
    (``_line_apart``: their beats were found steady on their own lines; one line through
    two drum sections bends and sways further than one section's beats may, realmusic
    r02), and the run at their tempo (its own line within ``_SAME_TEMPO``, when it spans
    two bars or more: a shorter fill has no tempo of its own).

    Music made on one grid (a DAW's) keeps it through a breakdown: when the drums come
    back on the line they left, the quiet stretch between was on it too, even where the
    tracker, hearing only pads and arpeggios, followed their accents off it (realmusic
    r02: two breakdowns tracked 60-100 ms off the grid its drum sections share). A quiet
    stretch at another tempo (a rubato interlude), or drums coming back off the line,
    keep their own segments.
    """
    out = list(segs)
    # a merged segment is as loud as the quieter of the two it joined; the beats of a
    # bridged run no longer set a line
    loud = {x.first: _median(strength, x) for x in segs}
    keep = np.array(inlier, dtype=bool)
    i = 1
    while i < len(out) - 1:
        left = out[i - 1]
        j = i
        while j < len(out) - 1 and loud[out[j].first] <= _QUIET_RATIO * loud[left.first]:
            j += 1
        right = out[j]
        loudest = max((loud[x.first] for x in out[i:j]), default=np.inf)
        if loudest > _QUIET_RATIO * loud[right.first]:
            i += 1
            continue
        run = slice(out[i].first, out[j - 1].last + 1)
        bridged = keep.copy()
        bridged[run] = False
        merged = _fit_segment(t, left.first, right.last, snap_tolerance_s, bridged, heard)
        own = _line_fit(np.arange(run.stop - run.start, dtype=float), t[run])[1]
        if (left.snapped and right.snapped and merged.bpm > 0
                and _line_apart(left, merged) <= snap_tolerance_s
                and _line_apart(right, merged) <= snap_tolerance_s
                and (run.stop - run.start < _SWAY_WINDOW_BEATS
                     or abs(own / merged.step_s - 1.0) <= _SAME_TEMPO)):
            out[i - 1:j + 1] = [replace(merged, snapped=True)]
            keep = bridged
            loud[left.first] = min(loud[left.first], loud[right.first])
            steps[left.first] = [(left.first, right.last)]
            for x in segs:
                if left.first < x.first <= right.last:
                    steps.pop(x.first, None)
            continue
        i += 1
    return out


def _line_apart(seg: TempoSegmentFit, line: TempoSegmentFit) -> float:
    """How far (s) ``line``'s grid lies from ``seg``'s over ``seg``'s beats (both lines:
    the larger gap at its first or last beat)."""
    ends = np.array([seg.first, seg.last])
    return float(np.max(np.abs(seg.at(ends) - line.at(ends))))


def _median(strength: np.ndarray, seg: TempoSegmentFit) -> float:
    """The network's median answer on a segment's beats."""
    return float(np.median(strength[seg.first:seg.last + 1]))


def _share_tempo(t: np.ndarray, segs: list[TempoSegmentFit], snap_tolerance_s: float,
                 inlier: np.ndarray, heard: np.ndarray | None,
                 steps: dict[int, list[tuple[int, int]]]) -> list[TempoSegmentFit]:
    """The tempo map with the main tempo's snapped segments on one common tempo, as far as
    that tempo still holds each of them (``_holds``, each on its own start).

    Segments of one tempo stay apart where the beat jumps without changing tempo (a
    section whose drums sit 60 ms earlier on the same grid, realmusic r02): a DJ grid then
    needs a new start there, but one tempo, not one per section rounded differently. The
    main tempo is the longest snapped segment's; segments within ``_SAME_TEMPO`` of it
    share the tempo of one least-squares fit with a common slope and a start of their own
    (of each stretch in ``steps``, by segment's first beat: a segment merged across a step
    in phase has one start per side).
    The common tempo holds a segment when the segment still snaps and none of its beats
    moves further than on its own line (or ``snap_tolerance_s``); the segment it misses
    most is left out (keeps its own tempo) until it holds all that remain.
    """
    snapped = [x for x in segs if x.snapped and x.bpm > 0]
    if len(snapped) < 2:
        return segs
    main = max(snapped, key=lambda x: x.beats)
    group = [x for x in snapped if abs(x.bpm / main.bpm - 1.0) <= _SAME_TEMPO]
    use = inlier if heard is None else inlier & heard
    while len(group) >= 2:
        period = _common_period(
            t, [r for x in group for r in steps.get(x.first, [(x.first, x.last)])], use)
        if period <= 0:
            break
        shared = [_fit_segment(t, x.first, x.last, snap_tolerance_s, inlier, heard, period=period)
                  for x in group]
        # it holds a segment when the segment snaps on it and no beat moves further than
        # on the segment's own line (or the snap tolerance)
        holds = [y.snapped and y.max_abs_s <= max(x.max_abs_s, snap_tolerance_s)
                 for x, y in zip(group, shared, strict=True)]
        if all(holds):
            by_first = {x.first: x for x in shared}
            return [by_first.get(x.first, x) for x in segs]
        worst = max(range(len(group)), key=lambda i: (not holds[i], shared[i].max_abs_s))
        del group[worst]
    return segs


def _common_period(t: np.ndarray, stretches: list[tuple[int, int]], use: np.ndarray) -> float:
    """Period (s per beat) of the least-squares lines with one slope and a
    start per stretch ``(first, last)`` (beat indices, inclusive) through the ``use`` beats
    of each stretch (all its beats where fewer than three are used); 0 when the slope is
    not positive."""
    num = den = 0.0
    for first, last in stretches:
        seg = t[first:last + 1]
        sel = use[first:last + 1]
        if sel.sum() < 3:
            sel = np.ones(len(seg), dtype=bool)
        k = np.arange(len(seg), dtype=float)[sel]
        kc = k - k.mean()
        num += float(kc @ (seg[sel] - seg[sel].mean()))
        den += float(kc @ kc)
    return num / den if num > 0 and den > 0 else 0.0


def _rss(t: np.ndarray, use: np.ndarray) -> float:
    """Residual sum of squares of the line through the ``use`` beats of ``t``."""
    k = np.arange(len(t), dtype=float)[use]
    if len(k) < 3:
        return 0.0
    a, b = _line_fit(k, t[use])
    return float(np.sum((t[use] - a - b * k) ** 2))


def _split_f(t: np.ndarray, first: int, split_last: int, last: int, inlier: np.ndarray) -> float:
    """Chow test F statistic of two lines (``first..split_last``, ``split_last+1..last``)
    against one line through all (inlier beats): how much better the split explains them."""
    n = int(inlier[first:last + 1].sum())
    split = (_rss(t[first:split_last + 1], inlier[first:split_last + 1])
             + _rss(t[split_last + 1:last + 1], inlier[split_last + 1:last + 1]))
    whole = _rss(t[first:last + 1], inlier[first:last + 1])
    dof = n - 4
    if dof <= 0:
        return 0.0
    return float((whole - split) / 2.0 / max(split / dof, 1e-12))


def place_on_grid(beat_times: np.ndarray, tempo_map: list[TempoSegmentFit]) -> np.ndarray:
    """Beat times with every snapped segment's beats on its line (others unchanged)."""
    out = np.array(beat_times, dtype=float)
    for seg in tempo_map:
        if seg.snapped:
            out[seg.first:seg.last + 1] = seg.times()
    return out


#: Segments within this fraction of the song's typical tempo belong to its main tempo
#: (a band drifting around its click, a tempo map cut in pieces by rubato).
_SAME_TEMPO = 0.02


def track_bpm(tempo_map: list[TempoSegmentFit], beat_times: np.ndarray) -> float:
    """The song's tempo (BPM, 2 decimals) from its tempo map; 0 without one.

    The typical tempo is the median over beats of their segment's tempo (the tempo most
    beats are played at). The longest run of neighbouring segments (by beats) all within
    ``_SAME_TEMPO`` of it is the main steady stretch, and its tempo is one line fitted
    through all its beats: a steady track gives its one segment's tempo, a song with a
    tempo step the tempo of its longer part, and a band that drifts around a tempo
    the average of the drift (pieces of a drift each miss it by their own error). Each
    beat weighs 1 / its segment's residual variance, so a loosely tracked intro does not
    tilt the line of a tightly tracked song; where the run has snapped segments, the
    beats of the others (off any grid, e.g. a drumless intro heard late) are left out.
    """
    t = np.asarray(beat_times, dtype=float)
    segs = [x for x in tempo_map if x.bpm > 0]
    if not segs:
        return 0.0
    per_beat = np.concatenate([np.full(x.beats, x.bpm) for x in segs])
    typical = float(np.median(per_beat))
    runs: list[list[TempoSegmentFit]] = []
    for x in segs:
        if abs(x.bpm / typical - 1.0) <= _SAME_TEMPO:
            if runs and runs[-1][-1].last + 1 == x.first:
                runs[-1].append(x)
                continue
            runs.append([x])
    if not runs:
        return round(typical, 2)
    run = max(runs, key=lambda r: sum(x.beats for x in r))
    first, last = run[0].first, run[-1].last
    # beats off their segment's grid (not snapped) say less than snapped ones: they are
    # left out of the line when the run has snapped segments
    snapped = any(x.snapped for x in run)
    weight = np.concatenate([np.full(x.beats, 1.0 / max(x.rms_s, _MIN_JITTER_S) ** 2
                                     if x.snapped or not snapped else 0.0) for x in run])
    k = np.arange(last - first + 1, dtype=float)
    use = weight > 0
    period = float(np.polyfit(k[use], t[first:last + 1][use], 1, w=np.sqrt(weight[use]))[0])
    if period <= 0:
        return round(typical, 2)
    centre = float(np.average(k[use], weights=weight[use]))
    return round(60.0 / line_period(period, max(centre, k[-1] - centre)), 2)


def beat_tempi(tempo_map: list[TempoSegmentFit], n_beats: int) -> np.ndarray:
    """Tempo (BPM) of every beat in a snapped segment (its beats on the segment's line);
    0 elsewhere, where the beats' own intervals say more than a line that misses them."""
    out = np.zeros(n_beats)
    for seg in tempo_map:
        if seg.snapped:
            out[seg.first:seg.last + 1] = seg.bpm
    return out


#: Residual RMS (s) at which a segment's confidence reaches 0: half the 70 ms window
#: within which a beat counts as hit.
_ZERO_CONFIDENCE_RMS_S = 0.035


def segment_confidence(seg: TempoSegmentFit) -> float:
    """How well the steady grid fits the tracked beats: 1 - residual RMS / 35 ms (0..1)."""
    return float(np.clip(1.0 - seg.rms_s / _ZERO_CONFIDENCE_RMS_S, 0.0, 1.0))
