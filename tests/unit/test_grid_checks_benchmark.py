"""``benchmarks/grid_checks.py``: how far the grid a player rebuilds from TEMPO entries lies
from the beats."""

import numpy as np
import pytest

from benchmarks.grid_checks import rebuilt_grid_error


def test_a_grid_on_the_beats_is_within_a_millisecond_and_a_drift_is_measured():
    beats = 0.5 + np.arange(64) * 0.5
    assert rebuilt_grid_error([(0.5, 120.0)], beats, 0.5) < 1e-9
    # the entry's tempo 0.1 BPM fast: the last beat ends 0.5 * 63 * 0.1 / 120.1 s away
    assert rebuilt_grid_error([(0.5, 120.1)], beats, 0.5) == pytest.approx(
        63 * (0.5 - 60.0 / 120.1), rel=1e-6)
    # a second entry written to the millisecond, a hair after its beat, takes over there
    stepped = np.concatenate([beats[:32], beats[32:] + 0.0404])
    entries = [(0.5, 120.0), (round(float(stepped[32]), 3), 120.0)]
    assert rebuilt_grid_error(entries, stepped, 0.5) < 0.001
    # beats before the first bar (a pickup) are not asked
    assert rebuilt_grid_error([(2.5, 120.0)], beats - np.where(beats < 2.5, 0.1, 0.0), 2.5) < 1e-9
