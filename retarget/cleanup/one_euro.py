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

Speed: the recursion's per-sample cutoff depends on its own output, so it cannot be
written as one linear filter (``lfilter``); instead one Python loop over time runs
every quantity of a take at once (``one_euro_groups``: all joints, the root, both
passes, each group its own ``min_cutoff``), a dozen numpy calls per row whatever
the number of channels. ``one_euro_take`` (what ``smoothing.smooth_params`` uses
for method ``one_euro``) gives the same numbers as filtering each parameter on its
own, in one pass over the take.
"""
from __future__ import annotations

import numpy as np

D_CUTOFF_HZ = 1.0
_TWO_PI = 2.0 * np.pi


def _alpha(cutoff, fs: float):
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau * fs)


def one_euro_groups(x: np.ndarray, fs: float, min_cutoff, beta: float,
                    d_cutoff: float = D_CUTOFF_HZ) -> np.ndarray:
    """Causal One Euro over ``x (T, G, g)``: G quantities of g channels each (pad a
    shorter quantity with zero channels: they stay zero and add no speed);
    ``min_cutoff``: a number or ``(G,)`` per quantity. -> ``(T, G, g)`` float64."""
    x = np.asarray(x, dtype=np.float64)
    T, G, g = x.shape
    out = np.empty_like(x)
    if T == 0:
        return out
    minc = np.broadcast_to(np.asarray(min_cutoff, np.float64), (G,)).copy()
    a_d = float(_alpha(d_cutoff, fs))
    k = fs / _TWO_PI                       # alpha = c / (c + fs / 2pi) for a cutoff c
    prev = x[0].copy()
    dprev = np.zeros((G, g))
    diff = np.empty((G, g))
    speed = np.empty(G)
    a = np.empty(G)
    out[0] = prev
    for t in range(1, T):  # O(T), every channel of the take at once
        np.subtract(x[t], prev, out=diff)
        dprev += a_d * (diff * fs - dprev)
        np.einsum("gc,gc->g", dprev, dprev, out=speed)
        np.sqrt(speed, out=speed)
        speed *= beta
        speed += minc                       # the cutoff (Hz)
        np.add(speed, k, out=a)
        np.divide(speed, a, out=a)
        diff *= a[:, None]
        prev += diff
        out[t] = prev
    return out


def one_euro(x: np.ndarray, fs: float, min_cutoff: float, beta: float,
             d_cutoff: float = D_CUTOFF_HZ, group: int | None = None) -> np.ndarray:
    """Causal One Euro over ``x (T, C)``. ``group``: channels per speed group
    (e.g. 4 for quaternions; None = all channels one group). -> ``(T, C)`` float64."""
    x = np.asarray(x, dtype=np.float64)
    T, C = x.shape
    g = C if not group else int(group)
    return one_euro_groups(x.reshape(T, C // g, g), fs, min_cutoff, beta,
                           d_cutoff).reshape(T, C)


def one_euro_zero_phase(x: np.ndarray, fs: float, min_cutoff: float, beta: float,
                        group: int | None = None) -> np.ndarray:
    """Mean of the forward and the time-reversed One Euro passes. ``(T, C)`` -> same."""
    x = np.asarray(x, dtype=np.float64)
    T, C = x.shape
    g = C if not group else int(group)
    x3 = x.reshape(T, C // g, g)
    both = one_euro_groups(np.concatenate([x3, x3[::-1]], axis=1), fs, min_cutoff, beta)
    G = x3.shape[1]
    return (0.5 * (both[:, :G] + both[::-1, G:])).reshape(T, C)


def one_euro_take(blocks: list, cutoffs, runs, fs: float, beta: float) -> list:
    """Zero-phase One Euro of several quantities of one take in one loop over time.

    blocks: arrays ``(T, G_k, g_k)`` (G_k quantities of g_k channels, e.g. a parameter's
    joints as quaternions); cutoffs: ``min_cutoff`` per block; runs: ``[(start, stop)]``
    rows to filter, each run on its own (rows outside them are copied). The same
    numbers as ``one_euro_zero_phase`` on each block and run alone.
    -> filtered float64 copies, in order."""
    blocks = [np.asarray(b, dtype=np.float64) for b in blocks]
    out = [b.copy() for b in blocks]
    if not blocks:
        return out
    g = max(b.shape[2] for b in blocks)
    sizes = [b.shape[1] for b in blocks]
    G = sum(sizes)
    minc = np.concatenate([np.full(n, float(c)) for n, c in zip(sizes, cutoffs)])
    for start, stop in runs:
        x = np.zeros((stop - start, G, g))          # narrower quantities: zero channels
        at = 0
        for b, m in zip(blocks, sizes):
            x[:, at:at + m, :b.shape[2]] = b[start:stop]
            at += m
        both = one_euro_groups(np.concatenate([x, x[::-1]], axis=1), fs,
                               np.concatenate([minc, minc]), beta)
        sm = 0.5 * (both[:, :G] + both[::-1, G:])
        at = 0
        for o, m in zip(out, sizes):
            o[start:stop] = sm[:, at:at + m, :o.shape[2]]
            at += m
    return out
