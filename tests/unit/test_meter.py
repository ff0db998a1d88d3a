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
