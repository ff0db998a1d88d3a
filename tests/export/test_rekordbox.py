"""rekordbox XML read back with pyrekordbox (an independent implementation of rekordbox's
published XML format) when installed, and always with ElementTree against that format."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import numpy as np
import pytest

from songmap.export import export, save
from songmap.export.rekordbox import collection_xml, location_uri, tonality


def grid_beats(tempos: list[tuple[float, float, int]], end_s: float, bpb: int):
    """Beat times and positions a player derives from TEMPO entries (Inizio, Bpm, Battito)."""
    times, positions = [], []
    for i, (inizio, bpm, battito) in enumerate(tempos):
        stop = tempos[i + 1][0] if i + 1 < len(tempos) else end_s
        k = 0
        while inizio + k * 60.0 / bpm < stop - 1e-6:
            times.append(inizio + k * 60.0 / bpm)
            positions.append((battito - 1 + k) % bpb + 1)
            k += 1
    return np.array(times), positions


def _check_grid(r, tempos):
    bt = np.array([b.beat_time for b in r.beat_transient_markers])
    # past the last tracked beat the grid continues; compare over the tracked span
    times, positions = grid_beats(tempos, bt[-1] + 1e-3, r.time_signature.beats_per_bar)
    np.testing.assert_allclose(times, bt, atol=1e-3)
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


def test_collection_holds_several_tracks(example_result, waltz_result):
    root = ET.fromstring(collection_xml([example_result, waltz_result], ["/a.flac", None]))
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
