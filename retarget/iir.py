# SPDX-License-Identifier: GPL-3.0-or-later
"""Butterworth low-pass design and zero-phase IIR filtering in numpy only.

Blender's own Python has no scipy; the clean-up (ground, contacts, foot locking) low-passes
the feet with a Butterworth filter run forwards and backwards, so this module gives the
same numbers as ``scipy.signal.butter`` + ``scipy.signal.filtfilt`` (default odd padding,
``lfilter_zi`` initial conditions) without it (``tests/retarget/test_iir.py`` compares them).

The recursion is the direct-form II transposed one of ``scipy.signal.lfilter``, written as
a state space ``z[n+1] = A z[n] + B x[n]``, ``y[n] = C z[n] + D x[n]`` and run in blocks of
``BLOCK`` samples: inside a block the output is a matrix product with the impulse
response (all columns and blocks at once); only the state at block starts is carried in a
Python loop, so the loop runs ``T / BLOCK`` times instead of ``T``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

BLOCK = 32   # samples per block: fewer Python steps vs more flops per sample (bench in docs)


def butter_lowpass(order: int, wn: float) -> tuple[np.ndarray, np.ndarray]:
    """Digital Butterworth low-pass ``(b (order+1,), a (order+1,))``, as ``scipy.signal.butter``.

    ``wn``: the cutoff as a fraction of the Nyquist frequency, ``0 < wn < 1`` (gain
    ``1/sqrt(2)`` there). Analogue prototype poles, prewarped cutoff, bilinear transform.
    """
    order = int(order)
    if order < 1:
        raise ValueError(f"Butterworth order must be >= 1, got {order}")
    wn = float(wn)
    if not 0.0 < wn < 1.0:
        raise ValueError(f"Butterworth cutoff must be between 0 and 1 (Nyquist), got {wn}")
    m = np.arange(-order + 1, order, 2, dtype=np.float64)
    p = -np.exp(1j * np.pi * m / (2 * order))          # analogue prototype, cutoff 1 rad/s
    fs2 = 4.0                                           # 2 * fs with fs = 2 (as scipy)
    warped = fs2 * np.tan(np.pi * wn / 2.0)
    p = warped * p
    k = warped ** order
    p_z = (fs2 + p) / (fs2 - p)                          # bilinear transform
    k_z = k * np.real(1.0 / np.prod(fs2 - p))
    b = k_z * np.poly(-np.ones(order))                   # all zeros at z = -1
    a = np.poly(p_z)
    return np.real(b).astype(np.float64), np.real(a).astype(np.float64)


def _normalized(b, a) -> tuple[np.ndarray, np.ndarray]:
    """``b, a`` as float64 of equal length with ``a[0] == 1``."""
    b = np.atleast_1d(np.asarray(b, dtype=np.float64))
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))
    a = np.trim_zeros(a, "f")
    if a.size == 0:
        raise ValueError("there must be at least one nonzero 'a' coefficient")
    if a[0] != 1.0:
        b, a = b / a[0], a / a[0]
    if a.size != b.size:
        n = max(a.size, b.size)
        b, a = (np.concatenate([v, np.zeros(n - v.size)]) for v in (b, a))
    return b, a


def _state_space(b, a):
    """DF-II transposed ``A (K,K), B (K,), D`` (``C`` picks the first state), K = order."""
    K = b.size - 1
    A = np.zeros((K, K))
    A[:, 0] = -a[1:]
    A[np.arange(K - 1), np.arange(1, K)] = 1.0
    return A, b[1:] - a[1:] * b[0], b[0]


def lfilter_zi(b, a) -> np.ndarray:
    """``(K,)`` steady state of the step response, as ``scipy.signal.lfilter_zi``."""
    b, a = _normalized(b, a)
    A, B, _ = _state_space(b, a)
    return np.linalg.solve(np.eye(b.size - 1) - A, B)


@lru_cache(maxsize=32)
def _block_operators(b: tuple, a: tuple, L: int):
    """The block form of the recursion for blocks of ``L`` samples:

    ``H (L, L)``: zero-state response (impulse response Toeplitz, lower triangular);
    ``O (L, K)``: output from the start state; ``G (K, L)``: end state from the inputs;
    ``AL (K, K)``: end state from the start state (``A**L``).
    """
    A, B, D = _state_space(np.array(b), np.array(a))
    K = A.shape[0]
    O = np.empty((L, K))
    row = np.zeros(K)
    row[0] = 1.0
    cols = np.empty((K, L))                 # A^j B, j = 0..L-1
    v = B.copy()
    for j in range(L):
        O[j] = row
        cols[:, j] = v
        row = row @ A
        v = A @ v
    h = np.concatenate([[D], cols[0, :L - 1]])      # h[0] = D, h[m] = C A^(m-1) B
    idx = np.arange(L)
    lag = idx[:, None] - idx[None, :]
    H = np.where(lag >= 0, h[np.clip(lag, 0, L - 1)], 0.0)
    G = cols[:, ::-1]                                # column k: A^(L-1-k) B
    AL = np.linalg.matrix_power(A, L)
    for m in (H, O, G, AL):
        m.flags.writeable = False     # (cached: shared by every call)
    return H, O, G, AL


def lfilter(b, a, x: np.ndarray, zi: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Filter ``x (T, C)`` along axis 0 from the initial state ``zi (K, C)``. -> ``(T, C)``
    (``out``, a C-contiguous ``(T, C)`` float64 array other than ``x``, when given).

    Same numbers as ``scipy.signal.lfilter(b, a, x, axis=0, zi=zi)[0]`` (to rounding).
    """
    b, a = _normalized(b, a)
    x = np.ascontiguousarray(x, dtype=np.float64)
    T, C = x.shape
    K = b.size - 1
    if K == 0 or T == 0:
        return b[0] * x
    L = min(BLOCK, T)
    nb, r = divmod(T, L)                               # whole blocks, rows left over
    H, O, G, AL = _block_operators(tuple(b), tuple(a), L)
    y = np.empty((T, C)) if out is None else out
    x3, y3 = x[:nb * L].reshape(nb, L, C), y[:nb * L].reshape(nb, L, C)   # views
    np.matmul(H, x3, out=y3)                           # zero-state output of every block
    gx = np.matmul(G, x3)                              # (nb, K, C): inputs -> end state
    s = np.array(zi, dtype=np.float64).reshape(K, -1) * np.ones((1, C))
    for k in range(nb):                                # carry the state across blocks
        y3[k] += O @ s
        s = AL @ s + gx[k]
    if r:
        y[nb * L:] = H[:r, :r] @ x[nb * L:] + O[:r] @ s
    return y


