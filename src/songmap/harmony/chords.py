"""Chords decoded on the beat grid from deep chroma.

Deep chroma (Korzeniowski & Widmer 2016) is averaged between consecutive beats; a
Viterbi pass over those beat segments picks one chord per segment from binary pitch
templates plus ``N``. Changing chord costs less on a bar line than inside a bar, and
chords diatonic to the key in force (the song's, or its key section's) get a small bonus,
which is what lets a bar hold one or two chords.

The vocabulary beyond the plain triads has to be earned by the chroma of each segment:

- a seventh chord only where its seventh is heard as sounding, judged against the triad
  it extends: a likelihood-ratio test of the seventh's level between the triad tones'
  level and the non-chord tones' level, which must beat the prior odds of the triad over
  that seventh chord. A refused seventh chord's score goes to the triad of its three
  strongest tones;
- a power chord (Harte ``X:5``) only where both thirds are heard as absent, rather than
  guessing major or minor;
- the prior odds are how often each quality occurs in annotated pop music
  (``QUALITY_SHARE``), not in the synthetic dev songs, which use sevenths by design.

A min7 read where a major triad sounds with its sixth (``Bb:min7`` over Db major) passes
the seventh test, since its seventh (Ab) sounds. Its root is tested too, once the chords
are decoded (``relabel_rootless_min7``), on the chroma of the whole chord segment: per
beat the test also turned real min7 chords with a quiet root on some beats into their
relative major (dev majmin -0.012).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from songmap.harmony.notation import PITCH_NAMES
from songmap.signals import Activations, segment_means

_QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "5": (0, 7),
}
_VOCABULARIES = {"majmin": ("maj", "min", "5"),
                 "sevenths": ("maj", "min", "7", "maj7", "min7", "5")}
#: Quality a seventh chord or power chord is tested against (the triad it extends or
#: would otherwise be read as).
_BASE = {"7": "maj", "maj7": "maj", "min7": "min"}

#: Approximate share of annotated chord time per quality in the McGill Billboard corpus
#: (Burgoyne, Wild & Fujinaga, ISMIR 2011; Jiang et al., ISMIR 2019 report the same
#: corpus's long tail: the commonest 10 % of its 230 qualities cover 93.9 % of the time).
#: Major and minor triads hold most of it; each seventh quality a few per cent; power
#: chords ~3 %. Only ratios are used: the prior odds a richer reading must beat.
QUALITY_SHARE = {"maj": 0.50, "min": 0.19, "7": 0.08, "min7": 0.07, "maj7": 0.04, "5": 0.03}
#: Floor of the chroma level's spread (deep chroma is 0..1): keeps the likelihood ratio
#: from calling a tone "sounding" on a few hundredths of difference in clean chroma.
_MIN_SPREAD = 0.1

#: Scale of the cosine similarity in the log-emission (sharper = trusts chroma more).
_SHARPNESS = 12.0
#: Mean misfit (1 - cosine of each beat segment's chroma to its best template) up to
#: which ``_SHARPNESS`` applies as it is: about the 90th percentile of the synthetic dev
#: songs, where it was set (their misfit: median 0.029, max 0.060; seed-7 up to 0.078;
#: real tracks 0.024 to 0.164, distorted metal 0.12). See ``emission_sharpness``.
_CLEAN_MISFIT = 0.05
#: Weight of the song's own quality per root (``song_quality_prior``) against the
#: chroma, per beat: at 0.5 a quality the song gave a tenth of the root's time costs
#: ~1.1 a beat, which a clean triad's other third (12 x 0.33 = 4) overrides and a
#: doubtful one does not. Chosen on dev and seed-7 (1.0 cost dev majmin .004 and
#: sevenths .016; 0.5 costs .002 and .008).
_SONG_QUALITY_WEIGHT = 0.5
#: Beats of corpus-share pseudo-counts per root in ``song_quality_prior``: one bar.
_SONG_PRIOR_BEATS = 4.0
#: Log-penalty for a chord change inside a bar, and on a bar line.
_CHANGE_IN_BAR = 3.0
_CHANGE_ON_BAR = 1.0
#: Log-bonus per beat for chords built on the key's scale.
_DIATONIC_BONUS = 0.3
#: Chroma whose strongest pitch class is below this is heard as no chord.
_SILENT = 0.15


@dataclass(frozen=True)
class ChordSegment:
    start: float
    end: float
    label: str
    confidence: float


def chord_templates(vocabulary: str = "sevenths") -> tuple[list[str], np.ndarray]:
    """Harte labels and unit-norm pitch-class templates, shape ``(chords, 12)``."""
    labels, rows = [], []
    for quality in _VOCABULARIES[vocabulary]:
        for root in range(12):
            t = np.zeros(12)
            t[[(root + i) % 12 for i in _QUALITIES[quality]]] = 1.0
            labels.append(f"{PITCH_NAMES[root]}:{quality}")
            rows.append(t / np.linalg.norm(t))
    return labels, np.array(rows)


def _diatonic_mask(labels: list[str], key: str | None) -> np.ndarray:
    """1 for chords whose tones all lie in ``key``'s scale (minor: natural minor plus the
    raised leading tone of its dominant), 0 otherwise; one more 0 for N."""
    mask = np.zeros(len(labels) + 1)
    if not key or key == "N":
        return mask
    from songmap.harmony.notation import parse_key

    tonic, minor = parse_key(key)
    major_tonic = (tonic + 3) % 12 if minor else tonic
    scale = {(major_tonic + i) % 12 for i in (0, 2, 4, 5, 7, 9, 11)}
    for j, label in enumerate(labels):
        root_name, quality = label.split(":")
        root = PITCH_NAMES.index(root_name)
        tones = {(root + i) % 12 for i in _QUALITIES[quality]}
        dominant = minor and root == (tonic + 7) % 12 and quality in ("maj", "7")
        if tones <= scale or (dominant and tones <= scale | {(tonic + 11) % 12}):
            mask[j] = 1.0
    return mask


def _key_prior(labels: list[str], centres: np.ndarray, key: str | None,
               key_segments: Sequence[tuple[float, float, str]] | None) -> np.ndarray:
    """Diatonic mask per segment (shape ``(segments, chords + 1)``): of the key section
    holding the segment's centre (s), else of ``key``."""
    prior = np.tile(_diatonic_mask(labels, key), (len(centres), 1))
    for start, end, label in key_segments or ():
        inside = (centres >= start) & (centres < end)
        if inside.any():
            prior[inside] = _diatonic_mask(labels, label)
    return prior


