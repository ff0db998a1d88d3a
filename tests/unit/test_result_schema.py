"""The lean result: derived fields computed, the JSON contract (keys and their order)
unchanged, results stored before the change still load, arrays ready for mir_eval, and a
result that breaks an invariant cannot be built."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from songmap.config import AnalysisSettings
from songmap.schema import _DERIVED, AnalysisResult, Descriptors
from tests.export.helpers import make_result

#: ``songmap analyze example.flac --json --descriptors`` written by songmap before the
#: derived fields became computed fields (main at 5889460): the stored form to keep loading
STORED = Path(__file__).parent / "data" / "example_result_v1_0.json"


@pytest.fixture(scope="module")
def stored_text() -> str:
    return STORED.read_text()


def test_a_result_stored_before_computed_fields_loads_and_writes_the_same_bytes(stored_text):
    r = AnalysisResult.model_validate_json(stored_text)
    assert r.model_dump_json(indent=2) + "\n" == stored_text  # keys, order, values


def test_derived_fields_follow_from_the_primary_ones(stored_text):
    r = AnalysisResult.model_validate_json(stored_text)
    stored = json.loads(stored_text)
    assert r.total_bars == len(r.downbeat_timeline) == stored["total_bars"]
    assert r.total_beats == len(r.beat_transient_markers) == stored["total_beats"]
    assert r.tempo_curve == [(d.timestamp, d.tempo) for d in r.downbeat_timeline]
    assert r.tempo_stability == r.tempo.stability
    durations = [d.duration for d in r.downbeat_timeline]
    assert r.average_bar_duration == pytest.approx(sum(durations) / len(durations), abs=1e-4)
    chords = [c.chord for c in r.chord_progression]
    changes = sum(a != b for a, b in pairwise(chords))
    assert r.total_chord_changes == changes == stored["total_chord_changes"]
    assert r.harmonic_rhythm == pytest.approx(changes / (len(chords) - 1), abs=1e-4)


def test_stored_derived_values_are_not_taken_from_the_input(stored_text):
    data = json.loads(stored_text)
    data["total_bars"], data["harmonic_rhythm"] = 999, 7.0
    r = AnalysisResult.model_validate(data)
    assert r.total_bars == len(r.downbeat_timeline) != 999
    assert r.harmonic_rhythm != 7.0


def test_descriptors_and_settings_are_typed(stored_text):
    r = AnalysisResult.model_validate_json(stored_text)
    assert isinstance(r.descriptors, Descriptors) and r.descriptors.loudness_method
    assert isinstance(r.provenance.settings, AnalysisSettings)
    assert r.provenance.settings.meters == (2, 3, 4)
    bad = json.loads(stored_text)
    bad["descriptors"]["energy"] = "loud"
    with pytest.raises(ValidationError, match="energy"):
        AnalysisResult.model_validate(bad)


def test_arrays_for_mir_eval(stored_text):
    r = AnalysisResult.model_validate_json(stored_text)
    beats, downbeats = r.beat_times(), r.downbeat_times()
    assert beats.dtype == float and beats.shape == (r.total_beats,)
    assert np.all(np.diff(beats) > 0) and downbeats.shape == (r.total_bars,)
    assert set(downbeats) <= set(beats)  # every bar starts on a beat
    intervals, labels = r.chord_intervals(), r.chord_labels()
    assert intervals.shape == (len(r.chord_segments), 2) and len(labels) == len(intervals)
    assert intervals[0, 0] == 0.0 and np.all(intervals[:, 1] >= intervals[:, 0])
    bar_intervals, bar_labels = r.chord_intervals(per_bar=True), r.chord_labels(per_bar=True)
    assert len(bar_labels) == len(bar_intervals) >= r.total_bars
    assert bar_intervals[0, 0] == r.downbeat_times()[0]
    # the forms mir_eval reads
    import mir_eval

    mir_eval.beat.validate(beats, beats)
    for iv, lab in [(intervals, labels), (bar_intervals, bar_labels)]:
        mir_eval.util.validate_intervals(iv)
        mir_eval.chord.validate(lab, lab)


def test_empty_result_gives_empty_arrays():
    r = make_result([], [], duration=5.0, key="N")
    assert r.beat_times().shape == (0,) and r.downbeat_times().shape == (0,)
    assert r.chord_intervals().shape == (0, 2) and r.chord_labels() == []
    assert r.total_bars == 0 and r.average_bar_duration == 0.0 and r.harmonic_rhythm == 0.0


@pytest.mark.parametrize("change, message", [
    (lambda d: d["beat_transient_markers"][3].update(beat_time=-1.0), "beat times must be finite"),
    (lambda d: d["beat_transient_markers"].reverse(), "beat"),
    (lambda d: d["downbeat_timeline"][1].update(bar=5), "bar numbers"),
    (lambda d: d["beat_transient_markers"][2].update(beat_number=9), "beat numbers"),
    (lambda d: d["beat_transient_markers"][5].update(bar=1), "does not lie in its bar"),
    (lambda d: d["beat_transient_markers"][5].update(beat_position=7), "at position 7"),
    (lambda d: d["beat_transient_markers"][0].update(transient_time=1e6), "transient times"),
    (lambda d: d["chord_segments"][0].__setitem__(1, 1e6), "chord segments"),
    (lambda d: d["chord_progression"].reverse(), "bar chords"),
    (lambda d: d["onset_times"].append(float("nan")), "onset times"),
    (lambda d: d["tempo"].update(bpm=float("inf")), "must be finite"),
])
def test_a_result_that_breaks_an_invariant_cannot_be_built(stored_text, change, message):
    data = json.loads(stored_text)
    AnalysisResult.model_validate(data)  # as stored: valid
    change(data)
    with pytest.raises(ValidationError, match=message):
        AnalysisResult.model_validate(data)


def test_the_json_schema_lists_the_derived_fields_for_readers():
    schema = AnalysisResult.model_json_schema(mode="serialization")
    assert {"total_bars", "tempo_curve", "harmonic_rhythm"} <= set(schema["properties"])
    assert "total_bars" not in AnalysisResult.model_json_schema(mode="validation")["properties"]
    assert {"total_bars", "tempo_curve", "harmonic_rhythm"} <= set(schema["required"])


def test_unknown_fields_are_refused_and_dropped_derived_ones_leave_no_trace(stored_text):
    data = json.loads(stored_text)
    data["tempo_curv"] = []
    with pytest.raises(ValidationError, match=r"unknown field.*tempo_curv"):
        AnalysisResult.model_validate(data)
    old = AnalysisResult.model_validate_json(stored_text)  # with the derived fields
    new = AnalysisResult.model_validate_json(old.model_dump_json(exclude=set(_DERIVED)))
    assert old == new and old.model_extra == {}
