#!/usr/bin/env python3
"""Accuracy of songmap against ground truth, scored with mir_eval.

    python benchmarks/accuracy.py MANIFEST [MANIFEST ...] [--out DIR] [--cache DIR]
                                  [--system songmap|madmom] [--json FILE]

MANIFEST is the form written by shared/eval/make_corpus.py (clips with audio paths and
ground truth). For every clip the networks run once (their outputs can be cached with
--cache, so decision changes are re-scored in seconds), then either songmap's decisions
(--system songmap) or madmom's reference wiring (--system madmom: RNN downbeats + DBN over
3 and 4 beats per bar, CNN key, deep-chroma CRF chords, majority chord per bar) are
scored. Predictions are written as one JSON per clip in --out (the shared scorer's form).

Metrics: beat F (70 ms), CMLt, AMLt, downbeat F, tempo Acc1/Acc2 (4 %), key weighted
score; chord WCSR majmin/sevenths, duration-weighted over each group, for the chord
segments ("seg") and for one chord per bar ("bar"). Printed per meter and overall as a
Markdown table. Grid precision on constant-tempo clips: BPM error (octave errors apart),
beat offsets from the annotated beats (ms), tempo-map segments per clip. Meter sections
(songmap): steady songs reported with more than one, and on clips whose ground truth
lists ``meter_sections`` (make_corpus.py --irregular) the irregular bars found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import mir_eval
import numpy as np

warnings.filterwarnings("ignore")

COLUMNS = ["beatF", "CMLt", "AMLt", "dbeatF", "TAcc1", "TAcc2", "key",
           "majmin_seg", "sevenths_seg", "majmin_bar", "sevenths_bar"]


# ---------------------------------------------------------------- scoring
def tempo_hit(ref: float, est: float | None, factors=(1.0,)) -> float:
    if est is None or not np.isfinite(est) or est <= 0:
        return 0.0
    return float(any(abs(est - ref * f) <= 0.04 * ref * f for f in factors))


def chord_hits(ref: list, est: list) -> dict[str, tuple[float, float]]:
    """{comparison: (duration scored correct, duration scored)}."""
    ref_iv = np.array([[s, e] for s, e, _ in ref], dtype=float)
    ref_lab = [lab for *_, lab in ref]
    if est:
        est_iv = np.array([[s, e] for s, e, _ in est], dtype=float)
        est_lab = [lab for *_, lab in est]
    else:
        est_iv, est_lab = np.array([[ref_iv[0, 0], ref_iv[-1, 1]]]), ["N"]
    est_iv, est_lab = mir_eval.util.adjust_intervals(
        est_iv, est_lab, ref_iv.min(), ref_iv.max(), "N", "N")
    iv, r, e = mir_eval.util.merge_labeled_intervals(ref_iv, ref_lab, est_iv, est_lab)
    dur = mir_eval.util.intervals_to_durations(iv)
    out = {}
    for name, fn in (("majmin", mir_eval.chord.majmin), ("sevenths", mir_eval.chord.sevenths)):
        comp = fn(r, e)
        ok = comp >= 0
        out[name] = (float(np.sum(dur[ok] * comp[ok])), float(np.sum(dur[ok])))
    return out


def score_clip(gt: dict, pred: dict) -> dict:
    res: dict = {}
    ref_b = np.asarray(gt.get("beats", []), dtype=float)
    est_b = np.asarray(sorted(pred.get("beats") or []), dtype=float)
    if len(ref_b) >= 2:
        res["beatF"] = mir_eval.beat.f_measure(ref_b, est_b, 0.07)
        if len(est_b) >= 2:
            _, res["CMLt"], _, res["AMLt"] = mir_eval.beat.continuity(ref_b, est_b)
        else:
            res["CMLt"] = res["AMLt"] = 0.0
    ref_d = np.asarray(gt.get("downbeats", []), dtype=float)
    if len(ref_d):
        res["dbeatF"] = mir_eval.beat.f_measure(ref_d, np.asarray(sorted(pred.get("downbeats") or [])), 0.07)
    if gt.get("tempo"):
        res["TAcc1"] = tempo_hit(gt["tempo"], pred.get("tempo"))
        res["TAcc2"] = tempo_hit(gt["tempo"], pred.get("tempo"), (1.0, 2.0, 3.0, 0.5, 1 / 3))
    if gt.get("key"):
        try:
            res["key"] = mir_eval.key.weighted_score(gt["key"], pred["key"]) if pred.get("key") else 0.0
        except ValueError:
            res["key"] = 0.0
    if gt.get("chords"):
        for kind, field in (("seg", "chords"), ("bar", "bar_chords")):
            for name, hit in chord_hits(gt["chords"], pred.get(field) or []).items():
                res[f"{name}_{kind}"] = hit
    return res


def structure_row(gt: dict, pred: dict, pickup: int | None) -> dict[str, float]:
    """Per clip: meter label right, first downbeat right (70 ms), pickup beats counted
    right (clips with a pickup), share of annotated beats where the tempo curve is within
    4 % (songs whose tempo changes), beats before the first / after the last annotated beat."""
    ref_b = np.asarray(gt.get("beats", []), dtype=float)
    ref_d = np.asarray(gt.get("downbeats", []), dtype=float)
    est_b = np.asarray(sorted(pred.get("beats") or []), dtype=float)
    est_d = np.asarray(sorted(pred.get("downbeats") or []), dtype=float)
    row: dict[str, float] = {}
    if gt.get("time_signature"):
        row["meter"] = float(pred.get("time_signature") == gt["time_signature"])
    if len(ref_d):
        first_ok = len(est_d) > 0 and abs(est_d[0] - ref_d[0]) <= 0.07
        row["first_downbeat"] = float(first_ok)
        if pickup:
            n_ref = int(np.sum(ref_b < ref_d[0] - 0.07))
            row["pickup"] = float(first_ok and int(np.sum(est_b < ref_d[0] - 0.07)) == n_ref)
    curve = gt.get("tempo_curve") or []
    if len(curve) > 1 and np.ptp([bpm for _, bpm in curve]) > 0.02 * np.median([b for _, b in curve]):
        # a song whose tempo changes: is our per-bar curve within 4 % at each annotated beat?
        ours = pred.get("tempo_curve") or []
        if len(ours) > 1:
            t, bpm = np.asarray(ours, dtype=float).T
            ref_t, ref_bpm = np.asarray(curve, dtype=float).T
            inside = (ref_t >= t[0]) & (ref_t <= t[-1] + 60.0 / bpm[-1] * 4)
            est = np.interp(ref_t[inside], t, bpm)
            row["tempo_curve"] = float(np.mean(np.abs(est - ref_bpm[inside]) <= 0.04 * ref_bpm[inside]))
        else:
            row["tempo_curve"] = 0.0
    if len(ref_b):
        row["beats_before_start"] = float(np.sum(est_b < ref_b[0] - 0.07))
        row["beats_after_end"] = float(np.sum(est_b > ref_b[-1] + 0.07))
    return row


def structure_table(rows: list[dict[str, float]]) -> str:
    names = {"meter": "time signature right", "first_downbeat": "first downbeat right",
             "pickup": "pickup beats right (clips with a pickup)",
             "tempo_curve": "tempo curve within 4 % of the annotated one (clips whose tempo changes; "
                            "mean share of beats)",
             "beats_before_start": "beats before the first annotated beat (total)",
             "beats_after_end": "beats after the last annotated beat (total)"}
    lines = ["| what | clips | value |", "|---|---|---|"]
    for key, name in names.items():
        vals = [r[key] for r in rows if key in r]
        if not vals:
            continue
        if key.startswith("beats_"):
            value = f"{int(sum(vals))}"
        elif key == "tempo_curve":
            value = f"{np.mean(vals):.3f}"
        else:
            value = f"{int(sum(vals))}/{len(vals)}"
        lines.append(f"| {name} | {len(vals)} | {value} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- grid precision
def grid_row(gt: dict, pred: dict) -> dict:
    """How exact the grid of one clip is (as shared/eval/grid_precision.py): on a
    constant-tempo clip (annotated beat intervals vary < 0.2 %), the BPM error (or an
    octave/other error when > 4 % off) and each annotated beat's offset (s) from the
    nearest predicted beat within 70 ms; the number of tempo-map segments."""
    row: dict = {"segments": pred.get("tempo_segments")}
    ref = np.asarray(gt.get("beats", []), dtype=float)
    est = np.asarray(sorted(pred.get("beats") or []), dtype=float)
    ibi = np.diff(ref)
    if len(ibi) < 8 or ibi.std() / ibi.mean() > 0.002:
        return row
    row["constant"] = True
    true, got = 60.0 / ibi.mean(), pred.get("tempo") or 0.0
    row["octave"] = abs(got / true - 1) > 0.04
    if not row["octave"]:
        row["bpm_err"] = abs(got - true)
    if len(est) > 1:
        j = np.clip(np.searchsorted(est, ref), 1, len(est) - 1)
        near = np.where(np.abs(est[j] - ref) < np.abs(est[j - 1] - ref), est[j], est[j - 1])
        d = near - ref
        row["offsets"] = d[np.abs(d) < 0.07].tolist()
    return row


def grid_table(rows: list[dict]) -> str:
    const = [r for r in rows if r.get("constant")]
    errs = np.array([r["bpm_err"] for r in const if "bpm_err" in r])
    off = np.concatenate([r.get("offsets", []) for r in const] or [[]]) * 1000
    segs = np.array([r["segments"] for r in rows if r.get("segments") is not None])
    seg_const = np.array([r["segments"] for r in const if r.get("segments") is not None])

    def f(x: np.ndarray, fn, digits: int) -> str:
        return f"{fn(x):.{digits}f}" if len(x) else "—"

    head = ["constant-tempo clips", "octave/other", "BPM err median", "BPM err max",
            "offset median abs (ms)", "offset mean (ms)", "offset p90 abs (ms)",
            "segments/clip (constant)", "segments/clip (all)", "max"]
    cells = [str(len(const)), str(sum(bool(r["octave"]) for r in const)),
             f(errs, np.median, 4), f(errs, np.max, 4), f(np.abs(off), np.median, 2),
             f(off, np.mean, 2), f(np.abs(off), lambda x: np.percentile(x, 90), 2),
             f(seg_const, np.mean, 2), f(segs, np.mean, 2), f(segs, np.max, 0)]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      "| " + " | ".join(cells) + " |"])


def meter_section_row(gt: dict, pred: dict) -> dict[str, float]:
    """Per clip: sections reported, and whether a steady song was split; on clips whose
    ground truth has meter sections, how many of its irregular bars (bars of another
    length than its first section's) we start within 70 ms with the right beat count."""
    ours = pred.get("meter_sections") or []
    truth = gt.get("meter_sections") or []
    row: dict[str, float] = {"sections": float(len(ours))}
    if not truth:
        row["steady_split"] = float(len(ours) > 1)
        return row
    main = truth[0][3]
    bar_beats = pred.get("bar_beats") or []
    ref_d = np.asarray(gt.get("downbeats", []), dtype=float)
    found = total = 0
    for _start, first_bar, bars, beats in truth:
        if beats == main:
            continue
        for b in range(first_bar - 1, first_bar - 1 + bars):
            total += 1
            hit = [n for t, n in bar_beats if b < len(ref_d) and abs(t - ref_d[b]) <= 0.07]
            found += int(bool(hit) and hit[0] == beats)
    row["irregular_bars"] = float(total)
    row["irregular_found"] = float(found)
    return row


def meter_section_table(rows: list[dict[str, float]]) -> str:
    steady = [r["steady_split"] for r in rows if "steady_split" in r]
    irr = [r for r in rows if "irregular_bars" in r]
    lines = ["| what | clips | value |", "|---|---|---|"]
    if steady:
        lines.append(f"| steady songs reported with more than one meter section | {len(steady)} | "
                     f"{int(sum(steady))} |")
    if irr:
        found, total = sum(r["irregular_found"] for r in irr), sum(r["irregular_bars"] for r in irr)
        lines.append(f"| irregular bars found (start within 70 ms, right beat count) | {len(irr)} | "
                     f"{int(found)}/{int(total)} |")
    return "\n".join(lines)


def confidence_pairs(gt: dict, pred: dict) -> dict[str, list[tuple[float, float]]]:
    """(confidence, correct 0/1) per beat, downbeat, bar chord and key of one clip."""
    out: dict[str, list[tuple[float, float]]] = {"beat": [], "downbeat": [], "chord": [],
                                                 "key": [], "time signature": []}
    ref_b = np.asarray(gt.get("beats", []), dtype=float)
    for t, c in zip(pred.get("beats") or [], pred.get("beat_confidence") or []):
        out["beat"].append((c, float(len(ref_b) > 0 and np.min(np.abs(ref_b - t)) <= 0.07)))
    ref_d = np.asarray(gt.get("downbeats", []), dtype=float)
    for t, c in zip(pred.get("downbeats") or [], pred.get("downbeat_confidence") or []):
        out["downbeat"].append((c, float(len(ref_d) > 0 and np.min(np.abs(ref_d - t)) <= 0.07)))
    ref = gt.get("chords") or []
    for start, end, label, c in pred.get("bars") or []:
        mid = (start + end) / 2
        truth = next((lab for s, e, lab in ref if s <= mid < e), None)
        if truth is None:
            continue
        hit = mir_eval.chord.majmin([truth], [label])[0]
        if hit >= 0:
            out["chord"].append((c, float(hit)))
    if gt.get("key") and pred.get("key") and pred.get("key_confidence") is not None:
        out["key"].append((pred["key_confidence"],
                           float(mir_eval.key.weighted_score(gt["key"], pred["key"]) == 1.0)))
    if gt.get("time_signature") and pred.get("time_signature_confidence") is not None:
        out["time signature"].append((pred["time_signature_confidence"],
                                      float(pred.get("time_signature") == gt["time_signature"])))
    return out


def quartile_table(pairs: dict[str, list[tuple[float, float]]]) -> str:
    lines = ["| output | n | accuracy, bottom confidence quartile | top quartile | all |",
             "|---|---|---|---|---|"]
    for what, rows in pairs.items():
        if len(rows) < 8:
            continue
        arr = np.array(rows)
        lo, hi = np.quantile(arr[:, 0], [0.25, 0.75])
        bottom, top = arr[arr[:, 0] <= lo, 1], arr[arr[:, 0] >= hi, 1]
        lines.append(f"| {what} | {len(arr)} | {bottom.mean():.3f} | {top.mean():.3f} | "
                     f"{arr[:, 1].mean():.3f} |")
    return "\n".join(lines)


def aggregate(rows: list[dict]) -> dict[str, float | None]:
    agg: dict[str, float | None] = {}
    for c in COLUMNS:
        vals = [r[c] for r in rows if c in r]
        if not vals:
            agg[c] = None
        elif isinstance(vals[0], tuple):
            tot = sum(v[1] for v in vals)
            agg[c] = sum(v[0] for v in vals) / tot if tot else None
        else:
            agg[c] = float(np.mean(vals))
    return agg


def markdown_table(table: dict[str, tuple[int, dict]], title: str) -> str:
    head = "| " + " | ".join([title, "n", *COLUMNS]) + " |"
    sep = "|" + "---|" * (len(COLUMNS) + 2)
    lines = [head, sep]
    for group, (n, agg) in table.items():
        cells = ["—" if agg[c] is None else f"{agg[c]:.3f}" for c in COLUMNS]
        lines.append("| " + " | ".join([group, str(n), *cells]) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- systems
def madmom_reference(networks, duration: float) -> dict:
    """madmom's processors wired as the plan wires them (the issue's reference)."""
    from madmom.features.chords import DeepChromaChordRecognitionProcessor
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor

    act = networks.beats.values
    out = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)(act)
    beats = out[:, 0] if len(out) else np.zeros(0)
    downbeats = out[out[:, 1] == 1, 0] if len(out) else np.zeros(0)
    from songmap.harmony.key import estimate_key

    key = estimate_key(networks.key_probabilities).label
    segs = [(float(s), float(e), str(lab)) for s, e, lab in
            DeepChromaChordRecognitionProcessor()(networks.chroma.values)]
    bars = []
    ends = np.append(downbeats[1:], beats[-1] + np.median(np.diff(beats))) if len(downbeats) else []
    for a, b in zip(downbeats, ends):
        cover: dict[str, float] = defaultdict(float)
        for s, e, lab in segs:
            cover[lab] += max(0.0, min(b, e) - max(a, s))
        bars.append([float(a), float(b), max(cover, key=cover.get) if cover else "N"])
    tempo = 60.0 / np.median(np.diff(beats)) if len(beats) > 1 else None
    counts = np.diff(np.searchsorted(beats, downbeats)) if len(downbeats) > 1 else []
    # per-bar tempo as a user of madmom would get it: beats in the bar over its length
    curve = [[float(a), float(60.0 * c / (b - a))]
             for a, b, c in zip(downbeats[:-1], downbeats[1:], counts) if b > a and c > 0]
    meter = f"{int(np.bincount(counts).argmax())}/4" if len(counts) else None
    return {"beats": beats.tolist(), "downbeats": downbeats.tolist(), "tempo": tempo,
            "time_signature": meter, "tempo_curve": curve,
            "key": key, "chords": [list(s) for s in segs], "bar_chords": bars}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifests", nargs="+")
    ap.add_argument("--out", default="bench-out/accuracy", help="prediction JSONs go here")
    ap.add_argument("--cache", help="cache the network outputs here (.npz per clip)")
    ap.add_argument("--system", choices=["songmap", "madmom"], default="songmap")
    ap.add_argument("--json", help="write per-clip and per-group scores here")
    ap.add_argument("--group-by", default="source")
    args = ap.parse_args()

    from eval_form import to_eval_dict  # beside this script

    from songmap.audio import load_audio
    from songmap.pipeline import Analyzer
    from songmap.signals import NetworkOutputs

    analyzer = Analyzer()
    out_dir = Path(args.out) / args.system
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[dict]] = defaultdict(list)
    per_clip = {}
    conf_pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    structure: list[dict[str, float]] = []
    grid: list[dict] = []
    sections: list[dict[str, float]] = []
    t_start = time.perf_counter()
    audio_s = 0.0
    for manifest in args.manifests:
        m = json.loads(Path(manifest).read_text())
        clips = m["clips"] if isinstance(m, dict) else m
        for clip in clips:
            audio_path = Path(manifest).parent / clip["audio"]
            audio = load_audio(audio_path)
            audio_s += audio.duration
            cached = cache / f"{clip['id']}.npz" if cache else None
            if cached and cached.exists():
                networks = NetworkOutputs.load(cached)
            else:
                networks = analyzer.run_networks(audio)
                if cached:
                    networks.save(cached)
            if args.system == "songmap":
                result = analyzer.analyze_audio(audio, filename=clip["id"], networks=networks)
                pred = to_eval_dict(result)
                pred["tempo_segments"] = len(result.tempo_map)
                pred["meter_sections"] = [x.model_dump() for x in result.meter_sections]
                pred["bar_beats"] = [[d.timestamp, d.beats] for d in result.downbeat_timeline]
            else:
                pred = madmom_reference(networks, audio.duration)
            (out_dir / f"{clip['id']}.json").write_text(json.dumps(pred))
            res = score_clip(clip["ground_truth"], pred)
            grid.append(grid_row(clip["ground_truth"], pred))
            structure.append(structure_row(clip["ground_truth"], pred,
                                           clip.get("generator", {}).get("pickup")))
            sections.append(meter_section_row(clip["ground_truth"], pred))
            for what, rows in confidence_pairs(clip["ground_truth"], pred).items():
                conf_pairs[what].extend(rows)
            group = str(clip.get(args.group_by, "all"))
            groups[group].append(res)
            per_clip[clip["id"]] = {"group": group, **{k: v for k, v in res.items()},
                                    **sections[-1]}
            print(f"  {clip['id']:20s} {group:10s} beatF {res.get('beatF', 0):.3f} "
                  f"dbeatF {res.get('dbeatF', 0):.3f} key {res.get('key', 0):.2f}",
                  file=sys.stderr)
    table = {g: (len(rows), aggregate(rows)) for g, rows in sorted(groups.items())}
    every = [r for rows in groups.values() for r in rows]
    table["ALL"] = (len(every), aggregate(every))
    print(markdown_table(table, args.system))
    if structure:
        print("\nBars, pickups and the song's ends:\n")
        print(structure_table(structure))
    if grid:
        print("\nGrid precision (constant-tempo clips; segments = tempo-map segments):\n")
        print(grid_table(grid))
    if args.system == "songmap" and sections:
        print("\nMeter sections:\n")
        print(meter_section_table(sections))
    if any(conf_pairs.values()):
        print("\nDo confidences predict correctness?\n")
        print(quartile_table(conf_pairs))
    print(f"\n{len(every)} clips, {audio_s / 60:.1f} min of audio, "
          f"{time.perf_counter() - t_start:.0f} s wall")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {"system": args.system, "groups": {g: {"n": n, **agg} for g, (n, agg) in table.items()},
             "clips": per_clip}, indent=1, default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
