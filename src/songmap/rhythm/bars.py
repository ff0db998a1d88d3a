"""Bars that follow the music: bar length may change where the music changes.

The meter of a song is decided once (``songmap.rhythm.meter``); this module then lets
single bars or whole passages have another length (an inserted 2-beat bar, a 3/4 bridge
in a 4/4 song, a 7/4 passage) where the evidence earns it: the network's downbeat
probabilities and, optionally, a per-beat cue such as the chord change. A joint HMM over
(beats per bar, position in the bar) on the tracked beats advances one position per
beat; at a bar's end it starts a bar of the same length, or, at a cost, one of another
length. The main meter is the one decided for the whole song, so a song with one meter
keeps one steady grid unless the evidence against it outweighs what leaving the meter,
each odd bar and coming back cost (about 8.4 nats for one inserted bar in 4/4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Bar lengths (beats) a bar may take besides the song's meter: 2 and 3 for inserted
#: short bars and 3/4 passages, 5 and 7 for odd passages, 6 for a 4 + 2.
BAR_LENGTHS = (2, 3, 4, 5, 6, 7)
#: Probability that a bar of the song's meter is followed by a bar of another length
#: (shared among the other lengths): songs with irregular bars have a few per hundred.
_LEAVE = 0.01
#: Probability that a bar of another length is followed by a bar of the song's meter:
#: irregular passages are short (an inserted bar, a bridge of a few bars).
_RETURN = 0.3
#: Log-prior (nats) of every bar of another length than the song's meter.
_OTHER_BAR = 1.0
#: Share of downbeats among beats in the network's training data (mostly 4/4 and 3/4):
#: its output divided by this is a likelihood ratio.
_BASE_RATE = 0.25
#: Probability that the song does not start in its main meter.
_OTHER_START = 1e-3
#: Downbeat probabilities are clipped to [_P_FLOOR, 1 - _P_FLOOR]: one beat the network
#: is sure about must not outweigh the cost of a meter change on its own.
_P_FLOOR = 0.01


def decode_bar_lengths(
    downbeat_prob: np.ndarray, *, beats_per_bar: int, lengths: tuple[int, ...] = BAR_LENGTHS,
    leave: float = _LEAVE, back_to_main: float = _RETURN, base_rate: float = _BASE_RATE,
    other_bar_cost: float = _OTHER_BAR,
    bar_line_evidence: np.ndarray | None = None, reference: np.ndarray | None = None,
) -> np.ndarray:
    """1-based position in its bar of every beat, bars of varying length.

    ``downbeat_prob`` is P(downbeat | beat) per tracked beat; ``beats_per_bar`` is the
    song's meter (the path starts in it unless the evidence says otherwise);
    ``bar_line_evidence`` adds a log-likelihood ratio (nats) per beat for a bar line
    there (``rank_evidence`` of the chord change). Viterbi over
    the states (bar length m, position j); beats before the first bar line (a pickup)
    take the last positions of a bar of the main length.

    ``reference`` (positions of a steady grid in the phase of the song's body, optional)
    makes a change of phase cost the same wherever it happens: a path that starts or
    ends out of step with it pays for one more irregular bar, as if the song's edge were
    a change back. Otherwise an intro or a coda in which the network hears the bar lines
    elsewhere (an intro on the backbeat, beat 3 heard as beat 1) would cost half as much
    as an inserted bar in the middle of the song.
    """
    p = np.clip(np.asarray(downbeat_prob, dtype=float), _P_FLOOR, 1.0 - _P_FLOOR)
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=int)
    lengths = tuple(sorted(set(lengths) | {beats_per_bar}))
    offsets, size, first, length_of = _bar_states(lengths)
    main = lengths.index(beats_per_bar)
    into = _length_transitions(len(lengths), main, leave=leave, back_to_main=back_to_main,
                               other_bar_cost=other_bar_cost)
    # the network's output is a posterior under its training data's share of downbeats
    # among beats; divided by that share it is a likelihood ratio, so that bars of every
    # length are compared fairly (as posteriors, a beat at p 0.4 would count against a
    # bar line, and longer bars, with fewer bar lines, would win on weak evidence)
    emit_down, emit_other = np.log(p / base_rate), np.log((1.0 - p) / (1.0 - base_rate))
    if bar_line_evidence is not None:
        emit_down = emit_down + np.asarray(bar_line_evidence, dtype=float)
    start = np.full(size, np.log(_OTHER_START / max(size - beats_per_bar, 1)))
    in_main = slice(offsets[main], offsets[main] + beats_per_bar)
    start[in_main] = np.log1p(-_OTHER_START) - np.log(beats_per_bar)
    # what one irregular bar costs (leaving the meter, the bar, coming back)
    other = (main + 1) % len(lengths)
    irregular_cost = float(-into[main, other] - into[other, main])
    if reference is not None and len(reference) == n:
        at_start = (length_of == beats_per_bar) & (_position_of(size, offsets) == int(reference[0]))
        start = start - np.where(at_start, 0.0, irregular_cost)
    delta = start + np.where(first, emit_down[0], emit_other[0])
    back = np.zeros((n, size), dtype=np.int32)
    ends = offsets + np.asarray(lengths) - 1
    for i in range(1, n):
        new = np.empty(size)
        # advancing inside a bar: one predecessor each
        new[~first] = delta[np.flatnonzero(~first) - 1]
        back[i, ~first] = np.flatnonzero(~first) - 1
        # a bar starts: from the end of any bar
        cand = delta[ends][:, None] + into  # [from length, to length]
        arg = cand.argmax(axis=0)
        new[offsets] = cand[arg, np.arange(len(lengths))]
        back[i, offsets] = ends[arg]
        delta = new + np.where(first, emit_down[i], emit_other[i])
    if reference is not None and len(reference) == n:
        ref = np.asarray(reference, dtype=int)
        at_end = (length_of == beats_per_bar) & (_position_of(size, offsets) == ref[-1])
        delta = delta - np.where(at_end, 0.0, irregular_cost)
    state = int(delta.argmax())
    path = np.empty(n, dtype=int)
    for i in range(n - 1, -1, -1):
        path[i] = state
        state = back[i, state]
    positions = path - offsets[np.searchsorted(offsets, path, side="right") - 1] + 1
    return positions.astype(int)


def _bar_states(lengths: tuple[int, ...]) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """The states (bar length m, position j), bar by bar: (offset of each length's first
    state, number of states, whether a state is position 1, the bar length of each)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    size = int(sum(lengths))
    first = np.zeros(size, dtype=bool)  # state is position 1 of its bar
    length_of = np.zeros(size, dtype=int)
    for m, o in zip(lengths, offsets):
        first[o] = True
        length_of[o:o + m] = m
    return offsets, size, first, length_of


def _length_transitions(
    n_lengths: int, main: int, *, leave: float, back_to_main: float, other_bar_cost: float,
) -> np.ndarray:
    """Log transition (nats) into the first state of each bar length, [from, to]; ``main``
    is the index of the song's meter."""
    others = max(n_lengths - 1, 1)
    into = np.full((n_lengths, n_lengths), np.log(leave / others))
    into[main, main] = np.log1p(-leave)
    for j in range(n_lengths):
        if j != main:
            into[j, main] = np.log(back_to_main)
            into[j, j] = np.log1p(-back_to_main - leave)
    # every bar of another length than the song's meter must earn its place, so that a
    # song does not drift into half bars (or double bars) on weak evidence
    into[:, [j for j in range(n_lengths) if j != main]] -= other_bar_cost
    return into


def _position_of(size: int, offsets: np.ndarray) -> np.ndarray:
    """1-based position in its bar of each state."""
    states = np.arange(size)
    return states - offsets[np.searchsorted(offsets, states, side="right") - 1] + 1


def rank_evidence(values: np.ndarray, *, weight: float) -> np.ndarray:
    """Log-likelihood ratio (nats) for a bar line from a per-beat cue whose scale is
    unknown (harmonic change, accent): its within-song rank mapped to [-weight, weight],
    so the beats with the song's largest cue speak for bar lines and none speaks loudly."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or np.ptp(x) <= 1e-12:
        return np.zeros(len(x))
    # 0-based ranks, ties sharing their mean rank (scipy.stats.rankdata costs ~1 s to import)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, tie, count = np.unique(x, return_inverse=True, return_counts=True)
    ranks = np.bincount(tie, weights=ranks)[tie] / count[tie]
    return weight * (2.0 * ranks / (len(x) - 1.0) - 1.0)


def renumber(bar_lines: np.ndarray, *, pickup_bar: int) -> np.ndarray:
    """1-based positions from a bool mask of bar lines: counted from each bar line; beats
    before the first are a pickup numbered as the end of a ``pickup_bar``-beat bar."""
    mask = np.asarray(bar_lines, dtype=bool)
    n = len(mask)
    if n == 0:
        return np.zeros(0, dtype=int)
    idx = np.arange(n)
    last_line = np.maximum.accumulate(np.where(mask, idx, -1))
    positions = idx - last_line + 1
    before = last_line < 0
    if before.any():
        first = int(np.argmax(mask)) if mask.any() else n
        positions[before] = (pickup_bar - (first - idx[before]) ) % max(pickup_bar, 1) + 1
    return positions.astype(int)


def bar_lengths(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(beat index of each bar line, beats in each bar) from 1-based positions; the last
    bar runs to the last beat."""
    pos = np.asarray(positions)
    lines = np.flatnonzero(pos == 1)
    return lines, np.diff(np.append(lines, len(pos)))


def merge_short_bars(positions: np.ndarray, *, min_beats: int = 2) -> np.ndarray:
    """Positions with bars shorter than ``min_beats`` joined to the bar before them (a
    one-beat bar is a phase shift's leftover, not a bar anyone plays)."""
    lines, lengths = bar_lengths(positions)
    mask = np.zeros(len(positions), dtype=bool)
    mask[lines] = True
    # the song's last bar may be cut short by its end: it stays
    for line, length in zip(lines[1:-1], lengths[1:-1]):
        if length < min_beats:
            mask[line] = False
    if len(lines) > 1 and lengths[0] < min_beats and lines[0] > 0:
        mask[lines[0]] = False
    first_len = int(lengths[0]) if len(lengths) else 1
    return renumber(mask, pickup_bar=max(first_len, int(np.max(positions, initial=1))))


@dataclass(frozen=True)
class Section:
    """A run of bars of one length: bar lines at beats ``first_beat`` onwards."""

    first_beat: int
    first_bar: int  # 1-based number of the section's first bar
    bars: int
    beats_per_bar: int


def sections_of(positions: np.ndarray, *, main: int) -> list[Section]:
    """Runs of equal bars. A last bar shorter than the bars before it (the song ends
    inside it) belongs to the section before it; pickup beats are bar 0, in none."""
    lines, lengths = bar_lengths(positions)
    out: list[Section] = []
    for b, (line, length) in enumerate(zip(lines, lengths)):
        last = b == len(lines) - 1
        if out and (out[-1].beats_per_bar == length or (last and length < out[-1].beats_per_bar)):
            s = out[-1]
            out[-1] = Section(s.first_beat, s.first_bar, s.bars + 1, s.beats_per_bar)
        else:
            out.append(Section(int(line), b + 1, 1, int(length)))
    if len(out) == 1 and out[0].beats_per_bar < main and out[0].bars == 1:
        out[0] = Section(out[0].first_beat, 1, 1, main)
    return out


def section_confidence(downbeat_prob: np.ndarray, positions: np.ndarray, section: Section) -> float:
    """How clearly the network marks a section's bar lines: mean P(downbeat) on them
    minus the mean on its other beats, in [0, 1]."""
    p = np.asarray(downbeat_prob, dtype=float)
    stop = section.first_beat + section.bars * section.beats_per_bar
    span = np.arange(section.first_beat, min(stop, len(p)))
    if len(span) == 0:
        return 0.0
    on = positions[span] == 1
    if on.all() or not on.any():
        return float(np.clip(p[span][on].mean() if on.any() else 0.0, 0.0, 1.0))
    return float(np.clip(p[span][on].mean() - p[span][~on].mean(), 0.0, 1.0))


def section_label(beats_per_bar: int, *, main_beats: int, main_label: str) -> str:
    """Time signature of a section: the song's own label for bars of its meter; other
    bars counted in the same beat unit (quarters, or dotted quarters as x/8)."""
    if beats_per_bar == main_beats:
        return main_label
    if main_label.endswith("/8"):
        return f"{3 * beats_per_bar}/8"
    return f"{beats_per_bar}/4"


def describe_sections(
    beat_times: np.ndarray, positions: np.ndarray, downbeat_prob: np.ndarray, *,
    beats_per_bar: int, label: str, confidence: float,
) -> list[dict[str, float | int | str]]:
    """The song's meter sections as plain values (the fields of ``schema.MeterSection``:
    start in s, first_bar 1-based, bars, beats_per_bar, label, confidence).

    Sections of the song's meter carry the meter's ``confidence``; other sections how
    clearly the network marks their bar lines (``section_confidence``)."""
    times = np.asarray(beat_times, dtype=float)
    pos = np.asarray(positions, dtype=int)
    if len(times) == 0 or not (pos == 1).any():
        return []
    out: list[dict[str, float | int | str]] = []
    for s in sections_of(pos, main=beats_per_bar):
        conf = confidence if s.beats_per_bar == beats_per_bar else section_confidence(
            downbeat_prob, pos, s)
        out.append({"start": round(float(times[s.first_beat]), 4), "first_bar": s.first_bar,
                    "bars": s.bars, "beats_per_bar": s.beats_per_bar,
                    "label": section_label(s.beats_per_bar, main_beats=beats_per_bar,
                                           main_label=label),
                    "confidence": round(float(conf), 4)})
    return out
