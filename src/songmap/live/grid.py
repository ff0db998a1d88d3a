"""Which beat grid the live stream carries forward: the song so far against one window.

Every window analysis of ``LiveAnalyzer`` proposes a beat grid (a beat time and a
period, s) to carry past the newest sample. On real band recordings (the fof set) a 12 s
window now and then reads the song at twice, three times or half its tempo, jumps to
another tempo for one window, or locks onto the off-beat for seconds to tens of seconds
where the grid carried from the windows before was right (issue 17). ``GridChooser``
keeps the decisions that belong to the song rather than to one window:

* **tempo octave**: a window at a metrical multiple (2x, 3x, 1/2, ...) of the carried
  period is taken only once ``OCTAVE_CONFIRM`` more windows in a row say the same, or,
  while the carried level rests on less than one full window (a stream's first, short
  windows), once the windows at the other level outweigh it;
* **tempo jump**: a window at an unrelated tempo is taken once one more window agrees,
  or at once when the causal beat filter's own tempo is nearer the window's;
* **beat phase**: a window on the carried grid's off-beat is taken only once the
  off-beat has been seen (in windows, a window counting by its length over the full
  window length) longer than the carried phase; a finer grid (the carried one at half
  the tempo) is moved by half its period when the carried grid's beats fall on its
  off-beats.

Each window that agrees with the carried grid adds to its support, so a phase held for a
minute is not overturned by ten seconds of off-beat windows, and a phase that lost keeps
what it had earned: when the windows come back to it, it returns sooner.

A **tempo step** is heard by the causal beat filter a second or two before the windows
show it: the offline tracker on a 12 s window carries the old tempo through the first
2-3 beats of the new one (dev 0003: the window ending 1.9 s after a step at 37.1 s still
puts its beats at the old 80 BPM). ``causal_step`` says when one filter beat is the
evidence of a step: it misses the carried grid and the filter's tempo moved from the
grid's by more than its own wobble on a steady real song.

The grid a window proposes is carried from its committed beats (``line_grid``): the line
through them, or after a tempo step the line through the beats since; a tempo that keeps
bending (a ritardando, ``tempo_bend``) is carried from where its curve takes the beats
(``bent_grid``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from songmap.rhythm.tempo_map import bends_away

#: Relative period difference within which two grids have the same tempo (a window's
#: tempo moves less than this in a hop in songs that speed up or slow down).
SAME_TEMPO = 0.05
#: Relative distance of a period ratio from a whole number (2, 3, 4) within which two
#: grids are the same pulse at another metrical level.
METRICAL_TOL = 0.1
#: Phase difference (share of the finer grid's period) up to which two grids on related
#: tempi have the same phase (beyond it, the off-beat).
PHASE_TOL = 0.35
#: Seconds of the causal beat activation whose periodicity settles a 3:2 between the
#: carried grid and a window's (``level_verdict``), and the fewest it needs: under 8 s
#: it held fof mutilated_mime at 120 BPM against the windows' right 180 for 4 s.
LEVEL_SPAN_S = 20.0
LEVEL_MIN_S = 8.0
#: Least difference of the activation's autocorrelation at the two periods that
#: settles it. fof and realmusic give the same beat F at 0.03, 0.05 and 0.1 (the 3:2s
#: of their windows differ by 0.08 to 0.96); on dev 0027 the right reading leads by
#: 0.02-0.05 window after window, and is taken at 0.03.
LEVEL_MARGIN = 0.03
#: Windows in a row, past the first, before another tempo octave is taken.
OCTAVE_CONFIRM = 2
#: Support (in full-length windows) below which the carried tempo level is taken as
#: a stream's first guess: another level is then taken as soon as its windows
#: outweigh it (the first windows are 2-11 s long and read the level less surely).
EARLY_LEVEL_SUPPORT = 1.0
#: Windows in a row, past the first, before an unrelated tempo is taken.
JUMP_CONFIRM = 1
#: Fewest beats of the run of last beats a line is fitted to where the tempo moved
#: (``line_grid``; 4 and 5 gave the same on fof, 5 lost less downbeat F on dev).
RUN_BEATS = 5
#: A causal filter's beat this far (s) from the carried grid's nearest beat misses it
#: (mir_eval's beat F tolerance: the grid's beat would not count there if the filter
#: is right).
STEP_MISS_S = 0.07
#: Relative tempo change of the causal filter against the carried grid from which its
#: beat is taken as a tempo step: on fof the filter's tempo wobbles between its
#: neighbouring states (at 170 BPM 167 / 171 / 176 / 182, up to 6 %) on a steady song,
#: so 5 % let armygeddon's wobble through (fof beat F .895 to .894), 8 % did not
#: (.895, dev .906 to .909; 10 %: dev .908, 12 %: .907).
STEP_CHANGE = 0.08
#: Largest such change (relative): beyond it the filter has more likely moved to
#: another metrical level (3:2 is 0.33 or 0.5) than followed a step (dev: 0.5 let
#: 0015's 6/8 read in quarters through, beat F .764 to .597).
STEP_MAX_CHANGE = 0.3
#: Windows after which the carried grid returns even if no window agreed with the
#: causal filter (1 to 3 gave the same on dev and fof).
STEP_WINDOWS = 2
#: A tempo that bends away from the carried grid (a closing ritardando), heard by the
#: causal filter (``causal_drift``): its last ``DRIFT_BEATS`` beats each ``DRIFT_GROW_S``
#: (s) further from the grid than the one before on the same side, the last
#: ``DRIFT_MISS_S`` (s) to ``DRIFT_MAX_SHARE`` of a period away, its tempo
#: ``DRIFT_CHANGE`` (relative) from the grid's the same way. Chosen on fof (real music
#: decides) and checked on dev, replayed: 30 ms / 30 ms / 3 % cost armygeddon .005,
#: 20 ms / 30 ms / 2 % .039; 30 ms / 40 ms / 3 % no fof song down (dev .919 to .922);
#: 40 ms / 50 ms / 4 % the same on fof, dev .921; no largest share: armygeddon -.008,
#: escape_from_chaosland -.005 (the filter's octave and off-beat jumps).
DRIFT_BEATS = 2
DRIFT_GROW_S = 0.03
DRIFT_MISS_S = 0.04
DRIFT_CHANGE = 0.03
DRIFT_MAX_SHARE = 0.25

Grid = tuple[float, float]  # (a beat time s, period s)


def next_beat(grid: Grid, at_s: float) -> float:
    """The grid's first beat at or after ``at_s`` (s)."""
    beat, period = grid
    return beat + float(np.ceil((at_s - beat) / period)) * period