def _fold_unearned(emit: np.ndarray, earned: np.ndarray, means: np.ndarray,
                   labels: list[str]) -> None:
    """In place: a seventh chord the chroma did not earn gives its score (when higher) to
    the triad its three strongest tones make: the triad it extends (``G:7`` -> ``G:maj``),
    or, when its root is the weakest tone, the triad on its third if that is major or
    minor (``Bb:min7`` -> ``Db:maj``), so that refusing the seventh does not hand the
    segment to a third chord. An unearned power chord is dropped (its triads are scored)."""
    index = {label: j for j, label in enumerate(labels)}
    for j, label in enumerate(labels):
        refused = ~earned[:, j]
        if not refused.any():
            continue
        root_name, quality = label.split(":")
        if quality in _BASE:
            root = PITCH_NAMES.index(root_name)
            tones = [(root + i) % 12 for i in _QUALITIES[quality]]
            base = index[f"{root_name}:{_BASE[quality]}"]
            upper = index.get(_upper_triad(root, quality) or "", base)
            root_weakest = np.argmin(means[:, tones], axis=1) == 0
            rows = np.flatnonzero(refused)
            target = np.where(root_weakest[rows], upper, base)
            emit[rows, target] = np.maximum(emit[rows, target], emit[rows, j])
        emit[refused, j] = -1e6


def _upper_triad(root: int, quality: str) -> str | None:
    """The triad on a seventh chord's third, if major or minor (A:min7 -> C:maj)."""
    third = 3 if quality.startswith("min") else 4
    rest = tuple(sorted((i - third) % 12 for i in _QUALITIES[quality][1:]))
    for name in ("maj", "min"):
        if rest == _QUALITIES[name]:
            return f"{PITCH_NAMES[(root + third) % 12]}:{name}"
    return None


def tone_log_odds(level: np.ndarray | float, on_level: np.ndarray | float,
                  off_level: np.ndarray | float, spread: np.ndarray | float
                  ) -> np.ndarray | float:
    """Log-likelihood ratio that a pitch class at chroma ``level`` sounds (a chord tone,
    around ``on_level``) rather than not (around ``off_level``), equal Gaussian spreads."""
    return ((level - off_level) ** 2 - (level - on_level) ** 2) / (2.0 * spread ** 2)


