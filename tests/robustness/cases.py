"""Hostile inputs of issue 7, each generated on the spot, with the outcome songmap must give.

Shared by ``tests/robustness/test_inputs.py`` (library) and ``benchmarks/robustness.py``
(CLI and API). A case either expects an error (class, CLI exit code, message fragment)
or a valid result, checked by ``check``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from songmap import errors

SR = 44100


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    error: type[errors.SongmapError] | None = None
    message: str = ""
    check: Callable[..., None] | None = None  # check(result) for a valid result
    max_duration_s: float | None = None  # analysis setting, when the case needs one
    slow: bool = False

    @property
    def exit_code(self) -> int:
        from songmap.cli.main import exit_code_for

        return 0 if self.error is None else exit_code_for(self.error(""))

    @property
    def expected(self) -> str:
        if self.error is None:
            return "valid result"
        return f"{self.error.__name__}: '{self.message}'"


# -- signals --------------------------------------------------------------------------------
def clicks(seconds: float, *, bpm: float = 120.0, sr: int = SR, amp: float = 0.8) -> np.ndarray:
    """1 ms noise bursts every 60/bpm s from 0.5 s: a beat any tracker should find."""
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    rng = np.random.default_rng(0)
    n = max(1, sr // 1000)
    for t in np.arange(0.5, seconds - 0.1, 60.0 / bpm):
        i = int(t * sr)
        out[i:i + n] += rng.standard_normal(n).astype(np.float32) * amp
    return out


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def encode(src: np.ndarray, sr: int, dst: Path, *codec: str) -> Path:
    """Encode a mono float signal with the ffmpeg CLI (mp3, ogg, opus, m4a ...)."""
    wav = dst.with_suffix(".src.wav")
    sf.write(wav, src, sr, subtype="PCM_16")
    ffmpeg("-i", str(wav), *codec, str(dst))
    wav.unlink()
    return dst


def write(path: Path, data: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    sf.write(path, data, sr, subtype=subtype)
    return path


# -- makers ---------------------------------------------------------------------------------
def empty(d: Path) -> Path:
    p = d / "empty.wav"
    p.write_bytes(b"")
    return p


def zeros_mp3(d: Path) -> Path:
    """64 MB of zero bytes named .mp3 (sparse): an unfinished download."""
    p = d / "unfinished.mp3"
    with open(p, "wb") as fh:
        fh.truncate(64 * 2**20)
    return p


def text_mp3(d: Path) -> Path:
    p = d / "notes.mp3"
    p.write_text("these are my notes, not a song\n" * 20)
    return p


def wav_reading_as_letters(d: Path) -> Path:
    """A 16-bit WAV whose samples start at a steady 0.8 (0x6666: "ffff..." from byte 44,
    so its first 512 bytes are 96 % printable) and carry clicks at 120 BPM."""
    x = clicks(8.0)
    x[: int(0.05 * SR)] = 0.8
    return write(d / "letters.wav", x)


def png_mp3(d: Path) -> Path:
    """A 16 x 16 PNG (written by hand: zlib and the chunk CRCs) named .mp3: cover art
    saved under the song's name."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + bytes(range(48)) for _ in range(16))  # filter 0, RGB
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    p = d / "cover.mp3"
    p.write_bytes(png)
    return p


def midi_file(d: Path) -> Path:
    """A Standard MIDI File (one track, one note): notes, not sound."""
    track = bytes([0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0, 0x00, 0xFF, 0x2F, 0x00])
    data = (b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, 0, 96])
            + b"MTrk" + len(track).to_bytes(4, "big") + track)
    p = d / "song.mid"
    p.write_bytes(data)
    return p


def id3_only(d: Path) -> Path:
    """An ID3v2.3 tag (title frame, padding) and nothing after it."""
    title = b"\x00" + b"No audio here"
    frame = b"TIT2" + len(title).to_bytes(4, "big") + b"\x00\x00" + title
    body = frame + b"\x00" * 512
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    p = d / "tag_only.mp3"
    p.write_bytes(b"ID3\x03\x00\x00" + syncsafe + body)
    return p


def noisy_clicks(seconds: float) -> np.ndarray:
    """Clicks over noise: compresses poorly, so 10 KB of it is well under a second."""
    rng = np.random.default_rng(1)
    return clicks(seconds) + (rng.standard_normal(int(seconds * SR)) * 0.05).astype(np.float32)


def _truncated(d: Path, suffix: str, *codec: str) -> Path:
    full = encode(noisy_clicks(20.0), SR, d / f"full{suffix}", *codec)
    p = d / f"truncated{suffix}"
    p.write_bytes(full.read_bytes()[:10_000])
    return p


def truncated_ogg(d: Path) -> Path:
    return _truncated(d, ".ogg", "-c:a", "libvorbis")


