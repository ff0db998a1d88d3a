#!/usr/bin/env python3
"""Key and chords on recordings that are not tuned to A = 440 Hz.

    python benchmarks/tuning.py MANIFEST [MANIFEST ...] [--cents -45 -30 -15 0 15 30 45]
                                [--json FILE]

Real recordings are often tuned off A440: bands tuning to an instrument, tape and vinyl
transfers running a little fast or slow, A = 432 Hz (-32 cents). The harmony networks'
filterbanks sit on A440's semitones, so a song a quarter tone off lands between them
(realmusic r06, -48 cents: its 2 % faster copy read a major third away).

For every clip of the manifests (``make_corpus.py`` or ``chorales.py`` form) and every
detuning in ``--cents``, the audio is played that many cents higher (resampled with
soxr as if its rate were ``2 ** (cents / 1200)`` times higher, so also that much faster;
the chord times of the ground truth are scaled with it; the key keeps its name within
±50 cents), analysed from scratch (networks included) and scored with mir_eval: key
(weighted score), chords per segment (majmin, sevenths), and the tuning songmap reports
against the detuning applied. Prints one Markdown row per detuning.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def detune(samples: np.ndarray, sr: int, cents: float) -> np.ndarray:
    """``samples`` played ``cents`` higher (and ``2 ** (cents / 1200)`` times faster):
    songmap's own retuning, the other way."""
    from songmap.harmony.tuning import retune

    return retune(samples, sr, -cents)


def scaled_chords(chords: list, factor: float) -> list:
    """Ground-truth chord segments ``[start, end, label]`` (s) of audio played ``factor``
    times faster."""
    return [[s / factor, e / factor, lab] for s, e, lab in chords]


def _share(hit: list[float]) -> str:
    """Duration scored right over duration scored, to 3 places ("-" for none)."""
    ok, total = hit
    return f"{ok / total:.3f}" if total else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifests", nargs="+")
    ap.add_argument("--cents", nargs="+", type=float, default=[-45, -30, -15, 0, 15, 30, 45])
    ap.add_argument("--json", help="write per-clip scores here")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    import mir_eval
    from accuracy import chord_hits
    from eval_form import to_eval_dict

    from songmap.audio import load_audio
    from songmap.audio.decode import Audio
    from songmap.pipeline import Analyzer

    analyzer = Analyzer()
    clips = []
    for manifest in args.manifests:
        m = json.loads(Path(manifest).read_text())
        clips += [(Path(manifest).parent, c) for c in (m["clips"] if isinstance(m, dict) else m)]
    per_clip: dict[str, dict] = {}
    print("| detuning (cents) | clips | key | majmin_seg | sevenths_seg | reported tuning, "
          "median error (cents) | 90th pct | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for cents in args.cents:
        factor = 2.0 ** (cents / 1200.0)
        keys, hits, errors = [], {"majmin": [0.0, 0.0], "sevenths": [0.0, 0.0]}, []
        t0 = time.perf_counter()
        for root, clip in clips:
            audio = load_audio(root / clip["audio"])
            shifted = Audio(detune(audio.samples, audio.sr, cents), audio.sr, audio.source_sr,
                            audio.channels, audio.decoder)
            result = analyzer.analyze_audio(shifted, filename=clip["id"])
            pred = to_eval_dict(result)
            gt = clip["ground_truth"]
            row: dict = {}
            if gt.get("key") and pred.get("key"):
                row["key"] = mir_eval.key.weighted_score(gt["key"], pred["key"])
                keys.append(row["key"])
            if gt.get("chords"):
                for name, (ok, total) in chord_hits(scaled_chords(gt["chords"], factor),
                                                    pred.get("chords") or []).items():
                    hits[name][0] += ok
                    hits[name][1] += total
                    row[name] = ok / total if total else None
            tuning = getattr(result.key, "tuning_cents", None)
            if tuning is not None:
                # the clips are rendered at A440: the tuning found should be the detuning
                row["tuning_error"] = float(tuning - cents)
                errors.append(abs(row["tuning_error"]))
            per_clip[f"{clip['id']}@{cents:+g}"] = row
        err = (f"{np.median(errors):.1f} | {np.percentile(errors, 90):.1f}" if errors
               else "- | -")
        print(f"| {cents:+g} | {len(clips)} | {np.mean(keys) if keys else float('nan'):.3f} | "
              f"{_share(hits['majmin'])} | {_share(hits['sevenths'])} | {err} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(per_clip, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