def same_grid(a: Grid, b: Grid, *, at_s: float, period_tol: float = SAME_TEMPO,
              phase_tol: float = 0.15) -> bool:
    """Whether grids ``a`` and ``b`` agree near ``at_s`` (s): periods within
    ``period_tol`` (relative) and their beats next after ``at_s`` within ``phase_tol``
    of a period."""
    if abs(b[1] / a[1] - 1.0) > period_tol:
        return False
    d = abs(next_beat(a, at_s) - next_beat(b, at_s)) % a[1]
    return min(d, a[1] - d) <= phase_tol * a[1]


def phase_offset(fine: Grid, coarse: Grid) -> float:
    """Where the coarser grid's beats fall on the finer grid: the offset (s) of a
    coarse beat from the nearest fine beat, in ``(-period / 2, period / 2]`` of the
    finer grid."""
    d = (coarse[0] - fine[0]) % fine[1]
    return d - fine[1] if d > 0.5 * fine[1] else d


def grid_offset_s(times: np.ndarray | float, grid: Grid) -> np.ndarray:
    """Where (s) each of ``times`` (s) lies from the ``grid``'s nearest beat: later
    positive, within half a period either way."""
    d = (np.asarray(times, dtype=float) - grid[0]) % grid[1]
    return np.where(d > 0.5 * grid[1], d - grid[1], d)


def off_grid_s(times: np.ndarray | float, grid: Grid) -> np.ndarray:
    """How far (s) each of ``times`` (s) lies from the ``grid``'s nearest beat."""
    return np.abs(grid_offset_s(times, grid))


