"""Every hostile input of issue 7 through the CLI and the API, then a fuzz run.

    python benchmarks/robustness.py [--fuzz-seconds 60] [--json out.json] [--no-api]

Prints a Markdown table (input, expected, got, pass) per surface: the CLI is run as a
subprocess (``songmap analyze``), the API through FastAPI's ``TestClient`` with its
real worker processes. Then a fuzz run of decode+analyse over mutated and random
bytes for a fixed wall budget: anything but a ``SongmapError`` (or a valid result),
or an input that takes longer than ``--slow-seconds``, is a finding, saved under
``benchmarks/fuzz-findings/`` to become a regression test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the cases live with the tests

from songmap import errors  # noqa: E402
from songmap.schema import AnalysisResult  # noqa: E402
from tests.robustness.cases import CASES, Case, clicks, encode, write  # noqa: E402

Row = tuple[str, str, str, bool]


def _judge_result(case: Case, result: AnalysisResult) -> tuple[str, bool]:
    try:
        case.check(result)
    except AssertionError as exc:
        return f"result breaks the check ({exc})", False
    return (f"result: {result.tempo.bpm:g} BPM, {result.total_beats} beats, "
            f"{result.audio.sample_rate} Hz x {result.audio.channels}"), True


# -- CLI ------------------------------------------------------------------------------------
def run_cli(case: Case, path: Path) -> Row:
    cmd = [sys.executable, "-m", "songmap.cli.main", "analyze", str(path), "--json"]
    if case.max_duration_s is not None:
        cmd += ["--max-duration", f"{case.max_duration_s:g}"]
    expected = f"exit {case.exit_code}" + (f", '{case.message}'" if case.error else ", JSON")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return case.name, expected, "HUNG (>300 s)", False
    err = proc.stderr.strip()
    if "Traceback" in err:
        return case.name, expected, f"exit {proc.returncode}, traceback", False
    if case.error is not None:
        ok = proc.returncode == case.exit_code and case.message in err and not proc.stdout
        return case.name, expected, f"exit {proc.returncode}: {err[:110]}", ok
    if proc.returncode != 0:
        return case.name, expected, f"exit {proc.returncode}: {err[:110]}", False
    got, ok = _judge_result(case, AnalysisResult.model_validate_json(proc.stdout))
    return case.name, expected, f"exit 0, {got}", ok


# -- API ------------------------------------------------------------------------------------
def api_rows(cases: list[tuple[Case, Path]], data_dir: Path) -> list[Row]:
    from fastapi.testclient import TestClient

    from songmap.api.app import create_app
    from songmap.api.errors import status_for
    from songmap.api.settings import ServeSettings

    rows: list[Row] = []
    groups: dict[float | None, list[tuple[Case, Path]]] = {}
    for case, path in cases:
        groups.setdefault(case.max_duration_s, []).append((case, path))
    for limit, group in groups.items():
        settings = ServeSettings(data_dir=data_dir / f"limit-{limit}", workers=1, threads=2,
                                 max_upload_mb=100.0, max_duration_s=limit)
        with TestClient(create_app(settings)) as client:
            for case, path in group:
                rows.append(_api_case(client, case, path, status_for))
            if limit is None:
                rows.append(_api_dotdot(client, settings, data_dir))
            left = [p for d in (settings.scratch_dir, settings.uploads_dir) for p in d.rglob("*")
                    if p.is_file()]
            rows.append((f"no upload left behind (limit {limit})", "0 files", f"{len(left)} files",
                         not left))
    return rows


def _api_case(client, case: Case, path: Path, status_for) -> Row:  # noqa: ANN001
    status = 200 if case.error is None else status_for(case.error(""))
    expected = f"{status}" + (f", '{case.message}'" if case.error else ", JSON")
    with open(path, "rb") as f:
        resp = client.post("/analyze", files={"file": (path.name, f, "application/octet-stream")})
    if case.error is not None:
        body = resp.json().get("error", {})
        ok = (resp.status_code == status and body.get("type") == case.error.__name__
              and case.message in body.get("message", ""))
        return case.name, expected, f"{resp.status_code} {body.get('type')}: " \
            f"{body.get('message', '')[:100]}", ok
    if resp.status_code != 200:
        return case.name, expected, f"{resp.status_code}: {resp.text[:110]}", False
    result = AnalysisResult.model_validate_json(resp.text)
    if result.filename != path.name:  # the service keeps the client's name, trimmed
        if result.filename == path.name.strip()[:200]:
            result = result.model_copy(update={"filename": path.name})
    got, ok = _judge_result(case, result)
    return case.name, expected, f"200, {got}", ok


def _api_dotdot(client, settings, data_dir: Path) -> Row:  # noqa: ANN001
    """An upload named ``../../x.wav``: analysed under its base name, nothing written outside."""
    src = write(data_dir / "dotdot-src.wav", clicks(6.0))
    before = set(data_dir.parent.rglob("*"))
    with open(src, "rb") as f:
        resp = client.post("/analyze", files={"file": ("../../../escape.wav", f, "audio/wav")})
    outside = [p for p in set(data_dir.parent.rglob("*")) - before
               if settings.data_dir not in p.parents and p != settings.data_dir]
    name = resp.json().get("filename") if resp.status_code == 200 else None
    ok = resp.status_code == 200 and name == "escape.wav" and not outside
    return ("upload named ../../../escape.wav", "200, filename escape.wav, nothing outside",
            f"{resp.status_code}, filename {name}, {len(outside)} paths outside", ok)


# -- fuzz -----------------------------------------------------------------------------------
def fuzz(seconds: float, slow_s: float, out_dir: Path) -> dict[str, object]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from songmap.config import AnalysisSettings
    from songmap.pipeline import Analyzer

    work = Path(tempfile.mkdtemp(prefix="songmap-fuzz-"))
    seeds = {}
    sig = clicks(3.0)
    seeds[".wav"] = write(work / "s.wav", sig).read_bytes()
    seeds[".flac"] = write(work / "s.flac", sig).read_bytes()
    for suf, codec in ((".mp3", ["-c:a", "libmp3lame"]), (".ogg", ["-c:a", "libvorbis"]),
                       (".opus", ["-c:a", "libopus"]), (".m4a", ["-c:a", "aac"])):
        seeds[suf] = encode(sig, 44100, work / f"s{suf}", *codec).read_bytes()
    analyzer = Analyzer(AnalysisSettings(max_duration_s=60.0))
    end = time.monotonic() + seconds
    stats = {"inputs": 0, "songmap_errors": 0, "results": 0, "findings": []}

    @st.composite
    def inputs(draw: st.DrawFn) -> tuple[str, bytes]:
        suf = draw(st.sampled_from(sorted(seeds)))
        if draw(st.integers(0, 9)) == 0:
            return suf, draw(st.binary(max_size=4096))
        data = bytearray(seeds[suf])
        for _ in range(draw(st.integers(1, 8))):
            op = draw(st.sampled_from(["flip", "cut", "splice", "zero", "big"]))
            i = draw(st.integers(0, max(len(data) - 1, 0)))
            if op == "flip" and data:
                data[i] ^= 1 << draw(st.integers(0, 7))
            elif op == "cut":
                del data[i:]
            elif op == "splice":
                data[i:i] = draw(st.binary(min_size=1, max_size=64))
            elif op == "zero":
                data[i:i + draw(st.integers(1, 512))] = b"\0" * 8
            elif op == "big" and len(data) > i + 4:  # a huge length field
                data[i:i + 4] = b"\xff\xff\xff\x7f"
        return suf, bytes(data)

    @settings(max_examples=50, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(inputs())
    def one(item: tuple[str, bytes]) -> None:
        if time.monotonic() > end:
            return
        suf, data = item
        path = work / f"in{suf}"
        path.write_bytes(data)
        stats["inputs"] += 1
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                analyzer.analyze(path)
            stats["results"] += 1
        except errors.SongmapError:
            stats["songmap_errors"] += 1
        except Exception as exc:  # noqa: BLE001 - a finding, recorded below
            _finding(stats, out_dir, suf, data, f"{type(exc).__name__}: {exc}",
                     traceback.format_exc())
        took = time.perf_counter() - t0
        if took > slow_s:
            _finding(stats, out_dir, suf, data, f"took {took:.1f} s", "")

    while time.monotonic() < end:  # fresh runs of 50 examples until the budget is spent
        one()
    return stats


def _finding(stats: dict, out_dir: Path, suf: str, data: bytes, what: str, tb: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = out_dir / f"finding-{len(stats['findings']) + 1}{suf}"
    name.write_bytes(data)
    stats["findings"].append({"file": str(name), "what": what, "traceback": tb[-2000:]})
    print(f"FUZZ FINDING {name}: {what}", file=sys.stderr)


# -- main -----------------------------------------------------------------------------------
def table(title: str, rows: list[Row]) -> str:
    lines = [f"### {title}", "", "| input | expected | got | pass |", "|---|---|---|---|"]
    for name, expected, got, ok in rows:
        got = got.replace("|", "/").replace("\n", " ")
        lines.append(f"| {name} | {expected} | {got} | {'yes' if ok else '**NO**'} |")
    passed = sum(r[3] for r in rows)
    return "\n".join(lines + ["", f"{passed}/{len(rows)} pass", ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fuzz-seconds", type=float, default=60.0)
    ap.add_argument("--slow-seconds", type=float, default=30.0)
    ap.add_argument("--no-api", action="store_true")
    ap.add_argument("--json", type=Path, help="write every row and the fuzz stats here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="songmap-robustness-"))
    made = []
    for i, case in enumerate(CASES):
        d = work / f"case{i:02d}"
        d.mkdir()
        made.append((case, case.make(d)))

    cli = [run_cli(case, path) for case, path in made]
    print(table("CLI (`songmap analyze`, subprocess)", cli), flush=True)
    api: list[Row] = []
    if not args.no_api:
        try:
            import songmap.api.app  # noqa: F401
        except ImportError as exc:
            print(f"(API skipped: {exc})")
        else:
            api = api_rows(made, work / "api")
            print(table("API (`POST /analyze`, TestClient, real workers)", api), flush=True)

    stats = fuzz(args.fuzz_seconds, args.slow_seconds, ROOT / "benchmarks" / "fuzz-findings")
    print(f"### Fuzz\n\n{args.fuzz_seconds:g} s of decode+analyse: {stats['inputs']} inputs, "
          f"{stats['songmap_errors']} SongmapErrors, {stats['results']} valid results, "
          f"{len(stats['findings'])} findings")
    for f in stats["findings"]:
        print(f"- {f['file']}: {f['what']}")
    if args.json:
        args.json.write_text(json.dumps({"cli": cli, "api": api, "fuzz": stats}, indent=2))
    ok = all(r[3] for r in cli + api) and not stats["findings"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
