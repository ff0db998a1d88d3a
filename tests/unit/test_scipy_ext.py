"""scipy's compiled modules loaded without their packages (songmap.models._scipy_ext):
the same numbers as scipy.fft, and numba's BLAS check satisfied without scipy.linalg."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.fft

from songmap.models import _scipy_ext
from songmap.models.frontend import stft_magnitude_blocks


def run_python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=dict(os.environ),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("frame_size", [1024, 2048, 4096, 8192])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rfft_rows_is_scipy_fft_to_the_bit(frame_size, dtype):
    rng = np.random.default_rng(frame_size)
    frames = (rng.standard_normal((37, frame_size)) * np.hanning(frame_size)).astype(dtype)
    expected = scipy.fft.rfft(frames.copy(), axis=1, overwrite_x=True)
    got = _scipy_ext.rfft_rows(frames)
    assert got.dtype == expected.dtype
    assert got.tobytes() == expected.tobytes()


def test_stft_blocks_match_scipy_fft_to_the_bit():
    x = np.random.default_rng(0).standard_normal(44100).astype(np.float32)
    window = np.hanning(2048).astype(np.float32)
    padded = np.concatenate([np.zeros(1024, np.float32), x, np.zeros(2048, np.float32)])
    for f0, mag in stft_magnitude_blocks(x, frame_size=2048, hop=441, block_frames=40):
        frames = np.stack([padded[(f0 + i) * 441:(f0 + i) * 441 + 2048] for i in range(len(mag))])
        expected = np.abs(scipy.fft.rfft(frames * window, axis=1)[:, :1024]).astype(np.float32)
        assert mag.tobytes() == expected.tobytes()


def test_unknown_module_is_none():
    assert _scipy_ext.load_scipy_extension("scipy.no_such_package.no_such_module") is None


def test_rfft_falls_back_to_scipy_fft_without_the_extension(monkeypatch):
    monkeypatch.setattr(_scipy_ext, "load_scipy_extension", lambda name: None)
    rfft = _scipy_ext._pick_rfft()
    frames = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    assert rfft(frames).tobytes() == scipy.fft.rfft(frames, axis=1).tobytes()


def test_fresh_process_uses_neither_scipy_fft_nor_scipy_linalg():
    out = run_python("""
        import sys
        import numpy as np
        from songmap.models._scipy_ext import preload_cython_blas, rfft_rows
        rfft_rows(np.zeros((2, 16), np.float32))
        preload_cython_blas()
        blas = sys.modules["scipy.linalg.cython_blas"]
        print(sorted(m for m in ("scipy.fft", "scipy.linalg", "scipy.special") if m in sys.modules))
        import scipy.linalg  # the package imported later still works and keeps this module
        from scipy.linalg import cython_blas
        print(cython_blas is blas, float(scipy.linalg.norm([3.0, 4.0])))
    """)
    assert out.splitlines() == ["[]", "True 5.0"]
