"""A name holding control characters (ESC sequences, CR, BEL, C1) reaches a terminal
escaped, as Python's repr writes them, and a JSON output exactly (JSON escapes them itself).

Printed raw, such a name moves the cursor, recolours or clears the screen. Every place
songmap prints a user-given name to a person goes through ``songmap.terminal.printable``.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import unicodedata

import pytest

from songmap.batch.progress import BatchSummary, Failure, Progress
from songmap.cli.main import format_summary, main
from songmap.cli.progress import ProgressLine
from songmap.terminal import PrintableFormatter, printable

#: clear the screen, turn red, back to the line's start, ring, and a C1 CSI
HOSTILE = "x\x1b[2J\x1b[31mred\rBEL\x07\x9b.wav"
ESCAPED = "x\\x1b[2J\\x1b[31mred\\rBEL\\x07\\x9b.wav"


def raw_controls(text: str) -> list[str]:
    """The control characters in ``text`` other than line breaks."""
    return [c for c in text if unicodedata.category(c) == "Cc" and c != "\n"]


def test_printable_writes_controls_as_a_repr_does_and_leaves_the_rest():
    assert printable(HOSTILE) == ESCAPED
    assert printable("a\nb\tc\x7fd\udcff") == "a\\nb\\tc\\x7fd\\udcff"
    for plain in ("Café – 日本.flac", r"C:\music\a.wav", "x\\x1b"):
        assert printable(plain) == plain
    assert printable(printable(HOSTILE)) == ESCAPED  # once escaped, nothing left to do
    assert printable("line\none\x1b", keep_newlines=True) == "line\none\\x1b"
    assert printable(FileNotFoundError(HOSTILE)) == ESCAPED


def test_cli_error_shows_the_name_escaped_and_the_jsonl_keeps_it(tmp_path, capsys):
    gone = tmp_path / HOSTILE
    out = tmp_path / "results.jsonl"
    code = main(["analyze", str(gone), str(tmp_path / "also gone.wav"), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 3
    assert ESCAPED in err and raw_controls(err) == []
    names = [json.loads(line)["name"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert names == [HOSTILE, "also gone.wav"]


def test_an_error_of_another_command_shows_the_name_escaped(tmp_path, capsys):
    code = main(["export", str(tmp_path / HOSTILE), "-f", "lab"])
    err = capsys.readouterr().err
    assert code == 3 and ESCAPED in err and raw_controls(err) == []


def test_a_usage_error_shows_the_argument_escaped(capsys):
    with pytest.raises(SystemExit) as info:
        main(["analyze", "a.wav", "--x\x1b[2J"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--x\\x1b[2J" in err and raw_controls(err) == []


def test_summary_shows_the_name_escaped(golden_result):
    text = format_summary(golden_result.model_copy(update={"filename": HOSTILE}))
    assert text.splitlines()[0].startswith(ESCAPED + "  (") and raw_controls(text) == []


def test_progress_line_shows_the_name_escaped():
    line = ProgressLine(HOSTILE, stream=io.StringIO(), enabled=True)
    assert ESCAPED in line.text() and raw_controls(line.text()) == []


def test_batch_lines_and_summary_show_names_escaped():
    stream = io.StringIO()
    progress = Progress(stream, tty=False)
    summary = BatchSummary(total=1, failed=1,
                           failures=[Failure(f"/music/{HOSTILE}", "NotAudioError",
                                             f"{HOSTILE} is not audio")])
    progress.start(summary)
    progress.record("failed", f"/music/{HOSTILE}", error=f"NotAudioError: {HOSTILE} is not audio")
    progress.finish(summary)
    text = stream.getvalue()
    assert text.count(ESCAPED) == 4 and raw_controls(text) == []


def test_log_lines_show_names_escaped_and_keep_a_traceback():
    formatter = PrintableFormatter("songmap: %(message)s")
    record = logging.LogRecord("songmap", logging.INFO, __file__, 1, "job %s (%s): attempt %d",
                               ("ab12", HOSTILE, 1), None)
    assert formatter.format(record) == f"songmap: job ab12 ({ESCAPED}): attempt 1"
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("songmap", logging.ERROR, __file__, 1, "%s: failed:\n%s",
                                   (HOSTILE, "more"), sys.exc_info())
    text = formatter.format(record)
    assert text.startswith(f"songmap: {ESCAPED}: failed:\nmore\nTraceback")
    assert raw_controls(text) == []