def truncated_mp3(d: Path) -> Path:
    return _truncated(d, ".mp3", "-c:a", "libmp3lame", "-b:a", "128k")


def truncated_opus(d: Path) -> Path:
    return _truncated(d, ".opus", "-c:a", "libopus")


def truncated_flac(d: Path) -> Path:
    full = write(d / "full.flac", noisy_clicks(20.0))
    p = d / "truncated.flac"
    p.write_bytes(full.read_bytes()[:10_000])
    return p


def garbage_body(d: Path) -> Path:
    """A real FLAC header (fLaC + STREAMINFO for 20 s) followed by random bytes."""
    full = write(d / "real.flac", clicks(20.0))
    head = full.read_bytes()[:42]  # "fLaC" + 4-byte block header + 34-byte STREAMINFO
    rng = np.random.default_rng(2)
    p = d / "garbage_body.flac"
    p.write_bytes(head + rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    return p


def wav_huge_length(d: Path) -> Path:
    """1 s of audio under a header that claims ~4 GB of it (about 6.7 hours)."""
    p = write(d / "huge_header.wav", clicks(1.0))
    raw = bytearray(p.read_bytes())
    i = raw.index(b"data")
    raw[i + 4:i + 8] = (0xFFFF0000).to_bytes(4, "little")
    raw[4:8] = (0xFFFF0000 + 36).to_bytes(4, "little")
    p.write_bytes(bytes(raw))
    return p


def wav_1_hz(d: Path) -> Path:
    """Issue 15: a 21 KB WAV whose header says 1 Hz: 10,700 samples would be 2 h 58 min."""
    return write(d / "one_hz.wav", clicks(1.0)[:10_700], sr=1)


def wav_rate_mutated(d: Path) -> Path:
    """Issue 15: one header field of a normal 3 s clip changed: its rate says 7 Hz."""
    p = write(d / "mutated.wav", clicks(3.0))
    raw = bytearray(p.read_bytes())
    assert raw[12:16] == b"fmt "
    raw[24:28] = (7).to_bytes(4, "little")
    raw[28:32] = (7 * 2).to_bytes(4, "little")  # byte rate, 16-bit mono
    p.write_bytes(bytes(raw))
    return p


def _wav_bits(d: Path, bits: int) -> Path:
    """Issue 15: a 3 s 16-bit clip whose header says ``bits`` bits per sample."""
    p = write(d / f"bits{bits}.wav", clicks(3.0))
    raw = bytearray(p.read_bytes())
    assert raw[12:16] == b"fmt "
    raw[34:36] = bits.to_bytes(2, "little")
    p.write_bytes(bytes(raw))
    return p


def wav_64_bits(d: Path) -> Path:
    """64-bit integer PCM: FFmpeg decodes it, numpy's view of PyAV's frames has no s64."""
    return _wav_bits(d, 64)


def wav_65535_bits(d: Path) -> Path:
    """A bit depth no decoder knows: FFmpeg opens the stream but has no codec for it."""
    return _wav_bits(d, 65535)


def wav_0_bits(d: Path) -> Path:
    return _wav_bits(d, 0)


def flac_bomb(d: Path) -> Path:
    """4 h of digital silence at 8 kHz in a FLAC of a few hundred KB."""
    p = d / "bomb.flac"
    block = np.zeros(8000 * 600, np.int16)
    with sf.SoundFile(p, "w", samplerate=8000, channels=1, subtype="PCM_16") as f:
        for _ in range(24):
            f.write(block)
    return p


def _unknown_length(p: Path) -> Path:
    """Zero STREAMINFO's total_samples, as a streaming FLAC encoder leaves it."""
    raw = bytearray(p.read_bytes())
    assert raw[:4] == b"fLaC" and raw[4] & 0x7F == 0  # STREAMINFO comes first
    raw[8 + 13] &= 0xF0  # the 36-bit count: low nibble of byte 13, then bytes 14..17
    raw[8 + 14:8 + 18] = b"\0\0\0\0"
    p.write_bytes(bytes(raw))
    return p


def flac_bomb_unknown_length(d: Path) -> Path:
    """The 4 h bomb with its length taken out of the header: only decoding can tell."""
    return _unknown_length(flac_bomb(d))


def flac_unknown_length(d: Path) -> Path:
    """An ordinary 8 s FLAC whose header does not state its length."""
    return _unknown_length(write(d / "stream.flac", clicks(8.0)))


def mp3_bomb(d: Path) -> Path:
    """An MP3 of silence with no Xing/LAME header: 1 s of frames repeated for 4 hours."""
    one = encode(np.zeros(SR * 10, np.float32), 8000, d / "one.mp3",
                 "-ar", "8000", "-c:a", "libmp3lame", "-b:a", "8k", "-write_xing", "0",
                 "-id3v2_version", "0")
    frames = one.read_bytes()
    p = d / "bomb.mp3"
    # 10 s of audio per repetition (the source was 10 s of samples at 44.1 kHz read as 8 kHz)
    with open(p, "wb") as fh:
        for _ in range(int(4 * 3600 / (len(frames) and sf.info(one).duration))):
            fh.write(frames)
    return p


def _video(path: Path, *, audio: bool, seconds: float = 6.0) -> Path:
    import av

    sig = clicks(seconds)
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        a = out.add_stream("aac", rate=SR) if audio else None
        if a is not None:
            a.layout = "mono"
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i % 256, np.uint8),
                                               format="rgb24")
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)
        if a is not None:
            step = 1024
            for k in range(0, len(sig), step):
                chunk = sig[k:k + step][None, :]
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate = SR
                af.pts = k
                for packet in a.encode(af):
                    out.mux(packet)
            for packet in a.encode(None):
                out.mux(packet)
    return path


