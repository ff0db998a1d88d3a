"""MIDI read back with pretty_midi (times via its own tempo-map arithmetic) and mido."""

from __future__ import annotations

import io

import numpy as np
import pytest

from songmap.export import export
from songmap.export.midi import BEAT_NOTE, DOWNBEAT_NOTE, chord_pitches

pretty_midi = pytest.importorskip("pretty_midi")
mido = pytest.importorskip("mido")


def _pm(result):
    return pretty_midi.PrettyMIDI(io.BytesIO(export(result, "midi")))


def test_click_track_lands_on_every_beat_with_accented_downbeats(any_result):
    r = any_result
    pm = _pm(r)
    (click,) = [i for i in pm.instruments if i.is_drum]
    notes = sorted(click.notes, key=lambda n: n.start)
    np.testing.assert_allclose([n.start for n in notes],
                               r.beat_times(), atol=1e-3)
    expected = [DOWNBEAT_NOTE if b.beat_position == 1 and b.bar >= 1 else BEAT_NOTE
                for b in r.beat_transient_markers]
    assert [n.pitch for n in notes] == expected
    accents = {n.velocity for n in notes if n.pitch == DOWNBEAT_NOTE}
    others = {n.velocity for n in notes if n.pitch == BEAT_NOTE}
    assert min(accents) > max(others)


def test_midi_grid_beats_and_bar_lines_follow_the_recording(any_result):
    """pretty_midi derives beats and downbeats from the tempo map and time signatures alone."""
    r = any_result
    pm = _pm(r)
    beat_times = r.beat_times()
    grid = pm.get_beats()
    on_grid = grid[(grid >= beat_times[0] - 1e-3) & (grid <= beat_times[-1] + 1e-3)]
    np.testing.assert_allclose(on_grid, beat_times, atol=1e-3)
    downs = pm.get_downbeats()
    first, last = r.downbeat_timeline[0].timestamp, r.downbeat_timeline[-1].timestamp
    in_song = downs[(downs >= first - 1e-3) & (downs <= last + 1e-3)]
    np.testing.assert_allclose(in_song, r.downbeat_times(), atol=1e-3)
    # a tempo change only where the beats need one: never more than one per beat
    change_times, _ = pm.get_tempo_changes()
    assert len(change_times) <= len(beat_times) + 1


def test_steady_track_has_one_tempo_after_the_lead_in(steady_click_result):
    r = steady_click_result
    pm = _pm(r)
    change_times, tempi = pm.get_tempo_changes()
    first = r.beat_transient_markers[0].beat_time
    assert len(change_times[change_times >= first - 1e-3]) == 1
    assert tempi[-1] == pytest.approx(r.tempo.bpm, abs=0.01)
    np.testing.assert_allclose(pm.get_beats()[-len(r.beat_transient_markers):],
                               r.beat_times(), atol=1e-3)


def test_meter_sections_and_tempo_segments_become_meta_events():
    from tests.export.helpers import two_section_result

    r = two_section_result()
    pm = _pm(r)
    sigs = [(round(ts.time, 3), ts.numerator, ts.denominator) for ts in pm.time_signature_changes]
    bar5, bar9 = r.downbeat_timeline[4].timestamp, r.downbeat_timeline[8].timestamp
    assert [s[1:] for s in sigs if s[0] >= r.downbeat_timeline[0].timestamp - 1e-3] == [(4, 4), (3, 4)]
    assert [s[0] for s in sigs if s[1:] == (3, 4)] == [pytest.approx(bar5, abs=1e-3)]
    change_times, tempi = pm.get_tempo_changes()
    in_song = change_times >= r.beat_transient_markers[0].beat_time - 1e-3
    assert list(np.round(tempi[in_song], 2)) == [120.0, 90.0]
    assert change_times[in_song][1] == pytest.approx(bar9, abs=1e-3)


def test_chord_track_labels_and_notes(any_result):
    r = any_result
    pm = _pm(r)
    texts = sorted(pm.text_events, key=lambda e: e.time)
    np.testing.assert_allclose([e.time for e in texts], [s for s, _, _ in r.chord_segments], atol=1e-3)
    assert [e.text for e in texts] == [c for _, _, c in r.chord_segments]
    (chords,) = [i for i in pm.instruments if not i.is_drum]
    for start, end, label in r.chord_segments:
        sounding = sorted(n.pitch for n in chords.notes if abs(n.start - start) < 1e-3)
        assert sounding == chord_pitches(label), label
        for n in chords.notes:
            if abs(n.start - start) < 1e-3:
                assert n.end == pytest.approx(end, abs=1e-3)


