"""The online beat networks' input, computed causally from audio blocks.

madmom's ``RNNBeatProcessor(online=True)`` frames the 44.1 kHz signal at 100 fps with
2048-sample Hann windows that *end* on their frame's sample (``origin='online'``: frame
``i`` covers samples ``i*441 - 2047 .. i*441``), takes the log filtered spectrogram (12
bands per octave, 30 Hz - 17 kHz, ``log10(1 + x)``) and its positive difference: 162
values per frame. A frame needs no sample after its own time, so it can be computed as
soon as its last sample arrives.

``online_beat_features`` computes them for a whole signal; ``OnlineBeatFeatures`` from
blocks of any size, keeping only the last window's samples and the spectrogram frames the
difference looks back to (a fixed amount of state). Both give the same frames
(tests/live/test_online_beats.py, also against madmom's own processor).
"""

from __future__ import annotations

import numpy as np

from songmap.models.frontend import (
    _hop,
    diff_frames,
    log_filterbank,
    num_frames,
    positive_difference,
)

#: Frame size (samples at 44.1 kHz), bands per octave and band range (Hz) of the online
#: beat networks' spectrogram.
FRAME_SIZE = 2048
BANDS_PER_OCTAVE = 12
FMIN_HZ, FMAX_HZ = 30.0, 17000.0
FPS = 100.0


def _spec_of_frames(frames: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """``log10(1 + |rfft(hann * frame)| @ fb)`` of ``frames`` ``(n, FRAME_SIZE)``."""
    from scipy.fft import rfft

    window = np.hanning(FRAME_SIZE).astype(np.float32)
    mag = np.abs(rfft(frames * window, axis=1)[:, : fb.shape[0]]).astype(np.float32)
    spec = mag @ fb
    spec += 1.0
    np.log10(spec, out=spec)
    return spec


def online_beat_features(samples: np.ndarray, *, sr: int = 44100) -> np.ndarray:
    """The 162-dim causal features of a whole mono signal at ``sr`` (44.1 kHz), shape
    ``(frames, 162)``, float32, 100 fps (``ceil(len / 441)`` frames, as madmom)."""
    hop = _hop(sr, FPS)
    fb = log_filterbank(FRAME_SIZE, sr, BANDS_PER_OCTAVE, FMIN_HZ, FMAX_HZ)
    x = np.asarray(samples, dtype=np.float32)
    n = num_frames(len(x), hop)
    padded = np.concatenate([np.zeros(FRAME_SIZE - 1, np.float32), x])
    spec = np.empty((n, fb.shape[1]), np.float32)
    block = 2048
    for f0 in range(0, n, block):
        f1 = min(f0 + block, n)
        # frame i ends on sample i*hop: padded[i*hop : i*hop + FRAME_SIZE]
        seg = padded[f0 * hop:(f1 - 1) * hop + FRAME_SIZE]
        frames = np.lib.stride_tricks.sliding_window_view(seg, FRAME_SIZE)[::hop]
        spec[f0:f1] = _spec_of_frames(frames, fb)
    return np.hstack([spec, positive_difference(spec, diff_frames(FRAME_SIZE, hop))])


class OnlineBeatFeatures:
    """``online_beat_features`` computed block by block with bounded state.

    ``push(samples)`` takes the next mono samples (44.1 kHz, any count) and returns the
    feature frames completed by them, ``(frames, 162)``; frame ``i`` is returned once
    sample ``i * 441`` has arrived.
    """

    def __init__(self, *, sr: int = 44100) -> None:
        self.hop = _hop(sr, FPS)
        self.fb = log_filterbank(FRAME_SIZE, sr, BANDS_PER_OCTAVE, FMIN_HZ, FMAX_HZ)
        self.lag = diff_frames(FRAME_SIZE, self.hop)
        #: the samples from ``_tail_start`` on (before the signal: zeros)
        self._tail = np.zeros(FRAME_SIZE - 1, np.float32)
        self._tail_start = -(FRAME_SIZE - 1)
        self._received = 0
        #: index of the next frame to compute
        self.next_frame = 0
        #: the last ``lag`` spectrogram frames (zeros before the first: diff = 0 there)
        self._history = np.zeros((0, self.fb.shape[1]), np.float32)

    @property
    def dim(self) -> int:
        return 2 * self.fb.shape[1]

    def push(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        buf = np.concatenate([self._tail, x])
        self._received += len(x)
        # frames i with i*hop <= received - 1 are complete
        last = (self._received - 1) // self.hop if self._received else -1
        first = self.next_frame
        if last >= first:
            lo = first * self.hop - (FRAME_SIZE - 1) - self._tail_start
            seg = buf[lo:lo + (last - first) * self.hop + FRAME_SIZE]
            frames = np.lib.stride_tricks.sliding_window_view(seg, FRAME_SIZE)[::self.hop]
            spec = _spec_of_frames(frames, self.fb)
            self.next_frame = last + 1
        else:
            spec = np.zeros((0, self.fb.shape[1]), np.float32)
        # keep the samples the next frame starts from
        keep_from = self.next_frame * self.hop - (FRAME_SIZE - 1)
        self._tail = buf[keep_from - self._tail_start:].copy()
        self._tail_start = keep_from
        both = np.concatenate([self._history, spec])
        diff = np.zeros_like(spec)
        # the whole-signal difference is 0 for the first ``lag`` frames
        k0 = max(self.lag - first, 0)
        j = len(self._history) + np.arange(k0, len(spec))
        diff[k0:] = np.maximum(both[j] - both[j - self.lag], 0.0)
        self._history = both[-self.lag:].copy()
        return np.hstack([spec, diff])
