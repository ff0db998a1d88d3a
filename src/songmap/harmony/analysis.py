"""Chords, global key and key sections of a song, decided together.

The chords are decoded with the key network's key as their prior; the key is then chosen
from the network and those chords together (``estimate_key``), the chords decoded again if
that changed the key, and key sections found from the chords (``track_key_sections``).
Where the song changes key the chords are decoded once more with each section's key as
their prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from songmap.harmony.chords import ChordSegment, recognize_chords
from songmap.harmony.key import KeyEstimate, KeySection, estimate_key, track_key_sections
from songmap.harmony.notation import ChordFunction, roman_numeral, spell_chord
from songmap.models.registry import Activations

#: Bar length (s) assumed for key sections when there are no downbeats to count bars on.
_FALLBACK_BAR_S = 2.0


@dataclass(frozen=True)
class Harmony:
    chords: list[ChordSegment]
    key: KeyEstimate
    key_sections: list[KeySection]


def analyze_harmony(
    chroma: Activations,
    key_probabilities: np.ndarray,
    beat_times: np.ndarray,
    beat_positions: np.ndarray,
    *,
    duration: float,
    vocabulary: str = "sevenths",
    music_span: tuple[float, float] | None = None,
) -> Harmony:
    """Chord segments, the global key and key sections (times in seconds)."""

    def decode(key: str, sections: list[KeySection] | None = None) -> list[ChordSegment]:
        return recognize_chords(
            chroma, beat_times, beat_positions, duration=duration, key=key,
            vocabulary=vocabulary, music_span=music_span,
            key_segments=[(s.start, s.end, s.label) for s in sections] if sections else None,
        )

    net_key = estimate_key(key_probabilities).label
    chords = decode(net_key)
    key = estimate_key(key_probabilities, [(c.start, c.end, c.label) for c in chords])
    if key.label != net_key:
        chords = decode(key.label)
    beats = np.asarray(beat_times, dtype=float)
    downbeats = beats[np.asarray(beat_positions) == 1] if len(beats) else beats
    if len(downbeats) < 2:
        downbeats = np.arange(0.0, duration, _FALLBACK_BAR_S)
    sections = track_key_sections([(c.start, c.end, c.label) for c in chords], downbeats,
                                  duration=duration, global_key=key.label)
    if len(sections) > 1:
        chords = decode(key.label, sections)
    elif sections:  # the song's one key: as sure as the global key is
        sections = [KeySection(0.0, duration, key.label, round(key.confidence, 4))]
    return Harmony(chords, key, sections)


def key_at(sections: list[KeySection], time: float, default: str) -> str:
    """The key in force at ``time`` (s): its section's, else ``default``."""
    for s in sections:
        if s.start <= time < s.end:
            return s.label
    return default


def describe_chord(label: str, key: str) -> tuple[str, ChordFunction | None]:
    """Lead-sheet name spelled in ``key`` and the chord's function there."""
    return spell_chord(label, key), roman_numeral(label, key)
