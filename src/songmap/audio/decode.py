"""Decode a file with a real decoder, mix to mono, resample with soxr.

libsndfile (``soundfile``) is tried first: it read a 270 s MP3 in 0.22 s here against
0.8 s for PyAV. FFmpeg through PyAV takes everything libsndfile refuses (M4A/AAC,
video containers, exotic codecs). Both leave MP3 encoder delay out of the samples they
return (mpg123 and FFmpeg read the LAME/Xing gapless header), so times match what a
player plays.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from songmap.audio import blocks
from songmap.config import NETWORK_SR
from songmap.errors import (
    AudioTooLongError,
    AudioTooShortError,
    InputNotFoundError,
    NotAudioError,
    UndecodableAudioError,
    UnsupportedAudioError,
)

log = logging.getLogger(__name__)

#: Seconds decoded per block while mixing down, so a long multichannel file never
#: needs all its channels in memory at once.
_BLOCK_S = 30.0
#: At most this many values (frames x channels) per block: 30 s of 32 channels at
#: 384 kHz would otherwise be 1.5 GB in one read.
_BLOCK_VALUES = 4 * 1024 * 1024

#: Sample rates (Hz) songmap decodes. Below 4 kHz nothing of a beat or a chord survives
#: and a header that says 1 Hz turns 10,700 samples (a 21 KB WAV) into 3 h of analysis;
#: above 384 kHz no audio format in use writes music.
MIN_SAMPLE_RATE_HZ = 4_000
MAX_SAMPLE_RATE_HZ = 384_000

#: The decoding budget is ``max_duration_s`` at this rate (samples per channel): what
#: decoding and resampling cost follows the samples, not the seconds a header states, so
#: a file above 48 kHz may hold proportionally fewer seconds (3 h at 48 kHz, 45 min at
#: 192 kHz with the default limit) and its size in memory stays bounded.
BUDGET_RATE_HZ = 48_000


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples at ``sr`` plus the facts of the file they came from."""

    samples: np.ndarray
    sr: int
    source_sr: int
    channels: int
    decoder: str

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self.samples) / self.sr


def display_name(path: str | os.PathLike[str]) -> str:
    """The file name of ``path`` as text that any JSON, database or terminal takes.

    A name that is not valid UTF-8 (``os.fsdecode`` gives lone surrogates for its bytes)
    has those bytes shown as U+FFFD: serialising a surrogate fails everywhere downstream.
    """
    name = os.path.basename(os.fspath(path))
    return os.fsencode(name).decode("utf-8", errors="replace")


def signal_from_array(
    samples: np.ndarray, sr: int, *, target_sr: int = NETWORK_SR, decoder: str = "array"
) -> Audio:
    """Wrap an in-memory signal (``(n,)`` or ``(n, channels)``, any float/int dtype)."""
    data = np.asarray(samples)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] < 1:
        raise NotAudioError(f"expected a (samples,) or (samples, channels) array, got {data.shape}")
    if np.issubdtype(data.dtype, np.integer):
        scale = float(np.iinfo(data.dtype).max) + 1.0
        data = data.astype(np.float32) / scale
    check_sample_rate(int(sr), name="the signal")
    mono = _clean(data.mean(axis=1, dtype=np.float32))
    return Audio(_resample(mono, sr, target_sr), target_sr, int(sr), int(data.shape[1]), decoder)


