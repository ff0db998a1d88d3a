"""A chord progression written the way musicians read it: repeated patterns once, with a count."""

from __future__ import annotations

from collections import Counter

#: Longest pattern (bars) looked for: 8 bars is the common phrase length in pop and dance music.
_MAX_PATTERN = 8


def repeating_patterns(labels: list[str], *, max_pattern: int = _MAX_PATTERN) -> list[tuple[list[str], int]]:
    """Split a per-bar chord sequence into (pattern, times) runs, left to right.

    At each bar the pattern that covers most bars by repeating back to back wins (at least
    twice; the shorter pattern on a tie), so ``Em C G D`` played eight times is one run of
    eight and a held ``E:min`` one run of one chord; bars that start no repeat stand alone.
    A pattern made of one repeated chord is reduced to that chord (``Em Em`` x4 is ``Em`` x8).
    """
    runs: list[tuple[list[str], int]] = []
    i, n = 0, len(labels)
    while i < n:
        best_len, best_times = 1, 1
        for length in range(1, min(max_pattern, (n - i) // 2) + 1):
            unit = labels[i:i + length]
            times = 1
            while labels[i + times * length:i + (times + 1) * length] == unit:
                times += 1
            if times >= 2 and length * times > best_len * best_times:
                best_len, best_times = length, times
        runs.append((labels[i:i + best_len], best_times))
        i += best_len * best_times
    return _merge_single_chords(runs)


def _merge_single_chords(runs: list[tuple[list[str], int]]) -> list[tuple[list[str], int]]:
    out: list[tuple[list[str], int]] = []
    for pattern, times in runs:
        if len(set(pattern)) == 1:
            pattern, times = pattern[:1], times * len(pattern)
        if out and len(pattern) == 1 and out[-1][0] == pattern:
            out[-1] = (pattern, out[-1][1] + times)
        else:
            out.append((pattern, times))
    return out


def progression_text(labels: list[str], *, max_runs: int = 6) -> str:
    """``Em C G D x8 | Am F x2 ...``; past ``max_runs`` runs the most common chords instead."""
    if not labels:
        return ""
    runs = repeating_patterns(labels)
    shown = [" ".join(p) + (f" x{t}" if t > 1 else "") for p, t in runs[:max_runs]]
    text = " | ".join(shown)
    if len(runs) > max_runs:
        common = ", ".join(c for c, _ in Counter(labels).most_common(4))
        text += f" ...  (most common: {common})"
    return text
