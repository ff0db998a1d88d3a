from __future__ import annotations

import io

import numpy as np
import pytest

from songmap.export import export

jams = pytest.importorskip("jams")
# jams validates through an older jsonschema API
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:jsonschema.*")


def _layer(jam, name):
    (ann,) = [a for a in jam.annotations if getattr(a.sandbox, "songmap_layer", None) == name]
    return ann


def _load(result):
    return jams.load(io.StringIO(export(result, "jams").decode()), validate=True, strict=True)


def test_jams_round_trip(any_result):
    r = any_result
    jam = _load(r)
    assert jam.file_metadata.duration == pytest.approx(r.audio.duration)

    beat = jam.search(namespace="beat")[0]
    times, values = beat.to_event_values()
    np.testing.assert_allclose(times, r.beat_times(), atol=1e-3)
    assert list(values) == [b.beat_position for b in r.beat_transient_markers]

    pos = jam.search(namespace="beat_position")[0]
    obs = pos.data
    assert [o.value["measure"] for o in obs] == [b.bar for b in r.beat_transient_markers]
    down = [o.time for o in obs if o.value["position"] == 1 and o.value["measure"] >= 1]
    np.testing.assert_allclose(down, r.downbeat_times(), atol=1e-3)

    seg = _layer(jam, "chord_segments")
    intervals, labels = seg.to_interval_values()
    np.testing.assert_allclose(intervals, [[s, e] for s, e, _ in r.chord_segments], atol=1e-3)
    assert labels == [c for _, _, c in r.chord_segments]
    bars = _layer(jam, "bar_chords")
    assert [o.value for o in bars.data] == [c.chord for c in r.chord_progression]

    key_ann = jam.search(namespace="key_mode")[0]
    key = key_ann.data[0]
    assert key.value == r.key.label.replace(" ", ":")
    assert key_ann.sandbox.tuning_cents == r.key.tuning_cents
    tempo = jam.search(namespace="tempo")[0].data
    assert tempo[0].value == pytest.approx(r.tempo.bpm)
    assert tempo[1].value == pytest.approx(r.tempo.alternative_bpm)
    onsets = jam.search(namespace="onset")[0]
    np.testing.assert_allclose(onsets.to_event_values()[0], r.onset_times, atol=1e-3)


def test_jams_chords_score_perfectly_against_themselves_with_mir_eval(golden_result):
    """The file is usable as-is for evaluation: jams.eval reads both sides from it."""
    jam = _load(golden_result)
    seg = _layer(jam, "chord_segments")
    scores = jams.eval.chord(seg, seg)
    assert scores["majmin"] == pytest.approx(1.0)


def test_jams_tempo_map_and_meter_sections():
    from tests.export.helpers import two_section_result

    r = two_section_result()
    jam = _load(r)
    tempo_map = _layer(jam, "tempo_map")
    assert [o.value for o in tempo_map.data] == [120.0, 90.0]
    assert [o.time for o in tempo_map.data] == pytest.approx([s.start for s in r.tempo_map])
    # the first segment lasts until the second starts
    assert tempo_map.data[0].time + tempo_map.data[0].duration == pytest.approx(r.tempo_map[1].start)
    meter = _layer(jam, "meter_sections")
    assert [(round(o.time, 4), o.value) for o in meter.data] == [
        (s.start, s.label) for s in r.meter_sections]
    pos = jam.search(namespace="beat_position")[0].data
    by_bar = {o.value["measure"]: o.value["num_beats"] for o in pos}
    assert by_bar[4] == 4 and by_bar[5] == 3 and by_bar[12] == 3