def earned_vocabulary(means: np.ndarray, labels: list[str]) -> np.ndarray:
    """Which chords each segment's chroma supports, shape ``(segments, chords)``.

    Triads always. A seventh chord when its seventh's log-odds of sounding (its level
    against the level of the triad it extends and of the non-chord tones) beat the prior
    odds of that triad over the seventh chord (``QUALITY_SHARE``). A power chord when the
    stronger third's log-odds of sounding are below minus the prior odds of a triad over a
    power chord. Chroma is scaled to its maximum per segment first, so loudness does not
    matter; the levels' spread is pooled over the segment's tones (at least
    ``_MIN_SPREAD``), so noisy chroma needs a clearer seventh.
    """
    x = means / np.maximum(means.max(axis=1, keepdims=True), 1e-9)
    ok = np.ones((len(x), len(labels)), dtype=bool)
    for j, label in enumerate(labels):
        root_name, quality = label.split(":")
        if quality in ("maj", "min"):
            continue
        root = PITCH_NAMES.index(root_name)
        tones = [(root + i) % 12 for i in _QUALITIES[quality]]
        if quality == "5":
            thirds = [(root + 3) % 12, (root + 4) % 12]
            others = [p for p in range(12) if p not in tones and p not in thirds]
            tested = x[:, thirds].max(axis=1)
            on = x[:, tones].mean(axis=1)
            prior = np.log((QUALITY_SHARE["maj"] + QUALITY_SHARE["min"]) / QUALITY_SHARE["5"])
        else:
            others = [p for p in range(12) if p not in tones]
            tested = x[:, tones[-1]]
            on = x[:, tones[:-1]].mean(axis=1)
            prior = np.log(QUALITY_SHARE[_BASE[quality]] / QUALITY_SHARE[quality])
        off = x[:, others].mean(axis=1)
        spread = np.sqrt((x[:, others].var(axis=1) * len(others)
                          + x[:, tones].var(axis=1) * len(tones)) / (len(others) + len(tones)))
        odds = tone_log_odds(tested, on, off, np.maximum(spread, _MIN_SPREAD))
        ok[:, j] = odds < -prior if quality == "5" else odds > prior
    return ok


def recognize_chords(
    chroma: Activations,
    beat_times: np.ndarray,
    beat_positions: np.ndarray,
    *,
    duration: float,
    key: str | None = None,
    vocabulary: str = "sevenths",
    music_span: tuple[float, float] | None = None,
    key_segments: Sequence[tuple[float, float, str]] | None = None,
    song_qualities: bool = False,
) -> list[ChordSegment]:
    """Chord segments covering ``[0, duration]``, boundaries on beats, Harte labels.

    With ``song_qualities`` the chords are decoded twice, the second time with each
    root's qualities weighted by the first decoding's use of them (``song_quality_prior``).

    Outside ``music_span`` (start, end in seconds: where the music sounds, e.g. from
    ``songmap.onsets.music_span``) every segment is N. ``key_segments`` ((start, end) in
    seconds, key), when given, replace ``key`` as the diatonic prior where they apply.
    """
    beats = np.asarray(beat_times, dtype=float)
    keep = (beats > 0) & (beats < duration)
    beats = beats[keep]
    positions = np.asarray(beat_positions)[keep] if len(beat_positions) else beats
    edges = [t for t in (music_span or ()) if 0.0 < t < duration]
    bounds = np.unique(np.concatenate([[0.0], beats, edges, [duration]]))
    if len(bounds) < 2:
        return []
    means = segment_means(chroma, bounds)
    labels, templates = chord_templates(vocabulary)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    cos = (means / np.maximum(norms, 1e-9)) @ templates.T
    strength = means.max(axis=1)
    # states: the chords, then N (last); N explains a segment as well as a perfect
    # template when the chroma is silent
    n_score = np.where(strength < _SILENT, 1.0, 0.5)
    emit = emission_sharpness(cos, strength >= _SILENT) * np.column_stack([cos, n_score])
    centres = (bounds[:-1] + bounds[1:]) / 2
    emit += _DIATONIC_BONUS * _key_prior(labels, centres, key, key_segments)
    _fold_unearned(emit, earned_vocabulary(means, labels), means, labels)
    lengths = np.diff(bounds)
    # weight each segment by its length in beats so a long intro is not one vote
    weight = np.clip(lengths / max(np.median(lengths), 1e-3), 0.25, 4.0)
    emit *= weight[:, None]
    if music_span is not None:
        outside = (centres < music_span[0]) | (centres > music_span[1])
        emit[outside, :-1] = -1e6  # only N

    starts_bar = _starts_bar(bounds, beats, positions)
    path = _decode_changes(emit, starts_bar)
    if song_qualities:  # again, each root's qualities weighted by how this song used them
        prior = song_quality_prior(path, weight, labels)
        emit[:, :-1] += _SONG_QUALITY_WEIGHT * prior * weight[:, None]
        path = _decode_changes(emit, starts_bar)
    return _segments_on_path(path, emit, bounds, [*labels, "N"])


