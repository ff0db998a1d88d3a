#!/usr/bin/env python3
"""Harmony checks beyond mir_eval's chord and key scores (issue 18).

    python benchmarks/harmony_checks.py real TRACKS_DIR --cache DIR [--json FILE]
    python benchmarks/harmony_checks.py sections MANIFEST --cache DIR

``real``: label-free behaviour on real recordings (shared/eval/realmusic): per track the
share of chord time on seventh chords and on power chords, the number of distinct chord
labels, the share of chord time on chords diatonic to the global key (a minor key's major
dominant included) and on its tonic chord, whether the key agrees with the song's most
common chords (``key_agreement``) and its confidence (a key that disagrees should report
less than ``LOW_KEY_CONFIDENCE``), the number of key sections, and stability under
a 2 % speed change (the audio resampled with soxr, so 34 cents higher as well: the share of
time with the same label at corresponding times, also allowing a one-semitone shift for
tracks whose tuning crosses a semitone). Network outputs of the original and the sped-up
audio are cached in --cache (orig/, fast/), so decisions are re-run in seconds.

``sections``: key sections against a manifest with ``key_segments`` ground truth
(benchmarks/corpus/make_corpus.py --modulate): modulating songs whose every key change is
found within 2 bars, songs without a change that get one section, and the key score over
time (mir_eval weighted score at every 0.5 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

SPEED = 1.02
SEVENTHS = ("7", "maj7", "min7")
INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10),
             "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "5": (0, 7)}
#: Below this the key is reported as more likely wrong than right (its share of the 24
#: keys' probability is under a half): a key that disagrees with the chords must say so.
LOW_KEY_CONFIDENCE = 0.5


def _networks(analyzer, audio, path: Path):
    from songmap.signals import NetworkOutputs

    if path.exists():
        return NetworkOutputs.load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = analyzer.run_networks(audio)
    out.save(path)
    return out


def _label_at(segments: list, t: float) -> str:
    starts = [s for s, _, _ in segments]
    i = int(np.searchsorted(starts, t, side="right")) - 1
    return segments[max(i, 0)][2] if segments else "N"


def _shifted(label: str, semitones: int) -> str:
    from songmap.harmony.notation import PITCH_NAMES, pitch_class

    if ":" not in label:
        return label
    root, rest = label.split(":", 1)
    return f"{PITCH_NAMES[(pitch_class(root) + semitones) % 12]}:{rest}"


def _chord(label: str) -> tuple[int, str]:
    """Root pitch class and quality (without bass) of a Harte label."""
    from songmap.harmony.notation import pitch_class

    root, quality = label.split(":", 1)
    return pitch_class(root), quality.split("/")[0]


def _is_tonic(label: str, tonic: int, minor: bool) -> bool:
    """The key's tonic chord: its root and mode (a power chord or a seventh chord on the
    tonic counts)."""
    root, quality = _chord(label)
    return root == tonic and (quality == "5" or quality.startswith("min") == minor)


def _in_key(label: str, tonic: int, minor: bool, scale: set[int]) -> bool:
    """All chord tones in the key's scale (a minor key's major dominant included)."""
    root, quality = _chord(label)
    tones = {(root + i) % 12 for i in INTERVALS.get(quality, (0,))}
    dominant = minor and root == (tonic + 7) % 12 and quality in ("maj", "7", "5")
    return tones <= (scale | {(tonic + 11) % 12} if dominant else scale)


def key_agreement(voiced: list, tonic: int, minor: bool, scale: set[int]) -> dict:
    """Whether the key agrees with the song's most common chords: its tonic chord is
    among the three chords with the most time, and the one with the most time lies in
    the key. ``top`` lists those three with their share of time."""
    time: dict[str, float] = {}
    for s, e, lab in voiced:
        time[lab] = time.get(lab, 0.0) + e - s
    total = sum(time.values()) or 1e-9
    top = sorted(time, key=lambda lab: -time[lab])[:3]
    return {"top": [[lab, round(time[lab] / total, 3)] for lab in top],
            "agrees": bool(top) and any(_is_tonic(lab, tonic, minor) for lab in top)
            and _in_key(top[0], tonic, minor, scale)}


def real_row(result, fast) -> dict:
    from songmap.harmony.notation import parse_key

    voiced = [(s, e, lab) for s, e, lab in result.chord_segments if lab != "N"]
    total = sum(e - s for s, e, _ in voiced) or 1e-9

    def quality(label: str) -> str:
        return label.split(":")[1].split("/")[0]

    row = {
        "sevenths": sum(e - s for s, e, lab in voiced if quality(lab) in SEVENTHS) / total,
        "power": sum(e - s for s, e, lab in voiced if quality(lab) == "5") / total,
        "distinct": len({lab for *_, lab in voiced}),
        "key": result.key.label, "key_fast": fast.key.label,
        "key_sections": [[k.start, k.end, k.key, k.confidence] for k in result.key_segments],
    }
    if result.key.label != "N":
        tonic, minor = parse_key(result.key.label)
        major_tonic = (tonic + 3) % 12 if minor else tonic
        scale = {(major_tonic + i) % 12 for i in (0, 2, 4, 5, 7, 9, 11)}
        # (a power chord on the dominant is in the key either way: it has no third)
        diatonic = sum(e - s for s, e, lab in voiced if _in_key(lab, tonic, minor, scale))
        on_tonic = sum(e - s for s, e, lab in voiced if _is_tonic(lab, tonic, minor))
        row["diatonic"], row["tonic"] = diatonic / total, on_tonic / total
        row.update(key_agreement(voiced, tonic, minor, scale))
    row["key_confidence"] = result.key.confidence
    grid = np.arange(0.5, result.audio.duration - 0.5, 0.1)
    pairs = [(_label_at(result.chord_segments, t), _label_at(fast.chord_segments, t / SPEED))
             for t in grid]
    row["stable"] = float(np.mean([a == b for a, b in pairs])) if pairs else 1.0
    row["stable_shift"] = max(float(np.mean([_shifted(a, k) == b for a, b in pairs]))
                              for k in (-1, 0, 1)) if pairs else 1.0
    return row


def run_real(args: argparse.Namespace) -> int:
    import soxr

    from songmap.audio import load_audio
    from songmap.pipeline import Analyzer

    root = Path(args.tracks)
    manifest = json.loads((root / "manifest.json").read_text())
    analyzer, cache, rows = Analyzer(), Path(args.cache), {}
    for track in manifest["tracks"]:
        audio = load_audio(root / track["file"])
        # played 2 % faster: resampled as if the source rate were 2 % higher
        fast_audio = dataclasses.replace(audio, samples=soxr.resample(
            audio.samples, audio.sr * SPEED, audio.sr).astype(np.float32))
        result = analyzer.analyze_audio(audio, filename=track["id"], networks=_networks(
            analyzer, audio, cache / "orig" / f"{track['id']}.npz"))
        fast = analyzer.analyze_audio(fast_audio, filename=track["id"], networks=_networks(
            analyzer, fast_audio, cache / "fast" / f"{track['id']}.npz"))
        rows[track["id"]] = real_row(result, fast)
        r = rows[track["id"]]
        print(f"{track['id']:32s} sevenths {r['sevenths']:.2f} power {r['power']:.2f} "
              f"labels {r['distinct']:2d} key {r['key']:9s} diatonic {r.get('diatonic', 0):.2f} "
              f"tonic {r.get('tonic', 0):.2f} sections {len(r['key_sections'])} "
              f"stable {r['stable']:.2f}/{r['stable_shift']:.2f}", file=sys.stderr)
        if "agrees" in r:
            print(f"    key confidence {r['key_confidence']:.2f}, "
                  f"{'agrees with' if r['agrees'] else 'DISAGREES with'} its most common chords "
                  + ", ".join(f"{lab} {share:.2f}" for lab, share in r["top"])
                  + ("" if r["agrees"] or r["key_confidence"] < LOW_KEY_CONFIDENCE
                     else "  <- not low confidence"), file=sys.stderr)
        if len(r["key_sections"]) > 1:
            print("    " + ", ".join(f"{key} {end - start:.0f} s ({conf:.2f})"
                                      for start, end, key, conf in r["key_sections"]), file=sys.stderr)
    keys = ("sevenths", "power", "distinct", "diatonic", "tonic", "stable", "stable_shift")
    print("| tracks | " + " | ".join(keys) + " | same key at +2 % | tracks with 2+ key sections"
          " | key agrees with chords | disagrees, confidence >= 0.5 |")
    print("|---" * (len(keys) + 5) + "|")
    means = [np.mean([r[k] for r in rows.values() if r.get(k) is not None]) for k in keys]
    sure_but_off = sum(not r.get("agrees") and r["key_confidence"] >= LOW_KEY_CONFIDENCE
                       for r in rows.values())
    print(f"| {len(rows)} | " + " | ".join(f"{m:.3f}" for m in means)
          + f" | {sum(r['key'] == r['key_fast'] for r in rows.values())}/{len(rows)}"
          + f" | {sum(len(r['key_sections']) > 1 for r in rows.values())}/{len(rows)}"
          + f" | {sum(bool(r.get('agrees')) for r in rows.values())}/{len(rows)}"
          + f" | {sure_but_off} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def run_sections(args: argparse.Namespace) -> int:
    import mir_eval

    from songmap.audio import load_audio
    from songmap.pipeline import Analyzer

    manifest = Path(args.manifest)
    clips = json.loads(manifest.read_text())["clips"]
    analyzer, cache = Analyzer(), Path(args.cache)
    found, single, over_time = [], [], []
    for clip in clips:
        gt = clip["ground_truth"]
        audio = load_audio(manifest.parent / clip["audio"])
        r = analyzer.analyze_audio(audio, filename=clip["id"], networks=_networks(
            analyzer, audio, cache / f"{clip['id']}.npz"))
        est = [(k.start, k.end, k.key) for k in r.key_segments] or [
            (0.0, r.audio.duration, r.key.label)]
        truth = gt.get("key_segments") or [[0.0, clip["duration"], gt["key"]]]
        grid = np.arange(truth[0][0], truth[-1][1], 0.5)
        over_time.append(np.mean([mir_eval.key.weighted_score(_label_at(truth, t), _label_at(est, t))
                                  if _label_at(est, t) != "N" else 0.0 for t in grid]))
        if len(truth) > 1:
            bar = float(np.median(np.diff(gt["downbeats"])))
            ok = len(est) == len(truth) and all(
                abs(a[0] - b[0]) <= 2 * bar for a, b in zip(truth[1:], est[1:]))
            found.append(ok)
        else:
            single.append(len(est) == 1)
        print(f"{clip['id']:20s} truth {[(round(a), k) for a, _, k in truth]} "
              f"found {[(round(a), k) for a, _, k in est]}", file=sys.stderr)
    print(f"modulating songs with every change within 2 bars: {sum(found)}/{len(found)}; "
          f"songs without a change given one key: {sum(single)}/{len(single)}; "
          f"key score over time: {np.mean(over_time):.3f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    real = sub.add_parser("real", help="label-free behaviour on real recordings")
    real.add_argument("tracks", help="folder with manifest.json (shared/eval/realmusic)")
    real.add_argument("--cache", required=True, help="network outputs (orig/, fast/)")
    real.add_argument("--json", help="per-track rows here")
    sections = sub.add_parser("sections", help="key sections against key_segments truth")
    sections.add_argument("manifest")
    sections.add_argument("--cache", required=True, help="network outputs per clip")
    args = ap.parse_args()
    return run_real(args) if args.what == "real" else run_sections(args)


if __name__ == "__main__":
    sys.exit(main())
