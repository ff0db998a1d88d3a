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


@pytest.fixture
def long_songs(long_songs_folder, tmp_path) -> Path:
    """A fresh copy of ``long_songs_folder`` for one test."""
    return Path(shutil.copytree(long_songs_folder, tmp_path / "long_songs"))


@pytest.fixture
def library(_library, tmp_path) -> Path:
    """A fresh copy of the library for one test (tests may add or delete files)."""
    return Path(shutil.copytree(_library, tmp_path / "library"))


@pytest.fixture(scope="session")
def songs() -> list[tuple[str, float, int]]:
    return SONGS