def video_with_audio(d: Path) -> Path:
    return _video(d / "clip.mp4", audio=True)


def video_without_audio(d: Path) -> Path:
    return _video(d / "silent_film.mp4", audio=False)


def short_02(d: Path) -> Path:
    return write(d / "short.wav", clicks(0.2))


def silence(d: Path) -> Path:
    return write(d / "silence.wav", np.zeros(SR * 6, np.float32))


def white_noise(d: Path) -> Path:
    rng = np.random.default_rng(3)
    return write(d / "noise.wav", (rng.standard_normal(SR * 6) * 0.3).astype(np.float32))


def single_click(d: Path) -> Path:
    x = np.zeros(SR * 6, np.float32)
    x[SR * 3:SR * 3 + 44] = 0.9
    return write(d / "click.wav", x)


def dc_offset(d: Path) -> Path:
    return write(d / "dc.wav", clicks(8.0, amp=0.4) + np.float32(0.5), subtype="FLOAT")


def float_out_of_range(d: Path) -> Path:
    x = clicks(8.0) * np.float32(6.0)  # peaks far beyond +-1
    x[1000] = np.nan
    x[2000] = np.inf
    x[3000] = -np.inf
    x[SR * 4:SR * 4 + 100] = np.nan
    return write(d / "hot_float.wav", x, subtype="FLOAT")


def clipping_square(d: Path) -> Path:
    t = np.arange(SR * 6) / SR
    x = np.sign(np.sin(2 * np.pi * 110 * t)).astype(np.float32)  # full-scale, every sample at +-1
    return write(d / "square.wav", x)


def mono_8k(d: Path) -> Path:
    return write(d / "phone.wav", clicks(8.0, sr=8000), sr=8000)


def hires_192k(d: Path) -> Path:
    return write(d / "hires.flac", clicks(6.0, sr=192000) * np.float32(0.9), sr=192000,
                 subtype="PCM_24")


def _multichannel(d: Path, channels: int) -> Path:
    x = np.repeat(clicks(6.0)[:, None], channels, axis=1) / np.float32(2)
    return write(d / f"ch{channels}.wav", x)


def ch6(d: Path) -> Path:
    return _multichannel(d, 6)


def ch32(d: Path) -> Path:
    return _multichannel(d, 32)


UNICODE_NAME = "Sigur Rós – Hoppípolla (ライブ) 🎵.wav"
SPACES_NAME = "  my song  with   spaces .wav"
LONG_NAME = "é" * 120 + ".wav"  # 244 bytes in UTF-8: near the 255-byte limit of most file systems


def unicode_name(d: Path) -> Path:
    return write(d / UNICODE_NAME, clicks(6.0))


def spaces_name(d: Path) -> Path:
    return write(d / SPACES_NAME, clicks(6.0))


def long_name(d: Path) -> Path:
    return write(d / LONG_NAME, clicks(6.0))


# -- checks of valid results ----------------------------------------------------------------
def _finite_and_inside(r) -> None:
    times = r.beat_times()
    assert np.all(np.isfinite(times)) and np.all((times >= 0) & (times <= r.audio.duration))
    assert np.all(np.diff(times) > 0)


def near_120_bpm(r) -> None:
    _finite_and_inside(r)
    assert abs(r.tempo.bpm - 120.0) < 3 or abs(r.tempo.bpm - 60.0) < 2, r.tempo.bpm
    assert r.total_beats >= 4


def silent_result(r) -> None:
    assert r.total_beats == 0 and r.total_bars == 0 and r.key.label == "N"
    assert any("silence" in w for w in r.warnings)


def any_valid(r) -> None:
    _finite_and_inside(r)


def video_checks(r) -> None:
    near_120_bpm(r)
    assert r.audio.decoder == "pyav" and abs(r.audio.duration - 6.0) < 0.2


