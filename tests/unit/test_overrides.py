"""Grid overrides: parsing and validation in AnalysisSettings, the store key, and the
meter / bar-phase hooks on synthetic beats."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from songmap.config import AnalysisSettings, counted_beats, parse_bpm
from songmap.rhythm.meter import BarGrid
from songmap.rhythm.overrides import apply_time_signature, fixed_meter_grid, rephase_bars
from songmap.signals import Activations


@pytest.mark.parametrize("value, expected", [
    (128, (128.0, 128.0)), ("128", (128.0, 128.0)), ("127.5", (127.5, 127.5)),
    ("120-130", (120.0, 130.0)), (" 120 - 130 ", (120.0, 130.0)), ([90, 95], (90.0, 95.0)),
    (None, None),
])
def test_bpm_override_forms(value, expected):
    assert parse_bpm(value) == expected
    assert AnalysisSettings(bpm=value).bpm == expected


@pytest.mark.parametrize("value", ["fast", "130-120", "1280", "0", "120-", "-5", True, [1, 2, 3]])
def test_bad_bpm_override_is_refused_with_the_forms(value):
    with pytest.raises(ValidationError, match="bpm"):
        AnalysisSettings(bpm=value)


def test_bpm_override_narrows_the_tracker_range():
    lo, hi = AnalysisSettings(bpm=128).beat_tempo_range()
    assert 128 * 2 / 3 < lo < 128 * 0.85 and 128 * 1.2 < hi < 128 * 1.5  # never another level
    assert AnalysisSettings(bpm="120-130").beat_tempo_range() == (120.0, 130.0)
    assert AnalysisSettings().beat_tempo_range() == (55.0, 215.0)


@pytest.mark.parametrize("label, normal, beats", [
    ("4/4", "4/4", 4), ("3/4", "3/4", 3), (" 6 / 8", "6/8", 2), ("7/4", "7/4", 7),
    ("12/8", "12/8", 4), ("9/8", "9/8", 3), ("5/8", "5/8", 5), ("2/2", "2/2", 2),
    ("3/8", "3/8", 3),
])
def test_time_signature_override(label, normal, beats):
    assert AnalysisSettings(time_signature=label).time_signature == normal
    assert counted_beats(normal) == beats


@pytest.mark.parametrize("label", ["4", "4/5", "0/4", "17/4", "four/four", "3/4/4", ""])
def test_bad_time_signature_is_refused(label):
    with pytest.raises(ValidationError, match="time signature"):
        AnalysisSettings(time_signature=label)


def test_negative_first_downbeat_is_refused():
    with pytest.raises(ValidationError):
        AnalysisSettings(first_downbeat_s=-0.5)


def test_cache_key_includes_overrides_and_keeps_old_keys():
    plain = AnalysisSettings()
    # results stored before overrides existed keep their key
    assert '"bpm"' not in plain.cache_key() and plain.cache_key().endswith('"descriptors":false}')
    keys = {plain.cache_key(), AnalysisSettings(bpm=128).cache_key(),
            AnalysisSettings(bpm="120-130").cache_key(),
            AnalysisSettings(time_signature="3/4").cache_key(),
            AnalysisSettings(first_downbeat_s=0.5).cache_key(),
            AnalysisSettings(first_downbeat_s=0.6).cache_key()}
    assert len(keys) == 6
    # the same override written two ways is one key; threads never count
    assert AnalysisSettings(bpm="128", threads=1).cache_key() == \
        AnalysisSettings(bpm=128.0, threads=4).cache_key()
    # the key is the settings' JSON: it gives the overrides back (jobs rely on it)
    again = AnalysisSettings.model_validate_json(AnalysisSettings(bpm=128).cache_key())
    assert again.overrides() == {"bpm": [128.0, 128.0]}


def _activations(beat_times: np.ndarray, downbeats: np.ndarray, *, seconds: float,
                 fps: float = 100.0) -> Activations:
    """A beat network's output with a peak on every beat, on the downbeat channel at bars."""
    values = np.full((int(seconds * fps), 2), 0.005, np.float32)
    for t in beat_times:
        values[round(t * fps), 0] = 0.7
    for t in downbeats:
        i = round(t * fps)
        values[i, 0], values[i, 1] = 0.1, 0.6
    return Activations(values, fps)


