"""Global key from the key network's 24 probabilities."""

from __future__ import annotations

import itertools
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
#: Weight of the network between a key and its relative (C major, A minor). The two share
#: one scale, so the network tells them apart by subtler cues than it tells scales apart,
#: and it is known to confuse them; between them the chords' tonic (its time, the first
#: and the last chord) counts for more. Half the weight above. The keys this changed were
#: all relative-key calls, each now the labelled key (synthetic dev 0014, seed 3 0017,
#: chorales 053 and 059); 0.1 to 0.25 give the same keys on the synthetic sets, the
#: rendered chorales and realmusic (where one coin-toss key moved, r11).
_RELATIVE_NETWORK_WEIGHT = 0.15
_QUALITY_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10),
                      "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10)}


def _in_key(root: int, quality: str, tonic: int, minor: bool, scale: set[int]) -> bool:
    """All chord tones in the key's scale; a minor key's dominant is major (harmonic
    minor), so E major belongs to A minor."""
    tones = {(root + i) % 12 for i in _QUALITY_INTERVALS[quality]}
    dominant = minor and root == (tonic + 7) % 12 and quality in ("maj", "7")
    return tones <= (scale | {(tonic + 11) % 12} if dominant else scale)


def chord_key_evidence(segments: list[tuple[float, float, str]]) -> np.ndarray:
    """Score of each of the 24 keys (chromatic order) from a chord sequence.

    Per key: 4 x the share of chord time whose notes all lie in the key's scale (a
    minor key's major dominant included, for no longer than its tonic chord sounds) + 2 x
    the share of time on the tonic chord (right mode) + 1 if the last chord is the tonic
    + 0.5 if the first one is. Music-theory weights, not fitted.
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

        def is_tonic(root: int, quality: str, tonic: int = tonic, minor: bool = minor) -> bool:
            return root == tonic and quality.startswith("min") == minor

        in_scale = sum(d for d, r, q in chords if _in_key(r, q, tonic, minor, scale))
        on_tonic = sum(d for d, r, q in chords if is_tonic(r, q))
        # A minor key's major V is a dominant only where it has a tonic to resolve to: its
        # time counts as in the key up to the tonic chord's time. Uncapped, the song's most
        # common major chord made the key a fifth below it whose tonic is never played
        # (real tracks r06 F major -> Bb minor, r18 A major/minor -> D minor).
        raised_v = sum(d for d, r, q in chords if _in_key(r, q, tonic, minor, scale)
                       and not _in_key(r, q, tonic, False, scale))
        diatonic = in_scale - raised_v + min(raised_v, on_tonic)
        score[k] = (4 * diatonic / total + 2 * on_tonic / total
                    + 1.0 * is_tonic(chords[-1][1], chords[-1][2])
                    + 0.5 * is_tonic(chords[0][1], chords[0][2]))
    return score


def _relative(index: int) -> int:
    """The relative key's index (majors 0-11, minors 12-23, by tonic pitch class)."""
    return (index + 9) % 12 + 12 if index < 12 else (index + 3) % 12


#: Each key's relative key (index, chromatic order).
_RELATIVES = np.array([_relative(i) for i in range(24)])


