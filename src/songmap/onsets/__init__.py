"""Onsets (transients): an onset envelope and the peaks picked from it."""

from songmap.onsets.envelope import (
    detect_onsets,
    loudness_curve,
    music_span,
    nearest_transients,
    onset_envelope,
    onto_attack_starts,
)

__all__ = ["detect_onsets", "loudness_curve", "music_span", "nearest_transients", "onset_envelope",
           "onto_attack_starts"]
