"""Where the attacks of the beats start, read from the audio around each beat.

The beat network's activation peaks where a sharp attack (a drum hit) sounds, but a slow
or spread attack (a strummed chord, an organ, a piano chord without drums) is heard at its
peak of novelty, later than the notes begin, so beats on such music are placed late. Here
a fine spectral flux (2 ms steps, 11.6 ms windows) is taken around each beat and the
attack's *foot* is found: where the strongest rise near the beat first reaches a fifth of
its peak. The detector's own reading of an ideal attack (a noise burst whose start is
known) is computed once and taken off, so the foot of a sharp attack lands where it
starts.

Measured on the synthetic dev and seed-7 sets (tempo segments by their median attack
rise, flux peak minus foot): segments with rises under 6 ms (drums) have feet 2-4 ms
*after* the network's beats, segments with 6-14 ms rises 3-9 ms *before* them; on the real
fof recordings the feet lie 1-4 ms after the beats. So a grid moves earlier onto its
attacks when the feet say so beyond their scatter (``attack_shift``). It moves later
only where every beat's attack is one sharp attack read the same way (the feet within
``_TIGHT_IQR_S``) that starts clearly after the beats, less the detector's own lag on
sharp attacks (``SHARP_LAG_S``): a strummed or spread attack's strongest rise is any of
its strings, after the first, and its feet scatter.

A spread attack is read from the flux averaged over a segment's beats instead
(``spread_attack_start``), where its parts stand apart from the noise: the grid moves onto
the first part. On the strummed songs of the synthetic seed-7 set the grids sat 7-22 ms
after the first string and now sit 1-6 ms from it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Flux window (s): short enough to resolve a few ms, long enough for the spectrum of a
#: pitched note (86 Hz bins).
_WINDOW_S = 0.0116
#: Step (s) of the fine flux (a foot is interpolated between steps; 1 ms steps gave the
#: same grids on dev, seed-7, fof and irregular at twice the cost).
_HOP_S = 0.002
#: Each window is compared with the one this much earlier (s): the rise over 4 ms.
_LAG_S = 0.004
#: Frequency range (Hz) of the flux: above the bass's slow swell, below the air band.
_FMIN_HZ, _FMAX_HZ = 150.0, 16000.0
#: The strongest rise is looked for from this long before a beat to this long after (s):
#: the network hears slow attacks up to ~30 ms late and is seldom early.
SEARCH_BEFORE_S, _SEARCH_AFTER_S = 0.05, 0.03
#: Where the network hears a segment's beats only weakly (median activation below
#: ``beats.HEARD_ACTIVATION``: a choir, bowed strings), it hears them later still: the
#: swell of a sung chorale starts 60-100 ms before the network's beat. There the rise is
#: looked for up to a sixth of a beat before it (``weak_look_back``), at most this long (s).
#: Chorales (rendered Bach, 180 songs): beat F .879 / .893 / .886 -> .931 / .937 / .924.
#: Everywhere (100 ms for every segment) it moved the real metal songs of fof onto their
#: sixteenths (beat F .985 -> .981), and a sixth of a beat for every segment moved realmusic
#: r02's clearly heard electronic beats 14 ms earlier onto its dense mix.
_WEAK_LOOK_BACK_MAX_S = 0.1
#: The foot is sought up to this long before the rise's peak (s).
_FOOT_BACK_S = 0.04
#: The foot is where the flux first reaches this share of the rise (from the lowest point
#: before the peak to the peak).
_FOOT_FRACTION = 0.2
#: A grid moves onto its attacks only when the median of their distances lies more than
#: this many standard errors (of a median, from the interquartile range) from the beats:
#: about 95 % confidence that the attacks start earlier.
_SIGNIFICANT_SE = 2.0
#: How late (s) the detector reads a sharp attack after the beat, beyond its calibration
#: on a noise burst: on the synthetic seed-7 songs with drums (exact beats) the feet lie
#: 1.6 to 3.7 ms after the annotated beats, median of the songs 2.1 ms.
SHARP_LAG_S = 0.002
#: Interquartile range (s) of a segment's feet within which its attacks count as one
#: sharp attack read the same way at every beat, which may move a grid later: synthetic
#: drums and single notes 0.2-1.5 ms; strummed chords 5-20 ms (any string can be the
#: strongest rise); the real fof songs' drums 2-6 ms (they do not move).
_TIGHT_IQR_S = 0.003
#: Fewest attack feet (two bars of 4/4) whose median may move a grid: a 4-beat segment
#: of a real track (realmusic r12) moved 14 ms on four scattered feet.
MIN_FEET = 8
#: A spread attack (``spread_attack_start``): its parts peak at most this far apart (s) in
#: the beat-averaged flux. A strum's strings follow one another by a few ms (the synthetic
#: renderer's 12 ms); a flam or a grace note 25 ms or more before its beat is a note of its
#: own.
_SPREAD_GAP_S = 0.016
#: Each part must rise this share of the strongest part above the level before the search,
#: and stand this many standard errors (of the average over the beats) above the highest it
#: reaches there and above the dip before the next part. A strum's first string rises a
#: third or more of its strongest (synthetic seed-7 strums); a soft event 16 ms before a
#: clear attack of a real track (realmusic r16's last section) rises 15 %, and its grid
#: stays.
_SPREAD_SHARE = 0.25
_SPREAD_Z = 3.0


def _fine_flux(samples: np.ndarray, sr: int, start_s: float, frames: int) -> np.ndarray:
    """Spectral flux (positive log-magnitude rise over ``_LAG_S``) of ``frames`` windows
    centred every ``_HOP_S`` (rounded to whole samples) from ``start_s`` (s); samples
    outside the signal count as silence."""
    win = max(int(round(_WINDOW_S * sr)), 16)
    hop = max(int(round(_HOP_S * sr)), 1)
    lag = int(round(_LAG_S / _HOP_S))
    first = int(round(start_s * sr)) - lag * hop - win // 2
    span = (frames + lag - 1) * hop + win
    seg = np.zeros(span, dtype=np.float32)
    lo, hi = max(first, 0), min(first + span, len(samples))
    if hi > lo:
        seg[lo - first:hi - first] = samples[lo:hi]
    x = np.lib.stride_tricks.sliding_window_view(seg, win)[::hop][:frames + lag]
    window, band = _window_and_band(win, sr)
    spec = np.abs(np.fft.rfft(x * window, axis=1)[:, band])
    mag = np.log1p(1000.0 * spec)
    return np.maximum(mag[lag:] - mag[:-lag], 0.0).sum(axis=1)


@lru_cache(maxsize=8)
def _window_and_band(win: int, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """The flux's Hann window (float32, ``win`` samples) and the mask of its rfft bins
    within ``_FMIN_HZ``-``_FMAX_HZ`` at ``sr`` Hz (the same for every beat of a song)."""
    freqs = np.fft.rfftfreq(win, 1.0 / sr)
    return np.hanning(win).astype(np.float32), (freqs >= _FMIN_HZ) & (freqs <= _FMAX_HZ)


def _foot(flux: np.ndarray, first_s: float, search: slice, step_s: float) -> float:
    """Time (s) of the foot of the strongest rise within ``search`` (frame indices) of a
    fine ``flux`` whose frame 0 is at ``first_s`` (s), frames ``step_s`` apart; NaN
    without a rise."""
    part = flux[search]
    if len(part) == 0 or float(part.max()) <= 0.0:
        return float("nan")
    peak = (search.start or 0) + int(part.argmax())
    lo = max(peak - int(round(_FOOT_BACK_S / step_s)), 0)
    base, top = float(flux[lo:peak + 1].min()), float(flux[peak])
    if top <= base:
        return float("nan")
    level = base + _FOOT_FRACTION * (top - base)
    k = peak
    while k > lo and flux[k - 1] > level:
        k -= 1
    if k == 0:
        return first_s
    y0, y1 = float(flux[k - 1]), float(flux[k])
    frac = (level - y0) / (y1 - y0) if y1 > y0 else 1.0
    return first_s + (k - 1 + frac) * step_s


def _frames(sr: int, look_back_s: float) -> tuple[float, int, int, int]:
    """The flux's step (s, whole samples) and, in steps, how far a foot is sought before
    a rise (``_FOOT_BACK_S``), before a beat (``look_back_s``) and after it."""
    step = max(int(round(_HOP_S * sr)), 1) / sr
    return (step, int(round(_FOOT_BACK_S / step)), int(round(look_back_s / step)),
            int(round(_SEARCH_AFTER_S / step)))


def flux_around(samples: np.ndarray, sr: int, beat_times: np.ndarray,
                look_back_s: float = SEARCH_BEFORE_S) -> np.ndarray:
    """Fine flux around each beat, one row per beat: from ``_FOOT_BACK_S`` +
    ``look_back_s`` before it to ``_SEARCH_AFTER_S`` after it, ``_HOP_S`` apart (the beat
    at column ``back + before``, see ``_frames``)."""
    step, back, before, after = _frames(sr, look_back_s)
    beats = np.asarray(beat_times, dtype=float)
    rows = np.zeros((len(beats), back + before + after + 1))
    for i, t in enumerate(beats):
        rows[i] = _fine_flux(samples, sr, t - (before + back) * step, rows.shape[1])
    return rows


def feet_of(rows: np.ndarray, sr: int, look_back_s: float = SEARCH_BEFORE_S) -> np.ndarray:
    """The detector's foot (s, relative to each beat) of the strongest rise in each row
    of ``flux_around``, its own offset not yet taken off; NaN where there is no rise."""
    step, back, before, after = _frames(sr, look_back_s)
    search = slice(back, back + before + after + 1)
    origin = -(before + back) * step
    return np.array([_foot(row, origin, search, step) for row in rows], dtype=float)


def _raw_feet(samples: np.ndarray, sr: int, beat_times: np.ndarray,
              look_back_s: float = SEARCH_BEFORE_S) -> np.ndarray:
    """The detector's foot (s) of the attack at each beat, its own offset not yet taken
    off; NaN where there is no rise."""
    rows = flux_around(samples, sr, beat_times, look_back_s)
    return np.asarray(beat_times, dtype=float) + feet_of(rows, sr, look_back_s)


def segment_attacks(samples: np.ndarray, sr: int, beat_times: np.ndarray, *,
                    look_back_s: float = SEARCH_BEFORE_S) -> tuple[np.ndarray, float]:
    """A tempo segment's attacks from one flux computation: each beat's foot (s, as
    ``attack_feet``) and where the segment's spread attack starts relative to its beats
    (``spread_attack_start``), NaN unless that is earlier than the beats by more than the
    flux's step (below it the flux cannot tell, as in ``attack_shift``)."""
    beats = np.asarray(beat_times, dtype=float)
    rows = flux_around(samples, sr, beats, look_back_s)
    feet = beats + feet_of(rows, sr, look_back_s) - detector_offset(sr)
    spread = spread_attack_start(rows, sr, look_back_s)
    return feet, (spread if spread < -_HOP_S else float("nan"))


