"""`songmap export`, `songmap plot`, `songmap descriptors` through the real CLI entry point."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from songmap.cli.main import main


@pytest.fixture
def result_json(tmp_path, golden_result):
    p = tmp_path / "example.json"
    p.write_text(golden_result.model_dump_json())
    return p


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_several_formats_from_a_saved_result(tmp_path, capsys, result_json, golden_result):
    out_dir = tmp_path / "out"
    code, _out, err = run(capsys, "export", str(result_json), "-f", "lab,beats", "--format", "midi",
                         "-o", str(out_dir))
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["example.beats", "example.lab", "example.mid"]
    import mir_eval

    _, labels = mir_eval.io.load_labeled_intervals(str(out_dir / "example.lab"))
    assert labels == [c for _, _, c in golden_result.chord_segments]


def test_export_to_stdout(capsys, result_json, golden_result):
    code, out, _ = run(capsys, "export", str(result_json), "-f", "sv-beats", "-o", "-")
    assert code == 0
    assert len(out.splitlines()) == golden_result.total_beats


@pytest.mark.models  # analyses the audio
def test_export_rekordbox_from_audio_points_at_the_file(tmp_path, capsys, example_file):
    target = tmp_path / "c.xml"
    code, _, err = run(capsys, "export", str(example_file), "-f", "rekordbox", "-o", str(target))
    assert code == 0, err
    from xml.etree import ElementTree as ET

    track = ET.parse(target).getroot().find("COLLECTION/TRACK")
    assert track.get("Location").endswith("/data/example.flac")
    assert len(track.findall("TEMPO")) >= 1


def test_export_errors_have_exit_codes(capsys, tmp_path, result_json):
    assert run(capsys, "export", str(result_json), "-f", "mp4")[0] == 2
    assert run(capsys, "export", str(tmp_path / "missing.json"), "-f", "lab")[0] == 3
    bad = tmp_path / "bad.json"
    bad.write_text('{"filename": "x"}')
    code, _, err = run(capsys, "export", str(bad), "-f", "lab")
    assert code == 2 and "not a songmap result" in err
    assert run(capsys, "export", str(result_json), "-f", "lab,midi", "-o", "-")[0] == 2


def test_export_list(capsys):
    code, out, _ = run(capsys, "export", "--list")
    assert code == 0 and "rekordbox" in out and "jams" in out


@pytest.mark.models  # analyses the audio
def test_plot_command_draws_the_waveform(tmp_path, capsys, example_file):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    target = tmp_path / "p.png"
    code, _, err = run(capsys, "plot", str(example_file), "-o", str(target),
                       "--width", "900", "--height", "300")
    assert code == 0, err
    img = imread(io.BytesIO(target.read_bytes()), format="png")
    assert img.shape[:2] == (300, 900)
    assert img[..., :3].std() > 0.05


@pytest.mark.models  # analyses the audio
def test_descriptors_command(capsys, example_file):
    code, out, err = run(capsys, "descriptors", str(example_file))
    assert code == 0, err
    d = json.loads(out)
    assert d["filename"] == "example.flac"
    assert np.isfinite(d["integrated_lufs"]) and 0 <= d["danceability"] <= 1
