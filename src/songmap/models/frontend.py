"""The networks' spectral front ends, vectorised, float32, in bounded memory.

madmom computes each spectrogram frame by frame in Python (an FFT call per frame) and
each of its processors computes its own; for a 270 s song the downbeat network's
three STFTs alone took ~5 s. These functions compute the same features (madmom's
framing, Hann window, filterbanks and log compression, verified against madmom in
tests/unit/test_models_frontend.py) with one batched FFT per block of frames, so memory
is bounded by the block, not the song:

* ``downbeat_features``: madmom's ``RNNDownBeatProcessor`` input, (frames, 314) at 100 fps;
* ``chroma_spectrogram``: the 8192-sample log-filtered spectrogram at 10 fps feeding deep
  chroma; its even frames are the key network's 5 fps input.
"""

from __future__ import annotations

from functools import cache

import numpy as np

#: Samples per FFT batch: frames x frame_size (each float32 buffer of a block is 8 MB,
#: its complex spectrum 16 MB). Two STFTs run at once (beat network and onsets); 4M-sample
#: blocks were no faster and cost ~25 MB more peak RSS on a 270 s track.
_BLOCK_SAMPLES = 1 << 21

#: (frame size, log-filterbank bands per octave) of the downbeat network's three STFTs.
DOWNBEAT_STFTS = ((1024, 3), (2048, 6), (4096, 12))


def num_frames(n_samples: int, hop: int) -> int:
    """madmom's frame count (``end='normal'``): frames while the centre is inside."""
    return int(np.ceil(n_samples / hop)) if n_samples else 0


