"""Harmony fields of the result: key sections and spelled chords reach the JSON and the
exports, and results stored before these fields existed still load."""

import json

import numpy as np

from benchmarks.eval_form import to_eval_dict
from songmap.schema import AnalysisResult, KeySegment
from tests.export.helpers import make_result


def _result_with_sections() -> AnalysisResult:
    times = list(np.arange(0.5, 40.0, 0.5))
    positions = [(i % 4) + 1 for i in range(len(times))]
    r = make_result(times, positions, duration=40.0, key="C major",
                    chords=[(0.0, 20.0, "C:maj"), (20.0, 40.0, "D:maj")])
    return r.model_copy(update={"key_segments": [
        KeySegment(start=0.0, end=20.0, key="C major", confidence=0.9, name="C major"),
        KeySegment(start=20.0, end=40.0, key="D major", confidence=0.8, name="D major")]})


def test_jams_writes_one_key_mode_observation_per_section():
    from songmap.export.jams import build_jams

    jam = build_jams(_result_with_sections())
    data = jam.search(namespace="key_mode")[0].data
    assert [(o.time, o.duration, o.value) for o in data] == [
        (0.0, 20.0, "C:major"), (20.0, 20.0, "D:major")]


def test_results_stored_without_the_harmony_fields_still_load():
    stored = json.loads(_result_with_sections().model_dump_json())
    for field in ("key_segments", "chord_details"):
        stored.pop(field)
    stored["key"].pop("name")
    for bar in stored["chord_progression"]:
        bar.pop("names")
        bar.pop("numerals")
    old = AnalysisResult.model_validate(stored)
    assert old.key_segments == [] and old.chord_progression[0].names == []
    assert to_eval_dict(old)["key_segments"] == []


def test_terminal_summary_shows_names_spelled_in_the_key():
    from songmap.cli.main import format_summary

    r = _result_with_sections()
    bars = [b.model_copy(update={"names": ["Db", "Bbm7"], "chords": ["C#:maj", "Bb:min7"]})
            for b in r.chord_progression]
    text = format_summary(r.model_copy(update={"chord_progression": bars}))
    assert "[Db Bbm7] x" in text and "C#" not in text
