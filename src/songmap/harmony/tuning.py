"""How far a recording's semitones lie from A = 440 Hz's, and the audio moved onto them.

The harmony networks read a spectrogram whose bands sit on A440's semitones (and the
quarter tones between), so music tuned a quarter tone off falls between them: realmusic
r06, 48 cents flat, read as F major where a copy played 2 % faster (-14 cents) read A
major, the key its chord tones spell. Recordings are often off A440: bands tune to one
instrument, tapes and records run a little fast or slow, some music is tuned to A = 432
Hz (-32 cents).

``estimate_tuning`` finds the offset from the spectral peaks of the pitched sound, and
``retune`` resamples the audio so that the harmony networks hear it on A440 (the beat
networks keep the original).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: FFT size (samples at 44.1 kHz: 5.4 Hz bins) and the frames read, spread over the song.
_FRAME = 8192
_MAX_FRAMES = 600
#: Partials (Hz) that tell the tuning: above the lowest notes, whose bins are wider than a
#: semitone, below the upper partials of harmonic tones, which lie off the tempered
#: scale (the 5th harmonic 14 cents flat of its major third, the 7th 31 cents flat).
_F_MIN_HZ, _F_MAX_HZ = 150.0, 2000.0
#: A peak must stand this far (dB) above its frame's median level in the band...
_ABOVE_MEDIAN_DB = 20.0
#: ...and within this far (dB) of the frame's strongest peak.
_BELOW_TOP_DB = 40.0


@dataclass(frozen=True)
class Tuning:
    """``cents``: the semitones' offset from A440's, in [-50, 50) (+: sharp);
    ``strength``: the weighted mean resultant length of the peaks' offsets (0: no
    agreement, 1: every peak on one offset); ``peaks``: how many peaks were read."""

    cents: float
    strength: float
    peaks: int

    @property
    def reference_hz(self) -> float:
        """The frequency (Hz) of A4 in this tuning."""
        return a4_hz(self.cents)


def frequency_ratio(cents: float) -> float:
    """The frequency ratio of an interval of ``cents``: ``2 ** (cents / 1200)``."""
    return 2.0 ** (cents / 1200.0)


def a4_hz(cents: float) -> float:
    """The frequency (Hz) of A4 in a tuning ``cents`` off A440."""
    return 440.0 * frequency_ratio(cents)


def estimate_tuning(samples: np.ndarray, sr: int) -> Tuning:
    """The tuning of mono ``samples`` at ``sr`` Hz from their spectral peaks.

    In up to ``_MAX_FRAMES`` frames spread over the signal, every local maximum of the
    magnitude spectrum between ``_F_MIN_HZ`` and ``_F_MAX_HZ`` that stands out of its
    frame is placed between bins by a parabola through the log magnitudes; its offset
    from the nearest A440 semitone (cents, as an angle on the circle of 100 cents) is
    averaged with the peak's magnitude as weight. Noise and drums scatter their peaks
    around the circle, pitched sound gathers them."""
    from songmap.models._scipy_ext import rfft_rows
    from songmap.signals import peak_offset

    x = np.asarray(samples, dtype=np.float32)
    if len(x) < _FRAME:
        return Tuning(0.0, 0.0, 0)
    # frames half overlapping at most, up to _MAX_FRAMES of them
    count = min(_MAX_FRAMES, 1 + (len(x) - _FRAME) // (_FRAME // 2))
    starts = np.linspace(0, len(x) - _FRAME, count).astype(int)
    frames = np.stack([x[s:s + _FRAME] for s in starts]) * np.hanning(_FRAME).astype(np.float32)
    freqs = np.fft.rfftfreq(_FRAME, 1.0 / sr)
    lo = max(int(np.searchsorted(freqs, _F_MIN_HZ)), 1)
    hi = min(int(np.searchsorted(freqs, _F_MAX_HZ)), len(freqs) - 1)
    mag = np.abs(rfft_rows(frames))[:, lo - 1:hi + 1]
    db = 20.0 * np.log10(mag + 1e-9)
    centre = db[:, 1:-1]
    is_peak = (centre > db[:, :-2]) & (centre >= db[:, 2:])
    is_peak &= centre > np.median(centre, axis=1, keepdims=True) + _ABOVE_MEDIAN_DB
    is_peak &= centre > centre.max(axis=1, keepdims=True) - _BELOW_TOP_DB
    rows, cols = np.nonzero(is_peak)
    if len(rows) == 0:
        return Tuning(0.0, 0.0, 0)
    # every peak is a strict maximum over its left neighbour: the parabola has a vertex
    shift = peak_offset(db[rows, cols], db[rows, cols + 1], db[rows, cols + 2])
    f = (lo + cols + shift) * sr / _FRAME
    angle = 2.0 * np.pi * (1200.0 * np.log2(f / 440.0)) / 100.0
    weight = mag[rows, cols + 1].astype(np.float64)
    z = np.sum(weight * np.exp(1j * angle)) / np.sum(weight)
    cents = float(np.angle(z) * 100.0 / (2.0 * np.pi))
    if cents >= 50.0:
        cents -= 100.0
    return Tuning(cents, float(np.abs(z)), int(len(rows)))


#: Offset (cents) from which the harmony networks hear the audio retuned. Below it they
#: hardly suffer (dev played 15 cents off: key .957 / 1.000, chords majmin .897 / .907,
#: against .975 and .911 in tune; 30 cents off: majmin .886 / .876; 45: .554 / .692),
#: and rendered songs, which are in tune, measure within 2.5 cents of 0.
RETUNE_FROM_CENTS = 10.0
#: Least ``Tuning.strength`` at which the offset is trusted. On realmusic the offset of
#: every track at .15 or more moved by the 34 cents of a copy played 2 % faster (within
#: 3 cents); r01 (.07) and r02 (.05), dense electronic mixes, moved by 37 and 24.
MIN_STRENGTH = 0.15


def correction_cents(tuning: Tuning) -> float:
    """The offset (cents) to take out of the audio before the harmony networks: the
    tuning's where it is trusted and ``RETUNE_FROM_CENTS`` or more, else 0."""
    if tuning.strength < MIN_STRENGTH or abs(tuning.cents) < RETUNE_FROM_CENTS:
        return 0.0
    return tuning.cents


def retune(samples: np.ndarray, sr: int, cents: float) -> np.ndarray:
    """``samples`` played ``cents`` lower, so music tuned ``cents`` sharp of A440 sounds
    on it: resampled (soxr) as if their rate were ``2 ** (-cents / 1200)`` times theirs,
    which also slows them by that factor (a frame of the result at ``t`` s holds the
    input's ``t * 2 ** (-cents / 1200)`` s)."""
    import soxr

    from songmap.audio import blocks

    if cents == 0.0 or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    factor = frequency_ratio(-cents)
    if blocks.should_spill(len(samples), sr):  # a long recording: from disk to disk
        return blocks.resample_blocks(samples, sr * factor, sr)
    return soxr.resample(np.asarray(samples, dtype=np.float32), sr * factor, sr,
                         quality="HQ").astype(np.float32, copy=False)