def facts(sr: int, channels: int, check=near_120_bpm):
    def _check(r) -> None:
        assert (r.audio.sample_rate, r.audio.channels) == (sr, channels)
        check(r)
    return _check


def named(name: str):
    def _check(r) -> None:
        assert r.filename == name
        near_120_bpm(r)
    return _check


CASES: list[Case] = [
    Case("empty file", empty, errors.NotAudioError, "the file is empty (0 bytes)"),
    Case("text file named .mp3", text_mp3, errors.NotAudioError, "looks like a text file"),
    Case("WAV whose first samples read as text", wav_reading_as_letters, check=near_120_bpm),
    Case("PNG image named .mp3", png_mp3, errors.NotAudioError,
         "is not audio: it is an image (PNG)"),
    Case("MIDI file", midi_file, errors.NotAudioError,
         "is a MIDI file: notes, not sound. Render it to audio first"),
    Case("64 MB of zero bytes named .mp3", zeros_mp3, errors.NotAudioError,
         "holds only zero bytes where the audio should start"),
    Case("ID3 tag without audio", id3_only, errors.NotAudioError,
         "it holds an ID3 tag (title, artist, ...) and no audio after it"),
    Case("truncated OGG (10 KB)", truncated_ogg, errors.UndecodableAudioError,
         "no audio could be decoded from it; the file is truncated or corrupt"),
    Case("truncated MP3 (10 KB)", truncated_mp3, errors.UndecodableAudioError,
         "the header promises 20.0 s but only 0.5 s could be read"),
    Case("truncated Opus (10 KB)", truncated_opus, errors.AudioTooShortError,
         "is too short to analyse"),
    Case("truncated FLAC (10 KB)", truncated_flac, errors.UndecodableAudioError,
         "truncated or corrupt"),
    Case("FLAC header + garbage body", garbage_body, errors.UndecodableAudioError,
         "no audio could be decoded from it; the file is truncated or corrupt"),
    Case("WAV header claiming 6.7 h", wav_huge_length, errors.UndecodableAudioError,
         "the file is truncated (or its header is wrong)"),
    Case("WAV header saying 1 Hz (21 KB)", wav_1_hz, errors.UnsupportedAudioError,
         "a sample rate of 1 Hz is outside what songmap decodes"),
    Case("WAV rate mutated to 7 Hz", wav_rate_mutated, errors.UnsupportedAudioError,
         "a sample rate of 7 Hz is outside what songmap decodes"),
    # the 16-bit bytes read as 64-bit samples: a quarter of the 3 s
    Case("WAV saying 64 bits per sample", wav_64_bits, errors.AudioTooShortError,
         "0.75 s of audio is too short"),
    Case("WAV saying 65535 bits per sample", wav_65535_bits, errors.UnsupportedAudioError,
         "FFmpeg has no decoder for its audio"),
    Case("WAV saying 0 bits per sample", wav_0_bits, errors.UnsupportedAudioError,
         "FFmpeg has no decoder for its audio"),
    Case("FLAC bomb: 4 h of silence", flac_bomb, errors.AudioTooLongError,
         "longer than the limit of 10800 s", slow=True),
    Case("FLAC bomb, length not in header", flac_bomb_unknown_length, errors.AudioTooLongError,
         "more than 600 s of audio is longer than the limit of 600 s", max_duration_s=600,
         slow=True),
    Case("FLAC, length not in header (8 s)", flac_unknown_length, check=lambda r: near_120_bpm(r)),
    Case("MP3 bomb: 4 h, no Xing header", mp3_bomb, errors.AudioTooLongError,
         "longer than the limit of 10800 s", slow=True),
    Case("video with audio (MP4)", video_with_audio, check=video_checks),
    Case("video without audio (MP4)", video_without_audio, errors.NotAudioError,
         "no audio stream (it holds video streams only)"),
    Case("0.2 s of audio", short_02, errors.AudioTooShortError, "0.20 s of audio is too short"),
    Case("digital silence", silence, check=silent_result),
    Case("white noise", white_noise, check=any_valid),
    Case("single click", single_click, check=any_valid),
    Case("DC offset", dc_offset, check=near_120_bpm),
    Case("float WAV beyond +-1, NaN, Inf", float_out_of_range, check=near_120_bpm),
    Case("clipping square wave", clipping_square, check=any_valid),
    Case("8 kHz mono", mono_8k, check=facts(8000, 1)),
    Case("192 kHz 24-bit", hires_192k, check=facts(192000, 1)),
    Case("6 channels", ch6, check=facts(SR, 6)),
    Case("32 channels", ch32, check=facts(SR, 32)),
    Case("unicode file name", unicode_name, check=named(UNICODE_NAME)),
    Case("spaces in file name", spaces_name, check=named(SPACES_NAME)),
    Case("very long file name (244 bytes)", long_name, check=named(LONG_NAME)),
]