@lru_cache(maxsize=8)
def detector_offset(sr: int) -> float:
    """Where (s, relative to the attack) the detector puts the foot of an ideal attack at
    sample rate ``sr``: a decaying noise burst (a hi-hat) starting at a known sample.
    Negative: a window sees an attack before its centre reaches it."""
    rng = np.random.default_rng(0)
    onset = int(0.2 * sr)
    burst = np.zeros(int(0.4 * sr))
    n = len(burst) - onset
    burst[onset:] = rng.normal(0.0, 0.3, n) * np.exp(-np.arange(n) / (0.03 * sr))
    return float(_raw_feet(burst, sr, np.array([onset / sr]))[0] - onset / sr)


def attack_feet(samples: np.ndarray, sr: int, beat_times: np.ndarray, *,
                look_back_s: float = SEARCH_BEFORE_S) -> np.ndarray:
    """Time (s) at which the attack nearest each beat starts, from mono ``samples`` at
    ``sr`` Hz (NaN where the audio shows no rise near a beat); the strongest rise is
    looked for from ``look_back_s`` before each beat to ``_SEARCH_AFTER_S`` after it."""
    beats = np.asarray(beat_times, dtype=float)
    if len(beats) == 0 or len(samples) == 0:
        return np.full(len(beats), np.nan)
    return _raw_feet(samples, sr, beats, look_back_s) - detector_offset(sr)


