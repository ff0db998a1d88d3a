"""Fixtures for the service tests: settings in a temp folder, generated clips, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.api.settings import ServeSettings
from songmap.examples import render_song


def make_settings(data_dir: Path, **values: object) -> ServeSettings:
    base: dict[str, object] = {"data_dir": data_dir, "workers": 1, "max_upload_mb": 5.0,
                               "max_duration_s": 30.0, "threads": 1,
                               "allowed_hosts": ("testserver",)}  # TestClient's Host
    base.update(values)
    return ServeSettings(**base)


def leftovers(settings: ServeSettings) -> list[Path]:
    """Files left in the scratch and uploads folders (there should be none between requests)."""
    return [p for d in (settings.scratch_dir, settings.uploads_dir) for p in d.rglob("*")]


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Good and bad files: short generated songs, and broken ones of every kind."""
    d = tmp_path_factory.mktemp("clips")
    song = render_song(bars=4, seed=1)  # 9.5 s, 120 BPM, 4/4
    other = render_song(bars=4, bpm=100.0, progression=("G:maj", "E:min"), seed=2)
    long = render_song(bars=17, seed=3)  # 35.5 s: over the tests' 30 s limit
    files = {
        "song": d / "song.wav", "other": d / "other.flac", "long": d / "long.wav",
        "short": d / "short.wav",
    }
    sf.write(files["song"], song.samples, song.sr, subtype="PCM_16")
    sf.write(files["other"], other.samples, other.sr, subtype="PCM_16")
    sf.write(files["long"], long.samples, long.sr, subtype="PCM_16")
    sf.write(files["short"], song.samples[: song.sr], song.sr, subtype="PCM_16")  # 1 s
    files["empty"] = d / "empty.wav"
    files["empty"].write_bytes(b"")
    files["text"] = d / "notes.mp3"
    files["text"].write_text("these are my notes, not a song\n" * 20)
    whole = files["song"].read_bytes()
    files["truncated"] = d / "truncated.wav"
    files["truncated"].write_bytes(whole[: len(whole) // 3])
    flac = files["other"].read_bytes()
    files["truncated_flac"] = d / "truncated.flac"
    files["truncated_flac"].write_bytes(flac[: len(flac) // 2])
    return files


def upload(client: TestClient, url: str, path: Path, name: str | None = None):
    with open(path, "rb") as f:
        return client.post(url, files={"file": (name or path.name, f, "application/octet-stream")})


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One running app (one worker) shared by a module's tests: ``(client, settings)``."""
    settings = make_settings(tmp_path_factory.mktemp("data"))
    with TestClient(create_app(settings)) as client:
        yield client, settings
