"""Meter and bar phase on per-beat downbeat probabilities with known answers."""

import itertools

import numpy as np
import pytest

from songmap.rhythm.meter import decide_meter, decode_bar_positions


def pattern(beats_per_bar: int, n: int, phase: int = 0, hi: float = 0.8, lo: float = 0.05):
    p = np.full(n, lo)
    p[phase::beats_per_bar] = hi
    return p


@pytest.mark.parametrize("m", [2, 3, 4])
def test_meter_is_recovered(m):
    decision = decide_meter(pattern(m, 48))
    assert decision.beats_per_bar == m
    assert (np.flatnonzero(decision.positions == 1) == np.arange(0, 48, m)).all()


def test_pickup_beats_get_the_last_positions_of_a_bar():
    positions, _ = decode_bar_positions(pattern(4, 40, phase=1), 4)
    assert positions[0] == 4 and positions[1] == 1


def test_noisy_bar_lines_are_still_found():
    rng = np.random.default_rng(0)
    p = np.clip(pattern(3, 60) + rng.normal(0, 0.15, 60), 0, 1)
    assert decide_meter(p).beats_per_bar == 3


def _bar_phase_case(p_one: float, p_three: float):
    """16 bars of 4/4, one beat per second; chords change on beat 1 only."""
    from songmap.harmony.chords import chord_templates
    from songmap.signals import Activations

    beats = np.arange(64, dtype=float) + 0.5
    fps = 100.0
    n = int(66 * fps)
    beat_act = np.zeros(n, np.float32)
    down_act = np.zeros(n, np.float32)
    for i, t in enumerate(beats):
        f = int(t * fps)
        p = {0: p_one, 2: p_three}.get(i % 4, 0.05)
        down_act[f], beat_act[f] = 0.8 * p, 0.8 * (1 - p)
    names, templates = chord_templates("majmin")
    rows = np.zeros(((66 * 10), 12), np.float32)
    for bar in range(16):
        chord = templates[names.index(["C:maj", "F:maj", "G:maj", "A:min"][bar % 4])]
        rows[int((0.5 + 4 * bar) * 10): int((4.5 + 4 * bar) * 10)] = chord
    return beats, beat_act, down_act, fps, Activations(rows, 10.0)


def test_harmony_breaks_a_tie_between_beat_one_and_three():
    from songmap.rhythm.bar_phase import tie_break_phase

    beats, b, d, fps, chroma = _bar_phase_case(0.5, 0.5)
    wrong = ((np.arange(64) + 2) % 4) + 1  # bars starting on beat 3
    fixed = tie_break_phase(beats, wrong, 4, b, d, fps, chroma)
    assert (np.flatnonzero(fixed == 1) % 4 == 0).all()


def test_harmony_never_overrules_a_clear_network():
    from songmap.rhythm.bar_phase import tie_break_phase

    beats, b, d, fps, chroma = _bar_phase_case(0.2, 0.8)  # the network says beat 3
    positions = ((np.arange(64) + 2) % 4) + 1
    kept = tie_break_phase(beats, positions, 4, b, d, fps, chroma)
    assert (kept == positions).all()


def _envelope_with_divisions(beats, fractions, fps=100.0, seconds=None):
    """An onset envelope with a peak on every beat and smaller ones at ``fractions`` of it."""
    from songmap.signals import Activations

    seconds = seconds or beats[-1] + 1.0
    env = np.zeros(int(seconds * fps), np.float32)
    for a, b in itertools.pairwise(beats):
        env[int(round(a * fps))] = 1.0
        for f in fractions:
            env[int(round((a + f * (b - a)) * fps))] = 0.5
    return Activations(env, fps)


@pytest.mark.parametrize("fractions, expected", [
    ((1 / 3, 2 / 3), 3),      # compound: three eighths to the beat
    ((0.5,), 2),              # straight eighths
    ((0.25, 0.5, 0.75), 2),   # sixteenths
    ((0.62,), 2),             # swung eighths raise only the late third
    ((), 2),                  # nothing between the beats says nothing
])
def test_beat_division(fractions, expected):
    from songmap.rhythm.meter import beat_division

    beats = 0.5 + 0.8 * np.arange(40)
    env = _envelope_with_divisions(beats, fractions)
    assert beat_division(env.values, beats, env.fps) == expected


