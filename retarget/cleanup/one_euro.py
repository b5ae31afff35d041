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
the number of channels. ``smooth_params_one_euro`` is ``smoothing.smooth_params``
for method ``one_euro`` built on it: the same numbers as filtering each parameter
on its own, in one pass over the take.
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


def smooth_params_one_euro(params: dict, valid: np.ndarray, fs: float, settings) -> dict:
    """``smoothing.smooth_params`` for ``settings.method == "one_euro"``: every region's
    parameters filtered together, both passes in one loop over each valid run.

    Same rules as ``smoothing.filter_series`` / ``filter_rotations``: rotations as
    sign-continuous quaternions (one speed group per joint), renormalised; a linear
    parameter is one speed group; each region at its own cutoff; a region whose
    cutoff is unset or at or above Nyquist, rows outside valid runs and runs shorter
    than ``MIN_RUN`` are left as they are. -> new dict (the input is not modified)."""
    from ..rotations import (axis_angle_to_quaternion, quaternion_continuity,
                             quaternion_normalize, quaternion_to_axis_angle)
    from ..smoothing import MIN_RUN, REGIONS, ROTATION_PARAMS, valid_runs

    out = {k: np.asarray(v) for k, v in params.items()}
    jobs = []                       # (key, is rotation, (T, G, g) array, cutoff)
    for region, keys in REGIONS.items():
        hz = settings.cutoff(region)
        if hz is None or hz >= fs / 2.0:
            continue
        for key in keys:
            if key not in params:
                continue
            a = np.asarray(params[key], dtype=np.float64)
            T = a.shape[0]
            if key in ROTATION_PARAMS:
                jobs.append((key, True, axis_angle_to_quaternion(a.reshape(T, -1, 3)), hz))
            else:
                jobs.append((key, False, a.reshape(T, 1, -1), hz))
    if not jobs:
        return out
    T = jobs[0][2].shape[0]
    g = max(j[2].shape[2] for j in jobs)
    sizes = [j[2].shape[1] for j in jobs]
    G = sum(sizes)
    minc = np.concatenate([np.full(n, j[3]) for n, j in zip(sizes, jobs)])
    res = {key: (arr.copy() if rot else np.asarray(params[key], np.float64).reshape(
        T, 1, -1).copy()) for key, rot, arr, _ in jobs}
    valid = np.ones(T, bool) if valid is None else np.asarray(valid, bool)
    for start, stop in valid_runs(valid):
        n = stop - start
        if n < MIN_RUN:
            continue
        x = np.zeros((n, G, g))
        at = 0
        for (key, rot, arr, _), m in zip(jobs, sizes):
            seg = arr[start:stop]
            if rot:
                seg = quaternion_continuity(seg, axis=0)
            x[:, at:at + m, :seg.shape[2]] = seg
            at += m
        both = one_euro_groups(np.concatenate([x, x[::-1]], axis=1), fs,
                               np.concatenate([minc, minc]), settings.one_euro_beta)
        sm = 0.5 * (both[:, :G] + both[::-1, G:])
        at = 0
        for (key, rot, arr, _), m in zip(jobs, sizes):
            res[key][start:stop] = sm[:, at:at + m, :arr.shape[2]]
            at += m
    for key, rot, arr, _ in jobs:
        a = np.asarray(params[key], dtype=np.float64)
        if rot:
            q = res[key]
            aa = a.reshape(T, -1, 3).copy()
            done = np.zeros(T, bool)
            for start, stop in valid_runs(valid):
                if stop - start >= MIN_RUN:
                    done[start:stop] = True
            aa[done] = quaternion_to_axis_angle(quaternion_normalize(q[done]))
            out[key] = aa.reshape(a.shape)
        else:
            out[key] = res[key].reshape(a.shape)
    return out
