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


#: Weight of the key network's log-probabilities against the chord evidence. The network
#: alone confuses relative and fifth-related keys; which chords are played, for how
#: long, and which one ends the piece tell them apart.
_NETWORK_WEIGHT = 0.3
_QUALITY_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10),
                      "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10)}


def chord_key_evidence(segments: list[tuple[float, float, str]]) -> np.ndarray:
    """Score of each of the 24 keys (chromatic order) from a chord sequence.

    Per key: 4 x the share of chord time whose notes all lie in the key's scale
    + 2 x the share of time on the tonic chord (right mode) + 1 if the last chord is the
    tonic + 0.5 if the first one is. Music-theory weights, not fitted.
    """
    from songmap.harmony.notation import pitch_class

    chords = []
    for start, end, label in segments:
        if label == "N" or ":" not in label:
            continue
        root, quality = label.split(":", 1)
        quality = quality.split("/")[0]
        if quality not in _QUALITY_INTERVALS:
            continue
        chords.append((end - start, pitch_class(root), quality))
    score = np.zeros(24)
    total = sum(d for d, _, _ in chords)
    if total <= 0:
        return score
    for k in range(24):
        tonic, minor = k % 12, k >= 12
        major_tonic = (tonic + 3) % 12 if minor else tonic
        scale = {(major_tonic + i) % 12 for i in (0, 2, 4, 5, 7, 9, 11)}

        def is_tonic(root: int, quality: str) -> bool:
            return root == tonic and quality.startswith("min") == minor

        diatonic = sum(d for d, r, q in chords
                       if all((r + i) % 12 in scale for i in _QUALITY_INTERVALS[q]))
        on_tonic = sum(d for d, r, q in chords if is_tonic(r, q))
        score[k] = (4 * diatonic / total + 2 * on_tonic / total
                    + 1.0 * is_tonic(chords[-1][1], chords[-1][2])
                    + 0.5 * is_tonic(chords[0][1], chords[0][2]))
    return score


def estimate_key(
    key_probabilities: np.ndarray, chord_segments: list[tuple[float, float, str]] | None = None
) -> KeyEstimate:
    """The key from the network's 24 probabilities (chromatic order), combined with the
    chords' evidence when ``chord_segments`` are given; confidence is a softmax share."""
    p = np.asarray(key_probabilities, dtype=float)
    total = p.sum()
    if total <= 0 or not np.isfinite(total):
        return KeyEstimate("N", 0.0, None, None, p)
    p = p / total
    if chord_segments:
        evidence = chord_key_evidence(chord_segments)
        if evidence.any():
            logit = _NETWORK_WEIGHT * np.log(p + 1e-4) + evidence
            p = np.exp(logit - logit.max())
            p /= p.sum()
    order = np.argsort(p)[::-1]
    first, second = int(order[0]), int(order[1])
    return KeyEstimate(
        key_label(first % 12, first >= 12),
        float(p[first]),
        key_label(second % 12, second >= 12),
        float(p[second]),
        p,
    )
