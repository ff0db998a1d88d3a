"""Pitch-class names, key strings and DJ key codes (Camelot, Open Key)."""

from __future__ import annotations

from dataclasses import dataclass

PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_ALIASES = {"Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11, "B#": 0, "E#": 5, "Fb": 4}


def pitch_class(name: str) -> int:
    """Pitch class (C=0) of a note name such as ``"Bb"`` or ``"F#"``."""
    if name in PITCH_NAMES:
        return PITCH_NAMES.index(name)
    if name in _ALIASES:
        return _ALIASES[name]
    raise ValueError(f"not a note name: {name!r}")


def key_label(tonic: int, minor: bool) -> str:
    """mir_eval key string, e.g. ``key_label(9, True) == "A minor"``."""
    return f"{PITCH_NAMES[tonic % 12]} {'minor' if minor else 'major'}"


def parse_key(label: str) -> tuple[int, bool]:
    """Inverse of ``key_label``."""
    tonic, mode = label.split()
    return pitch_class(tonic), mode == "minor"


# Camelot: 8B = C major, 8A = A minor; moving a fifth up adds one (mod 12).
def camelot(label: str) -> str:
    tonic, minor = parse_key(label)
    major_tonic = (tonic + 3) % 12 if minor else tonic
    number = (8 - 1 + 7 * major_tonic) % 12 + 1
    return f"{number}{'A' if minor else 'B'}"


# Open Key: 1d = C major, 1m = A minor.
def open_key(label: str) -> str:
    tonic, minor = parse_key(label)
    major_tonic = (tonic + 3) % 12 if minor else tonic
    number = (7 * major_tonic) % 12 + 1
    return f"{number}{'m' if minor else 'd'}"


# ---------------------------------------------------------------- spelling in a key
_LETTERS = "CDEFGAB"
_LETTER_PCS = (0, 2, 4, 5, 7, 9, 11)
#: Spelled tonic per pitch class, major and minor: the key signature with fewer
#: accidentals (Db major, not C# major; G# minor, not Ab minor); at six each, the name
#: mir_eval labels already use (F# major, Eb minor).
_MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
#: Semitones above the tonic -> (scale degree 0..6, accidental against the key's own
#: scale). Chromatic roots take the reading common in pop analysis: bII, bIII, #IV, bVI,
#: bVII in major; the raised third, fourth, sixth and seventh of the minor scale in minor.
_DEGREES = {
    False: ((0, ""), (1, "b"), (1, ""), (2, "b"), (2, ""), (3, ""), (3, "#"), (4, ""),
            (5, "b"), (5, ""), (6, "b"), (6, "")),
    True: ((0, ""), (1, "b"), (1, ""), (2, ""), (2, "#"), (3, ""), (3, "#"), (4, ""),
           (5, ""), (5, "#"), (6, ""), (6, "#")),
}
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
#: Names a lead sheet avoids unless the key's own scale has them.
_AWKWARD = {"Cb", "Fb", "B#", "E#"}
#: Lead-sheet suffix per Harte quality (the power chord ``X:5`` is written ``X5``).
_LEAD_SHEET = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7", "5": "5",
               "dim": "dim", "aug": "aug", "sus4": "sus4", "sus2": "sus2", "hdim7": "m7b5",
               "dim7": "dim7", "min6": "m6", "maj6": "6", "9": "9", "min9": "m9", "maj9": "maj9"}


def _key_tonic_name(tonic: int, minor: bool) -> str:
    return (_MINOR_TONICS if minor else _MAJOR_TONICS)[tonic % 12]


def spell_key(label: str) -> str:
    """The key with its tonic spelled as in its key signature: ``"C# major"`` ->
    ``"Db major"``; ``"N"`` stays ``"N"``."""
    if label == "N":
        return label
    tonic, minor = parse_key(label)
    return f"{_key_tonic_name(tonic, minor)} {'minor' if minor else 'major'}"


def _is_flat_key(tonic: int, minor: bool) -> bool:
    major_tonic = (tonic + 3) % 12 if minor else tonic
    return "b" in _MAJOR_TONICS[major_tonic] or major_tonic == 5  # F major has one flat


def _key_scale_names(tonic: int, minor: bool) -> set[str]:
    """Note names of the key's scale (natural minor plus its raised leading tone)."""
    names = {spell_pitch((tonic + step) % 12, tonic, minor, _scale_only=True)
             for step in ((0, 2, 3, 5, 7, 8, 10, 11) if minor else (0, 2, 4, 5, 7, 9, 11))}
    return names


def spell_pitch(pc: int, tonic: int, minor: bool, *, _scale_only: bool = False) -> str:
    """Name of pitch class ``pc`` in the key (tonic pitch class, minor?): the letter of its
    scale degree, so Db (not C#) in Ab major and G# (not Ab) as E major's third. Chromatic
    notes fall back to the key signature's side (flats in flat keys) when the degree's
    letter would need a double accidental or a Cb / Fb / B# / E# the scale lacks."""
    offset = (pc - tonic) % 12
    degree, _ = _DEGREES[minor][offset]
    tonic_name = _key_tonic_name(tonic, minor)
    letter = _LETTERS[(_LETTERS.index(tonic_name[0]) + degree) % 7]
    shift = (pc - _LETTER_PCS[_LETTERS.index(letter)]) % 12
    accidental = {0: "", 1: "#", 2: "##", 11: "b", 10: "bb"}.get(shift)
    name = None if accidental is None else letter + accidental
    if _scale_only:
        return name or _SHARP_NAMES[pc % 12]
    if name is None or "##" in name or "bb" in name or (
            name in _AWKWARD and name not in _key_scale_names(tonic, minor)):
        name = (_FLAT_NAMES if _is_flat_key(tonic, minor) else _SHARP_NAMES)[pc % 12]
    return name


