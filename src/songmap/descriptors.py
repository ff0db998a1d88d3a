"""Track descriptors people compare with TuneBat or Spotify's retired audio features.

Pure functions on ``(samples, sr)`` and an :class:`~songmap.schema.AnalysisResult`; nothing
here is a model's prediction. Every 0..1 score is a stated formula on measured quantities.

Loudness (ITU-R BS.1770-4 / EBU R128):

- ``integrated_lufs``: gated integrated loudness, measured with ``pyloudnorm`` when it is
  installed (``loudness_method = "pyloudnorm"``), otherwise with :func:`integrated_loudness`
  below (same 400 ms / 75 % overlap blocks, -70 LUFS absolute and -10 LU relative gates,
  K-weighting from the BS.1770 analogue prototype, which reproduces the standard's 48 kHz
  coefficients at 48 kHz and is valid at any rate).
- ``loudness_range_lu``: EBU Tech 3342 LRA: K-weighted short-term loudness over 3 s windows
  every 0.1 s, gated at -70 LUFS and at -20 LU below their power mean, then the 95th minus
  the 10th percentile. ``None`` for audio shorter than 3 s.
- ``true_peak_dbtp``: BS.1770-4 Annex 2: the signal oversampled 4x (2x from 96 kHz) with a
  polyphase FIR (``scipy.signal.resample_poly``), then the largest absolute value in dB.
- ``replaygain_track_gain_db`` = -18 - integrated_lufs (ReplayGain 2.0's -18 LUFS reference);
  ``replaygain_track_peak`` = true peak as a linear value, as ReplayGain tags store it.

Scores, each clipped to 0..1 (``clip``):

- ``loudness_score`` = clip((integrated_lufs + 40) / 35): -40 LUFS -> 0, -5 LUFS -> 1.
- ``onset_density`` = clip(onsets per second / 8).
- ``energy`` = 0.6 * loudness_score + 0.4 * onset_density.
- ``beat_strength`` = mean over beats of the onset envelope at the beat's transient
  (``transient_strength``; 0 for a beat with no transient).
- ``pulse_clarity`` = mean beat-network probability at the tracked beats (``confidence``).
- ``tempo_fit`` = exp(-0.5 * (log2(bpm / 120) / 0.5) ** 2): 1 at 120 BPM, 0.61 at 85 or
  170 BPM, 0.14 at 60 or 240 BPM.
- ``danceability`` = 0.35 * beat_strength + 0.25 * tempo stability + 0.2 * pulse_clarity
  + 0.2 * tempo_fit; 0 when fewer than two beats were found.

Key (mir_eval string, Camelot, Open Key) and tempo with its half/double-time alternative are
copied from the result so one dictionary answers "what would TuneBat say".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from songmap.errors import InvalidParameterError

if TYPE_CHECKING:
    from songmap.schema import AnalysisResult

#: Channel weights of BS.1770 (L, R, C, Ls, Rs); further channels count 1.0.
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
ABSOLUTE_GATE_LUFS = -70.0
REPLAYGAIN_REFERENCE_LUFS = -18.0


def _as_2d(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise InvalidParameterError(f"samples must be (n,) or (n, channels), got {x.shape}")
    return x


def k_weighting_coefficients(sr: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(b, a), (b, a)]`` of the BS.1770 pre-filter (high shelf) and RLB high-pass at ``sr``."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sr)
    vh = 10 ** (gain_db / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = np.array([vh + vb * k / q + k * k, 2 * (k * k - vh), vh - vb * k / q + k * k]) / a0
    shelf_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sr)
    a0 = 1 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return [(shelf_b, shelf_a), (hp_b, hp_a)]


def k_weight(samples: np.ndarray, sr: int) -> np.ndarray:
    """K-weighted copy of ``samples`` ((n, channels) float64)."""
    from scipy.signal import lfilter

    y = _as_2d(samples)
    for b, a in k_weighting_coefficients(sr):
        y = lfilter(b, a, y, axis=0)
    return y


def _block_loudness(weighted: np.ndarray, sr: int, block_s: float, hop_s: float) -> np.ndarray:
    """Loudness (LUFS) of every ``block_s`` window started every ``hop_s``."""
    n = weighted.shape[0]
    block, hop = int(round(block_s * sr)), int(round(hop_s * sr))
    if n < block:
        return np.zeros(0)
    # cumulative sums give each window's mean square in O(n)
    csum = np.concatenate([np.zeros((1, weighted.shape[1])), np.cumsum(weighted ** 2, axis=0)])
    starts = np.arange(0, n - block + 1, hop)
    ms = (csum[starts + block] - csum[starts]) / block
    g = np.array([CHANNEL_WEIGHTS[c] if c < len(CHANNEL_WEIGHTS) else 1.0
                  for c in range(weighted.shape[1])])
    power = ms @ g
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(power)


def _power_mean_lufs(loudness: np.ndarray) -> float:
    return float(-0.691 + 10 * np.log10(np.mean(10 ** ((loudness + 0.691) / 10))))


def integrated_loudness(samples: np.ndarray, sr: int) -> float | None:
    """BS.1770-4 gated loudness (LUFS); ``None`` for silence or audio under 0.4 s."""
    lk = _block_loudness(k_weight(samples, sr), sr, 0.4, 0.1)
    lk = lk[lk > ABSOLUTE_GATE_LUFS]
    if lk.size == 0:
        return None
    lk = lk[lk > _power_mean_lufs(lk) - 10.0]
    return _power_mean_lufs(lk)


def loudness_range(samples: np.ndarray, sr: int) -> float | None:
    """EBU Tech 3342 loudness range (LU); ``None`` under 3 s or for silence."""
    st = _block_loudness(k_weight(samples, sr), sr, 3.0, 0.1)
    st = st[st > ABSOLUTE_GATE_LUFS]
    if st.size == 0:
        return None
    st = st[st > _power_mean_lufs(st) - 20.0]
    return float(np.percentile(st, 95) - np.percentile(st, 10))


def true_peak(samples: np.ndarray, sr: int) -> float:
    """Largest absolute value of the 4x (2x from 96 kHz) oversampled signal (linear)."""
    from scipy.signal import resample_poly

    x = _as_2d(samples)
    if x.shape[0] == 0:
        return 0.0
    factor = 2 if sr >= 96000 else 4
    up = resample_poly(x, factor, 1, axis=0)
    return float(max(np.abs(up).max(), np.abs(x).max()))


def _db(linear: float) -> float | None:
    return 20 * math.log10(linear) if linear > 0 else None


def clip01(x: float) -> float:
    return float(min(max(x, 0.0), 1.0))


def tempo_fit(bpm: float) -> float:
    """exp(-0.5 (log2(bpm/120)/0.5)^2); 0 for no tempo."""
    if bpm <= 0:
        return 0.0
    return math.exp(-0.5 * (math.log2(bpm / 120.0) / 0.5) ** 2)


def rhythm_scores(result: AnalysisResult, integrated_lufs: float | None) -> dict[str, float]:
    """The 0..1 scores that need only the result and the loudness (formulas in the module doc)."""
    r = result
    beats = r.beat_transient_markers
    duration = max(r.audio.duration, 1e-9)
    loud = clip01((integrated_lufs + 40.0) / 35.0) if integrated_lufs is not None else 0.0
    density = clip01(len(r.onset_times) / duration / 8.0)
    strength = float(np.mean([b.transient_strength or 0.0 for b in beats])) if beats else 0.0
    clarity = float(np.mean([b.confidence for b in beats])) if beats else 0.0
    fit = tempo_fit(r.tempo.bpm)
    dance = (0.35 * strength + 0.25 * r.tempo.stability + 0.2 * clarity + 0.2 * fit
             if len(beats) >= 2 else 0.0)
    return {
        "loudness_score": loud,
        "onset_density": density,
        "energy": clip01(0.6 * loud + 0.4 * density),
        "beat_strength": clip01(strength),
        "pulse_clarity": clip01(clarity),
        "tempo_fit": clip01(fit),
        "danceability": clip01(dance),
    }


def compute_descriptors(samples: np.ndarray, sr: int, result: AnalysisResult) -> dict[str, Any]:
    """All descriptors of one track.

    ``samples``: ``(n,)`` or ``(n, channels)`` floats in -1..1 at ``sr`` Hz. Pass the file's
    own channels for loudness: a mono downmix of a wide stereo mix reads up to 3 LU low.
    """
    x = _as_2d(samples)
    if sr <= 0:
        raise InvalidParameterError(f"sr must be positive, got {sr}")
    method = "songmap (BS.1770-4)"
    lufs = integrated_loudness(x, sr)
    if lufs is not None and x.shape[1] <= 5 and x.shape[0] >= int(0.4 * sr):
        try:
            import pyloudnorm

            value = pyloudnorm.Meter(sr).integrated_loudness(x)
            if math.isfinite(value):
                lufs, method = float(value), "pyloudnorm"
        except ImportError:
            pass
    tp = true_peak(x, sr)
    r = result
    out: dict[str, Any] = {
        "integrated_lufs": None if lufs is None else round(lufs, 2),
        "loudness_range_lu": _round(loudness_range(x, sr), 2),
        "true_peak_dbtp": _round(_db(tp), 2),
        "sample_peak_dbfs": _round(_db(float(np.abs(x).max(initial=0.0))), 2),
        "replaygain_track_gain_db": None if lufs is None
        else round(REPLAYGAIN_REFERENCE_LUFS - lufs, 2),
        "replaygain_track_peak": round(tp, 6),
        "loudness_method": method,
        "channels": int(x.shape[1]),
        "tempo_bpm": r.tempo.bpm,
        "tempo_confidence": r.tempo.confidence,
        "tempo_alternative_bpm": r.tempo.alternative_bpm,
        "tempo_alternative_confidence": r.tempo.alternative_confidence,
        "key": r.key.label,
        "key_camelot": r.key.camelot,
        "key_open_key": r.key.open_key,
        "time_signature": r.time_signature.label,
        "onsets_per_second": round(len(r.onset_times) / max(r.audio.duration, 1e-9), 3),
    }
    out.update({k: round(v, 4) for k, v in rhythm_scores(r, lufs).items()})
    return out


def _round(x: float | None, nd: int) -> float | None:
    return None if x is None else round(x, nd)
