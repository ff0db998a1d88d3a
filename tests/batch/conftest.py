"""A small generated library: short songs with known tempi, one file that is not audio."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf

from songmap.examples import render_song

#: (file, bpm, beats per bar) of the generated songs; 4 bars each (~8-10 s).
SONGS = [("a.wav", 100.0, 4), ("b.flac", 128.0, 3), ("sub/c.wav", 90.0, 4), ("sub/d.ogg", 140.0, 4)]


@pytest.fixture(scope="session")
def _library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("library")
    for i, (name, bpm, bpb) in enumerate(SONGS):
        song = render_song(bars=4, bpm=bpm, beats_per_bar=bpb, seed=i)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, song.samples, song.sr)
    (root / "sub" / "broken.mp3").write_text("this is a text file, not an mp3\n")
    (root / "notes.txt").write_text("not picked up: no audio extension\n")
    return root


@pytest.fixture(scope="session")
def _long_songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("long_songs")
    for name, bpm in (("long.wav", 90.0), ("long.flac", 140.0)):
        song = render_song(bars=120, bpm=bpm, seed=5)
        sf.write(root / name, song.samples, song.sr, subtype="PCM_16")
    return root


@pytest.fixture
def long_songs(_long_songs, tmp_path) -> Path:
    """A folder of two songs of 3.4 and 5.3 minutes, for memory caps: a worker with its
    models loaded and warmed up analyses the library's 10-second songs in memory it has
    already mapped, so a cap of 1 MB refuses only songs this long."""
    return Path(shutil.copytree(_long_songs, tmp_path / "long_songs"))


@pytest.fixture
def library(_library, tmp_path) -> Path:
    """A fresh copy of the library for one test (tests may add or delete files)."""
    return Path(shutil.copytree(_library, tmp_path / "library"))


@pytest.fixture(scope="session")
def songs() -> list[tuple[str, float, int]]:
    return SONGS
