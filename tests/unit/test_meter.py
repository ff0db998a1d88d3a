"""Meter and bar phase on per-beat downbeat probabilities with known answers."""

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
    from songmap.models.registry import Activations

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
    rows = np.zeros((int(66 * 10), 12), np.float32)
    for bar in range(16):
        chord = templates[names.index(["C:maj", "F:maj", "G:maj", "A:min"][bar % 4])]
        rows[int((0.5 + 4 * bar) * 10): int((4.5 + 4 * bar) * 10)] = chord
    return beats, beat_act, down_act, fps, Activations(rows, 10.0)


def test_harmony_breaks_a_tie_between_beat_one_and_three():
    from songmap.rhythm.meter import tie_break_phase

    beats, b, d, fps, chroma = _bar_phase_case(0.5, 0.5)
    wrong = ((np.arange(64) + 2) % 4) + 1  # bars starting on beat 3
    fixed = tie_break_phase(beats, wrong, 4, b, d, fps, chroma)
    assert (np.flatnonzero(fixed == 1) % 4 == 0).all()


def test_harmony_never_overrules_a_clear_network():
    from songmap.rhythm.meter import tie_break_phase

    beats, b, d, fps, chroma = _bar_phase_case(0.2, 0.8)  # the network says beat 3
    positions = ((np.arange(64) + 2) % 4) + 1
    kept = tie_break_phase(beats, positions, 4, b, d, fps, chroma)
    assert (kept == positions).all()
