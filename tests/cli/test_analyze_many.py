"""`songmap analyze a b c`: one process, models loaded once, one output per file, a bad
file does not stop the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from songmap.cli.main import main

pytestmark = [pytest.mark.slow, pytest.mark.models]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def not_audio(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp3"
    path.write_text("these are my notes, not a song\n" * 20)
    return path


def test_jsonl_has_one_line_per_file_in_order_and_failures_do_not_stop_the_rest(
        tmp_path, capsys, example_file, waltz_file, not_audio):
    waltz, _ = waltz_file
    out = tmp_path / "results.jsonl"
    code, stdout, err = run(capsys, "analyze", str(example_file), str(not_audio),
                            str(tmp_path / "gone.wav"), str(waltz), "-o", str(out))
    assert code == 4  # the first failure's exit status: not audio
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["name"] for x in lines] == ["example.flac", "notes.mp3", "gone.wav", "waltz.wav"]
    assert [x["status"] for x in lines] == ["ok", "failed", "failed", "ok"]
    assert lines[1]["error"]["exit_code"] == 4 and lines[2]["error"]["exit_code"] == 3
    assert lines[0]["result"]["time_signature"]["label"] == "4/4"
    assert lines[3]["result"]["time_signature"]["beats_per_bar"] == 3
    errors = err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("songmap: error: ") for e in errors)
    assert "notes.mp3" in errors[0] and "gone.wav" in errors[1]
    # -o given: the summaries on stdout, one per analysed file
    assert stdout.count("  tempo ") == 2 and "notes.mp3" not in stdout


def test_folder_output_with_exports(tmp_path, capsys, example_file, waltz_file):
    waltz, _ = waltz_file
    folder = tmp_path / "out"
    code, _, err = run(capsys, "analyze", str(example_file), str(waltz), "-o", f"{folder}/",
                       "--export", "lab", "-q")
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == [
        "example.json", "example.lab", "waltz.json", "waltz.lab"]
    assert json.loads((folder / "waltz.json").read_text())["filename"] == "waltz.wav"


def test_stdout_json_lines_and_models_loaded_once(capsys, example_file, waltz_file):
    from songmap.models import get_registry

    waltz, _ = waltz_file
    code, out, err = run(capsys, "analyze", str(example_file), str(waltz), "--json")
    assert code == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["filename"] for r in results] == ["example.flac", "waltz.wav"]
    assert get_registry(2).loaded  # one registry for the process, loaded by the first file


def test_summaries_on_request(capsys, example_file, waltz_file):
    waltz, _ = waltz_file
    code, out, _ = run(capsys, "analyze", str(example_file), str(waltz), "--summary")
    assert code == 0
    assert out.count("  tempo ") == 2 and "waltz.wav" in out and "3/4" in out
