"""Batch throughput: tracks per hour and audio hours per hour, 1 vs 2 local workers.

Renders ``--tracks`` songs of about ``--seconds`` s each with the project's synthesiser
(varied tempo and meter), then runs ``songmap.batch.run_batch`` on them from scratch
(an empty store each time, so nothing is skipped) for each configuration:

- 1 worker with 2 network threads (what ``--workers 1`` gives on 2 cores),
- 1 worker with 1 thread,
- 2 workers with 1 thread each (the default on 2 cores).

Times are wall seconds of the whole run: worker start-up and model loading included, as
a user sees it; "steady" is the rate between the first and the last result (start-up
excluded); "worker CPU s/track" is the workers' CPU time per track, which says how
much of a slow run was the machine being busy with other work. Prints a Markdown table
and writes JSON (``--json``).

    python benchmarks/batch.py [--tracks 40] [--seconds 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

CONFIGS = [(1, 2), (1, 1), (2, 1)]  # (workers, threads per worker)


def render_library(folder: Path, tracks: int, seconds: float) -> float:
    """Write the songs; return their total duration (s)."""
    import soundfile as sf

    from songmap.examples import render_song

    total = 0.0
    for i in range(tracks):
        bpm = 80.0 + (i * 37) % 90  # 80..169 BPM
        bpb = (4, 3, 4, 2)[i % 4]
        bars = max(2, round(seconds / (bpb * 60.0 / bpm)))
        song = render_song(bpm=bpm, beats_per_bar=bpb, bars=bars, seed=i)
        sf.write(folder / f"track{i:02d}.flac", song.samples, song.sr)
        total += len(song.samples) / song.sr
    return total


def run_once(folder: Path, workers: int, threads: int) -> dict[str, float]:
    from songmap.batch import run_batch

    with tempfile.TemporaryDirectory() as tmp:
        cpu0 = _children_cpu_s()
        done_at: list[float] = []
        t0 = time.perf_counter()
        summary = run_batch([folder], store=Path(tmp) / "store.sqlite", workers=workers,
                            threads=threads,
                            on_record=lambda record, runner: done_at.append(time.perf_counter()))
        wall = time.perf_counter() - t0
        cpu = _children_cpu_s() - cpu0  # the workers, reaped when the batch closed them
    if summary.failed or summary.skipped:
        raise RuntimeError(summary.format())
    return {
        "workers": workers, "threads": threads, "tracks": summary.ok,
        "audio_hours": summary.audio_seconds / 3600, "wall_s": wall,
        "tracks_per_hour": summary.ok * 3600 / wall,
        "audio_hours_per_hour": summary.audio_seconds / wall,
        # Between the first and the last result: the rate once workers are up and loaded.
        "steady_tracks_per_hour": (len(done_at) - 1) * 3600 / (done_at[-1] - done_at[0])
        if len(done_at) > 1 and done_at[-1] > done_at[0] else 0.0,
        "worker_cpu_s": cpu, "worker_cpu_s_per_track": cpu / max(summary.ok, 1),
    }


def _children_cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--json", type=Path, help="write the numbers here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        audio_s = render_library(folder, args.tracks, args.seconds)
        rows = []
        load_before = os.getloadavg()[0]
        for workers, threads in CONFIGS:
            rows.append(run_once(folder, workers, threads))
            print(f"  {workers} worker(s) x {threads} thread(s): {rows[-1]['wall_s']:.1f} s",
                  flush=True)
        load_after = os.getloadavg()[0]

    base2 = rows[0]["tracks_per_hour"]
    base1 = rows[1]["tracks_per_hour"]
    print(f"\n{args.tracks} tracks, {audio_s / 60:.1f} min of audio; {os.cpu_count()} cores; "
          f"load average {load_before:.2f} before, {load_after:.2f} after\n")
    print("| workers | threads/worker | wall (s) | tracks/hour | audio hours/hour "
          "| vs 1 worker x 2 threads | vs 1 worker x 1 thread | steady tracks/hour "
          "| worker CPU s/track |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workers']} | {r['threads']} | {r['wall_s']:.1f} | "
              f"{r['tracks_per_hour']:.0f} | {r['audio_hours_per_hour']:.1f} | "
              f"{r['tracks_per_hour'] / base2:.2f}x | {r['tracks_per_hour'] / base1:.2f}x | "
              f"{r['steady_tracks_per_hour']:.0f} | {r['worker_cpu_s_per_track']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "tracks": args.tracks, "audio_seconds": audio_s, "cpu_count": os.cpu_count(),
            "machine": platform.platform(), "load_average": [load_before, load_after],
            "runs": rows,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