def stft_magnitude_blocks(samples: np.ndarray, *, frame_size: int, hop: int,
                          block_frames: int | None = None, max_bin: int | None = None,
                          double: bool = False):
    """Yield ``(first_frame, |STFT|)`` blocks, each ``(frames, max_bin)`` float32.

    Frame ``i`` is centred on sample ``i * hop`` (zero padding outside the signal) and
    Hann-windowed; bins from 0 to ``max_bin`` (default: ``frame_size // 2``, dropping
    the Nyquist bin as madmom does) are kept. ``double``: the FFT in float64, as numpy's
    (madmom's) is, for bins far below a frame's peak (a float32 FFT is exact to about
    1e-7 of the peak), where a log with a tiny floor reads them.
    """
    from songmap.models._scipy_ext import rfft_rows

    def fft(frames: np.ndarray) -> np.ndarray:
        return np.fft.rfft(frames.astype(np.float64), axis=1) if double else rfft_rows(frames)

    x = np.asarray(samples, dtype=np.float32)
    n = num_frames(len(x), hop)
    block_frames = block_frames or max(64, _BLOCK_SAMPLES // frame_size)
    window = np.hanning(frame_size).astype(np.float32)
    half = frame_size // 2
    for f0 in range(0, n, block_frames):
        f1 = min(f0 + block_frames, n)
        lo, hi = f0 * hop - half, (f1 - 1) * hop - half + frame_size
        seg = np.zeros(hi - lo, np.float32)
        a, b = max(lo, 0), min(hi, len(x))
        if b > a:
            seg[a - lo:b - lo] = x[a:b]
        frames = np.lib.stride_tricks.sliding_window_view(seg, frame_size)[::hop]
        spec = fft(frames * window)[:, :max_bin or half]
        yield f0, np.abs(spec).astype(np.float32, copy=False)


#: Tuning reference (Hz) of the logarithmic band centres (madmom's A4).
_FREF_HZ = 440.0


def fft_bin_frequencies(num_bins: int, sr: int) -> np.ndarray:
    """Centre frequency (Hz) of each of the first ``num_bins`` bins of a ``2 * num_bins``
    point FFT at ``sr``."""
    return np.fft.rfftfreq(2 * num_bins, d=1.0 / sr)[:num_bins]


def log_band_frequencies(bands_per_octave: int, fmin: float, fmax: float,
                         fref: float = _FREF_HZ) -> np.ndarray:
    """Band centres (Hz): ``fref * 2 ** (k / bands_per_octave)`` for every whole ``k``
    that puts the centre inside ``[fmin, fmax]``."""
    lo = np.floor(np.log2(fmin / fref) * bands_per_octave)
    hi = np.ceil(np.log2(fmax / fref) * bands_per_octave)
    freqs = fref * 2.0 ** (np.arange(lo, hi) / float(bands_per_octave))
    return freqs[(freqs >= fmin) & (freqs <= fmax)]


def nearest_bins(freqs_hz: np.ndarray, bin_freqs_hz: np.ndarray) -> np.ndarray:
    """Index of the FFT bin nearest to each frequency (the upper bin on a tie), distinct
    and increasing: at low frequencies several band centres fall into one bin, and a
    band per centre would weigh that bin several times."""
    idx = np.clip(np.searchsorted(bin_freqs_hz, freqs_hz), 1, len(bin_freqs_hz) - 1)
    lower_is_nearer = freqs_hz - bin_freqs_hz[idx - 1] < bin_freqs_hz[idx] - freqs_hz
    return np.unique(idx - lower_is_nearer)


def _triangle(rise: int, length: int) -> np.ndarray:
    """A triangle of ``length`` bins peaking (1) at bin ``rise``, 0 at its first bin and
    just past its last, scaled to unit area in float32 (madmom normalises in float32)."""
    tri = np.concatenate([np.linspace(0.0, 1.0, rise, endpoint=False),
                          np.linspace(1.0, 0.0, length - rise, endpoint=False)])
    tri = tri.astype(np.float32)
    tri /= tri.sum()
    return tri


@cache
def log_filterbank(frame_size: int, sr: int, bands_per_octave: int, fmin: float, fmax: float):
    """madmom's ``LogarithmicFilterbank`` (area-normalised triangles on distinct bins) for
    an STFT of ``frame_size``, float32, cut after its last non-zero row: ``(bins, bands)``
    with ``bins <= frame_size // 2`` (bins above ``fmax`` carry no weight).

    Band ``j`` is a triangle from centre bin ``j`` to centre bin ``j + 2`` peaking on
    centre bin ``j + 1``; one bin wide where those are adjacent. The same numbers as
    madmom's (tests/unit/test_models_frontend.py), computed without it.
    """
    num_bins = frame_size // 2
    centres = nearest_bins(log_band_frequencies(bands_per_octave, fmin, fmax),
                           fft_bin_frequencies(num_bins, sr))
    if len(centres) < 3:
        raise ValueError(f"{bands_per_octave} bands per octave from {fmin} to {fmax} Hz "
                         f"give fewer than 3 distinct bins of a {frame_size}-point FFT")
    fb = np.zeros((num_bins, len(centres) - 2), np.float32)
    for band, (start, centre, stop) in enumerate(zip(centres, centres[1:], centres[2:])):
        if stop - start < 2:
            centre, stop = start, start + 1
        fb[start:stop, band] = _triangle(centre - start, stop - start)
    used = np.flatnonzero(fb.any(axis=1))
    return np.ascontiguousarray(fb[: used[-1] + 1 if len(used) else 1])


def log_filtered_spectrogram(samples: np.ndarray, *, sr: int, frame_size: int, fps: float,
                             bands_per_octave: int, fmin: float, fmax: float) -> np.ndarray:
    """``log10(1 + |STFT| @ filterbank)``, shape ``(frames, bands)``, float32."""
    hop = _hop(sr, fps)
    fb = log_filterbank(frame_size, sr, bands_per_octave, float(fmin), float(fmax))
    out = np.empty((num_frames(len(samples), hop), fb.shape[1]), np.float32)
    for f0, mag in stft_magnitude_blocks(samples, frame_size=frame_size, hop=hop, max_bin=fb.shape[0]):
        block = out[f0:f0 + len(mag)]
        np.matmul(mag, fb, out=block)
        block += 1.0
        np.log10(block, out=block)
    return out


def diff_frames(frame_size: int, hop: int, diff_ratio: float = 0.5) -> int:
    """madmom's ``_diff_frames``: how many frames back the spectral difference looks."""
    window = np.hanning(frame_size)
    sample = int(np.argmax(window > diff_ratio * window.max()))
    return int(max(1, round((frame_size / 2 - sample) / hop)))


def positive_difference(spec: np.ndarray, lag: int) -> np.ndarray:
    """``max(spec[t] - spec[t - lag], 0)``, zero for the first ``lag`` frames."""
    diff = np.zeros_like(spec)
    diff[lag:] = spec[lag:] - spec[:-lag]
    np.maximum(diff, 0, out=diff)
    return diff


def downbeat_features(samples: np.ndarray, *, sr: int = 44100, fps: float = 100.0) -> np.ndarray:
    """madmom's ``RNNDownBeatProcessor`` input: for frame sizes 1024, 2048 and 4096, the
    log filtered spectrogram (3, 6, 12 bands per octave, 30 Hz - 17 kHz) and its positive
    difference, side by side; shape ``(frames, 314)`` at ``fps`` (100), float32."""
    hop = _hop(sr, fps)
    parts = []
    for frame_size, bands in DOWNBEAT_STFTS:
        spec = log_filtered_spectrogram(samples, sr=sr, frame_size=frame_size, fps=fps,
                                        bands_per_octave=bands, fmin=30.0, fmax=17000.0)
        parts += [spec, positive_difference(spec, diff_frames(frame_size, hop))]
    return np.hstack(parts)


def chroma_spectrogram(samples: np.ndarray, *, sr: int = 44100, fps: float = 10.0) -> np.ndarray:
    """The key and deep-chroma networks' input: 8192-sample frames, log filtered
    spectrogram with 24 bands per octave from 65 to 2100 Hz; ``(frames, 105)``."""
    return log_filtered_spectrogram(samples, sr=sr, frame_size=8192, fps=fps,
                                    bands_per_octave=24, fmin=65.0, fmax=2100.0)


def _hop(sr: int, fps: float) -> int:
    hop = sr / fps
    if abs(hop - round(hop)) > 1e-9:
        raise ValueError(f"{sr} Hz at {fps} fps is not a whole number of samples per frame")
    return round(hop)
