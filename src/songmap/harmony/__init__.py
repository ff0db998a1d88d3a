"""Key and chords from the key network and deep chroma."""

from songmap.harmony.chords import ChordSegment, bar_chords, recognize_chords
from songmap.harmony.key import KeyEstimate, estimate_key

__all__ = ["ChordSegment", "KeyEstimate", "bar_chords", "estimate_key", "recognize_chords"]