def _duple_tie(fractions):
    """Beats every 0.8 s whose network downbeat output is the same on every other beat:
    the network cannot tell a bar of two from a bar of four."""
    fps = 100.0
    beats = 0.5 + 0.8 * np.arange(48)
    n = int((beats[-1] + 1.0) * fps)
    b = np.zeros(n, np.float32)
    d = np.zeros(n, np.float32)
    for i, t in enumerate(beats):
        f = int(round(t * fps))
        if i % 2 == 0:
            d[f - 1:f + 2], b[f - 1:f + 2] = 0.5, 0.4
        else:
            d[f - 1:f + 2], b[f - 1:f + 2] = 0.02, 0.8
    return beats, b, d, fps, _envelope_with_divisions(beats, fractions)


def test_a_duple_bar_is_four_beats_unless_the_beat_divides_in_three():
    from songmap.rhythm.meter import infer_bars

    beats, b, d, fps, env = _duple_tie((0.5,))
    grid = infer_bars(beats, b, d, fps, onset_envelope=env)
    assert (grid.beats_per_bar, grid.label) == (4, "4/4")

    beats, b, d, fps, env = _duple_tie((1 / 3, 2 / 3))
    grid = infer_bars(beats, b, d, fps, onset_envelope=env)
    assert (grid.beats_per_bar, grid.label) == (2, "6/8")


def test_accents_and_harmony_together_break_a_tie():
    from songmap.rhythm.bar_phase import tie_break_phase
    from songmap.signals import Activations

    beats, b, d, fps, chroma = _bar_phase_case(0.5, 0.5)
    level = np.full(int(66 * fps), -30.0, np.float32)
    for t in beats[::4]:  # beat 1 is played 6 dB louder
        level[int(t * fps):int(t * fps) + 10] = -24.0
    loudness = Activations(level, fps)
    wrong = ((np.arange(64) + 2) % 4) + 1  # bars starting on beat 3
    fixed = tie_break_phase(beats, wrong, 4, b, d, fps, chroma, loudness)
    assert (np.flatnonzero(fixed == 1) % 4 == 0).all()
    assert (tie_break_phase(beats, wrong, 4, b, d, fps, None, None) == wrong).all()
    fixed = tie_break_phase(beats, wrong, 4, b, d, fps, None, loudness)  # accents alone
    assert (np.flatnonzero(fixed == 1) % 4 == 0).all()
    # the same accents alone against a network that hears "one" on beat 3 do not win
    beats, b, d, fps, _ = _bar_phase_case(0.2, 0.8)
    kept = tie_break_phase(beats, wrong, 4, b, d, fps, None, loudness)
    assert (kept == wrong).all()


@pytest.mark.parametrize("every, expected", [(3, 3), (6, 3), (4, 4), (8, 4), (2, None)])
def test_harmonic_period(every, expected):
    from songmap.rhythm.meter import harmonic_period

    change = np.full(96, 0.05)
    change[::every] = 0.6
    assert harmonic_period(change) == expected


def test_harmonic_period_without_a_period_is_none():
    from songmap.rhythm.meter import harmonic_period

    assert harmonic_period(np.random.default_rng(1).uniform(0, 1, 96)) is None
    assert harmonic_period(np.full(96, 0.2)) is None


def test_chords_decide_three_against_four_when_the_network_cannot():
    """A network that marks every beat alike (a near tie between 3 and 4) and chords
    that change every third beat: 3/4."""
    from songmap.harmony.chords import chord_templates
    from songmap.rhythm.meter import infer_bars
    from songmap.signals import Activations

    fps = 100.0
    beats = 0.5 + np.arange(60, dtype=float)  # 60 BPM: too slow for six-beat bars
    n = int(62 * fps)
    b = np.zeros(n, np.float32)
    d = np.zeros(n, np.float32)
    for t in beats:
        f = int(round(t * fps))
        b[f - 1:f + 2], d[f - 1:f + 2] = 0.56, 0.24  # P(downbeat | beat) = 0.3 everywhere
    names, templates = chord_templates("majmin")
    rows = np.zeros((62 * 10, 12), np.float32)
    for bar in range(20):
        chord = templates[names.index(["C:maj", "F:maj", "G:maj", "A:min"][bar % 4])]
        rows[int((0.5 + 3 * bar) * 10): int((3.5 + 3 * bar) * 10)] = chord
    chroma = Activations(rows, 10.0)
    assert infer_bars(beats, b, d, fps).beats_per_bar == 4  # the network alone
    grid = infer_bars(beats, b, d, fps, chroma=chroma)
    assert (grid.beats_per_bar, grid.label) == (3, "3/4")
    assert (np.flatnonzero(grid.positions == 1) % 3 == 0).all()