def spread_attack_start(rows: np.ndarray, sr: int,
                        look_back_s: float = SEARCH_BEFORE_S) -> float:
    """Where (s, relative to the beats) the first part of the beats' attack starts when
    that attack is spread (a strum's strings, a rolled chord), from the rows of
    ``flux_around`` of a run of beats; NaN when it is not (one rise), or too few beats.

    One string's rise is buried in the noise at any one beat, so the strongest rise is
    any of the strings and the feet scatter; averaged over the run's beats the strings
    stand apart. From the average's strongest rise, earlier parts are followed back
    (``_first_part``): each peaks at most ``_SPREAD_GAP_S`` before the next, rises above
    the average's level before the search (its median there) by ``_SPREAD_SHARE`` of
    the strongest rise, and stands ``_SPREAD_Z`` standard errors above the highest the
    average reaches there (a texture recurring faster than the beat reaches as high)
    and above the dip before the next part. The answer is the foot of the first part
    (``_foot``'s fifth of its rise from the dip before it) less the detector's own
    offset. A single rise, however slow or smeared by uneven timing, gives NaN: its
    average's foot would lie at the early edge of its beats' spread, not where they
    start.
    """
    n = len(rows)
    if n < MIN_FEET:
        return float("nan")
    step, back, before, after = _frames(sr, look_back_s)
    mean = rows.mean(axis=0)
    se = rows.std(axis=0) / np.sqrt(n)
    base = float(np.median(mean[:back])) if back else float(mean.min())
    # the highest the average reaches before the search: a texture that recurs faster
    # than the beat (an arpeggiator, a buzz) shows its bumps there as well
    background = float(mean[:back].max()) if back else base
    lo, hi = back, back + before + after + 1
    peak = lo + int(np.argmax(mean[lo:hi]))
    rise = float(mean[peak]) - base
    if rise <= 0.0:
        return float("nan")
    first = _first_part(mean, se, peak, lo=lo, gap=int(round(_SPREAD_GAP_S / step)),
                        least=base + _SPREAD_SHARE * rise, background=background)
    if first == peak:
        return float("nan")
    # the first part's own rise: from the dip just before it (the average before a strum
    # carries the music before the beat, whose lowest point may lie in an earlier note)
    k = first
    while k > max(first - back, 1) and mean[k - 1] < mean[k]:
        k -= 1
    own = slice(first - k, first - k + 1)
    foot = _foot(mean[k:first + 1], (k - before - back) * step, own, step)
    return float(foot - detector_offset(sr))


