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
    for name, args, sig in (("success", [str(song)], None),
                            ("error", [str(work / "bad-random-bytes.sqlite")], None),
                            ("timeout", [str(long), "--timeout", "2"], None),
                            ("ctrl-c", [str(long)], signal.SIGINT)):
        tmp = work / f"tmp-{name}"
        tmp.mkdir()
        proc = subprocess.Popen([sys.executable, "-m", "songmap.cli.main", "analyze", *args,
                                 "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "TMPDIR": str(tmp)})
        if sig:
            while sum(psutil.Process(proc.pid).cpu_times()[:2]) < 2.5:
                time.sleep(0.05)
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
    ap.add_argument("--faults-only", action="store_true",
                    help="only the store and service faults table")
    ap.add_argument("--service-only", action="store_true",
                    help="only the service access and admission table")
    ap.add_argument("--json", type=Path, help="write every row and the fuzz stats here")
    args = ap.parse_args()

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
        args.json.write_text(json.dumps({"faults": faults, "cli": cli, "api": api,
                                         "fuzz": stats}, indent=2))
    ok = all(r[3] for r in faults + cli + api) and not stats["findings"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
