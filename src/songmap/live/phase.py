"""Where the bar starts, from the song so far: the windows' bar decisions, summed.

A 12 s window's analysis puts the bar on the wrong beat of a right beat grid for tens of
seconds at a time on real recordings (fof: chaos_god and armygeddon, issue 17), where
the windows before it had it right. So the live stream keeps, for every bar length, the
windows' votes on which beat starts the bar, summed per position of the emitted beats'
running index (a count that advances by the beat periods elapsed, so that a pause or a
window read at a slower level does not shift it), forgetting with a half-life and
dropping them where the carried beat grid changes phase or level (the count may have
slipped against the bars there). A window's bars are moved to the position the song so
far favours when that outweighs the window's own.

Tried first and dropped (on fof): the downbeat network's P(downbeat | beat) summed the
same way instead of the decisions (downbeat F .668; the window's decision, which adds
the chord changes and the accents, was .715): on two fof songs the network puts as much
mass on beat 3 as on beat 1 for a minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Half-life (s) of the votes: about a section of a song, so that bars heard on another
#: beat for a long stretch are followed in time. With the votes dropped at every change
#: of the beat grid it matters little: 10 / 20 / 30-inf s gave fof downbeat F .748 /
#: .750 / .752, dev .930 / .932 / .932.
HALF_LIFE_S = 30.0
#: Bar lengths (beats) the evidence is kept for (the offline bars take 2 to 7).
BAR_LENGTHS = tuple(range(2, 8))
#: Relative change of the beat period past which the count is at another metrical level
#: and the evidence so far is dropped.
LEVEL_CHANGE = 0.2
#: Beats voted on (decayed like the votes) before the song's phase is used.
MIN_BEATS = 8.0


@dataclass
class BarPhaseEvidence:
    """Votes (1: this beat starts a bar, 0: it does not) summed per bar position of the
    emitted beats' running index, for each bar length in ``BAR_LENGTHS``, forgetting
    with ``half_life_s`` (s)."""

    half_life_s: float = HALF_LIFE_S
    #: bar length -> summed probability per position (index mod length)
    mass: dict[int, np.ndarray] = field(default_factory=dict)
    #: beats added, decayed like the mass
    beats: float = 0.0
    #: beat period (s) the index counts at
    period_s: float = 0.0

    def add(self, indices: np.ndarray, probabilities: np.ndarray, *, elapsed_s: float,
            period_s: float) -> None:
        """Add the beats with running ``indices`` and their evidence of starting a bar
        ``probabilities`` (0..1), heard ``elapsed_s`` (s) after the last ones, counted at
        ``period_s`` (s per beat)."""
        if self.period_s > 0 and abs(period_s / self.period_s - 1.0) > LEVEL_CHANGE:
            self.forget()
        self.period_s = period_s
        decay = 0.5 ** (max(elapsed_s, 0.0) / self.half_life_s)
        idx = np.asarray(indices, dtype=np.int64)
        p = np.asarray(probabilities, dtype=float)
        self.beats = self.beats * decay + len(idx)
        for n in BAR_LENGTHS:
            m = self.mass.setdefault(n, np.zeros(n))
            m *= decay
            np.add.at(m, idx % n, p)

    def forget(self) -> None:
        """Drop the evidence so far (the running index it was counted on slipped)."""
        self.mass.clear()
        self.beats = 0.0

    def favoured(self, beats_per_bar: int) -> int | None:
        """The position (index mod ``beats_per_bar``) with the most evidence of starting
        the bar; None while there is too little evidence or the length is not kept."""
        m = self.mass.get(beats_per_bar)
        if m is None or self.beats < MIN_BEATS or not np.any(m > 0):
            return None
        return int(np.argmax(m))

    def shift(self, window_position: int, beats_per_bar: int, *, margin: float = 0.0) -> int:
        """Beats (in ``(-beats_per_bar / 2, beats_per_bar / 2]``) to move a window's bars
        whose first beats sit at ``window_position`` (index mod ``beats_per_bar``) so that
        they start where the song so far favours; 0 unless its mass exceeds the window
        position's by the share ``margin``."""
        best = self.favoured(beats_per_bar)
        if best is None:
            return 0
        m = self.mass[beats_per_bar]
        here = window_position % beats_per_bar
        if best == here or m[best] <= (1.0 + margin) * m[here]:
            return 0
        d = (best - here) % beats_per_bar
        return d - beats_per_bar if d > beats_per_bar / 2 else d
