"""Every hostile input of issue 7 through the CLI and the API, then a fuzz run.

    python benchmarks/robustness.py [--fuzz-seconds 300] [--json out.json] [--no-api]
    python benchmarks/robustness.py --header-fuzz-only --fuzz-seconds 300

Prints a Markdown table (input, expected, got, pass) per surface: the CLI is run as a
subprocess (``songmap analyze``), the API through FastAPI's ``TestClient`` with its
real worker processes. Then a fuzz run of decode+analyse over mutated and random
bytes for a fixed wall budget: anything but a ``SongmapError`` (or a valid result),
or an input that takes longer than ``--slow-seconds``, is a finding, saved under
``benchmarks/fuzz-findings/`` to become a regression test. Last, issue 15's
header-mutation fuzz: the sample rate, channels, bits and lengths in the headers of a 3 s
clip (WAV, AU, W64, FLAC) set to edge or scaled values, each mutant analysed with the
CLI's default limits in a worker process under a memory cap, counting non-songmap errors,
hangs, OOM kills and the worst CPU time against the unmutated clip.
"""

from __future__ import annotations

import argparse
import json
import os
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
                                 max_upload_mb=100.0, max_duration_s=limit,
                                 allowed_hosts=("testserver",))
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


def _api_case(client, case: Case, path: Path, status_for) -> Row:
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
    # the service keeps the client's name, trimmed
    if result.filename != path.name and result.filename == path.name.strip()[:200]:
        result = result.model_copy(update={"filename": path.name})
    got, ok = _judge_result(case, result)
    return case.name, expected, f"200, {got}", ok


def _api_dotdot(client, settings, data_dir: Path) -> Row:
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


