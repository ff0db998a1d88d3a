"""CSV / JSON Lines read back with the csv module and pandas; to_pandas."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from songmap.errors import InvalidParameterError
from songmap.export import export
from songmap.tables import BEAT_COLUMNS, chord_at, to_pandas


def test_csv_round_trip_with_csv_module(any_result):
    r = any_result
    rows = list(csv.DictReader(io.StringIO(export(r, "csv").decode())))
    assert tuple(rows[0].keys()) == BEAT_COLUMNS
    np.testing.assert_allclose([float(x["time"]) for x in rows],
                               r.beat_times(), atol=1e-3)
    assert [(int(x["bar"]), int(x["beat_position"])) for x in rows] == \
        [(b.bar, b.beat_position) for b in r.beat_transient_markers]
    assert [x["chord"] for x in rows] == [chord_at(r, b.beat_time) for b in r.beat_transient_markers]
    downs = [float(x["time"]) for x in rows if x["is_downbeat"] == "True"]
    np.testing.assert_allclose(downs, r.downbeat_times(), atol=1e-3)


def test_csv_and_jsonl_read_with_pandas(any_result):
    pd = pytest.importorskip("pandas")
    r = any_result
    a = pd.read_csv(io.BytesIO(export(r, "csv")))
    b = pd.read_json(io.BytesIO(export(r, "jsonl")), lines=True)
    for df in (a, b):
        np.testing.assert_allclose(df["time"], r.beat_times(),
                                   atol=1e-3)
        assert list(df["beat_position"]) == [x.beat_position for x in r.beat_transient_markers]
        assert list(df["bar_chord"].fillna("")) == \
            [{c.bar: c.chord for c in r.chord_progression}.get(x.bar, "")
             for x in r.beat_transient_markers]


@pytest.mark.parametrize("table", ["bars", "chords", "onsets"])
def test_other_tables(table, golden_result):
    r = golden_result
    lines = export(r, "jsonl", table=table).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    if table == "bars":
        assert [x["bar"] for x in rows] == [d.bar for d in r.downbeat_timeline]
        assert [x["chord"] for x in rows] == [c.chord for c in r.chord_progression]
    elif table == "chords":
        assert [(x["start"], x["end"], x["chord"]) for x in rows] == \
            [tuple(s) for s in r.chord_segments]
    else:
        assert [x["time"] for x in rows] == r.onset_times
    text = export(r, "csv", table=table).decode()
    assert len(text.splitlines()) == len(rows) + 1


def test_to_pandas(golden_result):
    pytest.importorskip("pandas")
    df = to_pandas(golden_result)
    assert list(df.columns) == list(BEAT_COLUMNS)
    assert len(df) == golden_result.total_beats
    bars = to_pandas(golden_result, "bars")
    assert bars["duration"].sum() == pytest.approx(
        sum(d.duration for d in golden_result.downbeat_timeline))
    with pytest.raises(InvalidParameterError):
        to_pandas(golden_result, "notes")


def test_chord_at_edges():
    from tests.export.helpers import make_result

    r = make_result([1.0, 1.5], [1, 2], duration=4.0,
                    chords=[(1.0, 2.0, "C:maj"), (2.0, 3.0, "G:maj")])
    assert [chord_at(r, t) for t in (0.5, 1.0, 1.99, 2.0, 3.0)] == \
        ["N", "C:maj", "C:maj", "G:maj", "N"]
