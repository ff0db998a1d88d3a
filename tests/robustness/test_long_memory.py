"""Issue 15: decoding a long recording does not hold it in memory (it is held on disk
while analysed, ``songmap.audio.blocks``); measured as the growth of peak RSS in a fresh
process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf


def _clip(seconds: float, sr: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


_PEAK_AFTER_DECODE = textwrap.dedent("""
    import resource, sys
    from songmap.audio import load_audio
    from songmap.netcache import audio_key
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    audio = load_audio(sys.argv[1])
    audio_key(audio)  # a pass over every sample, as the analysis makes
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(len(audio.samples), grown // 1024)
""")


@pytest.mark.slow
def test_decoding_25_minutes_does_not_hold_them_in_memory(tmp_path):
    """25 minutes at 16 kHz: 96 MB decoded, 265 MB at 44.1 kHz; held in memory (and the
    decoded copy beside the resampled one) the process grows by over 300 MB."""
    path = tmp_path / "long.flac"
    block = _clip(60.0, 16_000)
    with sf.SoundFile(path, "w", 16_000, 1, subtype="PCM_16") as f:
        for _ in range(25):
            f.write(block)
    out = subprocess.run([sys.executable, "-c", _PEAK_AFTER_DECODE, str(path)],
                         capture_output=True, text=True, check=True, timeout=300).stdout.split()
    samples, grown_mb = int(out[0]), int(out[1])
    assert samples == 25 * 60 * 44_100
    assert grown_mb < 120, f"decoding grew the process by {grown_mb} MB"
