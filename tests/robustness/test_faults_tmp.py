"""No temporary file is left behind (issue 7) after success, error, timeout or Ctrl-C, by
``songmap analyze`` and by ``songmap serve``: each runs with TMPDIR set to a fresh folder
that must be empty afterwards (and, for the server, its scratch and uploads folders too)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import soundfile as sf

from songmap.examples import render_song

from .faults import ServeProcess, multipart, request_head

pytestmark = pytest.mark.models  # songmap analyze / serve on real audio


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio")
    files = {"short": d / "short.wav", "long": d / "long.flac", "text": d / "notes.mp3"}
    song = render_song(bars=4, seed=21)
    sf.write(files["short"], song.samples, song.sr, subtype="PCM_16")
    long = render_song(bars=240, seed=22)  # 8 minutes: still analysing when interrupted
    sf.write(files["long"], long.samples, long.sr, subtype="PCM_16")
    files["text"].write_text("not a song\n" * 50)
    return files


def _analyze(tmp: Path, *args: str) -> subprocess.Popen:
    tmp.mkdir()
    return subprocess.Popen(
        [sys.executable, "-m", "songmap.cli.main", "analyze", *args, "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        # no network cache: a run must do the whole analysis (a cached long song finishes
        # before the Ctrl-C case can interrupt it)
        env={**os.environ, "TMPDIR": str(tmp), "SONGMAP_CACHE_DIR": ""},
    )


def _busy(proc: subprocess.Popen, cpu_s: float, timeout_s: float = 30.0) -> None:
    """Wait until the process has used ``cpu_s`` of CPU (past start-up, into the work)."""
    p = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        t = p.cpu_times()
        if t.user + t.system >= cpu_s:
            return
        time.sleep(0.05)
    raise AssertionError(f"the process did not get busy (exit {proc.returncode})")


@pytest.mark.parametrize("case", ["success", "error", "timeout", "ctrl-c"])
def test_analyze_leaves_no_temp_file(tmp_path, audio, case):
    tmp = tmp_path / "tmp"
    if case == "success":
        proc, code = _analyze(tmp, str(audio["short"])), 0
    elif case == "error":
        proc, code = _analyze(tmp, str(audio["text"])), 4
    elif case == "timeout":
        proc, code = _analyze(tmp, str(audio["long"]), "--timeout", "1"), 7
    else:
        proc, code = _analyze(tmp, str(audio["long"])), 130
        _busy(proc, cpu_s=2.5)  # imports and models are ~1.5 s of CPU: now it is analysing
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert list(tmp.iterdir()) == []


def test_serve_leaves_no_temp_file_after_work_errors_hangups_and_ctrl_c(tmp_path, audio):
    with ServeProcess(tmp_path, env={"SONGMAP_MAX_DURATION_S": "600"}) as server:
        server.wait_ready()
        assert server.upload("/analyze", "ok.wav", audio["short"].read_bytes()).status == 200
        assert server.upload("/analyze", "notes.mp3", audio["text"].read_bytes()).status == 415
        big = multipart({"file": ("big.wav", bytes(3_000_000))})  # spooled to TMPDIR
        sock = server.raw(request_head("/analyze", len(big)) + big[: len(big) // 2])
        time.sleep(0.3)
        sock.close()
        # Ctrl-C while a long analysis runs (a half-sent upload: the test below).
        long = multipart({"file": ("long.flac", audio["long"].read_bytes())})
        [worker] = server.worker_pids()
        before = _cpu(worker)
        busy = server.raw(request_head("/analyze", len(long)) + long)
        _busy_pid(worker, cpu_s=before + 1.0)  # a second into the analysis
        t0 = time.monotonic()
        code = server.stop(signal.SIGINT, timeout_s=30)
        stopped_in = time.monotonic() - t0
        busy.close()
        log = server.log()
    assert code == 0, log
    assert stopped_in < 20, log
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == "zombie"
    assert server.leftovers() == [], log


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _busy_pid(pid: int, cpu_s: float, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _cpu(pid) >= cpu_s:
            return
        time.sleep(0.05)
    raise AssertionError("the worker did not start analysing")


def test_ctrl_c_during_a_trickled_upload(tmp_path, audio):
    """The server stops promptly and the half-received upload leaves no file."""
    with ServeProcess(tmp_path) as server:
        server.wait_ready()
        body = multipart({"file": ("slow.wav", bytes(2_500_000))})
        sock = server.raw(request_head("/analyze", len(body)))
        stop = threading.Event()

        def trickle() -> None:
            for i in range(0, len(body), 100_000):
                if stop.is_set():
                    return
                try:
                    sock.sendall(body[i:i + 100_000])
                except OSError:
                    return
                time.sleep(0.1)

        sender = threading.Thread(target=trickle)
        sender.start()
        time.sleep(1.5)  # 1.5 MB in: part of it spooled to a file in TMPDIR
        code = server.stop(signal.SIGINT, timeout_s=30)
        stop.set()
        sender.join(10)
        sock.close()
    assert code == 0, server.log()
    assert server.leftovers() == [], server.log()
