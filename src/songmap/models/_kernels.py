"""numba kernels of the models package (compiled once, cached on disk by numba).

Imported lazily: numba costs ~0.5 s to import.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from songmap.models._scipy_ext import preload_cython_blas

# numba imports scipy.linalg (~0.2 s) at its first kernel load only to check for BLAS
preload_cython_blas()


@nb.njit(fastmath=True, inline="always", error_model="numpy", cache=True)
def ftanh(x):
    # Eigen's float tanh: odd rational polynomial, clamped where tanh(x) == +-1 in float32
    lim = np.float32(7.90531110763549805)
    x = min(x, lim)
    x = max(x, -lim)
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    p = p * x
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return p / q

@nb.njit(fastmath=True, nogil=True, error_model="numpy", cache=True)
def lstm_recurrence(xp, rec, peep, h, c, out, t0, reverse):
    """Run ``len(xp)`` steps of every network's LSTM for one direction.

    xp (steps, nets, 100) projected inputs + bias, in time order; rec (nets, 25, 100);
    peep (nets, 75); h, c (nets, 25) state, updated in place; out (nets, frames, 25)
    receives h at frames t0 .. t0 + steps - 1; ``reverse`` walks the block backwards.
    """
    steps = xp.shape[0]
    nets = xp.shape[1]
    half = np.float32(0.5)
    for n in range(nets):
        pre = np.empty(100, np.float32)
        gi = np.empty(25, np.float32)
        gf = np.empty(25, np.float32)
        hn = h[n].copy()
        cn = c[n].copy()
        r = rec[n].copy()
        pi = peep[n, 0:25].copy()
        po = peep[n, 25:50].copy()
        pf = peep[n, 50:75].copy()
        for s in range(steps):
            t = steps - 1 - s if reverse else s
            for j in range(100):
                pre[j] = xp[t, n, j]
            for k in range(25):
                hk = hn[k]
                for j in range(100):
                    pre[j] += hk * r[k, j]
            for k in range(25):
                gi[k] = pre[k] + pi[k] * cn[k]
                gf[k] = pre[50 + k] + pf[k] * cn[k]
            for k in range(25):
                zi = ftanh(gi[k])
                zf = ftanh(gf[k])
                g = ftanh(pre[75 + k])
                cn[k] = (half * zf + half) * cn[k] + (half * zi + half) * g
            for k in range(25):
                zo = ftanh(pre[25 + k] + po[k] * cn[k])
                hn[k] = (half * zo + half) * ftanh(cn[k])
            for k in range(25):
                out[n, t0 + t, k] = hn[k]
        h[n] = hn
        c[n] = cn

