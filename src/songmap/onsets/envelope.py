"""SuperFlux-style onset envelope (Böck & Widmer 2013) and peak picking, in numpy.

Computed block by block so memory stays bounded by the block, not the file.
"""

from __future__ import annotations

import numpy as np

from songmap.audio.blocks import release
from songmap.signals import Activations

_FRAME = 2048
#: How far (s) an onset frame may lie from the attack start it marks: half the envelope's
#: 2048-sample window at 44.1 kHz (a window sees an attack up to that long before its
#: centre reaches it: an ideal click at 0.50 s peaks the envelope at 0.48 s).
_ONSET_SPREAD_S = 0.025
_BLOCK_FRAMES = 2000  # 20 s at 100 fps


def _log_filterbank(sr: int, n_fft: int, *, bands_per_octave: int = 24,
                    fmin: float = 30.0, fmax: float = 17000.0) -> np.ndarray:
    """Triangular filters on a logarithmic frequency axis, shape ``(n_fft//2+1, bands)``."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    n_oct = np.log2(fmax / fmin)
    centres = fmin * 2.0 ** (np.arange(int(n_oct * bands_per_octave) + 2) / bands_per_octave)
    bins = np.unique(np.searchsorted(freqs, centres))
    bins = bins[bins < len(freqs)]
    fb = np.zeros((len(freqs), max(len(bins) - 2, 1)), dtype=np.float32)
    for j in range(len(bins) - 2):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        if mid > lo:
            fb[lo:mid, j] = np.linspace(0, 1, mid - lo, endpoint=False)
        fb[mid:hi, j] = np.linspace(1, 0, hi - mid, endpoint=False)
        fb[:, j] /= max(fb[:, j].sum(), 1e-9)
    return fb


def _magnitude_blocks(samples: np.ndarray, hop: float, n_frames: int, bins: int):
    """``(first frame, |STFT| of bins 0..bins-1)`` blocks of Hann-windowed frames centred
    on ``i * hop``.

    With a whole number of samples per hop and no weight on the Nyquist bin this is the
    batched float32 STFT of the networks' front end. The numpy path below serves the
    rest: ``Analyzer.analyze_audio`` takes audio at any rate when the network outputs are
    given (22050 Hz at 100 fps is 220.5 samples a frame), which that front end cannot frame.
    """
    if float(hop).is_integer() and bins <= _FRAME // 2:
        from songmap.models.frontend import stft_magnitude_blocks

        yield from stft_magnitude_blocks(samples, frame_size=_FRAME, hop=int(hop), max_bin=bins)
        return
    window = np.hanning(_FRAME).astype(np.float32)
    padded = np.concatenate([np.zeros(_FRAME // 2, np.float32), samples.astype(np.float32),
                             np.zeros(_FRAME, np.float32)])
    for b0 in range(0, n_frames, _BLOCK_FRAMES):
        idx = np.arange(b0, min(b0 + _BLOCK_FRAMES, n_frames))
        starts = np.round(idx * hop).astype(np.int64)
        frames = padded[starts[:, None] + np.arange(_FRAME)[None, :]] * window
        yield b0, np.abs(np.fft.rfft(frames, axis=1)).astype(np.float32)


def max_filter(values: np.ndarray, size: int, *, axis: int = -1) -> np.ndarray:
    """Maximum over ``size`` (odd) neighbours along ``axis``, edges mirrored: exactly
    scipy.ndimage's ``maximum_filter1d`` default, without importing scipy.ndimage at
    start-up (~0.1 s)."""
    half = size // 2
    pad = [(0, 0)] * values.ndim
    pad[axis] = (half, half)
    padded = np.pad(values, pad, mode="symmetric")
    return np.lib.stride_tricks.sliding_window_view(padded, size, axis=axis).max(axis=-1)


def mean_filter(values: np.ndarray, size: int) -> np.ndarray:
    """Moving average of a 1-d signal over ``size`` (odd) samples, edges mirrored, in the
    dtype of ``values``: scipy.ndimage's ``uniform_filter1d`` result to the bit (the same
    float64 running sum, added in the same order)."""
    half = size // 2
    padded = np.pad(np.asarray(values, np.float64), (half, size - 1 - half), mode="symmetric")
    steps = np.empty(len(values))
    if len(values):
        steps[0] = np.add.accumulate(padded[:size])[-1]
        steps[1:] = padded[size:] - padded[:len(values) - 1]
    return (np.add.accumulate(steps) / size).astype(values.dtype)


def onset_envelope(samples: np.ndarray, sr: int, *, fps: float = 100.0) -> Activations:
    """Onset strength per frame, normalised to [0, 1], at ``fps`` frames per second."""
    hop = sr / fps
    n_frames = int(np.ceil(len(samples) / hop)) if len(samples) else 0
    if n_frames == 0:
        return Activations(np.zeros(0, dtype=np.float32), fps)
    fb = _log_filterbank(sr, _FRAME)
    used = np.flatnonzero(fb.any(axis=1))
    bins = int(used[-1]) + 1 if len(used) else 1  # bins above the last filter carry no weight
    env = np.zeros(n_frames, dtype=np.float32)
    prev: np.ndarray | None = None
    for b0, spec in _magnitude_blocks(samples, hop, n_frames, bins):
        logspec = np.log1p(spec[:, :bins] @ fb[:bins])
        # SuperFlux: compare with a frequency-max-filtered previous frame
        smoothed = max_filter(logspec, 3, axis=1)
        ref = np.vstack([prev if prev is not None else smoothed[:1], smoothed[:-1]])
        env[b0:b0 + len(spec)] = np.maximum(logspec - ref, 0).sum(axis=1)
        prev = smoothed[-1:]
    peak = float(np.percentile(env, 99.5)) if len(env) else 0.0
    if peak > 0:
        env = np.clip(env / peak, 0, 1)
    return Activations(env, fps)


def loudness_curve(samples: np.ndarray, sr: int, *, fps: float = 100.0) -> Activations:
    """Level in dB (relative to full scale) of each ``1 / fps`` s frame of ``samples``."""
    hop = sr / fps
    n_frames = int(np.ceil(len(samples) / hop)) if len(samples) else 0
    if n_frames == 0:
        return Activations(np.zeros(0, dtype=np.float32), fps)
    edges = np.round(np.arange(n_frames + 1) * hop).astype(np.int64).clip(0, len(samples))
    level = np.empty(n_frames, dtype=np.float32)
    for f0 in range(0, n_frames, _BLOCK_FRAMES):  # block by block: no copy of the whole file
        f1 = min(f0 + _BLOCK_FRAMES, n_frames)
        block = samples[edges[f0]:edges[f1]].astype(np.float64)
        starts = np.minimum(edges[f0:f1] - edges[f0], max(len(block) - 1, 0))
        energy = np.add.reduceat(block * block, starts) if len(block) else np.zeros(f1 - f0)
        counts = np.maximum(np.diff(edges[f0:f1 + 1]), 1)
        level[f0:f1] = 10.0 * np.log10(energy / counts + 1e-10)
        # a long recording's samples on disk: this pass reads ~3 GB/s, faster than the
        # helper thread gives the pages back, so each block's are given back at once
        release(samples, int(edges[f0]), int(edges[f1]))
    return Activations(level, fps)


#: Sound this far (dB) below the song's median level between its first and last beat is
#: not music for the chord recogniser (leading noise, the dying ring-out of the end).
_MUSIC_DROP_DB = 20.0


def music_span(loudness: Activations, beat_times: np.ndarray, duration: float) -> tuple[float, float]:
    """(start, end) in seconds of where the music sounds: from the first frame within
    ``_MUSIC_DROP_DB`` of the median level between the first and last beat (or the first
    beat, if earlier) to the last such frame (or the last beat, if later)."""
    values = np.asarray(loudness.values, dtype=float)
    beats = np.asarray(beat_times, dtype=float)
    if len(values) == 0 or len(beats) < 2:
        return 0.0, duration
    fps = loudness.fps
    first, last = (int(np.clip(round(t * fps), 0, len(values) - 1)) for t in (beats[0], beats[-1]))
    if last <= first:
        return 0.0, duration
    loud = np.flatnonzero(values >= np.median(values[first:last]) - _MUSIC_DROP_DB)
    if len(loud) == 0:
        return 0.0, duration
    start = min(float(beats[0]), loud[0] / fps)
    end = max(float(beats[-1]), (loud[-1] + 1) / fps)
    return max(start, 0.0), min(end, duration)


def detect_onsets(envelope: Activations, *, delta: float = 0.08, combine_s: float = 0.03) -> np.ndarray:
    """Onset times (s): local maxima above a moving average plus ``delta``."""
    env = envelope.values
    if len(env) < 3 or float(env.max(initial=0.0)) <= 0:
        return np.zeros(0)
    local_max = env == max_filter(env, 7)
    threshold = mean_filter(env, 21) + delta
    frames = np.flatnonzero(local_max & (env >= threshold) & (env > 0))
    if len(frames) == 0:
        return np.zeros(0)
    keep = [frames[0]]
    min_gap = combine_s * envelope.fps
    for f in frames[1:]:
        if f - keep[-1] > min_gap:
            keep.append(f)
    return np.asarray(keep, dtype=float) / envelope.fps


def nearest_transients(
    beat_times: np.ndarray,
    onset_times: np.ndarray,
    envelope: Activations,
    *,
    window_s: float = 0.07,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each beat: the nearest onset within ``window_s`` (NaN if none), its envelope
    strength (NaN if none) and its accuracy ``1 - |onset - beat| / window_s``."""
    beats = np.asarray(beat_times, dtype=float)
    onsets = np.asarray(onset_times, dtype=float)
    times = np.full(len(beats), np.nan)
    strength = np.full(len(beats), np.nan)
    accuracy = np.full(len(beats), np.nan)
    if len(beats) == 0 or len(onsets) == 0:
        return times, strength, accuracy
    j = np.clip(np.searchsorted(onsets, beats), 1, len(onsets) - 1) if len(onsets) > 1 else np.zeros(len(beats), int)
    cand = np.stack([onsets[np.maximum(j - 1, 0)], onsets[j]], axis=1)
    pick = cand[np.arange(len(beats)), np.abs(cand - beats[:, None]).argmin(axis=1)]
    near = np.abs(pick - beats) <= window_s
    times[near] = pick[near]
    frames = np.clip(np.round(pick[near] * envelope.fps).astype(int), 0, len(envelope.values) - 1)
    strength[near] = envelope.values[frames]
    return times, strength, transient_accuracy(beats, times, window_s=window_s)