def song_quality_prior(path: np.ndarray, beats: np.ndarray, labels: list[str]) -> np.ndarray:
    """Log-probability of each chord's quality given its root in this song, shape
    ``(chords,)``: the beats (``beats`` per segment) a first decoding ``path`` spent on
    each quality of the root, plus ``_SONG_PRIOR_BEATS`` beats shared out as the qualities'
    shares in annotated pop (``QUALITY_SHARE``), normalised over the root's qualities.

    A song keeps its chords' qualities: a root heard as major over most of the song is
    major where a beat's chroma does not separate major from minor (a distorted third, a
    melody note on the seventh), while a root the song uses in two qualities keeps both.
    A root the song never played falls back to the corpus shares.
    """
    roots = [label.split(":")[0] for label in labels]
    used = np.zeros(len(labels))
    voiced = path < len(labels)
    np.add.at(used, path[voiced], beats[voiced])
    share = np.array([QUALITY_SHARE[label.split(":")[1]] for label in labels])
    out = np.zeros(len(labels))
    for root in set(roots):
        idx = [j for j, r in enumerate(roots) if r == root]
        counts = used[idx] + _SONG_PRIOR_BEATS * share[idx] / share[idx].sum()
        out[idx] = np.log(counts / counts.sum())
    return out


def emission_sharpness(cos: np.ndarray, voiced: np.ndarray) -> float:
    """Scale of the log-emission for one song: ``_SHARPNESS`` where the chroma fits its
    best chord template as well as on the songs that constant was set on, less where it
    fits worse.

    Under a Gaussian model of chroma around a unit template, the log-likelihood is
    ``(cos - 1) / sigma^2``, and the noise ``sigma^2`` is in proportion to the mean misfit
    ``1 - cos`` of each beat segment's best template. Where the song's mean misfit passes
    ``_CLEAN_MISFIT``, the sharpness falls as ``1 / misfit``: a distorted guitar or a pad
    whose chroma no template explains well moves the chord only on evidence that lasts
    (shifts between near-equal readings are noise), while clean chroma is read as before.
    ``cos`` is (segments, chords) cosine similarity; ``voiced`` marks segments that are
    not silent.
    """
    if not voiced.any():
        return _SHARPNESS
    misfit = float(np.mean(1.0 - cos[voiced].max(axis=1)))
    return _SHARPNESS * min(1.0, _CLEAN_MISFIT / max(misfit, 1e-6))


