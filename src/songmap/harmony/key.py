"""Global key from the key network's 24 probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from songmap.harmony.notation import key_label

#: madmom's key order: A major .. G# major, then A minor .. G# minor.
_MADMOM_TONICS = [(9 + i) % 12 for i in range(12)]


@dataclass(frozen=True)
class KeyEstimate:
    label: str
    confidence: float
    runner_up: str | None
    runner_up_confidence: float | None
    probabilities: np.ndarray  # (24,) C major..B major, C minor..B minor


def madmom_key_order_to_chromatic(prob: np.ndarray) -> np.ndarray:
    """Reorder madmom's 24 key probabilities to C major..B major, C minor..B minor."""
    out = np.zeros(24)
    for i, tonic in enumerate(_MADMOM_TONICS):
        out[tonic] = prob[i]
        out[12 + tonic] = prob[12 + i]
    return out


def estimate_key(key_probabilities: np.ndarray) -> KeyEstimate:
    """Most probable key, its probability, and the runner-up (chromatic order input)."""
    p = np.asarray(key_probabilities, dtype=float)
    total = p.sum()
    if total <= 0 or not np.isfinite(total):
        return KeyEstimate("N", 0.0, None, None, p)
    p = p / total
    order = np.argsort(p)[::-1]
    first, second = int(order[0]), int(order[1])
    return KeyEstimate(
        key_label(first % 12, first >= 12),
        float(p[first]),
        key_label(second % 12, second >= 12),
        float(p[second]),
        p,
    )
