"""The prediction form the eval harness reads (``shared/eval/score.py``): one JSON object per
clip, mir_eval ready. Times in seconds, tempo in BPM, chords in Harte syntax, keys as
mir_eval strings."""

from __future__ import annotations

from typing import Any

from songmap.schema import AnalysisResult


def to_eval_dict(result: AnalysisResult) -> dict[str, Any]:
    """``result`` in the harness's prediction form: beats, downbeats, tempo, key, chord
    segments, chords per bar, and the confidences checked against correctness."""
    bar_chords = zip(result.chord_intervals(per_bar=True).tolist(),
                     result.chord_labels(per_bar=True))
    return {
        "beats": result.beat_times().tolist(),
        "downbeats": result.downbeat_times().tolist(),
        "tempo": result.tempo.bpm,
        "key": result.key.label if result.key.label != "N" else None,
        "chords": [list(s) for s in result.chord_segments],
        "bar_chords": [[start, end, label] for (start, end), label in bar_chords],
        # confidences, for checking that they predict correctness
        "beat_confidence": [b.confidence for b in result.beat_transient_markers],
        "downbeat_confidence": [d.confidence for d in result.downbeat_timeline],
        "bars": [[c.timestamp, c.timestamp + c.duration, c.chord, c.confidence]
                 for c in result.chord_progression],
        "key_confidence": result.key.confidence,
        "time_signature": result.time_signature.label,
        "time_signature_confidence": result.time_signature.confidence,
        "tempo_curve": [list(point) for point in result.tempo_curve],
        "key_segments": [[k.start, k.end, k.key] for k in result.key_segments],
    }
