"""numba kernel of the online beat tracker (imported lazily: numba is slow to import)."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(nogil=True, cache=True)
def forward_beats(act, alpha, first, intervals, beat_len, trans, obs_lambda, out_tempo,
                  out_pos, out_beat_mass):
    """Run the beat HMM's forward filter over ``act`` (frames,), from ``alpha`` (states,)
    (updated in place, normalised to sum 1 after each frame).

    The state space is madmom's bar-pointer beat model: tempo ``i`` has ``intervals[i]``
    positions; the position advances by one per frame; from the last position of tempo
    ``i`` the chain moves to the first position of tempo ``j`` with ``trans[i, j]``. The
    first ``beat_len[i]`` positions are beat states, observed with ``act``; the others
    with ``(1 - act) / (obs_lambda - 1)``. For each frame the most probable state's tempo
    index and position go to ``out_tempo`` / ``out_pos``, and the probability of being in
    any beat state to ``out_beat_mass``.
    """
    n_tempi = intervals.shape[0]
    last_v = np.empty(n_tempi)
    for t in range(act.shape[0]):
        a = act[t]
        other = (1.0 - a) / (obs_lambda - 1.0)
        for i in range(n_tempi):
            last_v[i] = alpha[first[i] + intervals[i] - 1]
        for i in range(n_tempi):
            f = first[i]
            for p in range(intervals[i] - 1, 0, -1):
                alpha[f + p] = alpha[f + p - 1]
        for j in range(n_tempi):
            s = 0.0
            for i in range(n_tempi):
                s += last_v[i] * trans[i, j]
            alpha[first[j]] = s
        total = 0.0
        beat_mass = 0.0
        best = -1.0
        best_i = 0
        best_p = 0
        for i in range(n_tempi):
            f = first[i]
            for p in range(intervals[i]):
                v = alpha[f + p] * (a if p < beat_len[i] else other)
                alpha[f + p] = v
                total += v
                if p < beat_len[i]:
                    beat_mass += v
                if v > best:
                    best = v
                    best_i = i
                    best_p = p
        if total > 0.0:
            for s_ in range(alpha.shape[0]):
                alpha[s_] /= total
        else:  # no state explains the frame: start again from uniform
            for s_ in range(alpha.shape[0]):
                alpha[s_] = 1.0 / alpha.shape[0]
            beat_mass = 0.0
            total = 1.0
        out_tempo[t] = best_i
        out_pos[t] = best_p
        out_beat_mass[t] = beat_mass / total if total > 0.0 else 0.0
