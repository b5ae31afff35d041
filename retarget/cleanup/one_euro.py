# SPDX-License-Identifier: GPL-3.0-or-later
"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over channels.

An adaptive first-order low-pass: its cutoff is ``min_cutoff + beta * |dx/dt|``
(Hz), where ``dx/dt`` is the signal's speed (units per second) low-passed at
``d_cutoff``. Slow motion gets the low ``min_cutoff`` (steady, no jitter); fast
motion opens the filter (little lag). ``beta = 0`` is a plain exponential
smoother at ``min_cutoff``.

The filter is causal, so it lags; for offline takes ``one_euro_zero_phase`` runs
it forwards and backwards and averages the two (the lags cancel to first order).
The speed used to adapt is the norm over all channels of a row (a joint's
quaternion, a translation), so the channels of one quantity share one cutoff.
"""
from __future__ import annotations

import numpy as np

D_CUTOFF_HZ = 1.0


def _alpha(cutoff, fs: float):
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau * fs)


def one_euro(x: np.ndarray, fs: float, min_cutoff: float, beta: float,
             d_cutoff: float = D_CUTOFF_HZ, group: int | None = None) -> np.ndarray:
    """Causal One Euro over ``x (T, C)``. ``group``: channels per speed group
    (e.g. 4 for quaternions; None = all channels one group). -> ``(T, C)`` float64."""
    x = np.asarray(x, dtype=np.float64)
    T, C = x.shape
    g = C if not group else int(group)
    G = C // g
    out = np.empty_like(x)
    if T == 0:
        return out
    a_d = float(_alpha(d_cutoff, fs))
    x3 = x.reshape(T, G, g)
    o3 = out.reshape(T, G, g)
    prev = x3[0].copy()
    dprev = np.zeros((G, g))
    o3[0] = prev
    two_pi = 2.0 * np.pi
    for t in range(1, T):  # O(T), vectorised over channels
        xt = x3[t]
        dprev += a_d * ((xt - prev) * fs - dprev)
        speed = np.sqrt(np.einsum("gc,gc->g", dprev, dprev))
        a = 1.0 / (1.0 + fs / (two_pi * (min_cutoff + beta * speed)))
        prev += a[:, None] * (xt - prev)
        o3[t] = prev
    return out


def one_euro_zero_phase(x: np.ndarray, fs: float, min_cutoff: float, beta: float,
                        group: int | None = None) -> np.ndarray:
    """Mean of the forward and the time-reversed One Euro passes. ``(T, C)`` -> same."""
    x = np.asarray(x, dtype=np.float64)
    fwd = one_euro(x, fs, min_cutoff, beta, group=group)
    bwd = one_euro(x[::-1], fs, min_cutoff, beta, group=group)[::-1]
    return 0.5 * (fwd + bwd)