def test_fixed_meter_follows_the_users_time_signature():
    beats = np.arange(0.5, 40.0, 0.5)
    act = _activations(beats, beats[::4], seconds=41.0)  # the music says 4/4
    grid = fixed_meter_grid(act, beats, time_signature="3/4")
    assert grid.label == "3/4" and grid.beats_per_bar == 3 and grid.confidence == 1.0
    assert set(grid.positions) == {1, 2, 3}
    seven = fixed_meter_grid(act, beats, time_signature="7/4")
    assert seven.beats_per_bar == 7 and seven.positions.max() == 7


def test_compound_override_merges_eighth_note_beats():
    eighths = np.arange(0.5, 40.0, 0.25)  # tracked at 240 per minute: the eighths of 6/8
    act = _activations(eighths, eighths[::6], seconds=41.0)
    grid = fixed_meter_grid(act, eighths, time_signature="6/8")
    assert grid.label == "6/8" and grid.beats_per_bar == 2
    assert np.median(np.diff(grid.beat_times)) == pytest.approx(0.75)
    downbeats = grid.beat_times[grid.positions == 1]
    assert np.allclose(np.diff(downbeats), 1.5)
    assert np.isclose(downbeats[0], 0.5)


def test_first_downbeat_rephases_the_bars():
    beats = np.arange(0.5, 20.0, 0.5)
    positions = ((np.arange(len(beats))) % 4) + 1  # songmap said: the first beat is one
    moved = rephase_bars(beats, positions, beats_per_bar=4, first_downbeat_s=1.52)
    assert moved[beats == 1.5][0] == 1
    assert moved[0] == 3 and moved[1] == 4  # two pickup beats
    assert np.all(np.diff(np.flatnonzero(moved == 1)) == 4)
    # positions that songmap laid irregularly shift as a whole
    irregular = np.array([1, 2, 3, 4, 1, 2, 1, 2, 3, 4, 1, 2, 3, 4])
    shifted = rephase_bars(beats[:14], irregular, beats_per_bar=4, first_downbeat_s=0.95)
    assert shifted[1] == 1 and shifted[5] == 1  # the 2-beat bar is kept


def test_first_downbeat_before_the_tracked_beats_counts_beats_back():
    beats = np.arange(1.0, 20.0, 0.5)  # the tracker started at 1.0 s
    positions = ((np.arange(len(beats))) % 4) + 1
    moved = rephase_bars(beats, positions, beats_per_bar=4, first_downbeat_s=0.0)
    assert list(moved[:4]) == [3, 4, 1, 2]  # bar 1 at 0.0 s: 1.0 s is its third beat
    # within half a beat of a tracked beat: that beat is "one"
    assert rephase_bars(beats, positions, beats_per_bar=4, first_downbeat_s=1.2)[0] == 1


def test_songmaps_own_bars_stand_when_they_count_the_same():
    beats = np.arange(0.5, 40.0, 0.5)
    act = _activations(beats, beats[1::4], seconds=41.0)
    own = BarGrid(beats, (np.arange(len(beats)) + 3) % 4 + 1, 4, "4/4", 0.7)
    kept = apply_time_signature(own, act, beats, time_signature="4/4")
    assert kept.label == "4/4" and kept.confidence == 1.0
    assert np.array_equal(kept.positions, own.positions)
    relabelled = apply_time_signature(own, act, beats, time_signature="2/2")
    assert relabelled.label == "2/2" and relabelled.beats_per_bar == 2  # counted again
    waltz = apply_time_signature(own, act, beats, time_signature="3/4")
    assert waltz.beats_per_bar == 3 and set(waltz.positions) == {1, 2, 3}



def test_songmaps_short_bars_stand_under_the_same_meter():
    beats = np.arange(0.5, 40.0, 0.5)
    act = _activations(beats, beats[::4], seconds=41.0)
    positions = (np.arange(len(beats)) % 4) + 1
    positions[8:10] = [1, 2]  # songmap heard a 2-beat bar at a stop
    positions[10:] = (np.arange(len(beats) - 10) % 4) + 1
    own = BarGrid(beats, positions, 4, "4/4", 0.9)
    kept = apply_time_signature(own, act, beats, time_signature="4/4")
    assert np.array_equal(kept.positions, positions) and kept.confidence == 1.0