def _first_part(mean: np.ndarray, se: np.ndarray, peak: int, *, lo: int, gap: int,
                least: float, background: float) -> int:
    """Index of the first part of a spread attack in a beat-averaged flux ``mean``
    (standard errors ``se``), followed back from its strongest part at ``peak``: each
    earlier part is a bump peaking at most ``gap`` steps before the next, not before
    ``lo``, at least ``least`` high, ``_SPREAD_Z`` standard errors above ``background``
    and above the dip before the next part. ``peak`` itself when there is none."""
    first = peak
    while True:
        earlier = [i for i in range(max(first - gap, lo, 1), first)
                   if mean[i] >= mean[i - 1] and mean[i] > mean[i + 1] and mean[i] >= least
                   and mean[i] - background >= _SPREAD_Z * se[i]
                   and mean[i] - mean[i:first].min() >= _SPREAD_Z * se[i]]
        if not earlier:
            return first
        first = min(earlier)


def weak_look_back(period_s: float) -> float:
    """How far (s) before its beats the attacks of a segment the network hears weakly are
    looked for: a sixth of the beat period, from ``SEARCH_BEFORE_S`` to
    ``_WEAK_LOOK_BACK_MAX_S``."""
    return float(np.clip(period_s / 6.0, SEARCH_BEFORE_S, _WEAK_LOOK_BACK_MAX_S))


def attack_shift(gaps: np.ndarray) -> float:
    """How far (s) a steady grid moves onto its attacks, from the ``gaps`` (s) of its
    beats' attack feet to the beats (NaN: no foot): their median when it is earlier than
    the beats by more than ``_SIGNIFICANT_SE`` standard errors and more than the flux's
    2 ms step; their median less ``SHARP_LAG_S`` when that is later by as much and the
    feet lie within ``_TIGHT_IQR_S`` of each other; else 0.

    Earlier: slow or spread attacks the network hears late. Later only onto one sharp
    attack per beat (synthetic seed-7 0033, an electric piano without drums, whose
    network beats sit 19 ms early with every foot within 0.5 ms): a foot after the beat
    is otherwise the detector catching the loudest part of a spread attack (the last
    strings of a strum: seed-7 0008 and 0010 moved 10-14 ms further late without the
    range test), or a real drum kit read a few ms after the beat (fof, whose feet
    scatter too widely to move). Fewer than ``MIN_FEET`` feet: 0.
    """
    found = np.asarray(gaps, dtype=float)
    found = found[np.isfinite(found)]
    if len(found) < MIN_FEET:
        return 0.0
    median = float(np.median(found))
    q1, q3 = np.percentile(found, [25, 75])
    # standard error of a median: sqrt(pi/2) sigma / sqrt(n), sigma from the IQR
    se = np.sqrt(np.pi / 2) * float(q3 - q1) / 1.349 / np.sqrt(len(found))
    # and by more than the flux's step: below it the feet cannot tell
    clear = max(_SIGNIFICANT_SE * se, _HOP_S)
    if median < -clear:
        return median
    if median - SHARP_LAG_S > clear and q3 - q1 <= _TIGHT_IQR_S:
        return median - SHARP_LAG_S
    return 0.0