# -- faults ---------------------------------------------------------------------------------
def fault_rows(work: Path) -> list[Row]:
    """Store and service faults (issue 7), against real processes; see tests/*/test_faults*."""
    import os
    import signal
    import sqlite3
    import threading

    from songmap.store import ResultStore
    from tests.robustness.faults import ServeProcess, multipart, request_head

    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    # store: kill -9 of a writer in a loop
    db = work / "kill9.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom songmap.store import ResultStore\n"
         "s = ResultStore(sys.argv[1])\nfor i in range(10**9):\n"
         "    s.put(f'h{i}', 'k', 'x' * 20000); print(i, flush=True)", str(db)],
        stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    for _ in range(500):
        writer.stdout.readline()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    printed = 500 + len(writer.stdout.read().split())
    with ResultStore(db) as store:
        n = store.count()
        store.put("after", "k", "{}")
    ok = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]
    rows.append(("store: kill -9 of a writer mid-loop", "every committed row, integrity ok",
                 f"{printed} committed, {n} found, integrity {ok}, writable",
                 printed <= n <= printed + 1 and ok == "ok"))
    # store: damaged files
    good = work / "good.sqlite"
    with ResultStore(good) as store:
        for i in range(200):
            store.put(f"h{i}", "k", "y" * 3000)
    data = good.read_bytes()
    half = len(data) // 2
    for kind, bad in (("random bytes", os.urandom(len(data))),
                      ("middle overwritten", data[:half - 8192] + os.urandom(16384)
                       + data[half + 8192:]),
                      ("truncated to half", data[:half])):
        path = work / f"bad-{kind.replace(' ', '-')}.sqlite"
        path.write_bytes(bad)
        try:
            ResultStore(path).close()
            got, ok_ = "opened", False
        except errors.StoreCorruptError as exc:
            got = f"StoreCorruptError: {str(exc)[:90]}..."
            ok_ = str(path) in str(exc) and path.read_bytes() == bad
        rows.append((f"store: {kind}", "StoreCorruptError naming the file, file untouched",
                     got, ok_))
    bad = work / "bad-random-bytes.sqlite"
    proc = subprocess.run([sys.executable, "-m", "songmap.cli.main", "serve", "--port", "0",
                           "--data-dir", str(work / "d"), "--store", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    rows.append(("serve with a damaged store", "exit 1, message, no traceback",
                 f"exit {proc.returncode}: {proc.stderr.strip()[:80]}...",
                 proc.returncode == 1 and "damaged" in proc.stderr
                 and "Traceback" not in proc.stderr))
    # service
    song = work / "song.wav"
    write(song, clicks(8.0))
    long = work / "long.wav"
    write(long, clicks(300.0))
    wav = song.read_bytes()
    ct = {"Content-Type": "multipart/form-data; boundary=songmapBoundary42"}
    with ServeProcess(work / "serve", env={"SONGMAP_MAX_DURATION_S": "600"}) as server:
        server.wait_ready()
        [worker] = server.worker_pids()
        answers: list = []
        sender = threading.Thread(target=lambda: answers.append(
            server.upload("/analyze", "long.wav", long.read_bytes(), timeout=120)))
        import psutil

        cpu0 = sum(psutil.Process(worker).cpu_times()[:2])
        sender.start()
        while sum(psutil.Process(worker).cpu_times()[:2]) < cpu0 + 0.5 and sender.is_alive():
            time.sleep(0.02)
        os.kill(worker, signal.SIGKILL)
        sender.join(60)
        r = answers[0]
        t0 = time.monotonic()
        while server.request("GET", "/readyz", timeout=5).status != 200:
            time.sleep(0.1)
        refill = time.monotonic() - t0
        after = server.upload("/analyze", "song.wav", wav).status
        err = r.json().get("error", {}) if r.status >= 400 else {}
        rows.append(("serve: worker SIGKILLed mid-analysis",
                     "500 WorkerCrashedError with id (no retry), pool refills, next 200",
                     f"{r.status} {err.get('type')} id={err.get('id')}, ready again in "
                     f"{refill:.1f} s, next {after}",
                     r.status == 500 and bool(err.get("id")) and after == 200))
        body = multipart({"file": ("a.wav", wav)})
        bodies = {"bad boundary": (multipart({"file": ("a.wav", wav)}, "x"), ct),
                  "no boundary": (body, {"Content-Type": "multipart/form-data"}),
                  "missing file field": (multipart({"audio": ("a.wav", wav)}), ct),
                  "truncated body": (body[: len(body) // 2], ct),
                  "binary garbage": (bytes(range(256)) * 64, ct)}
        statuses = {k: server.request("POST", "/analyze", b, h, timeout=30).status
                    for k, (b, h) in bodies.items()}
        rows.append(("serve: malformed multipart (5 kinds)", "4xx JSON each, never 500",
                     ", ".join(f"{k} {v}" for k, v in statuses.items()),
                     all(400 <= v < 500 for v in statuses.values())))
        big = multipart({"file": ("big.wav", bytes(3_000_000))})
        fds = server.open_fds()
        for cut in (100, len(big) // 2, len(big) - 10):
            sock = server.raw(request_head("/analyze", len(big)) + big[:cut])
            time.sleep(0.3)
            sock.close()
        time.sleep(0.5)
        left, fds_after = server.leftovers(), server.open_fds()
        nxt = server.upload("/analyze", "song.wav", wav).status
        rows.append(("serve: 3 clients hang up mid-upload", "no file, no fd kept, next 200",
                     f"{len(left)} files, fds {fds} -> {fds_after}, next {nxt}",
                     not left and fds_after <= fds and nxt == 200))
        sock = server.raw(request_head("/analyze", len(body)))

        def trickle() -> None:
            for i in range(0, len(body), len(body) // 20 + 1):
                sock.sendall(body[i:i + len(body) // 20 + 1])
                time.sleep(0.1)

        t0 = time.monotonic()
        slow = threading.Thread(target=trickle)
        slow.start()
        other = server.upload("/analyze", "other.wav", write(work / "o.wav", clicks(7.0))
                              .read_bytes()).status
        took = time.monotonic() - t0
        slow.join(10)
        sock.close()
        rows.append(("serve: upload trickled over 2 s", "other requests not blocked",
                     f"other analysis {other} in {took:.2f} s meanwhile", other == 200
                     and took < 2.0))
        cpu0 = sum(psutil.Process(server.worker_pids()[0]).cpu_times()[:2])
        long_body = multipart({"file": ("l.wav", long.read_bytes())})
        busy = server.raw(request_head("/analyze", len(long_body)) + long_body)
        [w] = server.worker_pids()
        while sum(psutil.Process(w).cpu_times()[:2]) < cpu0 + 0.5:
            time.sleep(0.02)
        t0 = time.monotonic()
        code = server.stop(signal.SIGINT)
        busy.close()
        left = server.leftovers()
        rows.append(("serve: Ctrl-C mid-analysis", "exit 0, no file in TMPDIR/scratch",
                     f"exit {code} in {time.monotonic() - t0:.1f} s, {len(left)} files",
                     code == 0 and not left))
    # analyze: temp files
    got = []
    # Ctrl-C must land mid-analysis: 300 s of clicks take under 2.5 s of CPU now, so the
    # interrupted and the timed-out runs get 30 minutes of audio
    longest = write(work / "longest.wav", clicks(1800.0))
    for name, args, sig in (("success", [str(song)], None),
                            ("error", [str(work / "bad-random-bytes.sqlite")], None),
                            ("timeout", [str(longest), "--timeout", "2"], None),
                            ("ctrl-c", [str(longest)], signal.SIGINT)):
        tmp = work / f"tmp-{name}"
        tmp.mkdir()
        proc = subprocess.Popen([sys.executable, "-m", "songmap.cli.main", "analyze", *args,
                                 "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "TMPDIR": str(tmp)})
        if sig:
            # (a run that ended first is reported by its exit status, not waited on)
            while proc.poll() is None and sum(psutil.Process(proc.pid).cpu_times()[:2]) < 2.5:
                time.sleep(0.05)
            if proc.poll() is None:
                proc.send_signal(sig)
        proc.wait(120)
        got.append((name, proc.returncode, len(list(tmp.iterdir()))))
    rows.append(("analyze: success / error / --timeout / Ctrl-C", "exit 0/4/7/130, TMPDIR empty",
                 ", ".join(f"{n} exit {c} {k} files" for n, c, k in got),
                 [c for _, c, _ in got] == [0, 4, 7, 130] and all(k == 0 for *_, k in got)))
    return rows


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


# -- service access and admission (issue 15) -----------------------------------------------
def access_rows(work: Path) -> list[Row]:
    """Access control, admission before upload and connection limits of ``songmap serve``,
    against real processes; see tests/api/test_security.py, test_admission.py, test_retention.py."""
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from tests.robustness.faults import ServeProcess, multipart, request_head

    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    song = work / "song.wav"
    write(song, clicks(8.0))
    wav = song.read_bytes()
    ct = {"Content-Type": "multipart/form-data; boundary=songmapBoundary42"}
    part = (b'--songmapBoundary42\r\nContent-Disposition: form-data; name="file"; '
            b'filename="a.wav"\r\n\r\n')

    def stored(server: ServeProcess) -> int:
        return sum(p.stat().st_size for p in server.leftovers() if p.is_file())

    env = {"SONGMAP_MAX_JOBS": "5", "SONGMAP_PROCESS_JOBS": "false", "SONGMAP_MAX_QUEUE": "0",
           "SONGMAP_HEADER_TIMEOUT_S": "2", "SONGMAP_BODY_IDLE_TIMEOUT_S": "2",
           "SONGMAP_MAX_CONNECTIONS": "100"}
    with ServeProcess(work / "open", env=env) as server:
        server.wait_ready()
        with ThreadPoolExecutor(40) as pool:
            codes = list(pool.map(lambda i: server.upload("/jobs", f"s{i}.wav", wav).status,
                                  range(40)))
        rows.append(("serve: 40 concurrent POST /jobs, MAX_JOBS=5", "exactly 5 x 202, 35 x 503",
                     f"{codes.count(202)} x 202, {codes.count(503)} x 503",
                     codes.count(202) == 5 and codes.count(503) == 35))
        before = stored(server)
        socks = [server.raw(request_head("/jobs", 53_000_000) + part + bytes(65536))
                 for _ in range(20)]
        t0 = time.monotonic()
        answers = [s.recv(64).split(b" ", 2)[1:2] for s in socks]
        took = time.monotonic() - t0
        for s in socks:
            s.close()
        grew = stored(server) - before
        rows.append(("serve: 20 x 53 MB uploads to a full job queue",
                     "503 each before the body, nothing stored",
                     f"{sum(a == [b'503'] for a in answers)} x 503 in {took:.2f} s, "
                     f"{grew} bytes stored", all(a == [b"503"] for a in answers) and grew == 0))
        earlier = {p for p in server.leftovers() if p.is_file()}  # the 5 queued jobs' uploads
        holder = server.raw(request_head("/analyze", 3_000_000) + part + bytes(2_000_000))
        time.sleep(1.0)
        files = [p for p in server.leftovers() if p.is_file() and p not in earlier]
        spool = list(server.tmpdir.iterdir())
        second = server.raw(request_head("/analyze", 3_000_000))
        second.settimeout(5)
        status = second.recv(64).split(b" ", 2)[1]
        holder.close()
        second.close()
        rows.append(("serve: a 3 MB upload two-thirds sent, then a second one (1 worker, "
                     "MAX_QUEUE=0)", "one file being written, no spool; the second 503 at once",
                     f"{len(files)} file(s) ({sum(p.stat().st_size for p in files)} bytes), "
                     f"{len(spool)} in TMPDIR, second {status.decode()}",
                     len(files) == 1 and not spool and status == b"503"))
        stalled = server.raw(request_head("/analyze", 1_000_000) + part + bytes(1000))
        stalled.settimeout(10)
        t0 = time.monotonic()
        got = stalled.recv(64).split(b" ", 2)[1]
        took = time.monotonic() - t0
        stalled.close()
        rows.append(("serve: an upload that stops sending (BODY_IDLE_TIMEOUT_S=2)", "408",
                     f"{got.decode()} after {took:.1f} s", got == b"408"))
        baseline = server.open_fds()
        idle = []
        for _ in range(1000):
            try:
                idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            except OSError:
                break
        for s in idle[:50]:  # slowloris: a header byte now and then
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nX-a: ")
            except OSError:  # already closed: past the cap
                pass
        time.sleep(0.5)  # connections past the cap are accepted, then closed at once
        peak = server.open_fds()
        time.sleep(3.0)
        health = server.request("GET", "/healthz", timeout=5).status
        after = server.open_fds()
        for s in idle:
            s.close()
        rows.append(("serve: 1000 idle sockets, 50 of them trickling a header",
                     "fds capped (MAX_CONNECTIONS=100), all closed after HEADER_TIMEOUT_S=2, "
                     "/healthz 200", f"fds {baseline} -> peak {peak} -> {after}, healthz {health}",
                     peak <= baseline + 110 and after <= baseline + 5 and health == 200))
        evil = server.request("GET", "/library", headers={"Host": "evil.example:8000"}).status
        rows.append(("serve: DNS-rebinding request (Host: evil.example)", "400", str(evil),
                     evil == 400))
        before_jobs = stored(server)
        cross = server.request("POST", "/jobs", multipart({"file": ("x.wav", wav)}),
                               {**ct, "Origin": "http://evil.example"})
        rows.append(("serve: cross-site form post to /jobs (Origin: evil.example)",
                     "403, no job, nothing stored", f"{cross.status}, "
                     f"{stored(server) - before_jobs} bytes stored",
                     cross.status == 403 and stored(server) == before_jobs))
        answers = {u: server.request("GET", u) for u in ("/", "/healthz", "/nope")}
        heads = {u: ("frame-ancestors 'none'" in a.headers.get("content-security-policy", "")
                     and a.headers.get("x-content-type-options") == "nosniff")
                 for u, a in answers.items()}
        rows.append(("serve: security headers on /, /healthz, a 404", "CSP with frame-ancestors, "
                     "nosniff on each", ", ".join(f"{u} {'yes' if ok else 'no'}"
                                                  for u, ok in heads.items()),
                     all(heads.values())))
    key = "robustness-key"
    with ServeProcess(work / "keyed", env={"SONGMAP_API_KEY": key,
                                           "SONGMAP_JOB_RETENTION": "3"}) as server:
        server.wait_ready()
        plain = server.upload("/analyze", "song.wav", wav)
        plain.headers = {k.lower(): v for k, v in plain.headers.items()}
        wrong = server.request("GET", "/library", headers={"X-API-Key": "guess"}).status
        body = multipart({"file": ("song.wav", wav)})
        good = server.request("POST", "/analyze", body, {**ct, "Authorization": f"Bearer {key}"})
        again = server.request("POST", "/analyze", body, {**ct, "X-API-Key": key})
        again.headers = {k.lower(): v for k, v in again.headers.items()}
        rows.append(("serve: API key: none / wrong / Bearer / X-API-Key",
                     "401 (no X-Songmap-Cache) / 401 / 200 / 200 hit",
                     f"{plain.status} (cache header: {'x-songmap-cache' in plain.headers}) / "
                     f"{wrong} / {good.status} / {again.status} "
                     f"{again.headers.get('x-songmap-cache')}",
                     plain.status == 401 and "x-songmap-cache" not in plain.headers
                     and wrong == 401 and good.status == 200 and again.status == 200
                     and again.headers.get("x-songmap-cache") == "hit"))
        job = server.request("POST", "/jobs", body, {**ct, "X-API-Key": key})
        job_id = json.loads(job.body)["id"]
        state = ""
        for _ in range(300):
            state = json.loads(server.request("GET", f"/jobs/{job_id}",
                                              headers={"X-API-Key": key}).body)["state"]
            if state in ("done", "failed"):
                break
            time.sleep(0.1)
        time.sleep(3.5)
        gone = server.request("GET", f"/jobs/{job_id}", headers={"X-API-Key": key}).status
        rows.append(("serve: a finished job after SONGMAP_JOB_RETENTION=3", "410",
                     f"{state}, then {gone}", state == "done" and gone == 410))
    proc = subprocess.run([sys.executable, "-m", "songmap.cli.main", "serve", "--host", "0.0.0.0",
                           "--data-dir", str(work / "exposed")], capture_output=True, text=True,
                          timeout=60, check=False)
    rows.append(("serve --host 0.0.0.0 without a key", "exit 2, one line naming --api-key",
                 f"exit {proc.returncode}: {proc.stderr.strip()[:70]}...",
                 proc.returncode == 2 and "--api-key" in proc.stderr
                 and len(proc.stderr.strip().splitlines()) == 1))
    return rows




# -- storage (issue 15) ---------------------------------------------------------------------
def storage_rows(work: Path) -> list[Row]:
    """Full disk, wrong-type and unwritable outputs and stores through the CLI and the store:
    one line and exit 9 (HTTP 507), no traceback, no ``.tmp`` left. A full disk is
    ``/dev/full`` behind a symlink where songmap writes (every write fails with ENOSPC)."""
    from songmap.errors import StorageError
    from songmap.store import ResultStore

    work.mkdir(parents=True, exist_ok=True)
    clip = write(work / "clip.wav", clicks(4.0))
    rows: list[Row] = []

    def cli(name: str, output: Path | str, folder: Path) -> None:
        proc = subprocess.run([sys.executable, "-m", "songmap.cli.main", "analyze", str(clip),
                               "-o", str(output)], capture_output=True, text=True, timeout=300,
                              check=False)
        err = proc.stderr.strip()
        stray = sorted(p.name for p in folder.glob(".*.tmp"))
        ok = proc.returncode == 9 and "Traceback" not in err and err.count("\n") == 0 \
            and not stray
        rows.append((name, "exit 9, one line, no .tmp",
                     f"exit {proc.returncode}: {err[-110:]}" + (f"; left {stray}" if stray else ""),
                     ok))

    if Path("/dev/full").exists():
        full = work / "full"
        full.mkdir()
        (full / ".out.json.tmp").symlink_to("/dev/full")
        cli("-o FILE.json on a full disk", full / "out.json", full)
        (full / "out.jsonl").symlink_to("/dev/full")
        cli("-o FILE.jsonl on a full disk", full / "out.jsonl", full)
    (work / "plain").write_text("x")
    cli("-o DIR/ under a regular file", f"{work / 'plain' / 'sub'}/", work)
    store_dir = work / "results.sqlite"
    store_dir.mkdir()
    for name, path in (("store path is a folder", store_dir),
                       ("store under a regular file", work / "plain" / "results.sqlite")):
        try:
            ResultStore(path).close()
            rows.append((name, "StorageError", "opened", False))
        except StorageError as exc:
            rows.append((name, "StorageError", f"StorageError: {str(exc)[:100]}", True))
        except Exception as exc:  # noqa: BLE001 - the row says what it was
            rows.append((name, "StorageError", f"{type(exc).__name__}: {exc}", False))
    return rows


# -- header-mutation fuzz (issue 15) -------------------------------------------------------
#: Values a mutated header field takes: the edges of each integer width, tiny and huge rates,
#: and the field's own value scaled (a plausible lie).
_EDGE_VALUES = (0, 1, 2, 3, 7, 8, 16, 24, 32, 64, 255, 256, 3_999, 4_000, 8_000, 65_535,
                65_536, 96_000, 192_000, 384_000, 384_001, 2**31 - 1, 2**32 - 1)


def _wav_fields(raw: bytes) -> dict[str, tuple[int, int, str]]:
    """(offset, size, byte order) of the fields of a canonical 44-byte WAV header."""
    data = raw.index(b"data")
    return {"riff_size": (4, 4, "<"), "format": (20, 2, "<"), "channels": (22, 2, "<"),
            "sample_rate": (24, 4, "<"), "byte_rate": (28, 4, "<"), "block_align": (32, 2, "<"),
            "bits": (34, 2, "<"), "data_size": (data + 4, 4, "<")}


def _au_fields(raw: bytes) -> dict[str, tuple[int, int, str]]:
    return {"data_offset": (4, 4, ">"), "data_size": (8, 4, ">"), "encoding": (12, 4, ">"),
            "sample_rate": (16, 4, ">"), "channels": (20, 4, ">")}


def _w64_fields(raw: bytes) -> dict[str, tuple[int, int, str]]:
    """Sony Wave64: 16-byte GUIDs and 8-byte sizes; the fmt chunk's WAVEFORMATEX at 64."""
    data = raw.index(b"data", 40)
    return {"riff_size": (16, 8, "<"), "fmt_size": (56, 8, "<"), "format": (64, 2, "<"),
            "channels": (66, 2, "<"), "sample_rate": (68, 4, "<"), "byte_rate": (72, 4, "<"),
            "block_align": (76, 2, "<"), "bits": (78, 2, "<"), "data_size": (data + 16, 8, "<")}


#: FLAC STREAMINFO bit fields: (first bit from the file's start, width in bits).
_FLAC_BITS = {"max_block": (80, 16), "sample_rate": (144, 20), "channels": (164, 3),
              "bits": (167, 5), "total_samples": (172, 36)}


def _set_field(raw: bytearray, suf: str, field: str, value: int) -> None:
    if suf == ".flac":
        first, width = _FLAC_BITS[field]
        whole = int.from_bytes(raw[:32], "big")
        shift = 256 - first - width
        mask = ((1 << width) - 1) << shift
        whole = (whole & ~mask) | ((value % (1 << width)) << shift)
        raw[:32] = whole.to_bytes(32, "big")
        return
    fields = {".wav": _wav_fields, ".au": _au_fields, ".w64": _w64_fields}[suf](bytes(raw))
    offset, size, order = fields[field]
    raw[offset:offset + size] = (value % (1 << (8 * size))).to_bytes(
        size, "little" if order == "<" else "big")


def _field_names(suf: str, raw: bytes) -> list[str]:
    if suf == ".flac":
        return list(_FLAC_BITS)
    return list({".wav": _wav_fields, ".au": _au_fields, ".w64": _w64_fields}[suf](raw))


def _field_value(raw: bytes, suf: str, field: str) -> int:
    if suf == ".flac":
        first, width = _FLAC_BITS[field]
        return (int.from_bytes(raw[:32], "big") >> (256 - first - width)) & ((1 << width) - 1)
    fields = {".wav": _wav_fields, ".au": _au_fields, ".w64": _w64_fields}[suf](raw)
    offset, size, order = fields[field]
    return int.from_bytes(raw[offset:offset + size], "little" if order == "<" else "big")


def header_seeds(work: Path) -> dict[str, bytes]:
    """A 3 s click clip as WAV (16-bit and float), AU, W64 and FLAC."""
    import soundfile as sf

    sig = clicks(3.0)
    seeds = {}
    for name, fmt, subtype in (("pcm16.wav", "WAV", "PCM_16"), ("float.wav", "WAV", "FLOAT"),
                               ("s.au", "AU", "PCM_16"), ("s.w64", "W64", "PCM_16"),
                               ("s.flac", "FLAC", "PCM_16")):
        p = work / name
        sf.write(p, sig, 44100, format=fmt, subtype=subtype)
        seeds[name] = p.read_bytes()
    return seeds


def mutate_header(seed_name: str, raw: bytes, rng) -> tuple[bytes, str]:
    """1-3 header fields of ``raw`` set to edge values or scaled; returns (bytes, what)."""
    suf = Path(seed_name).suffix
    data = bytearray(raw)
    names = _field_names(suf, raw)
    what = []
    for field in rng.choice(names, size=int(rng.integers(1, 4)), replace=False):
        old = _field_value(raw, suf, field)
        kind = rng.integers(0, 3)
        if kind == 0:
            value = int(rng.choice(_EDGE_VALUES))
        elif kind == 1:
            value = int(old * float(rng.choice([0.001, 0.1, 0.5, 2, 10, 1000])))
        else:
            value = int(rng.integers(0, 2**32))
        _set_field(data, suf, str(field), value)
        what.append(f"{field}={value}")
    return bytes(data), f"{seed_name}: " + ", ".join(what)


_WORKER = """
import json, os, resource, sys, time, warnings
from songmap import errors
from songmap.pipeline import Analyzer
analyzer = Analyzer()
for line in sys.stdin:
    path = line.strip()
    analyzer.network_cache.clear()  # mutants often decode to the seed's samples
    c0 = time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analyzer.analyze(path)
        outcome = "result"
    except errors.SongmapError as exc:
        outcome = "songmap: " + type(exc).__name__
    except MemoryError:
        outcome = "oom: MemoryError"
    except Exception as exc:
        outcome = f"other: {type(exc).__name__}: {str(exc)[:200]}"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"outcome": outcome, "cpu": time.process_time() - c0, "rss_mb": rss}),
          flush=True)
"""


class _FuzzWorker:
    """One process analysing paths from stdin with the CLI's default limits and a memory
    cap (``RLIMIT_AS``): a crash, an OOM kill or a hang costs one worker, not the run."""

    def __init__(self, memory_mb: int) -> None:
        import resource

        def cap() -> None:
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        env = {**os.environ, "SONGMAP_CACHE_DIR": ""}  # no network cache on disk either
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, preexec_fn=cap, env=env)

    def run(self, path: Path, timeout_s: float) -> dict[str, object]:
        import selectors

        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            self.proc.kill()
            self.proc.wait()
            return {"outcome": "hang"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            kind = "oom: killed" if code in (-9, 137) else f"crash: exit {code}"
            return {"outcome": kind}
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def header_fuzz(seconds: float, *, timeout_s: float = 120.0, memory_mb: int = 6000,
                seed: int = 15) -> dict[str, object]:
    """Mutate the headers of a 3 s clip (rate, channels, bits, lengths) for ``seconds`` and
    analyse each mutant in a worker process; count non-songmap errors, hangs (past
    ``timeout_s``), OOM kills (past ``memory_mb``) and the worst CPU ratio against the
    unmutated clip of the same format."""
    import numpy as np

    rng = np.random.default_rng(seed)
    work = Path(tempfile.mkdtemp(prefix="songmap-header-fuzz-"))
    seeds = header_seeds(work)
    worker = _FuzzWorker(memory_mb)
    base_cpu = {}
    for name, raw in seeds.items():  # twice: the first call also loads the models
        (work / name).write_bytes(raw)
        worker.run(work / name, timeout_s)
        base_cpu[name] = float(worker.run(work / name, timeout_s)["cpu"])  # type: ignore[arg-type]
    stats: dict[str, object] = {"inputs": 0, "results": 0, "songmap_errors": 0, "other": [],
                                "hangs": [], "oom": [], "worst_cpu_ratio": 0.0, "worst": "",
                                "base_cpu_s": base_cpu, "max_rss_mb": 0.0}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        name = str(rng.choice(sorted(seeds)))
        data, what = mutate_header(name, seeds[name], rng)
        path = work / f"mutant{Path(name).suffix}"
        path.write_bytes(data)
        got = worker.run(path, timeout_s)
        stats["inputs"] += 1  # type: ignore[operator]
        outcome = str(got["outcome"])
        if outcome in ("hang",) or outcome.startswith(("oom", "crash")):
            key = "hangs" if outcome == "hang" else "oom" if outcome.startswith("oom") else "other"
            stats[key].append(f"{what} ({outcome})")  # type: ignore[union-attr]
            worker.close()
            worker = _FuzzWorker(memory_mb)
            worker.run(work / name, timeout_s)  # load the models again
            continue
        if outcome == "result":
            stats["results"] += 1  # type: ignore[operator]
        elif outcome.startswith("songmap"):
            stats["songmap_errors"] += 1  # type: ignore[operator]
        else:
            stats["other"].append(f"{what} ({outcome})")  # type: ignore[union-attr]
        ratio = float(got["cpu"]) / max(base_cpu[name], 1e-3)  # type: ignore[arg-type]
        stats["max_rss_mb"] = max(float(stats["max_rss_mb"]), float(got["rss_mb"]))  # type: ignore[arg-type]
        if ratio > float(stats["worst_cpu_ratio"]):  # type: ignore[arg-type]
            stats["worst_cpu_ratio"], stats["worst"] = ratio, f"{what} ({outcome})"
    worker.close()
    return stats


def header_fuzz_table(seconds: float, stats: dict[str, object]) -> str:
    lines = [f"### Header-mutation fuzz ({seconds:g} s; WAV/AU/W64/FLAC of a 3 s clip)", "",
             "| measure | target | got |", "|---|---|---|",
             (f"| inputs (valid results / SongmapErrors) | - | {stats['inputs']} "
              f"({stats['results']} / {stats['songmap_errors']}) |"),
             f"| non-songmap errors | 0 | {len(stats['other'])} |",  # type: ignore[arg-type]
             f"| hangs (> 120 s) | 0 | {len(stats['hangs'])} |",  # type: ignore[arg-type]
             f"| OOM kills | 0 | {len(stats['oom'])} |",  # type: ignore[arg-type]
             (f"| worst CPU vs the unmutated clip | <= 10x | {stats['worst_cpu_ratio']:.1f}x "
              f"({stats['worst']}) |"),
             f"| peak RSS of the worker | - | {stats['max_rss_mb']:.0f} MB |", ""]
    for key in ("other", "hangs", "oom"):
        lines += [f"- {key}: {x}" for x in stats[key]]  # type: ignore[union-attr]
    return "\n".join(lines)


def header_fuzz_ok(stats: dict[str, object]) -> bool:
    """Issue 15's bar: no non-songmap error, hang or OOM kill, no input above 10x the CPU."""
    return not (stats["other"] or stats["hangs"] or stats["oom"]) and \
        float(stats["worst_cpu_ratio"]) <= 10.0  # type: ignore[arg-type]


# -- main -----------------------------------------------------------------------------------
def table(title: str, rows: list[Row]) -> str:
    lines = [f"### {title}", "", "| input | expected | got | pass |", "|---|---|---|---|"]
    for name, expected, got, ok in rows:
        got = got.replace("|", "/").replace("\n", " ")
        lines.append(f"| {name} | {expected} | {got} | {'yes' if ok else '**NO**'} |")
    passed = sum(r[3] for r in rows)
    return "\n".join([*lines, "", f"{passed}/{len(rows)} pass", ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fuzz-seconds", type=float, default=300.0,
                    help="seconds of the header-mutation fuzz (issue 15)")
    ap.add_argument("--bytes-fuzz-seconds", type=float, default=60.0,
                    help="seconds of the byte-mutation fuzz (issue 7)")
    ap.add_argument("--header-fuzz-only", action="store_true",
                    help="only the header-mutation fuzz")
    ap.add_argument("--storage-only", action="store_true", help="only the storage table")
    ap.add_argument("--slow-seconds", type=float, default=30.0)
    ap.add_argument("--no-api", action="store_true")
    ap.add_argument("--faults-only", action="store_true",
                    help="only the store and service faults table")
    ap.add_argument("--service-only", action="store_true",
                    help="only the service access and admission table")
    ap.add_argument("--json", type=Path, help="write every row and the fuzz stats here")
    args = ap.parse_args()

    if args.storage_only:
        storage = storage_rows(Path(tempfile.mkdtemp(prefix="songmap-storage-")))
        print(table("Storage (full disk, wrong-type and unwritable paths; issue 15)", storage))
        return 0 if all(r[3] for r in storage) else 1
    if args.header_fuzz_only:
        stats = header_fuzz(args.fuzz_seconds)
        print(header_fuzz_table(args.fuzz_seconds, stats), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"header_fuzz": stats}, indent=2))
        return 0 if header_fuzz_ok(stats) else 1
    work = Path(tempfile.mkdtemp(prefix="songmap-robustness-"))
    access = access_rows(work / "access")
    print(table("Service access and admission (`songmap serve`, real processes)", access),
          flush=True)
    if args.service_only:
        return 0 if all(r[3] for r in access) else 1
    faults = fault_rows(work / "faults")
    print(table("Faults (store, `songmap serve`, `songmap analyze`; real processes)", faults),
          flush=True)
    if args.faults_only:
        return 0 if all(r[3] for r in faults) else 1
    storage = storage_rows(work / "storage")
    print(table("Storage (full disk, wrong-type and unwritable paths; issue 15)", storage),
          flush=True)
    faults += storage
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

    stats = fuzz(args.bytes_fuzz_seconds, args.slow_seconds,
                 ROOT / "benchmarks" / "fuzz-findings")
    print(f"### Fuzz\n\n{args.bytes_fuzz_seconds:g} s of decode+analyse: {stats['inputs']} inputs, "
          f"{stats['songmap_errors']} SongmapErrors, {stats['results']} valid results, "
          f"{len(stats['findings'])} findings")
    for f in stats["findings"]:
        print(f"- {f['file']}: {f['what']}")
    headers = header_fuzz(args.fuzz_seconds)
    print(header_fuzz_table(args.fuzz_seconds, headers), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"faults": faults, "cli": cli, "api": api,
                                         "fuzz": stats, "header_fuzz": headers}, indent=2))
    ok = all(r[3] for r in faults + cli + api) and not stats["findings"] and \
        header_fuzz_ok(headers)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