def _held_run(times: np.ndarray, *, fit_tol_s: float, min_beats: int,
              first_from: int = 1) -> tuple[int, float, float] | None:
    """The longest run of the last ``times`` (s, ascending; starting at index
    ``first_from`` or later, at least ``min_beats`` long) that one line holds within
    ``fit_tol_s`` (s): ``(its first index, slope s per beat, intercept s at index 0)``;
    None when no such run."""
    k = np.arange(len(times), dtype=float)
    for first in range(first_from, len(times) - min_beats + 1):
        slope, icpt = np.polyfit(k[first:], times[first:], 1)
        if np.abs(icpt + slope * k[first:] - times[first:]).max() <= fit_tol_s:
            return first, float(slope), float(icpt)
    return None


def between_beats(t: float, beats: np.ndarray, *, period_s: float,
                  beats_per_bar: int) -> bool:
    """Whether a downbeat at ``t`` (s) falls between the emitted ``beats`` (s,
    ascending) around it: more than 0.3 of a beat period (``period_s``) from the
    nearest, where beats were emitted for the whole bar before it with no gap. False
    where that is not known (no beats yet, a gap, the stream's first bar)."""
    start = t - beats_per_bar * period_s  # the bar before
    near = beats[beats >= start - 0.5 * period_s]
    if len(near) == 0 or near[0] > start + 0.5 * period_s:
        return False
    return bool(np.min(np.abs(near - t)) > 0.3 * period_s
                and np.all(np.diff(near) < 1.5 * period_s))


@dataclass
class GridChooser:
    """The carried grid's standing against the windows' proposals (see the module)."""

    support: float = 0.0
    #: the latest of a run of windows that disagree with the carried grid (and agree with
    #: each other), how many, and the summed weight of an off-beat run
    run_last: Grid | None = None
    run_len: int = 0
    run_weight: float = 0.0
    octave_run: int = 0
    #: support earned so far by the carried grid's off-beat (kept when it loses)
    off_support: float = 0.0
    #: summed weight of the windows at the carried tempo level, and of the run of
    #: windows at the carried phase on another level
    level_support: float = 0.0
    octave_weight: float = 0.0

    def restart(self, weight: float) -> None:
        """A new grid carried from here, supported by one window of ``weight``."""
        self.support, self.octave_run, self.off_support = weight, 0, 0.0
        self.level_support, self.octave_weight = weight, 0.0
        self._end_run()

    def _end_run(self) -> None:
        self.run_last, self.run_len, self.run_weight = None, 0, 0.0

    def _extend_run(self, proposed: Grid, *, now_s: float, phase_tol: float) -> None:
        """``proposed`` joins the run of disagreeing windows (a new run if it disagrees
        with the run's latest too)."""
        if self.run_last is not None and not same_grid(self.run_last, proposed, at_s=now_s,
                                                       phase_tol=phase_tol):
            self._end_run()
        self.run_last = proposed
        self.run_len += 1

    def choose(self, carried: Grid | None, proposed: Grid, *, now_s: float, weight: float,
               causal_period_s: float = 0.0, stepped: bool = False) -> Grid:
        """The grid to carry forward from ``now_s`` (s): ``proposed`` (the window's) or
        ``carried`` (None: none is carried, the proposal is taken).

        ``weight``: the window's evidence (its length over the full window length, so
        that the short windows of a stream's first seconds count less);
        ``causal_period_s``: the causal beat filter's current period (s; 0: unknown);
        ``stepped``: the window's beats show a tempo step inside it (``window_step``):
        another tempo is then taken without waiting for the next window."""
        if carried is None:
            self.restart(weight)
            return proposed
        beat, period = proposed
        same_tempo = abs(period / carried[1] - 1.0) <= SAME_TEMPO
        ratio = max(carried[1] / period, period / carried[1])
        metrical = (not same_tempo and round(ratio) >= 2
                    and abs(ratio / round(ratio) - 1.0) <= METRICAL_TOL)
        if not (same_tempo or metrical):
            return self._tempo_jump(carried, proposed, now_s, weight, causal_period_s,
                                    stepped=stepped)
        fine, coarse = (proposed, carried) if period <= carried[1] else (carried, proposed)
        d = phase_offset(fine, coarse)
        if abs(d) > PHASE_TOL * fine[1] and metrical and period < carried[1]:
            # a finer grid should hold the carried grid's beats: the window's beats are
            # its off-beats, so move it by half its period
            beat += 0.5 * period if d > 0 else -0.5 * period
            proposed, d = (beat, period), 0.0
        if abs(d) <= PHASE_TOL * fine[1]:  # the carried phase
            self.support += weight
            self._end_run()
            if same_tempo:
                self.octave_run, self.octave_weight = 0, 0.0
                self.level_support += weight
                return proposed
            self.octave_run += 1
            self.octave_weight += weight
            # at a stream's start the short windows that set the carried level weigh
            # less than the longer ones after them (dev 0035: a 3 s window at twice
            # the tempo, then 4 s and 5 s windows right; fof internal_degeneration)
            outweighed = (self.level_support < EARLY_LEVEL_SUPPORT
                          and self.octave_weight > self.level_support)
            if self.octave_run > OCTAVE_CONFIRM or outweighed:
                # the same phase at another level: its off-beat is another pulse
                self.octave_run, self.off_support = 0, 0.0
                self.level_support, self.octave_weight = self.octave_weight, 0.0
                return proposed
            return carried
        # the carried grid's off-beat: taken once seen longer than the carried phase
        # (with what it earned while it was the carried one)
        self._extend_run(proposed, now_s=now_s, phase_tol=0.15)
        self.run_weight += weight
        if self.off_support + self.run_weight > self.support:
            carried_support = self.support
            self.restart(self.off_support + self.run_weight)
            self.off_support = carried_support
            return proposed
        return carried

    def _tempo_jump(self, carried: Grid, proposed: Grid, now_s: float, weight: float,
                    causal_period_s: float, *, stepped: bool = False) -> Grid:
        self._extend_run(proposed, now_s=now_s, phase_tol=0.5)
        causal_agrees = causal_period_s > 0 and (
            abs(np.log(causal_period_s / proposed[1]))
            < abs(np.log(causal_period_s / carried[1])))
        # ``stepped``: the window's own beats show the step inside it (``window_step``),
        # which a window that misreads the whole song at another tempo does not
        if self.run_len > JUMP_CONFIRM or causal_agrees or stepped:
            self.restart(weight)
            return proposed
        return carried