def load_audio(
    path: str | os.PathLike[str],
    *,
    target_sr: int = NETWORK_SR,
    max_duration_s: float = 3 * 3600.0,
    min_duration_s: float = 0.0,
    max_decoded_samples: int | None = None,
) -> Audio:
    """Decode ``path`` to mono float32 at ``target_sr`` Hz.

    ``max_decoded_samples`` bounds the samples (per channel) decoded at the file's own
    rate; ``None`` means ``max_duration_s`` at ``BUDGET_RATE_HZ``.

    Raises ``InputNotFoundError``, ``NotAudioError``, ``UndecodableAudioError``,
    ``UnsupportedAudioError`` (a sample rate outside ``MIN_SAMPLE_RATE_HZ`` ..
    ``MAX_SAMPLE_RATE_HZ``, or more samples than the budget: both decided from the header
    before decoding and the budget again while decoding), ``AudioTooLongError`` (likewise,
    so a file that lies about its length cannot exhaust memory) and ``AudioTooShortError``.
    """
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise InputNotFoundError(f"{p}: is a folder, not a file")
    if not p.is_file():  # /dev/null, a pipe: no length, nothing to seek in
        raise InputNotFoundError(f"{p}: not a regular file (a device or a pipe); save the "
                                 "audio to a file first")
    size = p.stat().st_size
    if size == 0:
        raise NotAudioError(f"{p.name}: the file is empty (0 bytes)")

    if _looks_like_text(p):
        raise NotAudioError(f"{p.name} is not audio: it looks like a text file (wrong extension?)")
    if _is_midi(p):
        raise NotAudioError(
            f"{p.name} is a MIDI file: notes, not sound. Render it to audio first (with a "
            "synthesizer such as FluidSynth) and analyse that"
        )
    if _only_id3_tag(p, size):
        raise NotAudioError(
            f"{p.name} is not audio: it holds an ID3 tag (title, artist, ...) and no audio "
            "after it; the download or copy probably stopped early"
        )
    if _starts_with_zeros(p):
        raise NotAudioError(
            f"{p.name} is not audio: it holds only zero bytes where the audio should start; "
            "the download or copy probably never finished"
        )
    budget = _Budget(p.name, max_duration_s, max_decoded_samples)
    try:
        mono, sr, channels, decoder = _decode_soundfile(p, budget)
    except _Unsupported:
        mono, sr, channels, decoder = _decode_pyav(p, budget)

    if len(mono) == 0:
        raise UndecodableAudioError(
            f"{p.name}: no audio could be decoded from it; the file is truncated or corrupt "
            "(its header may be intact but what follows is not audio)"
        )
    duration = len(mono) / sr
    if duration < min_duration_s:
        raise AudioTooShortError(
            f"{p.name}: {duration:.2f} s of audio is too short to analyse; "
            f"songmap needs at least {min_duration_s:g} s to find beats"
        )
    return Audio(_resample(_clean(mono), sr, target_sr), target_sr, sr, channels, decoder)