def _split_relatives(p: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """``p`` with each key's and its relative's summed mass shared out again between the
    two by ``logit`` (a softmax over the pair): how likely each scale is stays as ``p``
    says; which of its two tonics, ``logit`` says."""
    return (p + p[_RELATIVES]) / (1.0 + np.exp(logit[_RELATIVES] - logit))


def estimate_key(
    key_probabilities: np.ndarray, chord_segments: list[tuple[float, float, str]] | None = None
) -> KeyEstimate:
    """The key from the network's 24 probabilities (chromatic order), combined with the
    chords' evidence when ``chord_segments`` are given; confidence is a softmax share.

    Where the chords alone favour another key (the network overruled them), the
    confidence is at most the chords' own share of the chosen key (softmax of
    ``chord_key_evidence``): the key then disagrees with the song's most common chords,
    and its confidence says so (real track r19: A minor at 0.99 from the network, A major
    from its chords, 0.68 -> 0.19). Not when they favour the relative key: a relative
    major and minor share every diatonic chord, so the chords' share between them says
    little (the bundled example, C Am F G looped and ending on A minor, fell from 0.78 to
    0.28). On the synthetic dev songs the chords never favour another key than the one
    chosen, so their confidences are unchanged.

    Each key and its relative then share their summed probability again by the chords'
    evidence and the network at ``_RELATIVE_NETWORK_WEIGHT`` (``_split_relatives``): the
    scale is weighed by both at full weight, the tonic within it by the chords more.
    """
    p = np.asarray(key_probabilities, dtype=float)
    total = p.sum()
    if total <= 0 or not np.isfinite(total):
        return KeyEstimate("N", 0.0, None, None, p)
    p = p / total
    chords_share = None
    if chord_segments:
        evidence = chord_key_evidence(chord_segments)
        if evidence.any():
            heard = np.log(p + 1e-4)
            logit = _NETWORK_WEIGHT * heard + evidence
            p = np.exp(logit - logit.max())
            p /= p.sum()
            p = _split_relatives(p, _RELATIVE_NETWORK_WEIGHT * heard + evidence)
            chords_share = np.exp(evidence - evidence.max())
            chords_share /= chords_share.sum()
    order = np.argsort(p)[::-1]
    first, second = int(order[0]), int(order[1])
    confidence = float(p[first])
    if chords_share is not None and int(np.argmax(chords_share)) not in (first, _relative(first)):
        confidence = min(confidence, float(chords_share[first]))
    return KeyEstimate(
        key_label(first % 12, first >= 12),
        confidence,
        key_label(second % 12, second >= 12),
        float(p[second]),
        p,
    )


@dataclass(frozen=True)
class KeySection:
    """One stretch of the song in one key: times in seconds, mir_eval key label."""

    start: float
    end: float
    label: str
    confidence: float


#: Evidence weights per bar, the same music-theory weights as ``chord_key_evidence``:
#: chord tones all in the key's scale, the tonic chord, the dominant (V, V7).
_IN_SCALE, _ON_TONIC, _ON_DOMINANT = 4.0, 2.0, 1.0
#: Per-bar bonus for the song's global key, so that stretches whose chords fit several
#: keys (relative keys share every chord) stay in it.
_GLOBAL_BONUS = 0.5
#: Cost of a key change in units of bars of evidence: a bar whose chords all leave the
#: old key's scale scores ~4 for the new key, so a detour must outlast ~2 x 8 / 4 = 4
#: bars to become a key section; one or two bars of secondary dominants or borrowed
#: chords do not. Set with the global bonus on the synthetic key-change songs of
#: benchmarks/corpus/make_corpus.py --modulate (seed 18), checked for false changes on dev.
_KEY_CHANGE_COST = 8.0
#: Least mean evidence per bar by which a section's key must beat the global key (one
#: chord in four leaving the global key's scale is worth 1).
_MIN_SECTION_GAIN = 1.0
#: Least share of a key section's chord time whose chords lie in its key's scale.
_MIN_SECTION_FIT = 0.8
#: Shortest key section (bars): a phrase. Shorter runs go to their stronger neighbour.
_MIN_SECTION_BARS = 8


def _scale_of(k: int) -> tuple[int, bool, set[int]]:
    tonic, minor = k % 12, k >= 12
    major_tonic = (tonic + 3) % 12 if minor else tonic
    return tonic, minor, {(major_tonic + i) % 12 for i in (0, 2, 4, 5, 7, 9, 11)}


def bar_key_evidence(
    chord_segments: list[tuple[float, float, str]], bar_starts: np.ndarray, bar_ends: np.ndarray,
    *, weights: tuple[float, float, float] = (_IN_SCALE, _ON_TONIC, _ON_DOMINANT),
) -> np.ndarray:
    """Evidence for each of the 24 keys (chromatic order) in each bar, shape ``(bars, 24)``:
    per chord, its share of the bar times the in-scale, tonic and dominant ``weights``.
    The dominant may take the minor key's raised leading tone (E major in A minor)."""
    in_scale_w, tonic_w, dominant_w = weights
    from songmap.harmony.notation import pitch_class

    chords = []
    for start, end, label in chord_segments:
        if label == "N" or ":" not in label:
            continue
        root, quality = label.split(":", 1)
        quality = quality.split("/")[0]
        intervals = _QUALITY_INTERVALS.get(quality, (0, 7) if quality == "5" else None)
        if intervals is None:
            continue
        r = pitch_class(root)
        chords.append((start, end, r, quality, {(r + i) % 12 for i in intervals}))
    keys = [_scale_of(k) for k in range(24)]
    out = np.zeros((len(bar_starts), 24))
    for b, (a, z) in enumerate(zip(bar_starts, bar_ends)):
        span = max(z - a, 1e-9)
        for start, end, r, quality, tones in chords:
            share = (min(z, end) - max(a, start)) / span
            if share <= 0:
                continue
            for k, (tonic, minor, scale) in enumerate(keys):
                dominant = r == (tonic + 7) % 12 and quality in ("maj", "7", "5")
                leading = {(tonic + 11) % 12} if minor and dominant else set()
                score = in_scale_w * (tones <= scale | leading)
                if r == tonic and (quality == "5" or quality.startswith("min") == minor):
                    score += tonic_w
                score += dominant_w * dominant
                out[b, k] += share * score
    return out


def track_key_sections(
    chord_segments: list[tuple[float, float, str]],
    bar_starts: np.ndarray,
    *,
    duration: float,
    global_key: str,
    change_cost: float | None = None,
    min_bars: int | None = None,
) -> list[KeySection]:
    """Key sections over the song from its chords, on bar lines (``bar_starts`` in s).

    A Viterbi pass over bars and the 24 keys: each bar scores its chords' fit to a key
    (``bar_key_evidence``) plus a bonus for ``global_key``; changing key costs
    ``change_cost`` (default ``_KEY_CHANGE_COST``). Sections shorter than ``min_bars`` merge into a neighbour. One
    section over the whole song (labelled ``global_key``) when the key never changes.
    """
    change_cost = _KEY_CHANGE_COST if change_cost is None else change_cost
    min_bars = _MIN_SECTION_BARS if min_bars is None else min_bars
    starts = np.asarray(bar_starts, dtype=float)
    starts = starts[(starts >= 0) & (starts < duration)]
    if global_key == "N":
        return []
    whole = [KeySection(0.0, float(duration), global_key, 1.0)]
    if len(starts) < 2 * min_bars:
        return whole
    ends = np.append(starts[1:], duration)
    evidence = bar_key_evidence(chord_segments, starts, ends)
    from songmap.harmony.notation import parse_key

    g_tonic, g_minor = parse_key(global_key)
    g = g_tonic + 12 * g_minor
    emit = evidence.copy()
    emit[:, g] += _GLOBAL_BONUS
    path = _viterbi_keys(emit, change_cost)
    path = _merge_short_runs(path, emit, min_bars)
    fit = bar_key_evidence(chord_segments, starts, ends, weights=(1.0, 0.0, 0.0))
    voiced = np.array([sum(max(0.0, min(z, e) - max(a, s)) for s, e, lab in chord_segments
                           if lab != "N") / max(z - a, 1e-9) for a, z in zip(starts, ends)])
    path = _drop_weak_runs(path, evidence, fit, voiced, g)
    runs = _runs(path)
    if len(runs) == 1:
        return [KeySection(0.0, float(duration), global_key, 1.0)]
    out = []
    for i, (a, z, k) in enumerate(runs):
        total = evidence[a:z].sum(axis=0)
        share = np.exp((total - total.max()) / max(z - a, 1))
        start = 0.0 if i == 0 else float(starts[a])
        end = float(duration) if i == len(runs) - 1 else float(starts[z])
        out.append(KeySection(start, end, key_label(k % 12, k >= 12),
                              round(float(share[k] / share.sum()), 4)))
    return out


def _drop_weak_runs(path: np.ndarray, evidence: np.ndarray, fit: np.ndarray,
                    voiced: np.ndarray, global_k: int) -> np.ndarray:
    """Return to the global key each run whose key does not hold its bars: less than
    ``_MIN_SECTION_GAIN`` more evidence per bar than the global key, or chords in the
    key's scale for less than ``_MIN_SECTION_FIT`` of their time. Real recordings' chords
    fit their key's scale ~65 % of the time (clean synthetic songs ~95 %), so with noisy
    chords some other key always wins a stretch by chance; a key section is a stretch
    that is in a key, and beats the song's key by a chord in four or more."""
    path = path.copy()
    for a, z, k in _runs(path):
        if k == global_k:
            continue
        gain = (evidence[a:z, k] - evidence[a:z, global_k]).mean()
        in_scale = fit[a:z, k].sum() / max(voiced[a:z].sum(), 1e-9)
        if gain < _MIN_SECTION_GAIN or in_scale < _MIN_SECTION_FIT:
            path[a:z] = global_k
    return path


def _viterbi_keys(emit: np.ndarray, change_cost: float) -> np.ndarray:
    n = len(emit)
    delta = emit[0].copy()
    back = np.zeros(emit.shape, dtype=np.int32)
    for i in range(1, n):
        best = int(delta.argmax())
        switch = delta[best] - change_cost
        use = switch > delta
        back[i] = np.where(use, best, np.arange(24))
        delta = np.where(use, switch, delta) + emit[i]
    path = np.empty(n, dtype=int)
    path[-1] = int(delta.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _runs(path: np.ndarray) -> list[tuple[int, int, int]]:
    """(first bar, end bar exclusive, key) per run of equal keys."""
    cuts = [0] + [i for i in range(1, len(path)) if path[i] != path[i - 1]] + [len(path)]
    return [(a, z, int(path[a])) for a, z in itertools.pairwise(cuts)]


def _merge_short_runs(path: np.ndarray, emit: np.ndarray, min_bars: int) -> np.ndarray:
    """Give each run shorter than ``min_bars`` to the neighbouring key that explains its
    bars better, shortest run first, until every run is long enough or one is left."""
    path = path.copy()
    while True:
        runs = _runs(path)
        short = [r for r in runs if r[1] - r[0] < min_bars]
        if len(runs) == 1 or not short:
            return path
        a, z, _ = min(short, key=lambda r: r[1] - r[0])
        i = runs.index(next(r for r in runs if r[0] == a))
        options = [runs[j][2] for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        path[a:z] = max(options, key=lambda k: emit[a:z, k].sum())


#: A key the network gives no more than a uniform 1 in 24 is one it does not hear in
#: that stretch of audio, however it ranks against the global key.
_NETWORK_CHANCE = 1.0 / 24.0


def _relative_keys(a: int, b: int) -> bool:
    """Keys (chromatic index) of opposite mode sharing one scale (C major, A minor)."""
    return a != b and _scale_of(a)[2] == _scale_of(b)[2] and (a >= 12) != (b >= 12)


def confirm_key_sections(
    sections: list[KeySection],
    section_probabilities: np.ndarray,
    chord_segments: list[tuple[float, float, str]],
    *,
    global_key: str,
    duration: float,
) -> list[KeySection]:
    """Keep the key sections (from ``track_key_sections``) that the key network confirms.

    ``section_probabilities`` (sections x 24, chromatic order) are the network's key
    probabilities for each section's audio on its own. A section in another key than
    ``global_key`` stays only if the network, too, prefers the section's key to the
    global key there and gives it more than chance (1/24): the chords' evidence and the
    network's are then independent (the network hears the audio, not the chord labels),
    and on real recordings the chords alone found a section for a neighbouring key on
    16 of 21 tracks. The exception is a relative key (A minor against C major): the two
    share every chord and the network is known to confuse them (``estimate_key``), so
    there the chords' tonic and dominant evidence decides alone. Sections that fail
    return to the global key. Each section's confidence is its key's share when the
    section's own network probabilities and chords decide its key as ``estimate_key``
    decides the song's. One section over the whole song when none is confirmed.
    """
    from songmap.harmony.notation import parse_key

    g_tonic, g_minor = parse_key(global_key)
    g = g_tonic + 12 * g_minor
    kept: list[tuple[KeySection, np.ndarray]] = []
    for section, p in zip(sections, np.asarray(section_probabilities, dtype=float)):
        tonic, minor = parse_key(section.label)
        k = tonic + 12 * minor
        total = p.sum()
        p = p / total if total > 0 else p
        heard = total > 0 and p[k] > p[g] and p[k] > _NETWORK_CHANCE
        confirmed = heard or (total > 0 and _relative_keys(k, g))
        label = section.label if k == g or confirmed else global_key
        if kept and kept[-1][0].label == label:
            prev, prev_p = kept[-1]
            weight = (prev.end - prev.start, section.end - section.start)
            merged_p = (weight[0] * prev_p + weight[1] * p) / max(sum(weight), 1e-9)
            kept[-1] = (KeySection(prev.start, section.end, label, 0.0), merged_p)
        else:
            kept.append((KeySection(section.start, section.end, label, 0.0), p))
    if len(kept) < 2:
        return [KeySection(0.0, float(duration), global_key, 1.0)]
    out = []
    for section, p in kept:
        chords = [(max(s, section.start), min(e, section.end), lab) for s, e, lab in chord_segments
                  if min(e, section.end) > max(s, section.start)]
        estimate = estimate_key(p, chords)
        tonic, minor = parse_key(section.label)
        share = estimate.probabilities[tonic + 12 * minor] if p.sum() > 0 else 0.0
        out.append(KeySection(section.start, section.end, section.label, round(float(share), 4)))
    return out
