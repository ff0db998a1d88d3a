"""Pitch-class names, key strings and DJ key codes (Camelot, Open Key)."""

from __future__ import annotations

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
