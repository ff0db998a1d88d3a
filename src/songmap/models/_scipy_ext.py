"""Two of scipy's compiled modules without their packages' start-up.

``songmap analyze`` of a short clip is dominated by start-up, and two scipy packages
cost ~0.35 s of it while songmap needs one compiled module of each:

* ``scipy.fft`` (~0.16 s to import: its uarray backends, ``scipy.special`` for fftlog,
  the array-API layer that touches every lazy numpy submodule) for one function, the
  real FFT of ``scipy.fft._pocketfft.pypocketfft`` (``scipy.fft._duccfft.pyduccfft``
  from scipy 1.18);
* ``scipy.linalg`` (~0.2 s), which numba imports the first time it loads a kernel only to
  check that ``scipy.linalg.cython_blas`` exists (``numba.np.linalg.ensure_blas``);
  songmap's kernels make no BLAS calls.

Both are self-contained extension modules (they import nothing from their package), so
they are loaded here from their files under their own names. Everything falls back to
the ordinary import when a file is not where this scipy keeps it; the results are the
same numbers either way (tests/unit/test_scipy_ext.py compares them bit for bit).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

log = logging.getLogger("songmap")

_lock = threading.Lock()
# the real FFT scipy.fft calls: pocketfft up to scipy 1.17, ducc0's from 1.18 (same call)
_FFT_MODULES = ("scipy.fft._pocketfft.pypocketfft", "scipy.fft._duccfft.pyduccfft")
_CYTHON_BLAS = "scipy.linalg.cython_blas"


def load_scipy_extension(name: str) -> ModuleType | None:
    """The compiled scipy module ``name`` (dotted), loaded from its file without running
    its packages' ``__init__``; the already imported one if it is in ``sys.modules``;
    None when this scipy has no such file or it cannot be loaded."""
    with _lock:
        module = sys.modules.get(name)
        if module is not None:
            return module
        try:
            # the package itself is cheap (~3 ms) and sets up what its compiled modules
            # need (on Windows, the folder of the OpenBLAS DLL)
            import scipy
        except ImportError:
            return None
        if scipy.__file__ is None:
            return None
        folder = Path(scipy.__file__).parent.joinpath(*name.split(".")[1:-1])
        stem = name.rsplit(".", 1)[-1]
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"{stem}{suffix}"
            if path.is_file():
                break
        else:
            return None
        try:
            ext_spec = importlib.util.spec_from_file_location(name, path)
            if ext_spec is None or ext_spec.loader is None:
                return None
            module = importlib.util.module_from_spec(ext_spec)
            ext_spec.loader.exec_module(module)
        except (ImportError, OSError) as exc:
            log.debug("could not load %s from %s: %s", name, path, exc)
            return None
        # registered under its own name: a later ``import scipy.linalg`` (or numba's
        # ``import scipy.linalg.cython_blas``) finds this module instead of a second copy
        sys.modules[name] = module
        return module


def preload_cython_blas() -> None:
    """Make numba's BLAS check (at its first kernel load) find ``scipy.linalg.cython_blas``
    without importing ``scipy.linalg``; nothing to do once scipy.linalg is imported."""
    if "scipy.linalg" not in sys.modules:
        load_scipy_extension(_CYTHON_BLAS)


_rfft: Callable[[np.ndarray], np.ndarray] | None = None


def rfft_rows(frames: np.ndarray) -> np.ndarray:
    """``scipy.fft.rfft(frames, axis=1)`` of a real 2-d array (float32 in, complex64 out),
    by the same compiled call scipy.fft makes (one thread, no normalisation)."""
    global _rfft
    if _rfft is None:
        _rfft = _pick_rfft()
    return _rfft(frames)


def _pick_rfft() -> Callable[[np.ndarray], np.ndarray]:
    for name in _FFT_MODULES:
        direct = _direct_r2c(load_scipy_extension(name))
        if direct is not None:
            return direct

    from scipy.fft import rfft

    def imported(frames: np.ndarray) -> np.ndarray:
        return rfft(frames, axis=1, overwrite_x=True)

    return imported


def _direct_r2c(module: ModuleType | None) -> Callable[[np.ndarray], np.ndarray] | None:
    r2c = getattr(module, "r2c", None)
    if r2c is None:
        return None

    def direct(frames: np.ndarray) -> np.ndarray:
        # scipy.fft.rfft(x, axis=1): r2c(x, axes, forward, inorm=0 (backward), out,
        # nthreads=1 (its default workers)); x already real, native and aligned
        return r2c(frames, (1,), True, 0, None, 1)

    try:
        direct(np.zeros((1, 4), np.float32))
    except (TypeError, ValueError) as exc:  # another scipy's signature
        log.debug("scipy's %s cannot be called directly: %s", module, exc)
        return None
    return direct
