"""The onset stage's numpy filters equal scipy.ndimage's to the bit (it no longer imports
scipy.ndimage, for start-up time)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from songmap.onsets.envelope import max_filter, mean_filter


@pytest.mark.parametrize("n", [1, 2, 3, 6, 20, 21, 22, 57, 4000])
def test_filters_equal_scipy_ndimage(n):
    rng = np.random.default_rng(n)
    for trial in range(5):
        x = (rng.random(n) ** 3).astype(np.float32)
        if trial % 2:
            x[rng.random(n) < 0.5] = 0  # plateaus: ties in the maximum
        assert np.array_equal(mean_filter(x, 21), uniform_filter1d(x, size=21))
        assert mean_filter(x, 21).dtype == np.float32
        assert np.array_equal(max_filter(x, 7), maximum_filter1d(x, size=7))
        spec = rng.random((n, 37)).astype(np.float32)
        assert np.array_equal(max_filter(spec, 3, axis=1), maximum_filter1d(spec, size=3, axis=1))