def test_markers_meter_and_key_read_back_with_mido(any_result):
    r = any_result
    mid = mido.MidiFile(file=io.BytesIO(export(r, "midi")))
    assert mid.ticks_per_beat == 960
    conductor = mid.tracks[0]
    # seconds of each marker computed with mido's own tick2second over the tempo changes
    tick, seconds, tempo, markers = 0, 0.0, 500000, []
    for msg in conductor:
        seconds += mido.tick2second(msg.time, mid.ticks_per_beat, tempo)
        tick += msg.time
        if msg.type == "set_tempo":
            tempo = msg.tempo
        elif msg.type == "marker":
            markers.append((seconds, msg.text))
    np.testing.assert_allclose([t for t, _ in markers],
                               r.downbeat_times(), atol=1e-3)
    assert [m for _, m in markers] == [f"Bar {d.bar}" for d in r.downbeat_timeline]
    sigs = [m for m in conductor if m.type == "time_signature"]
    num = int(r.time_signature.label.split("/")[0])
    assert any(s.numerator == num and s.denominator == int(r.time_signature.label[-1])
               for s in sigs)
    (key,) = [m for m in conductor if m.type == "key_signature"]
    tonic, mode = r.key.label.split()
    assert key.key == tonic + ("m" if mode == "minor" else "")


def test_six_eight_uses_dotted_quarter_beats():
    from tests.export.helpers import make_result

    times = [0.5 + 0.6 * i for i in range(12)]
    r = make_result(times, [1, 2] * 6, meter="6/8", beats_per_bar=2,
                    chords=[(0.5, 7.7, "D:maj")], key="D major")
    pm = pretty_midi.PrettyMIDI(io.BytesIO(export(r, "midi")))
    assert (pm.time_signature_changes[-1].numerator, pm.time_signature_changes[-1].denominator) == (6, 8)
    downs = pm.get_downbeats()
    np.testing.assert_allclose(downs[(downs > 0.4)][:6], times[::2], atol=1e-3)
    (click,) = [i for i in pm.instruments if i.is_drum]
    np.testing.assert_allclose(sorted(n.start for n in click.notes), times, atol=1e-3)


@pytest.mark.parametrize("meter,beats", [("12/8", 4), ("9/8", 3)])
def test_twelve_and_nine_eight_use_dotted_quarter_beats_too(meter, beats):
    """A result in 12/8 (four dotted-quarter beats; e.g. ``--time-signature 12/8``) is
    written as 12/8 with a dotted quarter per beat, not as 4/8 of eighths."""
    from tests.export.helpers import make_result

    times = [0.5 + 0.6 * i for i in range(4 * beats)]
    r = make_result(times, list(range(1, beats + 1)) * 4, meter=meter, beats_per_bar=beats,
                    chords=[(0.5, times[-1] + 0.6, "D:maj")], key="D major")
    pm = pretty_midi.PrettyMIDI(io.BytesIO(export(r, "midi")))
    sig = pm.time_signature_changes[-1]
    assert (sig.numerator, sig.denominator) == (3 * beats, 8)
    downs = pm.get_downbeats()
    np.testing.assert_allclose(downs[(downs > 0.4)][:4], times[::beats], atol=1e-3)
    # a dotted quarter of 0.6 s: the quarter note lasts 0.4 s (150 BPM)
    assert pm.get_tempo_changes()[1][-1] == pytest.approx(150.0, abs=0.1)


def test_long_silent_intro_keeps_tempo_in_range():
    from tests.export.helpers import make_result

    times = [40.0 + 0.5 * i for i in range(16)]
    r = make_result(times, [1, 2, 3, 4] * 4)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(export(r, "midi")))
    (click,) = [i for i in pm.instruments if i.is_drum]
    np.testing.assert_allclose(sorted(n.start for n in click.notes), times, atol=1e-3)
    _, tempi = pm.get_tempo_changes()
    assert tempi.min() > 20


@pytest.mark.parametrize("label,expected", [
    ("C:maj", [48, 52, 55]), ("A:min7", [57, 60, 64, 67]), ("D:7/3", [42, 50, 54, 57, 60]),
    ("N", []), ("G:maj7", [55, 59, 62, 66]),
])
def test_chord_pitches(label, expected):
    assert chord_pitches(label) == expected