def transient_accuracy(beat_times: np.ndarray, transient_times: np.ndarray, *,
                       window_s: float) -> np.ndarray:
    """Per beat ``1 - |transient - beat| / window_s``, at least 0 (NaN where the
    transient is NaN: none)."""
    beats = np.asarray(beat_times, dtype=float)
    times = np.asarray(transient_times, dtype=float)
    accuracy = np.full(len(beats), np.nan)
    found = np.isfinite(times)
    accuracy[found] = np.clip(1.0 - np.abs(times[found] - beats[found]) / window_s, 0.0, 1.0)
    return accuracy


def onto_attack_starts(
    beat_times: np.ndarray, transient_times: np.ndarray, attack_starts: np.ndarray, *,
    duration: float, window_s: float = 0.07,
) -> tuple[np.ndarray, np.ndarray]:
    """Each beat's transient (s; NaN: none) at its attack's start where one was measured
    within ``_ONSET_SPREAD_S`` of it and inside ``[0, duration]`` (``attack_starts``, s
    per beat, NaN where none: ``songmap.rhythm.attacks``, 2 ms steps; a start is sought
    in the silence before the signal too), else as detected (frames 10 ms apart), and
    its accuracy ``1 - |transient - beat| / window_s`` (NaN where there is none)."""
    beats = np.asarray(beat_times, dtype=float)
    times = np.array(transient_times, dtype=float)
    starts = np.asarray(attack_starts, dtype=float)
    if len(starts) == len(times):
        inside = np.isfinite(starts) & (starts >= 0.0) & (starts <= duration)
        near = np.isfinite(times) & inside
        near[near] = np.abs(starts[near] - times[near]) <= _ONSET_SPREAD_S
        times[near] = starts[near]
    return times, transient_accuracy(beats, times, window_s=window_s)
