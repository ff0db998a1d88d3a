"""Issue 15: what decoding may cost is decided before decoding, and checked again during it.

Tiny crafted files: a 21 KB WAV whose header says 1 Hz (10,700 samples = 2 h 58 min), one
header byte changed in a normal clip, files at rates outside 4-384 kHz, and files whose
header under-states their length, so only the running count can refuse them.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from songmap import errors
from songmap.audio import decode
from songmap.audio.decode import load_audio, signal_from_array
from tests.robustness.cases import _unknown_length, clicks, write


def _refused_fast(path: Path, error: type[errors.SongmapError], words: str, **kw: object) -> str:
    t0 = time.perf_counter()
    with pytest.raises(error) as info:
        load_audio(path, **kw)
    assert words in str(info.value)
    assert time.perf_counter() - t0 < 2.0  # refused at the door, not after hours of audio
    return str(info.value)


def test_a_1_hz_wav_of_21_kb_is_refused_before_decoding(tmp_path):
    p = write(tmp_path / "one_hz.wav", clicks(1.0)[:10_700], sr=1)
    assert sf.info(p).samplerate == 1 and p.stat().st_size < 22_000
    message = _refused_fast(p, errors.UnsupportedAudioError, "1 Hz")
    assert "4-384 kHz" in message


def _set_wav_rate(p: Path, sr: int) -> Path:
    """Overwrite the rate (and byte rate) of a canonical 44-byte-header WAV in place."""
    raw = bytearray(p.read_bytes())
    assert raw[12:16] == b"fmt "
    block_align = struct.unpack_from("<H", raw, 32)[0]
    struct.pack_into("<II", raw, 24, sr, (sr * block_align) & 0xFFFFFFFF)
    p.write_bytes(bytes(raw))
    return p


@pytest.mark.parametrize("sr", [7, 34, 3_999, 384_001, 2_000_000])
def test_a_header_byte_mutation_of_a_normal_clip_is_refused(tmp_path, sr):
    p = _set_wav_rate(write(tmp_path / "clip.wav", clicks(3.0)), sr)
    _refused_fast(p, errors.UnsupportedAudioError, f"{sr} Hz")


@pytest.mark.parametrize("fmt, subtype", [("AU", "PCM_16"), ("WAV", "FLOAT"), ("W64", "PCM_16")])
def test_odd_rates_in_other_containers_are_refused(tmp_path, fmt, subtype):
    p = tmp_path / f"odd.{fmt.lower()}"
    sf.write(p, clicks(1.0)[:20_000], 7, format=fmt, subtype=subtype)
    _refused_fast(p, errors.UnsupportedAudioError, "7 Hz")


@pytest.mark.parametrize("sr", [decode.MIN_SAMPLE_RATE_HZ, decode.MAX_SAMPLE_RATE_HZ])
def test_the_edges_of_the_range_decode(tmp_path, sr):
    p = write(tmp_path / "edge.wav", clicks(2.0, sr=sr), sr=sr)
    audio = load_audio(p)
    assert audio.source_sr == sr
    assert audio.duration == pytest.approx(2.0, abs=1e-3)


def test_the_budget_counts_samples_not_seconds(tmp_path):
    """At 192 kHz a file may hold a quarter of the seconds a 48 kHz file may."""
    p = write(tmp_path / "hires.wav", clicks(2.0, sr=192_000), sr=192_000)
    assert load_audio(p, max_duration_s=10.0).duration == pytest.approx(2.0, abs=1e-3)
    # 2 s at 192 kHz = 384,000 samples: over 6 s at 48 kHz, though within 6 s of duration
    message = _refused_fast(p, errors.UnsupportedAudioError, "decoding budget", max_duration_s=6.0)
    assert "48 kHz" in message
    # and a 48 kHz file of the same length passes the same limit
    q = write(tmp_path / "plain.wav", clicks(2.0, sr=48_000), sr=48_000)
    assert load_audio(q, max_duration_s=6.0).source_sr == 48_000


def test_an_explicit_sample_budget_is_checked_from_the_header(tmp_path):
    p = write(tmp_path / "clip.wav", clicks(3.0))
    _refused_fast(p, errors.UnsupportedAudioError, "decoding budget",
                  max_decoded_samples=44_100)


def test_the_budget_is_checked_again_while_decoding(tmp_path):
    """A FLAC whose header does not state its length goes through the running count."""
    p = _unknown_length(write(tmp_path / "stream.flac", clicks(8.0)))
    assert len(load_audio(p).samples) > 0  # the file itself is fine
    message = _refused_fast(p, errors.UnsupportedAudioError, "more than",
                            max_decoded_samples=2 * 44_100)
    assert "decoding budget" in message


def test_many_channels_are_read_in_bounded_blocks():
    assert decode._block_frames(384_000, 32) * 32 <= decode._BLOCK_VALUES
    assert decode._block_frames(44_100, 1) == int(decode._BLOCK_S * 44_100)


def test_an_in_memory_signal_at_an_odd_rate_is_refused():
    with pytest.raises(errors.UnsupportedAudioError, match="2 Hz"):
        signal_from_array(np.zeros(100, np.float32), 2)


def test_the_refusal_maps_to_the_unsupported_input_outcomes():
    from songmap.api.errors import status_for
    from songmap.cli.main import exit_code_for

    exc = errors.UnsupportedAudioError("x")
    assert exit_code_for(exc) == exit_code_for(errors.UndecodableAudioError("x")) == 4
    assert status_for(exc) == 422


def test_the_cli_refuses_a_1_hz_wav_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    p = write(tmp_path / "one_hz.wav", clicks(1.0)[:10_700], sr=1)
    run = subprocess.run([sys.executable, "-m", "songmap.cli.main", "analyze", str(p)],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ),
                         check=False)
    assert run.returncode == 4, run.stderr
    errors_said = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors_said) == 1 and "1 Hz" in errors_said[0]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("name, head", [("zeros.mp3", b""), ("zeros.ac3", b""),
                                        ("tagged.mp3", b"ID3\x03\x00\x00\x00\x00\x01\x00")])
def test_a_file_of_zero_bytes_is_refused_before_ffmpeg_buffers_it(tmp_path, name, head):
    """A pre-allocated or unfinished download: FFmpeg's MPEG-audio parsers scanned all of it
    for a frame, holding it in memory (5 GB of zeros named .mp3: 2.2 GB RSS, 30 s)."""
    p = tmp_path / name
    with open(p, "wb") as fh:  # sparse: 256 MB on disk costs nothing
        fh.write(head + b"\0" * (128 - len(head)) * bool(head))
        fh.truncate(256 * 2**20)
    _refused_fast(p, errors.NotAudioError, "holds only zero bytes where the audio should start")


def test_a_w64_naming_an_unknown_codec_is_refused_without_probing_its_whole_body(tmp_path):
    """soundfile refuses the header, FFmpeg has no decoder for format tag 65535 either, and
    with its default probe it read up to 5 MB in small packets looking for one (7 s of CPU
    for these 2 minutes of audio): a container whose header states the stream's
    parameters is probed briefly (``decode.probe_options``)."""
    p = tmp_path / "clip.w64"
    sf.write(p, clicks(120.0), 44100, format="W64", subtype="PCM_16")
    raw = bytearray(p.read_bytes())
    raw[64:66] = (65535).to_bytes(2, "little")  # the format tag of the fmt chunk
    raw[72:76] = (1).to_bytes(4, "little")  # bytes per second
    p.write_bytes(bytes(raw))
    _refused_fast(p, errors.UnsupportedAudioError, "no decoder for its audio")


@pytest.mark.parametrize("head, short", [
    (b"RIFF\x00\x00\x00\x00WAVE", True), (b"RF64", True), (b"riff\x2e\x91\xcf\x11", True),
    (b".snd", True), (b"FORM\x00\x00\x00\x00AIFF", True),
    (b"ID3\x04", False), (b"\xff\xfb\x90\x00", False), (b"OggS", False), (b"fLaC", False),
    (b"\x00\x00\x00\x20ftypM4A ", False),
])
def test_only_containers_whose_header_states_the_streams_are_probed_briefly(head, short):
    assert bool(decode.probe_options(head)) is short
