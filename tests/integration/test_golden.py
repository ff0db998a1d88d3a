"""The stored result of the bundled example (``tests/data/example_result.json``): still what
an analysis gives, still what the schema reads and writes, and what the terminal shows."""

from __future__ import annotations

import json

import pytest

from songmap.cli.main import format_summary
from songmap.schema import AnalysisResult
from tests.conftest import GOLDEN_RESULT
from tests.packaging.wheel_check import differences
from tests.regen_golden import without_timings


@pytest.mark.models
def test_golden_file_is_what_an_analysis_of_the_example_gives(example_result):
    """Every field but the timings; floats within ``wheel_check.FLOAT_TOLERANCE`` (1e-3:
    another numpy may round a written last digit the other way on CI's other Pythons).
    When a change moves the example's result on purpose: ``python -m tests.regen_golden``."""
    stored = without_timings(json.loads(GOLDEN_RESULT.read_text(encoding="utf-8")))
    fresh = without_timings(json.loads(example_result.model_dump_json()))
    diffs = differences(fresh, stored)
    assert not diffs, ("tests/data/example_result.json is stale (python -m tests.regen_golden):\n"
                       + "\n".join(diffs[:20]))


def test_golden_file_round_trips_through_the_schema_unchanged(golden_result):
    """The JSON contract: what the schema writes from a stored result is what was stored,
    field for field (derived fields included: they are written, and recomputed alike)."""
    stored = GOLDEN_RESULT.read_text(encoding="utf-8")
    assert json.loads(golden_result.model_dump_json()) == json.loads(stored)
    again = AnalysisResult.model_validate_json(golden_result.model_dump_json())
    assert again == golden_result


def test_terminal_summary_of_the_example(golden_result):
    lines = format_summary(golden_result).splitlines()
    assert lines[0] == "example.flac  (21.5 s, 22050 Hz, 1 ch)"
    assert lines[1].startswith("  tempo      120.0 BPM  (or 60.0)")
    assert lines[2].startswith("  meter      4/4  (4 beats per bar)")
    assert "C major  Camelot 8B  Open Key 1d" in lines[3]
    assert f"bars       {golden_result.total_bars} " in lines[4]
    assert f"beats {len(golden_result.beat_transient_markers)} " in lines[4]
    assert lines[6] == "  chords     C Am F G x2 | C | Am | N.C."
    assert lines[-1].startswith("  analysed in ")