@contextlib.contextmanager
def _quiet_c_stderr() -> Iterator[None]:
    """Silence what C decoders print on fd 2 (mpg123's resync notes): our errors say it."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _wav_declared_bytes(p: Path) -> tuple[int, int] | None:
    """(declared data bytes, bytes present) of a RIFF/WAVE file, or None if not one."""
    with open(p, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                start = fh.tell()
                return size, p.stat().st_size - start
            fh.seek(size + (size & 1), 1)


def _check_wav_length(p: Path) -> None:
    declared = _wav_declared_bytes(p)
    if declared is None:
        return
    size, present = declared
    # 0 and 0xFFFFFFFF are what live recorders write before they know the length
    if size in (0, 0xFFFFFFFF):
        return
    if size > present * 1.01 + 4096:
        raise UndecodableAudioError(
            f"{p.name}: the WAV header declares {size} bytes of audio but only {present} are "
            "present; the file is truncated (or its header is wrong)"
        )


class _Samples:
    """Decoded mono blocks written into one array sized from the header's frame count, so
    a long file is not held twice (a list of blocks and their concatenation). A long one
    (``blocks.should_spill``) is written to a file on disk instead of memory."""

    def __init__(self, expected: int = 0, *, sr: int) -> None:
        self._sr = sr
        self._buf = self._allocate(max(int(expected), 0) or 1 << 20)
        self._n = 0

    def _allocate(self, n: int) -> np.ndarray:
        if blocks.should_spill(n, self._sr):
            return blocks.spilled_samples(n)
        return np.empty(n, dtype=np.float32)

    def append(self, block: np.ndarray) -> None:
        end = self._n + len(block)
        if end > len(self._buf):  # the header under-counted: grow geometrically
            grown = self._allocate(max(end, int(len(self._buf) * 1.5)))
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n:end] = block
        blocks.release(self._buf, self._n, end)  # on disk: written, not kept mapped
        self._n = end

    def __len__(self) -> int:
        return self._n

    def array(self) -> np.ndarray:
        # a view when full or on disk; a trimmed copy only if the header over-counted a lot
        if self._n >= 0.9 * len(self._buf) or blocks.should_spill(len(self._buf), self._sr):
            return self._buf[: self._n]
        return self._buf[: self._n].copy()


class _Unsupported(Exception):
    """libsndfile cannot read this format: hand it to FFmpeg."""


#: What libsndfile reports as ``frames`` when the header does not know the length
#: (SF_COUNT_MAX; a FLAC written by a streaming encoder leaves total_samples at 0).
_UNKNOWN_FRAMES = 2**62


def check_sample_rate(sr: int, *, name: str) -> None:
    """Refuse a sample rate (Hz) outside ``MIN_SAMPLE_RATE_HZ`` .. ``MAX_SAMPLE_RATE_HZ``."""
    if not MIN_SAMPLE_RATE_HZ <= sr <= MAX_SAMPLE_RATE_HZ:
        raise UnsupportedAudioError(
            f"{name}: a sample rate of {sr} Hz is outside what songmap decodes "
            f"({MIN_SAMPLE_RATE_HZ // 1000}-{MAX_SAMPLE_RATE_HZ // 1000} kHz); the header is "
            "probably damaged (or convert the file to 44.1 or 48 kHz)"
        )


class _Budget:
    """What one decode may cost, in samples per channel at the file's own rate, checked
    from the header before decoding (``admit``) and on every block while decoding
    (``check``)."""

    def __init__(self, name: str, max_duration_s: float, max_samples: int | None) -> None:
        self.name = name
        self.max_duration_s = max_duration_s
        self.max_samples = (int(max_duration_s * BUDGET_RATE_HZ) if max_samples is None
                            else int(max_samples))

    def limit(self, sr: int) -> int:
        """Samples at ``sr`` Hz beyond which decoding stops."""
        return min(int(self.max_duration_s * sr) + 1, self.max_samples)

    def admit(self, sr: int, declared_samples: float | None) -> None:
        """Before decoding: the rate must be sane and the header's length within budget."""
        check_sample_rate(sr, name=self.name)
        if declared_samples is not None:
            self.check(sr, declared_samples, while_decoding=False)

    def check(self, sr: int, samples: float, *, while_decoding: bool = True) -> None:
        if samples / sr > self.max_duration_s + (1.0 / sr if while_decoding else 0.0):
            raise _too_long(self.name, samples / sr, self.max_duration_s,
                            while_decoding=while_decoding)
        if samples > self.max_samples:
            amount = "more than " if while_decoding else ""
            raise UnsupportedAudioError(
                f"{self.name}: {amount}{samples / sr:.0f} s at {sr} Hz is {amount}"
                f"{samples:.0f} samples, over the decoding budget of {self.max_samples} "
                f"({self.max_duration_s:.0f} s at {BUDGET_RATE_HZ // 1000} kHz); convert it "
                "to 48 kHz or less, or raise max_duration_s / --max-duration"
            )