def test_a_loud_backbeat_does_not_move_beat_one():
    from songmap.rhythm.bar_phase import tie_break_phase
    from songmap.signals import Activations

    fps = 100.0
    beats = np.arange(64, dtype=float) + 0.5
    n = int(66 * fps)
    b = np.zeros(n, np.float32)
    d = np.zeros(n, np.float32)
    for t in beats:  # a network that hears every beat alike
        f = int(t * fps)
        b[f], d[f] = 0.56, 0.24
    level = np.full(n, -30.0, np.float32)
    for t in beats[1::2]:  # snare on 2 and 4, 6 dB above 1 and 3
        level[int(t * fps):int(t * fps) + 10] = -24.0
    positions = (np.arange(64) % 4) + 1
    kept = tie_break_phase(beats, positions, 4, b, d, fps, None, Activations(level, fps))
    assert (kept == positions).all()


def test_the_beat_synchronous_networks_break_a_tie_the_frame_network_leaves():
    """The frame-wise network marks beats 1 and 3 alike; the beat-synchronous networks
    (``bar_evidence``) say beat 1: the bars move there. Where the frame-wise network is
    clear, an unsure second opinion leaves them."""
    from songmap.rhythm.bar_phase import nearest_beat_values, tie_break_phase

    beats, b, d, fps, _ = _bar_phase_case(0.5, 0.5)
    wrong = ((np.arange(64) + 2) % 4) + 1  # bars starting on beat 3
    assert (tie_break_phase(beats, wrong, 4, b, d, fps) == wrong).all()
    says_one = np.where(np.arange(64) % 4 == 0, 0.7, 0.2)
    evidence = nearest_beat_values(beats + 0.01, says_one)  # computed on beats 10 ms off
    fixed = tie_break_phase(beats, wrong, 4, b, d, fps, bar_evidence=evidence)
    assert (np.flatnonzero(fixed == 1) % 4 == 0).all()
    beats, b, d, fps, _ = _bar_phase_case(0.2, 0.8)  # the network says beat 3
    unsure = nearest_beat_values(beats, np.where(np.arange(64) % 4 == 0, 0.4, 0.3))
    kept = tie_break_phase(beats, wrong, 4, b, d, fps, bar_evidence=unsure)
    assert (kept == wrong).all()


def test_bar_evidence_is_read_at_the_nearest_beat_it_was_computed_for():
    from songmap.rhythm.bar_phase import nearest_beat_values

    at = nearest_beat_values(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, np.nan]))
    got = at(np.array([0.5, 1.05, 1.94, 2.9, 3.5]))
    assert np.isnan(got[0]) and np.allclose(got[1:3], [0.1, 0.2])
    assert np.isnan(got[3]) and np.isnan(got[4])
    assert len(nearest_beat_values(np.zeros(0), np.zeros(0))(np.array([1.0]))) == 1


def test_a_sure_second_opinion_cannot_overrule_a_network_sure_of_the_bars():
    """The frame-wise network prefers beat 3 in every bar (sign test z = 4); the
    beat-synchronous networks are sure of beat 1. Averaged, they would move the bars;
    the network's sign test is decisive, so they are not even asked."""
    from songmap.rhythm.bar_phase import _DECISIVE_NETWORK_Z, nearest_beat_values, tie_break_phase

    beats, b, d, fps, _ = _bar_phase_case(0.3, 0.6)
    on_three = ((np.arange(64) + 2) % 4) + 1
    says_one = nearest_beat_values(beats, np.where(np.arange(64) % 4 == 0, 0.99, 0.01))
    asked: list[int] = []

    def evidence(times: np.ndarray) -> np.ndarray:
        asked.append(len(times))
        return says_one(times)

    assert _DECISIVE_NETWORK_Z <= 4.0
    kept = tie_break_phase(beats, on_three, 4, b, d, fps, bar_evidence=evidence)
    assert (kept == on_three).all() and not asked
    # where the network is even, the same evidence is asked once and decides
    beats, b, d, fps, _ = _bar_phase_case(0.45, 0.45)
    fixed = tie_break_phase(beats, on_three, 4, b, d, fps, bar_evidence=evidence)
    assert (np.flatnonzero(fixed == 1) % 4 == 0).all() and asked == [64]


def test_the_second_opinion_is_computed_once_and_only_when_asked():
    from songmap.rhythm.bar_phase import evidence_on_beats

    calls: list[np.ndarray] = []

    def evidence(times: np.ndarray) -> np.ndarray:
        calls.append(times)
        return np.full(len(times), 0.5)

    beats = np.arange(8, dtype=float)
    at = evidence_on_beats(beats, evidence)
    assert at is not None and not calls
    assert np.allclose(at(beats[:3] + 0.01), 0.5) and np.allclose(at(beats), 0.5)
    assert len(calls) == 1 and np.array_equal(calls[0], beats)
    assert evidence_on_beats(beats, None) is None
