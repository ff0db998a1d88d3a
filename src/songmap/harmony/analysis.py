"""Chords, global key and key sections of a song, decided together.

The chords are decoded with the key network's key as their prior; the key is then chosen
from the network and those chords together (``estimate_key``), the chords decoded again if
that changed the key, and key sections found from the chords (``track_key_sections``).
Where the song changes key (sections the key network confirms on their own audio) the
chords are decoded once more with each section's key as their prior, and each root's
qualities weighted as the song uses them. Last, min7 chords whose root is not heard
become the major triad on their third.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from songmap.harmony.chords import ChordSegment, recognize_chords, relabel_rootless_min7
from songmap.harmony.key import (
    KeyEstimate,
    KeySection,
    confirm_key_sections,
    estimate_key,
    track_key_sections,
)
from songmap.harmony.notation import ChordFunction, roman_numeral, spell_chord
from songmap.signals import Activations

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
    span_key_probabilities: Callable[[list[tuple[float, float]]], np.ndarray] | None = None,
) -> Harmony:
    """Chord segments, the global key and key sections (times in seconds).

    ``span_key_probabilities`` gives the key network's 24 probabilities (chromatic order)
    for each ``(start, end)`` span (s) of the audio, shape ``(spans, 24)``; key sections
    found from the chords are kept only where it confirms them
    (``confirm_key_sections``). Without it the song keeps one key: chords alone are not
    enough evidence for a key change.
    """

    def decode(key: str, sections: list[KeySection] | None = None, *,
               song_qualities: bool = False) -> list[ChordSegment]:
        return recognize_chords(
            chroma, beat_times, beat_positions, duration=duration, key=key,
            vocabulary=vocabulary, music_span=music_span,
            key_segments=[(s.start, s.end, s.label) for s in sections] if sections else None,
            song_qualities=song_qualities,
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
        spans = [(s.start, s.end) for s in sections]
        probabilities = span_key_probabilities(spans) if span_key_probabilities else np.zeros(
            (len(spans), 24))
        sections = confirm_key_sections(sections, probabilities,
                                        [(c.start, c.end, c.label) for c in chords],
                                        duration=duration, global_key=key.label)
    if sections and len(sections) == 1:  # the song's one key: as sure as the global key is
        sections = [KeySection(0.0, duration, key.label, round(key.confidence, 4))]
    # the chords reported: with each confirmed section's key as prior, and each root's
    # qualities as the song uses them. Not before: the key is chosen on chords read
    # without that habit (chosen with it, dev song 14 went from A minor to its relative
    # C major; key .975 -> .957)
    chords = decode(key.label, sections if len(sections) > 1 else None, song_qualities=True)
    # last, on the decided chords: a min7 whose root is not heard over its whole segment
    # is the major triad on its third. The keys were chosen on the decoder's reading; as
    # both readings lie in the same scales, only the tonic credit could move, and on dev
    # that moved one song to its relative key (key .975 -> .957) where both readings
    # were wrong.
    return Harmony(relabel_rootless_min7(chords, chroma), key, sections)


def key_at(sections: list[KeySection], time: float, default: str) -> str:
    """The key in force at ``time`` (s): its section's, else ``default``."""
    for s in sections:
        if s.start <= time < s.end:
            return s.label
    return default


def describe_chord(label: str, key: str) -> tuple[str, ChordFunction | None]:
    """Lead-sheet name spelled in ``key`` and the chord's function there."""
    return spell_chord(label, key), roman_numeral(label, key)