def _block_frames(sr: int, channels: int) -> int:
    """Frames per decoded block: ``_BLOCK_S`` seconds, fewer for many channels."""
    return max(1, min(int(_BLOCK_S * sr), _BLOCK_VALUES // max(channels, 1)))


def _too_long(name: str, seconds: float, limit: float, *, while_decoding: bool = False
              ) -> AudioTooLongError:
    amount = f"more than {seconds:.0f} s" if while_decoding else f"{seconds:.0f} s"
    return AudioTooLongError(
        f"{name}: {amount} of audio is longer than the limit of {limit:.0f} s "
        "(raise max_duration_s / --max-duration to analyse it)"
    )


def _decode_soundfile(p: Path, budget: _Budget) -> tuple[np.ndarray, int, int, str]:
    import soundfile as sf

    _check_wav_length(p)
    try:
        with _quiet_c_stderr():
            # bytes: soundfile encodes a str path strictly, so a name that is not valid
            # UTF-8 would fail to open (FFmpeg would read it, but slower)
            f = sf.SoundFile(os.fsencode(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise _Unsupported() from exc
    with f, _quiet_c_stderr():
        sr, channels, frames = f.samplerate, f.channels, f.frames
        if sr <= 0 or channels <= 0:
            raise _Unsupported()
        if frames >= _UNKNOWN_FRAMES:
            # libsndfile fails at the end of such a file ("psf_fseek() failed"); FFmpeg
            # reads it, and its running count refuses one that is too long
            raise _Unsupported()
        budget.admit(sr, frames)
        limit = budget.limit(sr)
        block = _block_frames(sr, channels)
        parts = _Samples(frames, sr=sr)
        got = 0
        try:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                parts.append(data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0])
                got += len(data)
                if got > limit:
                    budget.check(sr, got)
        except (sf.LibsndfileError, RuntimeError) as exc:
            reason = str(exc).replace("Error : ", "").strip()
            raise UndecodableAudioError(
                f"{p.name}: decoding failed ({reason}); the file looks truncated or corrupt"
            ) from exc
    if frames > 0 and got < 0.98 * frames and frames - got > sr:
        raise UndecodableAudioError(
            f"{p.name}: the header promises {frames / sr:.1f} s but only {got / sr:.1f} s "
            "could be read; the file is truncated or corrupt"
        )
    return parts.array(), sr, channels, "soundfile"


def _id3_end(head: bytes) -> int:
    """Where the audio after an ID3v2 tag starts (bytes), from the file's first 10 bytes;
    0 without a tag."""
    if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
        return 0
    end = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9])
    return end + 10 if head[5] & 0x10 else end  # a footer follows the tag


#: Bytes after any ID3 tag that must not all be zero (every container and MPEG frame
#: starts with a non-zero mark well within them).
_ZERO_CHECK_BYTES = 64 * 1024


def _starts_with_zeros(p: Path) -> bool:
    """Whether the file holds nothing but zero bytes where its audio should start (an
    unfinished download, a pre-allocated file). FFmpeg's MPEG-audio parsers (.mp3, .mp2,
    .ac3) scan such a file to its end looking for a frame, buffering it all: 2.2 GB of
    memory and 30 s for 5 GB of zeros named .mp3 (2026-11-27)."""
    with open(p, "rb") as fh:
        fh.seek(_id3_end(fh.read(10)))
        start = fh.read(_ZERO_CHECK_BYTES)
    return not start.strip(b"\x00")


def _only_id3_tag(p: Path, size: int) -> bool:
    """An ID3v2 tag with nothing after it but padding or an ID3v1 tag (a cut-off MP3)."""
    with open(p, "rb") as fh:
        end = _id3_end(fh.read(10))
        if not end:
            return False
        if size - end > 4096:
            return False
        fh.seek(end)
        rest = fh.read()
    return not rest.strip(b"\x00") or (len(rest) == 128 and rest[:3] == b"TAG")


def _is_midi(p: Path) -> bool:
    """Whether the file is a Standard MIDI File (it starts with the "MThd" chunk, also
    inside a RIFF "RMID" wrapper)."""
    with open(p, "rb") as fh:
        head = fh.read(24)
    return head[:4] == b"MThd" or (head[:4] == b"RIFF" and head[8:12] == b"RMID")


def _looks_like_text(p: Path) -> bool:
    """Whether the first 512 bytes are nearly all printable ASCII and hold no NUL byte.
    A WAV or AIFF header always holds NULs (its chunk sizes), while the samples after it
    can read as letters: a 16-bit WAV of clicks at 0.8 is "ffff..." from byte 44 on."""
    with open(p, "rb") as fh:
        head = fh.read(512)
    if not head or b"\x00" in head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


def _decode_pyav(p: Path, budget: _Budget) -> tuple[np.ndarray, int, int, str]:
    import av

    from songmap.audio.ffmpeg_limits import bounded_allocations

    with bounded_allocations():  # a file of zero bytes grew one buffer to its size
        return _decode_pyav_bounded(av, p, budget)


#: Bytes FFmpeg may read to learn the streams' parameters (its ``probesize``) of a container
#: whose header states them all (WAV, RF64, W64, AU, AIFF). Such a file comes here only when
#: soundfile refused its header, which then often names a codec FFmpeg does not know either,
#: and FFmpeg reads up to its default 5 MB in small packets looking for one: a W64 header
#: saying format tag 65535 took 0.4 s of CPU to refuse for 3 s of audio, 7.0 s for 120 s
#: (64 kB: 0.10 s; the ADPCM, MP3-in-WAV and float files of the decoder tests read the same).
_HEADER_PROBE_BYTES = 65536
#: How such containers start: RIFF/RIFX/RF64/BW64 (WAV), "riff" (the first bytes of W64's
#: GUID), ".snd" (AU), "FORM" (AIFF, AIFF-C).
_HEADER_CONTAINERS = (b"RIFF", b"RIFX", b"RF64", b"BW64", b"riff", b".snd", b"FORM")


def probe_options(head: bytes) -> dict[str, str]:
    """FFmpeg's options for opening a file that starts with ``head``: a short probe for a
    container whose header states every stream's parameters, else FFmpeg's defaults."""
    if head[:4] in _HEADER_CONTAINERS:
        return {"probesize": str(_HEADER_PROBE_BYTES)}
    return {}


def _image_codec(container) -> str:
    """The codec of a still image FFmpeg opened as a one-stream "video" (its image
    demuxers: ``png_pipe``, ``jpeg_pipe``, ``image2`` ...), upper-cased; "" otherwise."""
    name = container.format.name or ""
    video = container.streams.video
    if len(container.streams) != 1 or len(video) != 1:
        return ""
    if not (name.endswith("_pipe") or name in ("image2", "gif", "webp")):
        return ""
    codec = video[0].codec_context.name or name.removesuffix("_pipe")
    return {"mjpeg": "JPEG"}.get(codec, codec.upper())


def _decode_pyav_bounded(av, p: Path, budget: _Budget) -> tuple[np.ndarray, int, int, str]:
    with open(p, "rb") as fh:
        options = probe_options(fh.read(4))
    try:
        container = av.open(str(p), metadata_errors="ignore", options=options)
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise NotAudioError(
            f"{p.name} is not audio: FFmpeg could not recognise the format ({reason}); "
            "is it an audio file?"
        ) from exc
    with container:
        streams = container.streams.audio
        if not streams:
            image = _image_codec(container)
            if image:
                raise NotAudioError(f"{p.name} is not audio: it is an image ({image})")
            kinds = sorted({s.type for s in container.streams})
            found = f" (it holds {', '.join(kinds)} streams only)" if kinds else ""
            raise NotAudioError(f"{p.name} has no audio stream{found}; is it a video without sound?")
        stream = streams[0]
        codec = stream.codec_context
        if codec is None:
            # FFmpeg found a stream but no decoder for it: a WAV saying 64 or 65535 bits
            # per sample, an unknown codec tag
            raise UnsupportedAudioError(
                f"{p.name}: FFmpeg has no decoder for its audio ({_stream_format(stream)}); "
                "the header is probably damaged (or convert the file to 16/24-bit PCM)"
            )
        declared = _declared_seconds(container, stream)
        sr = int(codec.sample_rate or stream.rate or 0)
        channels = int(getattr(codec, "channels", 0) or 0)
        if sr <= 0:
            raise NotAudioError(f"{p.name}: the audio stream has no sample rate")
        budget.admit(sr, declared * sr if declared is not None else None)
        limit = budget.limit(sr)
        expected = int(min(declared * sr * 1.01, limit)) if declared else 0
        parts = _Samples(expected, sr=sr)
        got = 0
        try:
            for frame in container.decode(stream):
                data = _frame_array(frame, p.name)
                if frame.format.is_planar:
                    arr = data.astype(np.float32, copy=False)
                else:
                    arr = data.reshape(frame.samples, -1).T.astype(np.float32, copy=False)
                arr = _to_unit_float(arr, frame.format.name)
                channels = max(channels, arr.shape[0])
                parts.append(arr.mean(axis=0, dtype=np.float32))
                got += arr.shape[1]
                if got > limit:
                    budget.check(sr, got)
        except av.error.FFmpegError as exc:
            if got == 0:
                raise UndecodableAudioError(
                    f"{p.name}: FFmpeg could not decode any audio ({exc}); "
                    "the file is corrupt or truncated"
                ) from exc
            raise UndecodableAudioError(
                f"{p.name}: decoding failed after {got / sr:.1f} s ({exc}); "
                "the file looks truncated or corrupt"
            ) from exc
    return parts.array(), sr, max(channels, 1), "pyav"


def _stream_format(stream) -> str:
    """What a stream's header says it is, for a message (codec tag, bits), best effort."""
    params = getattr(stream, "codec_tag", None) or getattr(stream, "name", None)
    return f"codec {params}" if params else "an unknown codec"


def _frame_array(frame, name: str) -> np.ndarray:
    """A decoded frame's samples; a sample format numpy cannot take is the file's fault."""
    fmt = frame.format.name
    if fmt in ("s64", "s64p"):  # PyAV's to_ndarray has no 64-bit integer formats
        planar = fmt.endswith("p")
        per_plane = frame.samples * (1 if planar else len(frame.layout.channels))
        planes = [np.frombuffer(bytes(plane), dtype="<i8")[:per_plane] for plane in frame.planes]
        return np.stack(planes)
    try:
        return frame.to_ndarray()
    except (ValueError, TypeError) as exc:
        raise UnsupportedAudioError(
            f"{name}: its samples come in a format songmap cannot read "
            f"({frame.format.name}); the header is probably damaged (or convert the file "
            "to 16/24-bit PCM)"
        ) from exc


def _declared_seconds(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _to_unit_float(arr: np.ndarray, fmt: str) -> np.ndarray:
    """PyAV hands integer sample formats as ints: scale them to [-1, 1)."""
    if fmt.startswith("s16"):
        return arr / 32768.0
    if fmt.startswith("s32"):
        return arr / 2147483648.0
    if fmt.startswith("u8"):
        return (arr - 128.0) / 128.0
    if fmt.startswith("s64"):
        return arr / 9.223372036854776e18
    return arr


def _clean(mono: np.ndarray) -> np.ndarray:
    """Replace NaN/Inf samples by silence: one bad sample must not poison every frame.

    In place (block by block, no full-length mask) on the decoder's own buffer."""
    mono = np.asarray(mono, dtype=np.float32)
    if not mono.flags.writeable:
        mono = mono.copy()
    bad = blocks.replace_non_finite(mono)
    if bad:
        log.warning("%d non-finite samples replaced by 0", bad)
    return mono


def _resample(mono: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    if sr == target_sr or len(mono) == 0:
        return np.ascontiguousarray(mono, dtype=np.float32)
    if blocks.should_spill(len(mono), sr):  # a long file: streamed, from disk to disk
        return blocks.resample_blocks(mono, sr, target_sr)
    import soxr

    return soxr.resample(mono, sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_channels(path: str | os.PathLike[str]) -> tuple[np.ndarray, int] | None:
    """The file's own channels ``(samples, channels)`` at its own rate, for loudness, where
    libsndfile reads the format; ``None`` otherwise (callers fall back to the mono mix)."""
    import soundfile as sf

    try:
        with _quiet_c_stderr():
            data, sr = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    return np.where(np.isfinite(data), data, np.float32(0)), int(sr)
