"""PCM streams: a WAV header read from the front of a stream, raw sample formats.

A WAV file piped from ffmpeg (``ffmpeg -i x -f wav -``) has a header whose sizes are
unknown (0 or 0xFFFFFFFF); the samples simply follow the ``data`` chunk's header until
the stream ends. ``read_wav_header`` reads only the header's bytes, so the rest of the
stream can be read block by block.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from songmap.errors import InvalidParameterError, UndecodableAudioError

#: raw sample formats: name -> numpy dtype (little-endian)
RAW_FORMATS = {"s16le": "<i2", "s32le": "<i4", "f32le": "<f4", "f64le": "<f8", "u8": "u1"}
#: WAV format tags: PCM integers, IEEE float, and WAVE_FORMAT_EXTENSIBLE
_WAVE_PCM, _WAVE_FLOAT, _WAVE_EXTENSIBLE = 1, 3, 0xFFFE
#: Largest chunk skipped before ``data`` (LIST, fact ...): a header is small.
_MAX_SKIPPED_CHUNK = 1 << 20


@dataclass(frozen=True)
class PcmFormat:
    """Interleaved PCM: ``sample_rate`` (Hz), ``channels``, numpy ``dtype``."""

    sample_rate: int
    channels: int
    dtype: str

    @property
    def frame_bytes(self) -> int:
        return np.dtype(self.dtype).itemsize * self.channels

    def decode(self, data: bytes) -> np.ndarray:
        """``(frames, channels)`` float32 in -1..1 of whole frames in ``data``."""
        n = len(data) // self.frame_bytes
        x = np.frombuffer(data[:n * self.frame_bytes], dtype=self.dtype).reshape(n, self.channels)
        if x.dtype == np.uint8:  # 8-bit WAV is unsigned around 128
            return (x.astype(np.float32) - 128.0) / 128.0
        if np.issubdtype(x.dtype, np.integer):
            return x.astype(np.float32) / float(2 ** (8 * x.dtype.itemsize - 1))
        return x.astype(np.float32)


def raw_format(fmt: str, *, sample_rate: int, channels: int) -> PcmFormat:
    """A raw PCM format from its name (``s16le``, ``f32le`` ...); checked."""
    if fmt not in RAW_FORMATS:
        raise InvalidParameterError(
            f"unknown raw sample format {fmt!r}; choose one of {', '.join(RAW_FORMATS)}")
    if not 4_000 <= sample_rate <= 384_000:
        raise InvalidParameterError(f"sample rate {sample_rate} Hz is outside 4000-384000 Hz")
    if not 1 <= channels <= 32:
        raise InvalidParameterError(f"{channels} channels: expected 1 to 32")
    return PcmFormat(sample_rate, channels, RAW_FORMATS[fmt])


def _read_exact(stream: BinaryIO, n: int, what: str) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise UndecodableAudioError(
                f"the stream ended inside the WAV header ({what}); is it a WAV stream?")
        data += chunk
    return data


def read_wav_header(stream: BinaryIO) -> PcmFormat:
    """Read a WAV header from ``stream`` up to the first sample; ``UndecodableAudioError``
    naming what is wrong when it is not a PCM/float WAV header."""
    riff = _read_exact(stream, 12, "RIFF header")
    if riff[:4] not in (b"RIFF", b"RF64") or riff[8:12] != b"WAVE":
        raise UndecodableAudioError(
            "the input is not a WAV stream (no RIFF/WAVE header); pipe WAV "
            "(ffmpeg -i FILE -f wav -) or give --raw with --rate, --channels and --format")
    fmt = None
    while True:
        cid, size = struct.unpack("<4sI", _read_exact(stream, 8, "chunk header"))
        if cid == b"fmt ":
            body = _read_exact(stream, size + (size & 1), "fmt chunk")
            if size < 16:
                raise UndecodableAudioError(f"the WAV fmt chunk is {size} bytes; expected 16 or more")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _WAVE_EXTENSIBLE and size >= 40:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = _wav_format(tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise UndecodableAudioError("the WAV stream has samples before its fmt chunk")
            return fmt
        else:
            if size > _MAX_SKIPPED_CHUNK:
                raise UndecodableAudioError(
                    f"the WAV header has a {size}-byte {cid!r} chunk before the samples")
            _read_exact(stream, size + (size & 1), f"{cid!r} chunk")


def _wav_format(tag: int, channels: int, rate: int, bits: int) -> PcmFormat:
    dtypes = {(_WAVE_PCM, 8): "u1", (_WAVE_PCM, 16): "<i2", (_WAVE_PCM, 32): "<i4",
              (_WAVE_FLOAT, 32): "<f4", (_WAVE_FLOAT, 64): "<f8"}
    if (tag, bits) not in dtypes:
        raise UndecodableAudioError(
            f"WAV format {tag} with {bits}-bit samples is not supported live; send 16- or "
            "32-bit integer or 32/64-bit float PCM (ffmpeg -i FILE -f wav -acodec pcm_s16le -)")
    if not 1 <= channels <= 32 or not 4_000 <= rate <= 384_000:
        raise UndecodableAudioError(
            f"the WAV header says {channels} channels at {rate} Hz; expected 1-32 channels "
            "at 4000-384000 Hz")
    return PcmFormat(rate, channels, dtypes[(tag, bits)])
