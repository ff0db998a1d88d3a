"""``benchmarks/other_networks.py``: the phase a per-beat downbeat probability implies."""

import numpy as np

from benchmarks.other_networks import phase_right


def test_the_likeliest_phase_is_checked_against_the_annotated_downbeats():
    beats = np.arange(0.0, 20.0, 0.5)
    downbeats = beats[1::4]
    prob = np.full(len(beats), 0.1)
    prob[1::4] = 0.8
    assert phase_right(beats, prob, downbeats, 4) is True
    prob = np.roll(prob, 1)
    assert phase_right(beats, prob, downbeats, 4) is False
    prob[-1] = np.nan  # the GRUs' last beat has no value
    assert phase_right(beats, prob, downbeats, 4) is False


def test_too_little_to_tell():
    beats = np.arange(0.0, 3.0, 0.5)
    assert phase_right(beats, np.ones(len(beats)), beats[::4], 4) is None
    assert phase_right(np.arange(0.0, 20.0, 0.5), np.ones(40), np.array([1.0]), 4) is None
