"""Spelling in a key and Roman numerals, over all 24 keys."""

import pytest

from songmap.harmony.notation import (
    PITCH_NAMES,
    key_label,
    pitch_class,
    roman_numeral,
    spell_chord,
    spell_key,
)

KEYS = [key_label(t, m) for m in (False, True) for t in range(12)]
MAJOR_STEPS = [(0, "maj", "I"), (2, "min", "ii"), (4, "min", "iii"), (5, "maj", "IV"),
               (7, "maj", "V"), (9, "min", "vi")]
MINOR_STEPS = [(0, "min", "i"), (3, "maj", "III"), (5, "min", "iv"), (7, "min", "v"),
               (7, "maj", "V"), (8, "maj", "VI"), (10, "maj", "VII")]


def chord(tonic: int, step: int, quality: str) -> str:
    return f"{PITCH_NAMES[(tonic + step) % 12]}:{quality}"


@pytest.mark.parametrize("key", KEYS)
def test_diatonic_chords_spell_with_one_letter_per_degree(key):
    """The seven scale degrees of every key get seven different letters, none doubly
    altered, and flat keys use no sharps (sharp keys no flats)."""
    tonic, minor = pitch_class(key.split()[0]), key.endswith("minor")
    steps = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    names = [spell_chord(chord(tonic, s, "maj"), key) for s in steps]
    assert len({n[0] for n in names}) == 7
    assert not any("##" in n or "bb" in n for n in names)
    assert not ("#" in "".join(names) and "b" in "".join(n[1:] for n in names))
    assert names[0] == spell_key(key).split()[0]


@pytest.mark.parametrize("key", KEYS)
def test_diatonic_numerals(key):
    tonic, minor = pitch_class(key.split()[0]), key.endswith("minor")
    for step, quality, numeral in MINOR_STEPS if minor else MAJOR_STEPS:
        f = roman_numeral(chord(tonic, step, quality), key)
        assert (f.numeral, f.borrowed, f.secondary) == (numeral, False, False)
    dominant = roman_numeral(chord(tonic, 7, "7"), key)
    assert dominant.numeral == "V7" and not dominant.secondary


@pytest.mark.parametrize("key", [k for k in KEYS if k.endswith("major")])
def test_secondary_dominants_and_borrowed_chords_in_major(key):
    tonic = pitch_class(key.split()[0])
    assert roman_numeral(chord(tonic, 2, "7"), key).numeral == "V7/V"
    assert roman_numeral(chord(tonic, 4, "maj"), key).numeral == "V/vi"
    assert roman_numeral(chord(tonic, 9, "7"), key).numeral == "V7/ii"
    for step, quality, numeral in ((10, "maj", "bVII"), (8, "maj", "bVI"), (5, "min", "iv"),
                                   (3, "maj", "bIII")):
        f = roman_numeral(chord(tonic, step, quality), key)
        assert (f.numeral, f.borrowed) == (numeral, True)


@pytest.mark.parametrize("key", [k for k in KEYS if k.endswith("minor")])
def test_borrowed_chords_in_minor(key):
    tonic = pitch_class(key.split()[0])
    f = roman_numeral(chord(tonic, 5, "maj"), key)
    assert (f.numeral, f.borrowed) == ("IV", True)
    assert roman_numeral(chord(tonic, 2, "7"), key).numeral == "V7/V"


@pytest.mark.parametrize("key,label,name", [
    ("F minor", "C#:maj", "Db"), ("C# major", "Eb:min7", "Ebm7"), ("C# major", "C#:maj", "Db"),
    ("E major", "Ab:min", "G#m"), ("A minor", "Ab:7", "G#7"), ("Eb minor", "F#:maj", "Gb"),
    ("C major", "Bb:maj", "Bb"), ("C major", "F#:min7", "F#m7"), ("G major", "E:5", "E5"),
    ("D major", "N", "N.C."), ("F# major", "F:maj", "E#"), ("Db major", "E:maj", "E"),
])
def test_spelled_names(key, label, name):
    assert spell_chord(label, key) == name


def test_spell_key_uses_the_key_signature():
    assert spell_key("C# major") == "Db major" and spell_key("Ab minor") == "G# minor"
    assert spell_key("Eb minor") == "Eb minor" and spell_key("N") == "N"


def test_no_chord_has_no_function():
    assert roman_numeral("N", "C major") is None and roman_numeral("C:maj", "N") is None
