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
