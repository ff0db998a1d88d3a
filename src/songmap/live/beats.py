"""Causal beat tracking: a forward (filtering) pass of madmom's beat HMM.

The offline tracker (``songmap.rhythm.viterbi``) decodes the whole song's best path; live,
only the past is known, so this keeps the forward probability of every (tempo, position)
state of the same model (Krebs, Böck, Widmer 2015: tempi 55-215 BPM at 100 fps,
transition lambda 100, observation lambda 16) and, as madmom's online
``DBNBeatTrackingProcessor`` does, reports a beat on the first frame whose most probable
state is a beat state, at least one shortest beat period (60 / max BPM) after the last.
The state is a fixed-size vector (5.6k floats): memory does not grow with the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from songmap.rhythm.viterbi import beat_state_model


@dataclass(frozen=True)
class TrackedBeat:
    """A beat reported by ``OnlineBeatTracker``: ``time`` (s), the tempo of the most
    probable state (BPM), and ``confidence``: the probability of being in a beat state
    on that frame (0..1)."""

    time: float
    bpm: float
    confidence: float


class OnlineBeatTracker:
    """Beats from a beat activation fed frame block by frame block."""

    def __init__(self, *, fps: float = 100.0, min_bpm: float = 55.0, max_bpm: float = 215.0,
                 transition_lambda: float = 100.0, observation_lambda: int = 16) -> None:
        self.fps = fps
        self.max_bpm = max_bpm
        intervals, beat_len, log_trans, has = beat_state_model(
            min_bpm=min_bpm, max_bpm=max_bpm, fps=fps, transition_lambda=transition_lambda,
            observation_lambda=observation_lambda)
        self.intervals = intervals
        self.beat_len = beat_len
        self.trans = np.where(has, np.exp(log_trans), 0.0)
        self.first = np.concatenate([[0], np.cumsum(intervals)[:-1]]).astype(np.int64)
        self.obs_lambda = float(observation_lambda)
        self.alpha = np.full(int(intervals.sum()), 1.0 / intervals.sum())
        #: the start state (madmom's: every state equally likely), for ``restart``
        self._start = self.alpha.copy()
        #: frames seen so far
        self.frame = 0
        #: the last beat reported (s); none yet, so that a song's first beat, in its
        #: first 0.28 s, is not held back by one before the stream began (madmom's
        #: online tracker starts at 0 s: dev songs that start at once lost their first
        #: beat, 0.03-0.2 s)
        self._last_beat = -np.inf
        #: tempo (BPM) of the most probable state after the last frame, and its share of
        #: the probability (states within 4 % of that tempo)
        self.bpm = 0.0
        self.bpm_confidence = 0.0

    def step(self, activation: np.ndarray) -> list[TrackedBeat]:
        """The beats found in the next frames' ``activation`` (0..1, ``(frames,)``)."""
        from songmap.live._forward import forward_beats

        act = np.clip(np.asarray(activation, dtype=np.float64), 1e-5, 1.0 - 1e-5)
        n = len(act)
        if n == 0:
            return []
        tempo = np.empty(n, np.int64)
        pos = np.empty(n, np.int64)
        mass = np.empty(n)
        forward_beats(act, self.alpha, self.first, self.intervals, self.beat_len, self.trans,
                      self.obs_lambda, tempo, pos, mass)
        beats = []
        in_beat = pos < self.beat_len[tempo]
        for k in np.flatnonzero(in_beat):
            t = (self.frame + k) / self.fps
            if t >= self._last_beat + 60.0 / self.max_bpm:
                self._last_beat = t
                beats.append(TrackedBeat(t, 60.0 * self.fps / float(self.intervals[tempo[k]]),
                                         float(mass[k])))
        self.frame += n
        best = int(tempo[-1])
        self.bpm = 60.0 * self.fps / float(self.intervals[best])
        per_tempo = np.add.reduceat(self.alpha, self.first)
        near = np.abs(self.intervals / self.intervals[best] - 1.0) <= 0.04
        self.bpm_confidence = float(per_tempo[near].sum())
        return beats

    def restart(self) -> None:
        """Back to the start state: what the frames so far said about tempo and phase is
        forgotten (the frame count and the last beat stay). For the stretch before the
        music: frames without a beat are evidence for the slowest tempo, whose states
        are beat states for the smallest share of a period, so a filter that has heard
        seconds of silence sits at 55 BPM when the music starts and leaves it only
        beats later."""
        self.alpha[:] = self._start

    def favour_tempo(self, bpm: float, *, width: float = 0.1, floor: float = 0.05,
                     inject: float = 1e-3) -> None:
        """Pull the filter towards tempo ``bpm`` (from slower, surer evidence: the
        offline analysis of the last seconds). Tempo ``x`` keeps the share
        ``max(g, floor)`` of its probability, ``g = exp(-0.5 (ln(x / bpm) / width)^2)``,
        and ``inject`` of the total is spread over the states in proportion to ``g``, so
        that a tempo the filter had ruled out (an octave away) can come back if the
        activation agrees. The phase stays the filter's own."""
        tempi = 60.0 * self.fps / self.intervals
        g = np.exp(-0.5 * (np.log(tempi / bpm) / width) ** 2)
        self.alpha *= np.repeat(np.maximum(g, floor), self.intervals)
        self.alpha /= self.alpha.sum()
        spread = np.repeat(g / self.intervals, self.intervals)
        if spread.sum() > 0:
            self.alpha = (1.0 - inject) * self.alpha + inject * spread / spread.sum()

    def favour_grid(self, bpm: float, next_beat_s: float, *, width: float = 0.1,
                    phase_width_s: float = 0.025, floor: float = 0.05,
                    inject: float = 1e-3) -> None:
        """Pull the filter towards a beat grid of tempo ``bpm`` whose next beat falls at
        ``next_beat_s`` (s, on this tracker's clock; from surer but later evidence: the
        offline analysis of the last seconds, extrapolated). As ``favour_tempo``, with a
        state's weight also falling with the distance (s, circular in its beat period)
        between the beat it expects next and ``next_beat_s``."""
        tempi = 60.0 * self.fps / self.intervals
        g_tempo = np.exp(-0.5 * (np.log(tempi / bpm) / width) ** 2)
        # the state after frame ``self.frame - 1`` at position p expects its next beat
        # (position 0) in ``interval - p`` frames
        pos = np.arange(self.alpha.size) - np.repeat(self.first, self.intervals)
        n = np.repeat(self.intervals, self.intervals)
        expected_s = (self.frame - 1 + (n - pos)) / self.fps
        period_s = n / self.fps
        d = np.abs(expected_s - next_beat_s) % period_s
        d = np.minimum(d, period_s - d)
        g = np.repeat(g_tempo, self.intervals) * np.exp(-0.5 * (d / phase_width_s) ** 2)
        self.alpha *= np.maximum(g, floor)
        self.alpha /= self.alpha.sum()
        if g.sum() > 0:
            self.alpha = (1.0 - inject) * self.alpha + inject * g / g.sum()