def _split_harte(label: str) -> tuple[int, str, str | None]:
    root, _, rest = label.partition(":")
    quality, _, bass = (rest or "maj").partition("/")
    return pitch_class(root), quality or "maj", bass or None


def spell_chord(label: str, key: str | None = None) -> str:
    """Lead-sheet name of a Harte label, spelled in ``key``: ``spell_chord("C#:maj",
    "F minor") == "Db"``, ``"A:min7"`` -> ``"Am7"``, ``"E:5"`` -> ``"E5"``, ``"N"`` ->
    ``"N.C."``. Without a key, the label's own root name is kept."""
    if label in ("N", "X", ""):
        return "N.C."
    root, quality, bass = _split_harte(label)
    if key and key != "N":
        tonic, minor = parse_key(key)
        name = spell_pitch(root, tonic, minor)
    else:
        name = label.split(":")[0]
    suffix = _LEAD_SHEET.get(quality, quality)
    return name + suffix + (f"/{bass}" if bass else "")


# ---------------------------------------------------------------- Roman numerals
_NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")
_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11),
              "min7": (0, 3, 7, 10), "5": (0, 7)}
#: Diatonic chords per mode as (semitones above the tonic, quality). Minor keys take the
#: natural minor plus the harmonic minor's dominant (V, V7), as pop and classical usage do.
_DIATONIC = {
    False: {(0, "maj"), (2, "min"), (4, "min"), (5, "maj"), (7, "maj"), (9, "min"),
            (0, "maj7"), (2, "min7"), (4, "min7"), (5, "maj7"), (7, "7"), (9, "min7")}
    | {(o, "5") for o in (0, 2, 4, 5, 7, 9)},
    True: {(0, "min"), (3, "maj"), (5, "min"), (7, "min"), (8, "maj"), (10, "maj"), (7, "maj"),
           (0, "min7"), (3, "maj7"), (5, "min7"), (7, "min7"), (8, "maj7"), (10, "7"), (7, "7")}
    | {(o, "5") for o in (0, 3, 5, 7, 8, 10)},
}


@dataclass(frozen=True)
class ChordFunction:
    """A chord's function in a key: Roman numeral (``"vi"``, ``"V7/V"``, ``"bVII"``),
    whether it is borrowed from the parallel mode, whether it is a secondary dominant."""

    numeral: str
    borrowed: bool = False
    secondary: bool = False


def _numeral(offset: int, quality: str, minor: bool) -> str:
    degree, accidental = _DEGREES[minor][offset % 12]
    base = _NUMERALS[degree]
    if quality.startswith("min"):
        base = base.lower()
    suffix = {"7": "7", "maj7": "maj7", "min7": "7", "5": "5"}.get(quality, "")
    return accidental + base + suffix


def roman_numeral(label: str, key: str) -> ChordFunction | None:
    """The function of a Harte chord in ``key`` (None for ``N`` or no key).

    Order of readings: diatonic to the key; a dominant seventh resolving a fourth up to a
    diatonic major or minor triad (``V7/x``); a chord of the parallel mode (borrowed, e.g.
    ``bVII`` or ``iv`` in major, ``IV`` in minor); a major triad resolving to a diatonic
    triad (``V/x``); otherwise the chromatic degree (``bII``, ``#iv``...). Qualities
    outside maj/min/7/maj7/min7/5 are named by their triad's degree only.
    """
    if label in ("N", "X", "") or not key or key == "N":
        return None
    root, quality, bass = _split_harte(label)
    tonic, minor = parse_key(key)
    offset = (root - tonic) % 12
    inversion = "" if bass is None else f"/{bass}"  # Harte's bass interval, kept as is
    if (offset, quality) in _DIATONIC[minor]:
        return ChordFunction(_numeral(offset, quality, minor) + inversion)
    target = (offset + 5) % 12
    target_chord = next((q for q in ("maj", "min") if (target, q) in _DIATONIC[minor]), None)
    # the chord it would resolve to, unless that is the tonic (V of the tonic is diatonic)
    resolves_to = (_numeral(target, target_chord, minor)
                   if target_chord is not None and target != 0 else None)
    if quality == "7" and resolves_to:
        return ChordFunction(f"V7/{resolves_to}", secondary=True)
    if (offset, quality) in _DIATONIC[not minor]:
        return ChordFunction(_numeral(offset, quality, minor) + inversion, borrowed=True)
    if quality == "maj" and resolves_to:
        return ChordFunction(f"V/{resolves_to}", secondary=True)
    return ChordFunction(_numeral(offset, quality if quality in _INTERVALS else "maj", minor)
                         + inversion)