def _odd_ext(x: np.ndarray, n: int) -> np.ndarray:
    """``x (T, C)`` extended by ``n`` rows at both ends by odd reflection (scipy ``odd_ext``)."""
    if n < 1:
        return x
    head = 2 * x[:1] - x[n:0:-1]
    tail = 2 * x[-1:] - x[-2:-n - 2:-1]
    return np.concatenate([head, x, tail], axis=0)


def filtfilt(b, a, x: np.ndarray, axis: int = 0, padlen: int | None = None) -> np.ndarray:
    """Zero-phase filtering of ``x`` along ``axis``, as ``scipy.signal.filtfilt(b, a, x, axis,
    padtype="odd", padlen=padlen)``: odd extension by ``padlen`` samples (default
    ``3 * max(len(a), len(b))``), forward then backward pass, each started from
    ``lfilter_zi`` scaled by the first sample. -> same shape as ``x``, float64."""
    b, a = _normalized(b, a)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("x must be at least 1-D")
    edge = 3 * b.size if padlen is None else int(padlen)
    xt = np.moveaxis(x, axis, 0)
    T = xt.shape[0]
    if T <= edge:
        raise ValueError(f"the length of the input vector x must be greater than padlen, "
                         f"which is {edge}")
    flat = xt.reshape(T, -1)
    ext = _odd_ext(flat, edge) if edge > 0 else flat.copy()     # (reused below: a copy)
    zi = lfilter_zi(b, a)[:, None]
    y = lfilter(b, a, ext, zi * ext[:1])
    ext[:] = y[::-1]                                    # (buffers reused: large arrays are
    y = lfilter(b, a, ext, zi * ext[:1], out=y)[::-1]   # slow to allocate, page faults)
    if edge > 0:
        y = y[edge:-edge]
    return np.moveaxis(np.ascontiguousarray(y).reshape(xt.shape), 0, axis)