def _starts_bar(bounds: np.ndarray, beat_times: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Whether each segment (between ``bounds``, s) starts on a bar line: its start beat
    has position 1."""
    starts_bar = np.zeros(len(bounds) - 1, dtype=bool)
    if len(beat_times):
        pos_of = {round(float(t), 6): int(p) for t, p in zip(beat_times, positions)}
        starts_bar = np.array([pos_of.get(round(float(b), 6), 0) == 1 for b in bounds[:-1]])
    return starts_bar


def _decode_changes(emit: np.ndarray, starts_bar: np.ndarray) -> np.ndarray:
    """Best state per segment (Viterbi over ``emit``, segments x states); changing the
    chord costs ``_CHANGE_ON_BAR`` on a bar line, ``_CHANGE_IN_BAR`` elsewhere."""
    n, n_states = emit.shape
    delta = emit[0].copy()
    back = np.zeros((n, n_states), dtype=np.int32)
    for i in range(1, n):
        penalty = _CHANGE_ON_BAR if starts_bar[i] else _CHANGE_IN_BAR
        best_prev = int(delta.argmax())
        switch = delta[best_prev] - penalty
        stay = delta
        use_switch = switch > stay
        back[i] = np.where(use_switch, best_prev, np.arange(n_states))
        delta = np.where(use_switch, switch, stay) + emit[i]
    path = np.empty(n, dtype=int)
    path[-1] = int(delta.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _segments_on_path(path: np.ndarray, emit: np.ndarray, bounds: np.ndarray,
                      all_labels: list[str]) -> list[ChordSegment]:
    """Runs of one state as chord segments, each with the mean softmax share of its
    chord among all states as confidence."""
    n = len(path)
    soft = np.exp(emit - emit.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    segments: list[ChordSegment] = []
    start = 0
    for i in range(1, n + 1):
        if i == n or path[i] != path[start]:
            conf = float(soft[start:i, path[start]].mean())
            segments.append(
                ChordSegment(float(bounds[start]), float(bounds[i]), all_labels[path[start]], conf)
            )
            start = i
    return segments


def rootless_min7(mean_chroma: np.ndarray, root: int) -> bool:
    """Whether a min7 chord on ``root`` (pitch class) is better read as the major triad on
    its third, from the chroma averaged over the whole chord segment (``(12,)``).

    ``Bb:min7`` (Bb Db F Ab) holds the whole Db major triad, so the seventh test that
    earned it (Ab above Bb minor) cannot tell it from Db major with a little Bb in the
    mix. The question is whether the root sounds: its log-odds of sounding (against the
    other three tones' level and the non-chord tones') must beat the prior odds of a
    major triad over a min7 (``QUALITY_SHARE``), and the root must not be the weakest of
    Over a whole segment (a bar or more) rather than a beat, so that a real min7 whose
    root dips on some beats keeps it.
    """
    x = mean_chroma / max(float(mean_chroma.max()), 1e-9)
    tones = [(root + i) % 12 for i in _QUALITIES["min7"]]
    others = [p for p in range(12) if p not in tones]
    on, off = x[tones[1:]].mean(), x[others].mean()
    spread = np.sqrt((x[others].var() * len(others) + x[tones].var() * len(tones))
                     / (len(others) + len(tones)))
    odds = tone_log_odds(x[root], on, off, max(float(spread), _MIN_SPREAD))
    return bool(odds < np.log(QUALITY_SHARE["maj"] / QUALITY_SHARE["min7"]))


def relabel_rootless_min7(segments: list[ChordSegment],
                          chroma: Activations) -> list[ChordSegment]:
    """Each min7 segment whose root does not sound (``rootless_min7``) relabelled as the
    major triad on its third; neighbours that then share a label are joined."""
    out: list[ChordSegment] = []
    for seg in segments:
        label = seg.label
        root_name, _, quality = label.partition(":")
        if quality == "min7":
            root = PITCH_NAMES.index(root_name)
            mean = segment_means(chroma, np.array([seg.start, seg.end]))[0]
            if rootless_min7(mean, root):
                label = _upper_triad(root, "min7") or label
        if out and out[-1].label == label:
            prev = out[-1]
            span = seg.end - prev.start
            conf = ((prev.end - prev.start) * prev.confidence
                    + (seg.end - seg.start) * seg.confidence) / max(span, 1e-9)
            out[-1] = ChordSegment(prev.start, seg.end, label, conf)
        else:
            out.append(ChordSegment(seg.start, seg.end, label, seg.confidence))
    return out


def bar_chords(
    segments: list[ChordSegment], bar_starts: np.ndarray, bar_ends: np.ndarray
) -> list[tuple[str, float, list[str]]]:
    """For each bar: (main chord, confidence, chords in order).

    The main chord covers most of the bar; a second chord is listed when it covers at
    least a quarter of the bar.
    """
    out = []
    for a, b in zip(bar_starts, bar_ends):
        cover: dict[str, float] = {}
        conf: dict[str, float] = {}
        order: list[str] = []
        for s in segments:
            overlap = min(b, s.end) - max(a, s.start)
            if overlap <= 1e-6:
                continue
            if s.label not in cover:
                order.append(s.label)
            cover[s.label] = cover.get(s.label, 0.0) + overlap
            conf[s.label] = max(conf.get(s.label, 0.0), s.confidence)
        if not cover:
            out.append(("N", 0.0, ["N"]))
            continue
        main = max(cover, key=lambda k: cover[k])
        span = max(b - a, 1e-9)
        listed = [lab for lab in order if cover[lab] >= 0.25 * span][:2] or [main]
        out.append((main, conf[main] * cover[main] / span, listed))
    return out