def periodicity(activation: np.ndarray, period_s: float, *, fps: float = 100.0) -> float:
    """Autocorrelation (-1..1) of a beat ``activation`` (frames at ``fps``, mean taken
    off) at a lag of ``period_s`` (s), interpolated between whole frames; 0 when the
    activation is too short (under three periods) or flat."""
    x = np.asarray(activation, dtype=float)
    lag = period_s * fps
    lo = int(np.floor(lag))
    if lo < 1 or len(x) < 3 * lag:
        return 0.0
    x = x - x.mean()
    energy = float(np.dot(x, x))
    if energy <= 1e-12:
        return 0.0

    def at(k: int) -> float:
        return float(np.dot(x[:-k], x[k:])) / energy

    frac = lag - lo
    return (1.0 - frac) * at(lo) + frac * at(lo + 1)


def level_verdict(activation: np.ndarray, carried_period_s: float,
                  proposed_period_s: float, *, fps: float = 100.0) -> int:
    """Between a carried grid and a window's grid whose periods (s) are 3:2 apart: +1
    when the causal beat ``activation`` (its last ``LEVEL_SPAN_S`` at ``fps``, at least
    ``LEVEL_MIN_S``) repeats at the proposed period by ``LEVEL_MARGIN`` more than at the
    carried one (``periodicity``), -1 the other way round, 0 otherwise or for any other
    ratio (the chooser decides).

    A bar of three beats read as two (3/4 as 6/8) or the reverse is a coin toss for a 12 s
    window: on dev 0015 and 0027 and seed-7 0010 the windows alternate between the two
    readings for a minute while the whole song reads right. Neither period divides the
    other, so a pulse at one shows little autocorrelation at the other, and the causal
    network's activation over the last seconds says which pulse is there. Not for 2:1 or
    3:1: a pulse repeats at twice its period too, and on fof the slower reading's
    periodicity won where the faster was right (sectoid_feelings .902 -> .821).
    """
    ratio = max(carried_period_s, proposed_period_s) / min(carried_period_s, proposed_period_s)
    act = np.asarray(activation, dtype=float)
    if abs(ratio / 1.5 - 1.0) > METRICAL_TOL / 2 or len(act) < LEVEL_MIN_S * fps:
        return 0
    gain = (periodicity(act, proposed_period_s, fps=fps)
            - periodicity(act, carried_period_s, fps=fps))
    if abs(gain) < LEVEL_MARGIN:
        return 0
    return 1 if gain > 0 else -1


