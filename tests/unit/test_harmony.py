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


# ---------------------------------------------------------------- earned vocabulary
def test_a_half_heard_seventh_stays_a_triad():
    """G major with F at half the triad's level: cosine alone prefers G:7 (0.971 against
    0.961), but F is no more a chord tone than a non-chord tone, so it stays G major."""
    frame = np.zeros(12)
    frame[[7, 11, 2]] = 1.0
    frame[5] = 0.5
    chroma = Activations(np.tile(frame, (40, 1)).astype(np.float32), 10.0)
    segs = recognize_chords(chroma, np.arange(4.0), np.array([1, 2, 3, 4]), duration=4.0,
                            key="C major")
    assert [s.label for s in segs] == ["G:maj"]
    frame[5] = 0.9  # now it sounds
    chroma = Activations(np.tile(frame, (40, 1)).astype(np.float32), 10.0)
    segs = recognize_chords(chroma, np.arange(4.0), np.array([1, 2, 3, 4]), duration=4.0,
                            key="C major")
    assert [s.label for s in segs] == ["G:7"]


def test_a_full_seventh_chord_is_kept():
    chroma = chroma_of(["A:min7"] * 4)
    segs = recognize_chords(chroma, np.arange(4.0), np.array([1, 2, 3, 4]), duration=4.0,
                            key="C major")
    assert [s.label for s in segs] == ["A:min7"]


def test_power_chord_only_when_the_third_is_absent():
    from songmap.harmony.chords import earned_vocabulary

    names, _ = chord_templates("sevenths")
    fifth = np.zeros(12)
    fifth[[4, 11]] = 1.0  # E and B
    with_third = fifth.copy()
    with_third[8] = 0.8  # G# sounds
    ok = earned_vocabulary(np.vstack([fifth, with_third]), names)
    assert ok[0, names.index("E:5")] and not ok[1, names.index("E:5")]
    segs = recognize_chords(Activations(np.tile(fifth, (40, 1)).astype(np.float32), 10.0),
                            np.arange(4.0), np.array([1, 2, 3, 4]), duration=4.0)
    assert [s.label for s in segs] == ["E:5"]


# ---------------------------------------------------------------- key sections
def _song(keys_and_bars, bar_s=2.0):
    """Chord segments, one chord per bar, cycling I IV V I (major) / i iv V i (minor)."""
    from songmap.harmony.notation import PITCH_NAMES, parse_key

    segs, t = [], 0.0
    for key, bars in keys_and_bars:
        tonic, minor = parse_key(key)
        cycle = ([(0, "min"), (5, "min"), (7, "maj"), (0, "min")] if minor
                 else [(0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")])
        for b in range(bars):
            step, q = cycle[b % 4]
            segs.append((t, t + bar_s, f"{PITCH_NAMES[(tonic + step) % 12]}:{q}"))
            t += bar_s
    return segs, np.arange(0.0, t, bar_s), t


def test_key_sections_find_a_modulation_on_its_bar():
    from songmap.harmony.key import track_key_sections

    segs, bars, duration = _song([("C major", 16), ("D major", 16)])
    sections = track_key_sections(segs, bars, duration=duration, global_key="C major")
    assert [s.label for s in sections] == ["C major", "D major"]
    assert abs(sections[1].start - 32.0) <= 2 * 2.0
    assert sections[0].start == 0.0 and sections[-1].end == duration


def test_one_key_section_when_the_song_stays_in_its_key():
    from songmap.harmony.key import track_key_sections

    segs, bars, duration = _song([("A minor", 32)])
    # a two-bar detour through a secondary dominant is no key change
    segs[9] = (segs[9][0], segs[9][1], "E:7")
    segs[10] = (segs[10][0], segs[10][1], "B:7")
    sections = track_key_sections(segs, bars, duration=duration, global_key="A minor")
    assert [(s.start, s.end, s.label) for s in sections] == [(0.0, duration, "A minor")]


def test_one_key_section_carries_the_global_keys_confidence():
    from songmap.harmony.analysis import analyze_harmony

    chroma = chroma_of(["C:maj"] * 8 + ["G:maj"] * 8)
    p = np.zeros(24)
    p[0], p[7] = 0.6, 0.4  # C major, G major
    h = analyze_harmony(chroma, p, np.arange(16.0), (np.arange(16) % 4) + 1, duration=16.0)
    assert [(s.start, s.end, s.label) for s in h.key_sections] == [(0.0, 16.0, h.key.label)]
    assert h.key_sections[0].confidence == pytest.approx(h.key.confidence, abs=1e-4)
    assert h.key_sections[0].confidence < 1.0
