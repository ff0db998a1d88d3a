"""Key notation and chord decoding on sustained triads with known answers."""

import numpy as np
import pytest

from songmap.harmony.chords import bar_chords, chord_templates, recognize_chords
from songmap.harmony.key import estimate_key
from songmap.harmony.notation import camelot, open_key
from songmap.models.registry import Activations


@pytest.mark.parametrize(
    "key,cam,ok",
    [("C major", "8B", "1d"), ("A minor", "8A", "1m"), ("G major", "9B", "2d"),
     ("F# minor", "11A", "4m"), ("Bb major", "6B", "11d"), ("Ab minor", "1A", "6m")],
)
def test_camelot_and_open_key(key, cam, ok):
    assert camelot(key) == cam and open_key(key) == ok


def test_key_from_probabilities_reports_runner_up():
    p = np.zeros(24)
    p[12 + 9], p[0] = 0.7, 0.3  # A minor, then C major
    k = estimate_key(p)
    assert (k.label, k.runner_up) == ("A minor", "C major")
    assert k.confidence == pytest.approx(0.7)


def chroma_of(labels_per_second, fps=10.0):
    names, templates = chord_templates("sevenths")
    rows = []
    for label in labels_per_second:
        rows += [templates[names.index(label)] if label != "N" else np.zeros(12)] * int(fps)
    return Activations(np.array(rows, dtype=np.float32), fps)


def test_sustained_triads_and_sevenths_are_recognised():
    seq = ["C:maj"] * 4 + ["A:min"] * 4 + ["G:7"] * 4 + ["F:maj7"] * 4
    chroma = chroma_of(seq)
    beats = np.arange(0.0, 16.0, 1.0)
    positions = (np.arange(16) % 4) + 1
    segs = recognize_chords(chroma, beats, positions, duration=16.0, key="C major")
    assert [(s.start, s.end, s.label) for s in segs] == [
        (0.0, 4.0, "C:maj"), (4.0, 8.0, "A:min"), (8.0, 12.0, "G:7"), (12.0, 16.0, "F:maj7")]


def test_silence_is_no_chord():
    chroma = chroma_of(["N"] * 4)
    segs = recognize_chords(chroma, np.arange(4.0), np.arange(4) + 1, duration=4.0)
    assert [s.label for s in segs] == ["N"]


def test_bar_with_two_chords_lists_both():
    chroma = chroma_of(["C:maj"] * 2 + ["G:maj"] * 2)
    segs = recognize_chords(chroma, np.arange(4.0), np.array([1, 2, 3, 4]), duration=4.0,
                            key="C major")
    (main, _, listed), = bar_chords(segs, np.array([0.0]), np.array([4.0]))
    assert listed == ["C:maj", "G:maj"] and main in listed


def test_no_chord_where_the_music_has_died_away():
    """The last chord rings on after the last beat; past the music's end it is N."""
    from songmap.onsets import music_span

    seq = ["C:maj"] * 4 + ["G:maj"] * 6  # the G chord rings for 2 s after the last beat
    chroma = chroma_of(seq)
    beats = np.arange(0.0, 9.0, 1.0)  # 0..8 s
    positions = (np.arange(9) % 4) + 1
    level = np.full(1000, -20.0, np.float32)
    level[850:] = np.linspace(-20.0, -60.0, 150)  # decays from 8.5 s
    span = music_span(Activations(level, 100.0), beats, 10.0)
    assert span[0] == 0.0 and 9.2 < span[1] < 9.3  # 20 dB down 75 frames after 8.5 s
    segs = recognize_chords(chroma, beats, positions, duration=10.0, key="C major",
                            music_span=span)
    assert [s.label for s in segs] == ["C:maj", "G:maj", "N"]
    assert segs[-1].start == pytest.approx(span[1]) and segs[-1].end == 10.0
    plain = recognize_chords(chroma, beats, positions, duration=10.0, key="C major")
    assert [s.label for s in plain] == ["C:maj", "G:maj"]


def test_music_span_without_beats_is_everything():
    from songmap.onsets import music_span

    level = Activations(np.full(500, -20.0, np.float32), 100.0)
    assert music_span(level, np.zeros(0), 5.0) == (0.0, 5.0)
