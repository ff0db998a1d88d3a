"""The analyser's own 3/4 result (not a constructed one) through the grid formats."""

from __future__ import annotations

import io
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from songmap.export import export
from tests.export.test_rekordbox import grid_beats


@pytest.fixture(scope="module")
def waltz_analysis(analyzer, waltz_file):
    path, _song = waltz_file
    return analyzer.analyze(path)


def test_real_waltz_grid_formats(waltz_analysis):
    pretty_midi = pytest.importorskip("pretty_midi")
    r = waltz_analysis
    assert r.time_signature.beats_per_bar == 3
    bt = r.beat_times()

    pm = pretty_midi.PrettyMIDI(io.BytesIO(export(r, "midi")))
    downs = pm.get_downbeats()
    in_song = downs[(downs >= r.downbeat_timeline[0].timestamp - 1e-3) & (downs <= bt[-1] + 1e-3)]
    np.testing.assert_allclose(in_song, r.downbeat_times(), atol=1e-3)
    assert any(ts.numerator == 3 for ts in pm.time_signature_changes)

    track = ET.fromstring(export(r, "rekordbox")).find("COLLECTION/TRACK")
    tempos = [(float(t.get("Inizio")), float(t.get("Bpm")), int(t.get("Battito")))
              for t in track.findall("TEMPO")]
    assert {t.get("Metro") for t in track.findall("TEMPO")} == {"3/4"}
    times, positions = grid_beats(tempos, bt[-1] + 1e-3, 3)
    np.testing.assert_allclose(times, bt, atol=5e-3)  # a DJ grid within 5 ms of every beat
    assert positions == [b.beat_position for b in r.beat_transient_markers]
