"""How far the tracked grid is heard in the music: "no steady beat" is an answer.

The beat tracker always returns a grid: a dynamic Bayesian network finds the most
likely beats even in a drone, a rubato passage or a beatless intro, and the tempo and
meter read from those beats then look certain (a near-constant beat interval, a bar HMM
whose softmax saturates). This module measures the evidence *for* the grid instead:

* **heard beats**: a tracked beat is heard when the beat network marks it
  (``HEARD_ACTIVATION``) or when the onset envelope at it stands clearly above the
  envelope between the beats (``_HEARD_ONSET_RATIO`` times its median there); drum-less
  songs are often marked weakly by the network but their notes start on the beats;
* **coverage**: the share of the music (from the first to the last time it is louder
  than the song's quiet floor, ``music_span``) spanned by beat intervals with a heard
  beat at either end; a tracker bridging a beatless intro or a free-time middle loses
  it there.

The tempo and meter confidences of the stages are scaled by the *support*, the
coverage relative to what songs with a beat throughout reach (``_FULL_COVERAGE``), so a
song that carries its beat from start to end keeps the stages' own confidences and one
whose beat is heard in a third of it keeps a third (bars are counted in beats, so they
are no surer than the beats). The grid confidence is the product of the two. The
thresholds are stated below with the sets they were read from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# HEARD_ACTIVATION: a tracked beat the network marks at least this much is heard; defined
# beside the tracker, which also uses it (the evidence for the value is there)
from songmap.rhythm.beats import HEARD_ACTIVATION, sample_at

#: ... or whose onset envelope (maximum within +-20 ms) is this many times the median
#: envelope at seven evenly spaced points between it and the next beat.
_HEARD_ONSET_RATIO = 2.0
#: Coverage that songs with a beat from start to end reach: the 5th percentile over the
#: 87 labelled songs of dev, seed 7 and fof (all have a beat throughout; quiet intros,
#: endings and breaks keep some below 1: median 0.98, minimum 0.70).
_FULL_COVERAGE = 0.9
#: Points of a beat interval where the onset envelope is compared with the beat's.
_BETWEEN = np.array([0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875])


@dataclass(frozen=True)
class GridAssessment:
    """Evidence for the tracked grid (all 0..1)."""

    heard: np.ndarray  # (beats,) bool: the beat is marked by the network or the onsets
    coverage: float  # share of the music spanned by heard beat intervals
    meter_confidence: float  # the meter stage's own, scaled by the support

    @property
    def support(self) -> float:
        """The coverage relative to songs with a beat throughout (0..1)."""
        return min(1.0, self.coverage / _FULL_COVERAGE)

    def tempo_confidence(self, raw: float) -> float:
        """The tempo stage's own confidence (``raw``) scaled by the support."""
        return float(np.clip(raw, 0.0, 1.0)) * self.support

    def grid_confidence(self, tempo_confidence: float) -> float:
        """How sure the whole grid is: the (scaled) tempo confidence x meter confidence."""
        return float(np.clip(tempo_confidence, 0.0, 1.0)) * self.meter_confidence


def heard_beats(
    beat_times: np.ndarray, beat_activation: np.ndarray, fps: float,
    onset_envelope: np.ndarray | None = None, onset_fps: float = 100.0,
) -> np.ndarray:
    """Which tracked beats (s) are heard: network probability at the beat reaches
    ``HEARD_ACTIVATION``, or the onset envelope there is ``_HEARD_ONSET_RATIO`` times
    its median between this beat and the next (the last beat uses the interval before)."""
    beats = np.asarray(beat_times, dtype=float)
    if len(beats) == 0:
        return np.zeros(0, dtype=bool)
    heard = sample_at(np.asarray(beat_activation), beats, fps) >= HEARD_ACTIVATION
    if onset_envelope is not None and len(onset_envelope) and len(beats) >= 2:
        env = np.asarray(onset_envelope, dtype=float)
        radius = max(1, round(0.02 * onset_fps))
        at = sample_at(env, beats, onset_fps, radius=radius)
        ibi = np.diff(beats)
        ibi = np.append(ibi, ibi[-1])
        between = beats[:, None] + ibi[:, None] * _BETWEEN[None, :]
        level = np.median(sample_at(env, between.ravel(), onset_fps, radius=radius)
                          .reshape(len(beats), -1), axis=1)
        heard |= at > _HEARD_ONSET_RATIO * np.maximum(level, 1e-6)
    return heard


def beat_coverage(beat_times: np.ndarray, heard: np.ndarray, music: tuple[float, float]) -> float:
    """Share of the music span ``(start, end)`` (s) covered by beat intervals with a
    heard beat at either end (a chord held over two beats leaves every other beat silent
    in a drum-less song; a beatless stretch leaves both)."""
    beats = np.asarray(beat_times, dtype=float)
    start, end = music
    if len(beats) < 2 or end <= start:
        return 0.0
    both = heard[:-1] | heard[1:]
    lo = np.clip(beats[:-1], start, end)
    hi = np.clip(beats[1:], start, end)
    return float(np.clip(np.sum((hi - lo)[both]) / (end - start), 0.0, 1.0))


def assess_grid(
    *,
    beat_times: np.ndarray,
    beat_activation: np.ndarray,
    fps: float,
    music: tuple[float, float],
    meter_confidence: float,
    onset_envelope: np.ndarray | None = None,
    onset_fps: float = 100.0,
    meter_fixed: bool = False,
) -> GridAssessment:
    """Evidence for the grid and the meter confidence it allows.

    ``meter_confidence`` is what the meter stage said on its own; it is scaled by the
    support (bars are counted in beats: no more sure than the beats are heard) unless
    ``meter_fixed`` (the user set the time signature). ``music`` is the span (s) the
    song sounds in; ``beat_activation`` the beat network's P(beat) per frame.
    """
    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 2:
        return GridAssessment(np.zeros(len(beats), dtype=bool), 0.0, 0.0)
    heard = heard_beats(beats, beat_activation, fps, onset_envelope, onset_fps)
    coverage = beat_coverage(beats, heard, music)
    meter = float(np.clip(meter_confidence, 0.0, 1.0))
    if not meter_fixed:
        meter *= min(1.0, coverage / _FULL_COVERAGE)
    return GridAssessment(heard, coverage, meter)
