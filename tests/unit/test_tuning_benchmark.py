"""``benchmarks/tuning.py``: the detuned copies it scores, and their ground truth."""

import numpy as np
import pytest

from benchmarks.tuning import detune, scaled_chords
from songmap.harmony.tuning import estimate_tuning


def test_a_copy_played_higher_is_that_much_sharper_and_shorter():
    sr = 44100
    t = np.arange(sr * 4) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t) * (1 + 0 * t)).astype(np.float32)
    sharp = detune(tone, sr, 30.0)
    assert estimate_tuning(sharp, sr).cents == pytest.approx(30.0, abs=1.5)
    assert len(sharp) / len(tone) == pytest.approx(2 ** (-30 / 1200), abs=1e-3)
    assert detune(tone, sr, 0.0) is tone


def test_its_chord_times_follow_the_faster_copy():
    factor = 2 ** (30 / 1200)
    got = scaled_chords([[0.0, 2.0, "C:maj"], [2.0, 4.0, "A:min"]], factor)
    assert [lab for *_, lab in got] == ["C:maj", "A:min"]
    assert got[1][1] == pytest.approx(4.0 / factor)