def line_grid(beat_times: np.ndarray, *, fit_tol_s: float,
              later_times: np.ndarray | None = None, run_beats: int | None = RUN_BEATS) -> Grid:
    """The grid ``(a beat s, period s)`` of a line through ``beat_times`` (s, ascending,
    at least 4: the window's committed beats) where every beat lies within
    ``fit_tol_s`` (s) of it, and (with ``run_beats``) so do ``later_times`` (s: the
    window's last, less certain, second). Where one strays further (the tempo
    moved), the line through the longest run of the last beats, ``later_times``
    included, that a line holds, of at least ``run_beats``
    beats (a tempo step is followed a window sooner, and a real band's wobbling
    beats give their tempo rather than that of their last 4); else (or with
    ``run_beats`` None) through the last 4 committed beats."""
    t = np.asarray(beat_times, dtype=float)
    k = np.arange(len(t), dtype=float)
    slope, icpt = np.polyfit(k, t, 1)
    u = t if later_times is None else np.concatenate([t, np.asarray(later_times, dtype=float)])
    ku = np.arange(len(u), dtype=float)
    # with runs, the line must hold the later beats too: a tempo that moved in the
    # window's last second is followed a window sooner (replay: dev beat F .909 to
    # .911, fof .895 to .897; the later beats held within 1.5 or 2x the tolerance
    # gained less on both)
    held = ku if run_beats is not None else k
    if np.abs(icpt + slope * held - u[:len(held)]).max() <= fit_tol_s:
        return float(icpt + slope * k[-1]), float(slope)
    run = _held_run(u, fit_tol_s=fit_tol_s, min_beats=run_beats or len(u))
    if run is not None:
        _, slope, icpt = run
        return float(icpt + slope * ku[-1]), float(slope)
    slope, icpt = np.polyfit(k[-4:], t[-4:], 1)
    return float(icpt + slope * k[-1]), float(slope)


def tempo_bend(beat_times: np.ndarray, later_times: np.ndarray, *, fit_tol_s: float) -> int:
    """Whether the tempo of ``beat_times`` (s, ascending) keeps bending: +1 slowing
    down (a ritardando), -1 speeding up, 0 steady or not shown.

    The beats must bend away from a line (``songmap.rhythm.tempo_map``'s test: the best
    parabola strays from the best line significantly, by more than 2.5 ms), the
    parabola must hold every beat within ``fit_tol_s`` (s), and the beats heard after
    them (``later_times``, s: the window's last, less certain, second) must lie nearer
    the parabola's continuation than the line's, by half. The last test is the one
    that tells a real tempo bend from a real band's sway: on fof, parabolas through 4 s
    of beats that sway around a steady tempo missed the next beats by 80-160 ms."""
    t = np.asarray(beat_times, dtype=float)
    later = np.asarray(later_times, dtype=float)
    if len(t) < 5 or len(later) == 0:
        return 0
    k = np.arange(len(t), dtype=float)
    if not bends_away(k, t):
        return 0
    curve = np.polyfit(k, t, 2)
    if np.abs(np.polyval(curve, k) - t).max() > fit_tol_s:
        return 0
    line = np.polyfit(k, t, 1)
    ahead = np.arange(len(t), len(t) + len(later) + 4, dtype=float)

    def miss(coef: np.ndarray) -> float:
        pred = np.polyval(coef, ahead)
        return float(np.mean(np.min(np.abs(pred[None, :] - later[:, None]), axis=1)))

    if miss(curve) > 0.5 * miss(line):
        return 0
    return 1 if curve[0] > 0 else -1


def bent_grid(beat_times: np.ndarray, *, after_s: float) -> Grid | None:
    """The grid ``(beat s, period s)`` at the first beat after ``after_s`` (s) on the
    parabola through ``beat_times`` (s, ascending, at least 3; beat time against beat
    number): where a ritardando or accelerando will have taken the beats by then, as
    a line carried from there. None if the parabola turns back before."""
    t = np.asarray(beat_times, dtype=float)
    k = np.arange(len(t), dtype=float)
    curve = np.polyfit(k, t, 2)
    ahead = np.arange(len(t), len(t) + 64, dtype=float)
    times = np.polyval(curve, ahead)
    gaps = np.diff(times)
    later = np.flatnonzero(times[:-1] >= after_s)
    if len(later) == 0 or np.any(gaps[:later[0] + 1] <= 0):
        return None
    j = int(later[0])
    return float(times[j]), float(gaps[j])


