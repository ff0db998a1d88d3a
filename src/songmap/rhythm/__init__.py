"""Beats, bars, meter and tempo from the beat/downbeat network's activations."""

from songmap.rhythm.beats import track_beats
from songmap.rhythm.meter import MeterDecision, decide_meter
from songmap.rhythm.tempo import TempoEstimate, estimate_tempo

__all__ = [
    "MeterDecision",
    "TempoEstimate",
    "decide_meter",
    "estimate_tempo",
    "track_beats",
]
