"""The CLI's progress line: on a terminal's stderr only (a pseudo-terminal here), never in
--json output or when stderr is piped; the line itself from a fake clock and stream."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading

import pytest

from songmap.cli.progress import ProgressLine, stage_finished, wants_progress
from songmap.pipeline import _STAGE_WEIGHTS


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_wants_a_terminal_and_output_for_people(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    assert wants_progress(_Tty(), json_output=False, quiet=False)
    assert not wants_progress(_Tty(), json_output=True, quiet=False)
    assert not wants_progress(_Tty(), json_output=False, quiet=True)
    assert not wants_progress(io.StringIO(), json_output=False, quiet=False)  # piped
    monkeypatch.setenv("TERM", "dumb")
    assert not wants_progress(_Tty(), json_output=False, quiet=False)


def test_line_names_the_stage_and_percent_and_is_erased():
    now = [100.0]
    out = _Tty()
    line = ProgressLine("song.mp3", stream=out, interval_s=60, clock=lambda: now[0])
    with line:
        done = 0.0
        for stage in ("decode", "beat_network"):
            done += _STAGE_WEIGHTS[stage]
            now[0] += 5
            line(done)
        assert line.text() == f"songmap: song.mp3  {int(done * 100):3d} %  beat network done  10 s"
    text = out.getvalue()
    assert text.startswith("\rsongmap: song.mp3    0 %  starting  0 s")
    assert "decoded" in text and "\n" not in text
    assert text.endswith("\r" + " " * len(line.text()) + "\r")  # nothing left on the line


def test_disabled_line_writes_nothing():
    out = _Tty()
    with ProgressLine("x", stream=out, enabled=False) as line:
        line(0.5)
    assert out.getvalue() == ""


def test_stage_from_the_step():
    assert stage_finished(0.0, 0.07, {"decode": 0.07, "x": 0.5}, set()) == "decode"
    assert stage_finished(0.0, 0.07, {"decode": 0.07}, {"decode"}) is None
    assert stage_finished(0.1, 0.2, {"decode": 0.07}, set()) is None


def _read_all(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return
        if not data:
            return
        into.append(data)


def _run_cli(args: list[str], *, stderr_tty: bool) -> tuple[int, str, str]:
    """Run ``songmap ARGS`` as from a terminal: stdout on one pseudo-terminal and stderr on
    another (or on a pipe, ``stderr_tty=False``)."""
    # no network cache: every stage runs, so each has its line
    env = {**os.environ, "TERM": "xterm", "PYTHONPATH": os.pathsep.join(sys.path),
           "SONGMAP_CACHE_DIR": ""}
    cmd = [sys.executable, "-m", "songmap.cli.main", *args]
    ptys = [pty.openpty() for _ in range(2 if stderr_tty else 1)]
    got: list[list[bytes]] = [[] for _ in ptys]
    readers = [threading.Thread(target=_read_all, args=(m, g)) for (m, _), g in zip(ptys, got)]
    for r in readers:
        r.start()
    try:
        p = subprocess.run(cmd, stdout=ptys[0][1], stdin=subprocess.DEVNULL, env=env, timeout=300,
                           check=False,
                           stderr=ptys[1][1] if stderr_tty else subprocess.PIPE)
    finally:
        for _, slave in ptys:
            os.close(slave)
        for r in readers:
            r.join(10)
        for master, _ in ptys:
            os.close(master)
    out = b"".join(got[0]).decode(errors="replace").replace("\r\n", "\n")
    err = b"".join(got[1]).decode(errors="replace") if stderr_tty else p.stderr.decode()
    return p.returncode, out, err


@pytest.mark.models
@pytest.mark.slow
def test_progress_on_a_terminal_never_in_json_or_piped(example_file):
    code, out, err = _run_cli(["analyze", str(example_file)], stderr_tty=True)
    assert code == 0, err
    assert "\rsongmap: example" in err and " %  " in err and "beat network done" in err
    assert "120.0 BPM" in out and "%" not in out
    code, out, err = _run_cli(["analyze", str(example_file), "--json"], stderr_tty=True)
    assert code == 0 and json.loads(out)["total_bars"] > 0
    assert "\r" not in err and " %  " not in err
    code, out, err = _run_cli(["analyze", str(example_file)], stderr_tty=False)
    assert code == 0 and "120.0 BPM" in out
    assert "\r" not in err and " %  " not in err