def causal_step(beat_s: float, period_s: float, grid: Grid, *, miss_s: float = STEP_MISS_S,
                min_change: float = STEP_CHANGE,
                max_change: float = STEP_MAX_CHANGE) -> bool:
    """Whether a beat of the causal filter at ``beat_s`` (s), tracked at a tempo of
    period ``period_s`` (s), shows that the tempo stepped away from the carried
    ``grid``: the beat lies more than ``miss_s`` (s) from the grid's nearest beat, and
    its period differs from the grid's by ``min_change`` to ``max_change`` (relative),
    more than the filter's wobble on a steady song, less than a change of metrical level."""
    period = grid[1]
    if period <= 0 or period_s <= 0:
        return False
    miss = float(off_grid_s(beat_s, grid)) > miss_s
    change = abs(period_s / period - 1.0)
    return bool(miss and min_change < change <= max_change)


def causal_drift(offsets_s: np.ndarray, period_change: float, *, period_s: float,
                 grow_s: float = DRIFT_GROW_S, miss_s: float = DRIFT_MISS_S,
                 min_change: float = DRIFT_CHANGE,
                 max_share: float = DRIFT_MAX_SHARE) -> bool:
    """Whether the causal filter's last beats drift away from the carried grid (of
    period ``period_s``, s) as a tempo that bends does (a ritardando, an accelerando).

    ``offsets_s`` (s): each of the filter's last beats' distance from the grid's nearest
    beat (later positive), newest last; ``period_change``: the filter's beat period over
    the grid's, less 1. The last ``DRIFT_BEATS`` beats must lie on one side of the grid,
    moving away, by ``grow_s`` (s) from one to the next, the last at least ``miss_s``
    (s) and at most ``max_share`` of a period away (further, the filter has more likely
    jumped to the off-beat or another level), and the filter's tempo must have moved
    from the grid's by ``min_change`` to ``STEP_MAX_CHANGE`` (relative) the same way.
    On a steady real song the filter keeps a steady distance from a right grid (fof:
    20-40 ms early for seconds, its tempo 3-4 % off) rather than moving away from it."""
    o = np.asarray(offsets_s, dtype=float)[-DRIFT_BEATS:]
    if len(o) < DRIFT_BEATS or period_s <= 0:
        return False
    side = float(np.sign(o[-1]))
    return bool(side != 0 and np.all(side * o > 0) and np.all(side * np.diff(o) >= grow_s)
                and miss_s <= side * o[-1] <= max_share * period_s
                and min_change <= side * period_change <= STEP_MAX_CHANGE)


def window_step(beat_times: np.ndarray, later_times: np.ndarray, carried: Grid, *,
                fit_tol_s: float, run_beats: int = RUN_BEATS, miss_s: float = STEP_MISS_S) -> bool:
    """Whether a window's beats show a tempo step inside it: its committed beats
    (``beat_times`` s) leave one line, the longest run of its last beats (``later_times``
    s included, at least ``run_beats``) that a line holds within ``fit_tol_s`` (s) is
    at a tempo more than ``SAME_TEMPO`` from the ``carried`` grid's, and the 3 beats
    before that run lie on the carried grid (within ``miss_s``, s). A window that reads
    the whole song at another tempo (as 12 s windows of real recordings now and then
    do for one window) shows no such step. Dev 0001: the window 1.8 s after a step
    showed it but waited for a second window (2.5 beats missed more)."""
    t = np.asarray(beat_times, dtype=float)
    k = np.arange(len(t), dtype=float)
    slope, icpt = np.polyfit(k, t, 1)
    if np.abs(icpt + slope * k - t).max() <= fit_tol_s:
        return False
    u = np.concatenate([t, np.asarray(later_times, dtype=float)])
    run = _held_run(u, fit_tol_s=fit_tol_s, min_beats=run_beats, first_from=3)
    if run is None:
        return False
    first, slope, _ = run
    if abs(slope / carried[1] - 1.0) <= SAME_TEMPO:
        return False
    return bool((off_grid_s(u[first - 3:first], carried) <= miss_s).all())
