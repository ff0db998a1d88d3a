"""rekordbox XML read back with pyrekordbox (an independent implementation of rekordbox's
published XML format) when installed, and always with ElementTree against that format."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import numpy as np
import pytest

from songmap.export import export, save
from songmap.export.rekordbox import collection_xml, location_uri, tonality

#: How close (s) the grid a player rebuilds from the TEMPO entries must stay to every beat.
DJ_GRID_TOLERANCE_S = 0.005


def grid_beats(tempos: list[tuple], end_s: float, bpb: int | None = None):
    """Beat times and positions a player derives from TEMPO entries (Inizio, Bpm, Battito
    and optionally Metro, whose numerator is the bar length; else ``bpb``)."""
    times, positions = [], []
    for i, (inizio, bpm, battito, *metro) in enumerate(tempos):
        n = int(metro[0].split("/")[0]) if metro and bpb is None else bpb
        stop = tempos[i + 1][0] if i + 1 < len(tempos) else end_s
        k = 0
        while inizio + k * 60.0 / bpm < stop - 1e-6:
            times.append(inizio + k * 60.0 / bpm)
            positions.append((battito - 1 + k) % n + 1)
            k += 1
    return np.array(times), positions


def _check_grid(r, tempos):
    bt = r.beat_times()
    # past the last tracked beat the grid continues; compare over the tracked span
    times, positions = grid_beats(tempos, bt[-1] + 1e-3, r.time_signature.beats_per_bar)
    np.testing.assert_allclose(times, bt, atol=DJ_GRID_TOLERANCE_S)
    assert positions == [b.beat_position for b in r.beat_transient_markers]


def test_xml_follows_the_published_layout(any_result):
    r = any_result
    root = ET.fromstring(export(r, "rekordbox", location="/music/a b.flac"))
    assert root.tag == "DJ_PLAYLISTS" and root.get("Version")
    assert root.find("PRODUCT").get("Name") == "songmap"
    coll = root.find("COLLECTION")
    assert coll.get("Entries") == "1"
    (track,) = coll.findall("TRACK")
    assert track.get("Location") == "file://localhost/music/a%20b.flac"
    assert float(track.get("AverageBpm")) == pytest.approx(r.tempo.bpm, abs=0.005)
    assert track.get("Tonality") == tonality(r.key.label)
    assert int(track.get("TotalTime")) == round(r.audio.duration)
    tempos = [(float(t.get("Inizio")), float(t.get("Bpm")), int(t.get("Battito")))
              for t in track.findall("TEMPO")]
    assert all(t.get("Metro") == r.time_signature.label for t in track.findall("TEMPO"))
    _check_grid(r, tempos)
    (cue,) = track.findall("POSITION_MARK")
    assert cue.get("Type") == "0" and cue.get("Num") == "-1"
    assert float(cue.get("Start")) == pytest.approx(r.downbeat_timeline[0].timestamp, abs=1e-3)
    assert root.find("PLAYLISTS/NODE").get("Name") == "ROOT"


def test_round_trip_with_pyrekordbox(tmp_path, any_result):
    rbxml = pytest.importorskip("pyrekordbox.rbxml")
    r = any_result
    path = save(r, "rekordbox", tmp_path / "collection.xml", location=tmp_path / "song.mp3")
    xml = rbxml.RekordboxXml(str(path))
    assert xml.num_tracks == 1
    track = xml.get_track(0)
    assert track["Tonality"] == tonality(r.key.label)
    assert track["AverageBpm"] == pytest.approx(r.tempo.bpm, abs=0.005)
    assert str(track["Location"]).endswith("song.mp3")
    _check_grid(r, [(t.Inizio, t.Bpm, t.Battito) for t in track.tempos])
    (mark,) = track.marks
    assert mark.Type == "cue" and mark.Num == -1
    assert mark.Start == pytest.approx(r.downbeat_timeline[0].timestamp, abs=1e-3)


def test_steady_track_needs_few_tempo_entries():
    from tests.export.helpers import make_result

    times = [0.25 + i * 60 / 128 for i in range(256)]
    r = make_result([round(t, 4) for t in times], [1, 2, 3, 4] * 64)
    root = ET.fromstring(export(r, "rekordbox"))
    assert len(root.findall(".//TEMPO")) <= 3


def _tempos(xml: str) -> list[tuple[float, float, int, str]]:
    track = ET.fromstring(xml).find("COLLECTION/TRACK")
    return [(float(t.get("Inizio")), float(t.get("Bpm")), int(t.get("Battito")), t.get("Metro"))
            for t in track.findall("TEMPO")]


def test_analysed_steady_track_is_one_tempo_entry_within_5ms(steady_click_result):
    """The whole path: a steady click track analysed, its beats on the tempo map's line,
    one TEMPO entry whose rebuilt grid lies within 5 ms of every beat, first bar to last."""
    r = steady_click_result
    assert len(r.tempo_map) == 1 and r.tempo.bpm == pytest.approx(128.0, abs=0.02)
    tempos = _tempos(export(r, "rekordbox"))
    assert len(tempos) == 1
    bt = r.beat_times()
    first_bar = r.downbeat_timeline[0].timestamp
    times, _ = grid_beats(tempos, bt[-1] + 1e-3, r.time_signature.beats_per_bar)
    in_bars = bt >= first_bar - 1e-6
    np.testing.assert_allclose(times[in_bars], bt[in_bars], atol=DJ_GRID_TOLERANCE_S)
    rbxml = pytest.importorskip("pyrekordbox.rbxml")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = save(r, "rekordbox", Path(tmp) / "c.xml")
        (entry,) = rbxml.RekordboxXml(str(path)).get_track(0).tempos
    assert entry.Bpm == pytest.approx(r.tempo_map[0].bpm)


def test_tempo_segments_and_meter_sections_each_start_an_entry():
    from tests.export.helpers import two_section_result

    r = two_section_result()
    tempos = _tempos(export(r, "rekordbox"))
    # 4/4 at 120 from the start, 3/4 from bar 5 (still 120), 90 BPM from bar 9 (3/4)
    assert [(round(t[1], 2), t[2], t[3]) for t in tempos] == [
        (120.0, 1, "4/4"), (120.0, 1, "3/4"), (90.0, 1, "3/4")]
    assert [t[0] for t in tempos] == pytest.approx(
        [r.downbeat_timeline[0].timestamp, r.downbeat_timeline[4].timestamp,
         r.downbeat_timeline[8].timestamp], abs=1e-3)
    times, positions = grid_beats(tempos, r.beat_transient_markers[-1].beat_time + 1e-3)
    bt = r.beat_times()
    np.testing.assert_allclose(times, bt, atol=DJ_GRID_TOLERANCE_S)
    assert positions == [b.beat_position for b in r.beat_transient_markers]


def test_pickup_beats_share_the_first_entry():
    from songmap.schema import MeterSection, TempoSegment
    from tests.export.helpers import make_result

    times = [round(0.45 + i * 60 / 135.2, 4) for i in range(65)]
    r = make_result(times, [4] + [1, 2, 3, 4] * 16)
    r = r.model_copy(update={
        "meter_sections": [MeterSection(start=times[1], first_bar=1, bars=16, beats_per_bar=4,
                                        label="4/4", confidence=0.9)],
        "tempo_map": [TempoSegment(start=times[0], end=times[-1], bpm=135.2, confidence=1.0,
                                   first_beat=1, beats=65)]})
    (entry,) = _tempos(export(r, "rekordbox"))
    assert entry[1:] == (135.2, 4, "4/4")


def test_wandering_beats_get_entries_as_needed_and_stay_within_5ms():
    from tests.export.helpers import make_result

    rng = np.random.default_rng(3)
    times = np.cumsum(np.full(64, 0.5) + rng.normal(0, 0.004, 64)) + 1.0
    r = make_result([round(float(t), 4) for t in times], [1, 2, 3, 4] * 16)
    tempos = _tempos(export(r, "rekordbox"))
    assert 1 < len(tempos) < 64
    grid, _ = grid_beats(tempos, times[-1] + 1e-3, 4)
    np.testing.assert_allclose(grid, r.beat_times(),
                               atol=DJ_GRID_TOLERANCE_S)


def test_collection_holds_several_tracks(golden_result, waltz_result):
    root = ET.fromstring(collection_xml([golden_result, waltz_result], ["/a.flac", None]))
    tracks = root.findall("COLLECTION/TRACK")
    assert [t.get("TrackID") for t in tracks] == ["1", "2"]
    assert root.find("COLLECTION").get("Entries") == "2"


@pytest.mark.parametrize("label,expected", [("A minor", "Am"), ("Bb major", "Bb"),
                                             ("F# minor", "F#m"), ("N", None)])
def test_tonality(label, expected):
    assert tonality(label) == expected


def test_location_uri_encodes_like_rekordbox():
    assert location_uri("/Users/dj/Music/Ünder & Over.mp3") == \
        "file://localhost/Users/dj/Music/%C3%9Cnder%20%26%20Over.mp3"


def test_a_phase_step_is_a_new_start_at_the_same_bpm():
    """Two sections of one tempo, the second 60 ms earlier: the tempo map shares the tempo,
    the XML writes it twice (a new Inizio at the step) and the rebuilt grid holds both."""
    from songmap.rhythm.tempo_map import fit_tempo_map, place_on_grid
    from songmap.schema import TempoSegment
    from tests.export.helpers import make_result

    rng = np.random.default_rng(7)
    true = 0.5 + np.arange(128) * 0.5
    true[64:] -= 0.060
    drift = np.where(np.arange(128) < 64, np.linspace(0.0, 0.008, 128), 0.0)
    segs = fit_tempo_map(true - drift + rng.normal(0, 0.002, len(true)))
    times = [round(float(t), 4) for t in place_on_grid(true, segs)]
    r = make_result(times, [1, 2, 3, 4] * 32)
    r = r.model_copy(update={"tempo_map": [
        TempoSegment(start=times[s.first], end=times[s.last], bpm=s.bpm, confidence=1.0,
                     first_beat=s.first + 1, beats=s.beats) for s in segs]})
    tempos = _tempos(export(r, "rekordbox"))
    assert len(tempos) == 2 and tempos[0][1] == tempos[1][1] == pytest.approx(120.0, abs=0.015)
    _check_grid(r, tempos)
