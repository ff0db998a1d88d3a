from __future__ import annotations

import pytest

from songmap.errors import InvalidParameterError
from songmap.export import EXPORTERS, Exporter, MissingDependencyError, export, get_exporter, save
from tests.export.helpers import silent_result

# jams validates through an older jsonschema API
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:jsonschema.*")


def test_every_format_writes_nonempty_bytes_for_a_real_result(golden_result):
    for name, exp in EXPORTERS.items():
        data = export(golden_result, name)
        assert isinstance(data, bytes) and len(data) > 50, name
        assert exp.extension.startswith("."), name


def test_every_format_survives_a_silent_result():
    r = silent_result()
    for name in EXPORTERS:
        export(r, name)  # no beats, bars, key or chords: must still write a valid file


def test_unknown_format_names_the_choices():
    with pytest.raises(InvalidParameterError, match="jams"):
        get_exporter("mp4")
    assert get_exporter(" MIDI ").name == "midi"


def test_unknown_option_is_refused(golden_result):
    with pytest.raises(InvalidParameterError, match="location"):
        export(golden_result, "jams", location="/x.wav")


def test_missing_library_says_which_extra_to_install(golden_result):
    fake = Exporter("fake", ".x", "text/plain", "", "songmap.export.mirex:to_beats",
                    requires=("no_such_module_songmap",))
    with pytest.raises(MissingDependencyError, match=r"songmap\[export\]"):
        fake.write(golden_result)


def test_save_writes_the_same_bytes(tmp_path, golden_result):
    p = save(golden_result, "lab", tmp_path / "x.lab")
    assert p.read_bytes() == export(golden_result, "lab")
    assert not list(tmp_path.glob(".*tmp"))


def test_importing_export_does_not_import_writers():
    import subprocess
    import sys

    code = ("import sys, songmap.export; "
            "print(any(m in sys.modules for m in ('jams', 'mido', 'matplotlib', 'pandas')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_readme_lists_every_format():
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Formats", 1)[1].split("\n## ", 1)[0]
    for name in EXPORTERS:
        assert f"`{name}`" in section, name
    assert "docs/plot_example.png" in section
    assert (readme.parent / "docs" / "plot_example.png").stat().st_size < 100_000
