"""Load test of ``songmap serve``: a bounded run of concurrent uploads on loopback.

Starts ``songmap serve`` on 127.0.0.1 (a free port, a temporary data folder), sends
``--requests`` uploads ``--concurrency`` at a time to ``POST /analyze-timeline`` — distinct
generated songs (each sent several times, so the store and the in-flight de-duplication
are exercised) mixed with bad files (empty, text, truncated WAV and FLAC, too short, too
long) — and checks every answer: good files 200 with the right meter and tempo, bad
ones their 4xx. Prints latency percentiles per kind and the server's RSS (the server
plus its worker processes) before and after. Exits non-zero if any answer was wrong.

    python benchmarks/load.py                       # 60 uploads, 8 at a time, 2 workers
    python benchmarks/load.py --requests 120 --json load.json

Only loopback is ever contacted; the run is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import soundfile as sf

from songmap.examples import render_song

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Case:
    kind: str  # "good" or the bad file's name
    path: Path
    expect_status: int
    expect_bpm: float | None = None
    expect_meter: str | None = None


def make_good(folder: Path, n_good: int, round_no: int) -> list[Case]:
    """Distinct songs (new ones every round, so each round analyses afresh)."""
    good = []
    for i in range(n_good):
        bpm = 90.0 + 7.0 * i
        bpb = 3 if i % 4 == 3 else 4
        song = render_song(bpm=bpm, beats_per_bar=bpb, bars=8, seed=1000 * round_no + i)
        path = folder / f"good-r{round_no}-{i:02d}.flac"
        sf.write(path, song.samples, song.sr, subtype="PCM_16")
        good.append(Case("good", path, 200, bpm, f"{bpb}/4"))
    return good


def make_bad(folder: Path, max_duration_s: float) -> list[Case]:
    song = render_song(bars=4, seed=7)
    wav = folder / "whole.wav"
    sf.write(wav, song.samples, song.sr, subtype="PCM_16")
    flac = folder / "whole.flac"
    sf.write(flac, song.samples, song.sr, subtype="PCM_16")
    bad = {
        "empty": (b"", ".wav", 415),
        "text": (b"not a song, just some notes\n" * 50, ".mp3", 415),
        "truncated-wav": (wav.read_bytes()[: wav.stat().st_size // 3], ".wav", 422),
        "truncated-flac": (flac.read_bytes()[: flac.stat().st_size // 2], ".flac", 422),
    }
    cases = []
    for name, (data, ext, status) in bad.items():
        path = folder / f"{name}{ext}"
        path.write_bytes(data)
        cases.append(Case(name, path, status))
    short = folder / "too-short.wav"
    sf.write(short, song.samples[: song.sr], song.sr, subtype="PCM_16")
    cases.append(Case("too-short", short, 422))
    long_song = render_song(bars=int(max_duration_s / 2) + 5, seed=9, sr=8000)
    long = folder / "too-long.flac"
    sf.write(long, long_song.samples, long_song.sr, subtype="PCM_16")
    cases.append(Case("too-long", long, 413))
    return cases


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, int, list[float]]:
    """RSS (MB) of ``pid`` and all its descendants, how many processes, and each one's RSS
    (the server first, then its children by pid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    each: list[float] = []
    todo = [pid]
    while todo:
        p = todo.pop(0)
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        each.append(int(line.split()[1]) / 1024.0)
        except OSError:
            continue
        todo.extend(sorted(children.get(p, [])))
    return sum(each), len(each), each


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def send(client: httpx.Client, base: str, case: Case, deadline: float) -> dict:
    """One upload; a 503 is retried after its Retry-After (and counted)."""
    retries = 0
    t0 = time.perf_counter()
    while True:
        with open(case.path, "rb") as f:
            r = client.post(f"{base}/analyze-timeline",
                            files={"file": (case.path.name, f, "application/octet-stream")})
        if r.status_code == 503 and time.monotonic() < deadline:
            retries += 1
            time.sleep(float(r.headers.get("Retry-After", "1")))
            continue
        break
    seconds = time.perf_counter() - t0
    problem = None
    if r.status_code != case.expect_status:
        problem = f"{case.path.name}: expected {case.expect_status}, got {r.status_code} {r.text[:200]}"
    elif case.expect_status == 200:
        body = r.json()
        tf = body["timeline_features"]
        bpm = tf["tempo"]["bpm"]
        if body["filename"] != case.path.name:
            problem = f"{case.path.name}: answered for {body['filename']}"
        elif tf["time_signature"]["label"] != case.expect_meter:
            problem = f"{case.path.name}: meter {tf['time_signature']['label']} != {case.expect_meter}"
        elif min(abs(bpm - case.expect_bpm * m) for m in (0.5, 1.0, 2.0)) > 2.0:
            problem = f"{case.path.name}: {bpm} BPM, expected {case.expect_bpm}"
    else:
        error = r.json().get("error", {})
        if not error.get("message") or case.path.name not in error["message"]:
            problem = f"{case.path.name}: error body does not name the file: {r.text[:200]}"
    kind = case.kind
    if case.kind == "good":
        kind = {"hit": "good (stored)", "shared": "good (shared)"}.get(
            r.headers.get("X-Songmap-Cache", ""), "good (analysed)")
    return {"kind": kind, "status": r.status_code, "seconds": seconds, "retries": retries,
            "problem": problem}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=60, help="uploads per round")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of fresh songs; RSS is taken after each (growth = a leak)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--distinct", type=int, default=12, help="distinct good songs")
    ap.add_argument("--good-share", type=float, default=0.6)
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds for the whole run")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if not (1 <= args.requests <= 1000 and 1 <= args.concurrency <= 64 and 1 <= args.rounds <= 5):
        ap.error("keep the run bounded: 1..1000 requests, 1..64 concurrent, 1..5 rounds")

    max_duration_s = 120.0
    with tempfile.TemporaryDirectory(prefix="songmap-load-") as tmp:
        folder = Path(tmp)
        files = folder / "files"
        files.mkdir()
        bad = make_bad(files, max_duration_s)
        rng = random.Random(0)
        n_good = round(args.requests * args.good_share)
        rounds = []
        for round_no in range(args.rounds):
            good = make_good(files, args.distinct, round_no)
            cases = [good[i % len(good)] for i in range(n_good)]
            cases += [bad[i % len(bad)] for i in range(args.requests - n_good)]
            rng.shuffle(cases)
            rounds.append(cases)

        port = free_port()
        base = f"http://{HOST}:{port}"
        log_path = folder / "server.log"
        log = open(log_path, "w")  # noqa: SIM115 - the server writes to it until the run ends
        server = subprocess.Popen(
            [sys.executable, "-m", "songmap.cli.main", "serve", "--host", HOST,
             "--port", str(port), "--workers", str(args.workers), "--data-dir",
             str(folder / "data"), "--max-duration", str(max_duration_s)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            t_start = time.perf_counter()
            with httpx.Client(timeout=300.0) as client:
                for _ in range(1200):
                    if server.poll() is not None:
                        raise SystemExit(f"songmap serve exited:\n{log_path.read_text()}")
                    try:
                        if client.get(f"{base}/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)
                else:
                    raise SystemExit("songmap serve did not become ready in 120 s")
                startup = time.perf_counter() - t_start
                rss = [rss_mb(server.pid)]
                deadline = time.monotonic() + args.time_limit
                answers, walls = [], []
                for cases in rounds:
                    t0 = time.perf_counter()
                    with ThreadPoolExecutor(args.concurrency) as ex:
                        answers += list(ex.map(lambda c: send(client, base, c, deadline), cases))
                    walls.append(time.perf_counter() - t0)
                    rss.append(rss_mb(server.pid))
                health = client.get(f"{base}/healthz").status_code
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
        leftover = [p for p in (folder / "data" / "scratch").rglob("*")]

    problems = [a["problem"] for a in answers if a["problem"]]
    kinds = sorted({a["kind"] for a in answers})
    rows = []
    for kind in [*kinds, "all"]:
        secs = [a["seconds"] for a in answers if kind in ("all", a["kind"])]
        statuses = sorted({a["status"] for a in answers if kind in ("all", a["kind"])})
        rows.append((kind, len(secs), "/".join(map(str, statuses)), percentile(secs, 0.5),
                     percentile(secs, 0.95), max(secs)))
    print(f"songmap serve load test: {args.rounds} rounds x {args.requests} uploads "
          f"({n_good} good of {args.distinct} distinct new songs per round, the rest bad), "
          f"{args.concurrency} concurrent, {args.workers} workers, {os.cpu_count()} cores")
    print(f"server ready in {startup:.1f} s; rounds took "
          f"{', '.join(f'{w:.1f}' for w in walls)} s ({len(answers) / sum(walls):.1f} requests/s)")
    print()
    print(f"| {'kind':<16} | {'n':>3} | {'status':>7} | {'p50 s':>6} | {'p95 s':>6} | {'max s':>6} |")
    print(f"|{'-' * 18}|{'-' * 5}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 8}|")
    for kind, n, statuses, p50, p95, mx in rows:
        print(f"| {kind:<16} | {n:>3} | {statuses:>7} | {p50:>6.2f} | {p95:>6.2f} | {mx:>6.2f} |")
    print()
    labels = ["ready"] + [f"after round {i + 1}" for i in range(args.rounds)]
    print("server RSS, total = server + resource tracker + workers (MB):")
    for label, (mb, _, each) in zip(labels, rss):
        print(f"  {label:<14} {mb:5.0f} = " + " + ".join(f"{x:.0f}" for x in each))
    if args.rounds > 1:
        print(f"growth from round 1 to round {args.rounds} (warm, fresh songs each round): "
              f"{rss[-1][0] - rss[1][0]:+.0f} MB")
    print(f"503 retries: {sum(a['retries'] for a in answers)}; /healthz after: {health}; "
          f"scratch files left: {len(leftover)}")
    print(f"wrong answers: {len(problems)}")
    for p in problems:
        print(f"  - {p}")
    if args.json:
        args.json.write_text(json.dumps({
            "requests": len(answers), "concurrency": args.concurrency, "workers": args.workers,
            "rounds": args.rounds, "startup_s": startup, "wall_s": walls,
            "latency": [dict(zip(("kind", "n", "statuses", "p50_s", "p95_s", "max_s"), r))
                        for r in rows],
            "rss_mb": [mb for mb, _, _ in rss], "rss_mb_each": [each for _, _, each in rss],
            "retries_503": sum(a["retries"] for a in answers), "problems": problems,
        }, indent=2) + "\n")
    ok = not problems and health == 200 and not leftover
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
