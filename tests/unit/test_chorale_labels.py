"""Chord labels of the rendered chorales (``benchmarks/corpus/chorales.py``): one chord
per beat from the notes that sound in it, a seventh only where it is held."""

import pytest

from benchmarks.corpus.chorales import LATENCY_S, beat_chords, name_chord

C, E, G, B, A, F, D = 0, 4, 7, 11, 9, 5, 2


def weights(**held: float) -> list[float]:
    w = [0.0] * 12
    for name, beats in held.items():
        w[globals()[name]] += beats
    return w


def test_triads_sevenths_and_silence_are_named():
    assert name_chord(weights(C=1, E=1, G=1)) == "C:maj"
    assert name_chord(weights(A=1, C=1, E=1)) == "A:min"
    assert name_chord(weights(G=1, B=1, D=1, F=1)) == "G:7"
    assert name_chord(weights(G=1, B=1, F=1)) == "G:7"  # the fifth left out, as in four parts
    assert name_chord([0.0] * 12) == "N"


def test_a_passing_seventh_makes_no_seventh_chord():
    assert name_chord(weights(G=1, B=1, D=1, F=0.5)) == "G:maj"
    assert name_chord(weights(G=1, B=1, D=1, F=0.75)) == "G:7"


def test_one_chord_per_beat_from_the_midi_joined_where_equal(tmp_path):
    pretty_midi = pytest.importorskip("pretty_midi")
    pm = pretty_midi.PrettyMIDI()
    voice = pretty_midi.Instrument(program=19)
    # two beats of C major, then G7 on the third beat (a second apart from C: B, D, F)
    for pitch in (48, 52, 55, 60):
        voice.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=0.0, end=2.0))
    for pitch in (43, 59, 62, 65):
        voice.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=2.0, end=3.0))
    pm.instruments.append(voice)
    midi = tmp_path / "c.mid"
    pm.write(str(midi))
    beats = [LATENCY_S + t for t in (0.0, 1.0, 2.0)]
    segments = beat_chords(midi, beats)
    assert [s[2] for s in segments] == ["C:maj", "G:7"]
    assert segments[0][0] == pytest.approx(beats[0]) and segments[0][1] == pytest.approx(beats[2])
    assert segments[1][1] == pytest.approx(beats[2] + 1.0)
