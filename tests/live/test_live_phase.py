"""songmap.live.phase: the bar's first beat from the song so far (no networks)."""

from __future__ import annotations

import numpy as np

from songmap.live.phase import MIN_BEATS, BarPhaseEvidence


def _bars(evidence: BarPhaseEvidence, first: int, count: int, *, on: int, strength: float,
          period_s: float = 0.5) -> int:
    """Feed ``count`` beats from index ``first`` whose downbeat probability is
    ``strength`` on position ``on`` (mod 4) and 0.1 elsewhere, a second at a time."""
    idx = np.arange(first, first + count)
    p = np.where(idx % 4 == on, strength, 0.1)
    for a in range(0, count, 2):
        evidence.add(idx[a:a + 2], p[a:a + 2], elapsed_s=1.0, period_s=period_s)
    return first + count


def test_a_window_on_beat_three_is_moved_to_the_song_s_downbeat():
    ev = BarPhaseEvidence()
    _bars(ev, 0, 80, on=1, strength=0.6)
    assert ev.favoured(4) == 1
    assert ev.shift(3, 4) == 2
    assert ev.shift(0, 4) == 1
    assert ev.shift(2, 4) == -1
    assert ev.shift(1, 4) == 0  # the window agrees


def test_no_shift_before_enough_evidence_or_within_the_margin():
    ev = BarPhaseEvidence()
    ev.add(np.arange(4), np.array([0.9, 0.1, 0.1, 0.1]), elapsed_s=1.0, period_s=0.5)
    assert ev.beats < MIN_BEATS and ev.shift(2, 4) == 0
    ev = BarPhaseEvidence()
    idx = np.arange(40)
    ev.add(idx, np.where(idx % 4 == 0, 0.5, np.where(idx % 4 == 2, 0.45, 0.1)),
           elapsed_s=10.0, period_s=0.5)
    assert ev.shift(2, 4) == 2  # half a bar: (-2, 2]
    assert ev.shift(2, 4, margin=0.2) == 0  # 0.5 does not beat 0.45 by 20 %


def test_the_evidence_is_forgotten_so_a_changed_downbeat_is_followed():
    ev = BarPhaseEvidence(half_life_s=30.0)
    nxt = _bars(ev, 0, 60, on=1, strength=0.6)  # 30 s on position 1
    nxt = _bars(ev, nxt, 60, on=3, strength=0.6)  # then 30 s on position 3
    assert ev.favoured(4) == 3  # the older half weighs half as much
    never = BarPhaseEvidence(half_life_s=1e12)
    nxt = _bars(never, 0, 60, on=1, strength=0.6)
    _bars(never, nxt, 60, on=3, strength=0.55)
    assert never.favoured(4) == 1


def test_another_metrical_level_drops_the_evidence():
    ev = BarPhaseEvidence()
    _bars(ev, 0, 40, on=1, strength=0.9, period_s=0.5)
    assert ev.favoured(4) == 1
    ev.add(np.arange(4), np.full(4, 0.2), elapsed_s=1.0, period_s=0.25)  # double tempo
    assert ev.beats == 4 and ev.favoured(4) is None


def _stream_with_beats(n: int = 40, period_s: float = 0.5):
    """A LiveAnalyzer (no analysis run) that has emitted ``n`` beats ``period_s`` apart,
    with bar votes on index 1 (mod 4) for all of them."""
    from songmap.live.stream import LiveAnalyzer, _Emitted

    live = LiveAnalyzer(object())
    live._beat_period = period_s
    for i in range(n):
        live._recent.append(_Emitted(time=i * period_s, bar=0, beat=1, index=i))
    idx = np.arange(n)
    live._phase.add(idx, (idx % 4 == 1).astype(float), elapsed_s=n * period_s,
                    period_s=period_s)
    return live


def test_the_stream_moves_a_window_s_bars_to_the_song_s_first_beat():
    live = _stream_with_beats()
    bars = np.array([t * 0.5 for t in (27, 31, 35)])  # the window says index 3 (mod 4)
    shift = live._bar_shift(bars, [4, 4, 4], 4, 14.0, 19.5)
    assert shift == 2
    assert [live._move_beats(float(t), shift) for t in bars] == [14.5, 16.5, 18.5]  # 29, 33, 37
    assert live._bar_shift(bars + 1.0, [4, 4, 4], 4, 14.0, 19.5) == 0  # on index 1: agrees
    assert live._move_beats(19.5, 2) == 20.5  # past the emitted beats: whole periods
    live.bar_phase = "window"
    assert live._bar_shift(bars, [4, 4, 4], 4, 14.0, 19.5) == 0


def test_the_running_index_counts_at_the_finer_level_a_slower_window_skips():
    live = _stream_with_beats()
    live._plan = (19.5, 1.5, 1.0, 1e9)  # a window read the song in threes
    assert live._count_period() == 0.5
    live._plan = (19.5, 0.25, 1.0, 1e9)  # twice as fast: the count follows
    assert live._count_period() == 0.25
    live._plan = (19.5, 0.8, 1.0, 1e9)  # an unrelated tempo
    assert live._count_period() == 0.8
