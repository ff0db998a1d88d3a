#!/usr/bin/env python3
"""The streaming path (``songmap.live``) scored like the offline one, with its delays.

    python benchmarks/live.py MANIFEST [MANIFEST ...] [--limit N] [--cache DIR ...]
                              [--block-ms 20] [--window S] [--hop S] [--lookahead S]
                              [--grid-choice song|window] [--bar-phase song|window]
                              [--grid-fit follow|line] [--tempo-step causal|window]
                              [--replay DIR] [--only ID ...] [--no-offline]
                              [--events DIR] [--json FILE] [--hour]

Every clip is decoded and fed to a ``LiveAnalyzer`` in blocks of ``--block-ms`` at full
speed; the events are turned into predictions (beat and downbeat events; chord events as
segments: they start where the offline bar chords do, on bars or half bars; the last key
event; the median tempo event) and scored with ``benchmarks/accuracy.py``'s mir_eval
scoring against the ground truth and against songmap's offline result on the same clip
(its networks from ``--cache`` when given, a folder per manifest in the same order).
Printed per set as a Markdown table: beat F, beat F of the beats emitted on time (within
0.1 s), CMLt, downbeat F, chord majmin (of the chord events), key; the emission delay
(median and 95th percentile, s) of each event kind; CPU seconds per second of audio
(this process, every thread). ``--hour`` also feeds one hour of audio (a clip looped)
and reports the resident memory and the analyser's state size at the start and the end.
``--replay DIR`` records each clip's causal activations and window analyses the first
time and replays them after (they depend only on the audio and the block size), so that
the decisions after them are re-scored in seconds; the CPU column is then not the
stream's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
warnings.filterwarnings("ignore")

from accuracy import score_clip  # noqa: E402 - benchmarks/ is put on sys.path above

COLUMNS = ["beatF", "beatF_ontime", "CMLt", "dbeatF", "majmin_seg", "key"]
#: A beat event emitted later than this (s of audio past its time) is of no use live:
#: ``beatF_ontime`` scores only the beats emitted within it (a grid's beats back-filled
#: where the silence gate opens again, or at a change of tempo level, are not).
ON_TIME_S = 0.1
KINDS = ["beat", "downbeat", "chord", "tempo", "key", "revise"]


def events_to_prediction(events: list, duration: float) -> dict:
    """The shared scorer's form from a stream's events (revisions need no handling
    here: they change bar numbers, not times)."""
    beats = [e.time for e in events if e.type == "beat"]
    downs = [e.time for e in events if e.type == "downbeat"]
    chords = [e for e in events if e.type == "chord"]
    segs = [[a.time, b.time, a.label] for a, b in pairwise(chords) if b.time > a.time]
    if chords:
        segs.append([chords[-1].time, max(duration, chords[-1].time), chords[-1].label])
    keys = [e for e in events if e.type == "key"]
    tempi = [e.bpm for e in events if e.type == "tempo"]
    return {"beats": beats, "downbeats": downs, "chords": segs,
            "key": keys[-1].label if keys else None,
            "tempo": float(np.median(tempi)) if tempi else None}


def offline_prediction(result) -> dict:
    """The offline result in the same form (the reference for agreement)."""
    return {
        "beats": result.beat_times().tolist(),
        "downbeats": [b.timestamp for b in result.downbeat_timeline],
        "chords": [list(x) for x in result.chord_segments],
        "key": None if result.key.label == "N" else result.key.label,
        "tempo": result.tempo.bpm,
    }


class _Replay:
    """Records a stream's expensive, decision-free parts (the causal front end and beat
    networks' activation per block, and each window's offline analysis) to a file, or
    replays them from it, so that the decisions after them are re-scored in seconds
    (``--replay DIR``; the CPU figures are then meaningless). Both parts depend only on
    the audio and the block size, never on the decisions being tried."""

    def __init__(self, live, path: Path) -> None:
        import pickle

        self.path = path
        self.replaying = path.is_file()
        self.acts: list = []
        self.windows: dict = {}
        if self.replaying:
            with open(path, "rb") as f:
                self.acts, self.windows = pickle.load(f)
        self._i = 0
        front, net, analyse = live._front, live._net, live._analyse

        class Front:
            def push(_, samples):
                if self.replaying:
                    self._i += 1
                    return self.acts[self._i - 1]
                feats = front.push(samples)
                self.acts.append(np.zeros(len(feats)))
                return feats

        class Net:
            def step(_, feats, state):
                if self.replaying:
                    return feats
                act = net.step(feats, state)
                self.acts[-1] = np.asarray(act).copy()
                return act

        def cached(audio):
            key = (round(live.time, 4), len(audio.samples))
            if key not in self.windows:
                self.windows[key] = analyse(audio)
            return self.windows[key]

        live._front, live._net, live._analyse = Front(), Net(), cached

    def save(self) -> None:
        import pickle

        if not self.replaying:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as f:
                pickle.dump((self.acts, self.windows), f)


def run_stream(live, samples: np.ndarray, block: int) -> tuple[list, float]:
    t0 = time.process_time()
    events = []
    for i in range(0, len(samples), block):
        events += live.push(samples[i:i + block])
    events += live.finish()
    return events, time.process_time() - t0


def _as_truth(pred: dict) -> dict:
    """Offline predictions as ground truth for ``score_clip``."""
    gt = dict(pred)
    gt["chords"] = pred["chords"] or None
    gt.pop("tempo", None)
    return gt


def _ratio(v):
    return v[0] / v[1] if isinstance(v, tuple) else v


def _mean(rows: list[dict], col: str) -> float | None:
    vals = [r[col] for r in rows if col in r]
    if not vals:
        return None
    if isinstance(vals[0], tuple):  # chord WCSR: duration-weighted over the set
        tot = sum(v[1] for v in vals)
        return sum(v[0] for v in vals) / tot if tot else None
    return float(np.mean(vals))


def hour_memory(analyzer, samples: np.ndarray, block: int, kwargs: dict,
                minutes: float = 60.0) -> dict:
    """Feed ``minutes`` (an hour) of ``samples`` looped; RSS (MB) and state size after
    the first minute and at the end."""
    import pickle

    from songmap.live import LiveAnalyzer

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def state_kb(live) -> float:
        keep = {k: v for k, v in vars(live).items()
                if k not in ("analyzer", "_net", "_resampler", "_tracker", "_front")}
        return len(pickle.dumps(keep)) / 1024.0

    live = LiveAnalyzer(analyzer, **kwargs)
    fed, marks, n_events = 0, {}, 0
    total = int(minutes * 60 * 44100)
    t0 = time.process_time()
    while fed < total:
        for i in range(0, len(samples), block):
            n_events += len(live.push(samples[i:i + block]))
            fed += len(samples[i:i + block])
            if "start" not in marks and fed >= 60 * 44100:
                marks["start"] = (rss_mb(), state_kb(live))
            if fed >= total:
                break
    marks["end"] = (rss_mb(), state_kb(live))
    return {"rss_start_mb": marks["start"][0], "rss_end_mb": marks["end"][0],
            "state_start_kb": marks["start"][1], "state_end_kb": marks["end"][1],
            "events": n_events, "minutes": minutes,
            "cpu_s_per_s": (time.process_time() - t0) / (minutes * 60.0)}


def main(argv: list[str] | None = None) -> int:
    from songmap.live.stream import (
        BAR_PHASES,
        GRID_CHOICES,
        GRID_FITS,
        KEY_SOURCES,
        PRIORS,
        TEMPO_STEPS,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--limit", type=int, default=0, help="first N clips per manifest")
    ap.add_argument("--cache", type=Path, nargs="*", default=[],
                    help="network-output caches for the offline reference, one per manifest")
    ap.add_argument("--block-ms", type=float, default=20.0)
    ap.add_argument("--window", type=float, default=None)
    ap.add_argument("--hop", type=float, default=None)
    ap.add_argument("--lookahead", type=float, default=None)
    ap.add_argument("--beat-nets", type=int, default=None)
    ap.add_argument("--prior", choices=PRIORS, default=None,
                    help="what guides the causal beat filter (default: LiveAnalyzer's)")
    ap.add_argument("--key-from", choices=KEY_SOURCES, default=None)
    ap.add_argument("--grid-choice", choices=GRID_CHOICES, default=None,
                    help="how a window's beat grid is weighed against the song so far")
    ap.add_argument("--bar-phase", choices=BAR_PHASES, default=None,
                    help="where a window's bars start: the window's or the song's evidence")
    ap.add_argument("--grid-fit", choices=GRID_FITS, default=None,
                    help="how the carried beat grid follows the window's beats")
    ap.add_argument("--tempo-step", choices=TEMPO_STEPS, default=None,
                    help="who follows a tempo step first: the causal filter or the windows")
    ap.add_argument("--json", type=Path, help="write per-clip rows and the summary here")
    ap.add_argument("--replay", type=Path, default=None,
                    help="record the activations and window analyses here, or replay them")
    ap.add_argument("--only", nargs="*", default=[], help="clip ids (substrings) to run")
    ap.add_argument("--no-offline", action="store_true", help="skip the offline reference")
    ap.add_argument("--events", type=Path, default=None, help="write each clip's events here")
    ap.add_argument("--hour", action="store_true", help="also a long stream's memory")
    ap.add_argument("--hour-minutes", type=float, default=60.0,
                    help="length of that stream (default 60 minutes)")
    args = ap.parse_args(argv)

    from songmap.audio import load_audio
    from songmap.live import LiveAnalyzer
    from songmap.pipeline import Analyzer, NetworkOutputs

    # clips are fed as fast as possible: no real time to keep up with (the accuracy
    # must not depend on how busy the machine is)
    kwargs: dict = {"keep_up": False}
    kwargs |= {k: v for k, v in (("window_s", args.window), ("hop_s", args.hop),
                                ("lookahead_s", args.lookahead),
                                ("beat_nets", args.beat_nets)) if v is not None}
    if args.prior:
        kwargs["prior"] = args.prior
    if args.key_from:
        kwargs["key_from"] = args.key_from
    if args.grid_choice:
        kwargs["grid_choice"] = args.grid_choice
    if args.bar_phase:
        kwargs["bar_phase"] = args.bar_phase
    if args.grid_fit:
        kwargs["grid_fit"] = args.grid_fit
    if args.tempo_step:
        kwargs["tempo_step"] = args.tempo_step
    analyzer = Analyzer()
    block = max(1, int(args.block_ms / 1000 * 44100))
    out: dict = {"settings": {**kwargs, "block_ms": args.block_ms}, "sets": {}}
    first_audio = None
    for mi, manifest in enumerate(args.manifests):
        clips = json.loads(manifest.read_text())["clips"]
        clips = clips[:args.limit] if args.limit else clips
        if args.only:
            clips = [c for c in clips if any(o in c["id"] for o in args.only)]
        cache = args.cache[mi] if mi < len(args.cache) else None
        name = manifest.parent.name
        rows, vs_offline, delays, cpu, audio_s = [], [], defaultdict(list), 0.0, 0.0
        for clip in clips:
            audio = load_audio(manifest.parent / clip["audio"])
            first_audio = first_audio if first_audio is not None else audio.samples
            live = LiveAnalyzer(analyzer, **kwargs)
            replay = (_Replay(live, args.replay / name / f"{clip['id']}.pkl")
                      if args.replay else None)
            events, secs = run_stream(live, audio.samples, block)
            if replay is not None:
                replay.save()
            if args.events:
                args.events.mkdir(parents=True, exist_ok=True)
                (args.events / f"{clip['id']}.json").write_text(
                    json.dumps([e.to_dict() for e in events]))
            cpu += secs
            audio_s += audio.duration
            for e in events:
                delays[e.type].append(e.delay)
            pred = events_to_prediction(events, audio.duration)
            row = {"id": clip["id"], **score_clip(clip["ground_truth"], pred),
                   "cpu_s_per_s": secs / audio.duration}
            on_time = [e.time for e in events if e.type == "beat" and e.delay <= ON_TIME_S]
            if "beatF" in row:
                row["beatF_ontime"] = score_clip(
                    {"beats": clip["ground_truth"]["beats"]}, {"beats": on_time})["beatF"]
            rows.append(row)
            nets = None
            if cache is not None and (cache / f"{clip['id']}.npz").is_file():
                nets = NetworkOutputs.load(cache / f"{clip['id']}.npz")
            if not args.no_offline:
                offline = analyzer.analyze_audio(audio, networks=nets, filename=clip["id"])
                vs_offline.append(score_clip(_as_truth(offline_prediction(offline)), pred))
            print(f"{name} {clip['id']}: " + " ".join(
                f"{c}={_ratio(row[c]):.3f}" for c in COLUMNS if c in row)
                + f" cpu={row['cpu_s_per_s']:.3f}", file=sys.stderr, flush=True)
        summary = {c: _mean(rows, c) for c in COLUMNS}
        agree = {c: _mean(vs_offline, c) for c in COLUMNS}
        delay = {k: (float(np.median(delays[k])), float(np.percentile(delays[k], 95)))
                 for k in KINDS if delays[k]}
        out["sets"][name] = {"clips": len(rows), "truth": summary, "vs_offline": agree,
                             "delay_s": delay, "cpu_s_per_s": cpu / max(audio_s, 1e-9),
                             "rows": [{k: _ratio(v) for k, v in r.items()} for r in rows]}
    if args.hour and first_audio is not None:
        out["hour"] = hour_memory(analyzer, first_audio, block, kwargs, args.hour_minutes)
    print(render(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


def render(out: dict) -> str:
    def fmt(v):
        return "-" if v is None else f"{v:.3f}"
    lines = [f"settings: {out['settings']}", "",
             "| set | clips | vs | " + " | ".join(COLUMNS) + " | CPU s/s |",
             "|---|---|---|" + "---|" * (len(COLUMNS) + 1)]
    for name, s in out["sets"].items():
        for vs, key in (("truth", "truth"), ("offline", "vs_offline")):
            lines.append(f"| {name} | {s['clips']} | {vs} | "
                         + " | ".join(fmt(s[key][c]) for c in COLUMNS)
                         + f" | {fmt(s['cpu_s_per_s']) if vs == 'truth' else ''} |")
    lines += ["", "| set | " + " | ".join(f"{k} delay median / p95 (s)" for k in KINDS) + " |",
              "|---|" + "---|" * len(KINDS)]
    for name, s in out["sets"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{s['delay_s'][k][0]:.3f} / {s['delay_s'][k][1]:.3f}" if k in s["delay_s"] else "-"
            for k in KINDS) + " |")
    if "hour" in out:
        h = out["hour"]
        lines += ["", (f"{h['minutes']:g} minutes of stream: RSS {h['rss_start_mb']:.1f} MB "
                       f"after 1 min, {h['rss_end_mb']:.1f} MB at the end; state "
                       f"{h['state_start_kb']:.1f} kB -> {h['state_end_kb']:.1f} kB; "
                       f"{h['events']} events; CPU {h['cpu_s_per_s']:.3f} s/s")]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
