# SPDX-License-Identifier: GPL-3.0-or-later
"""retarget.iir: numpy-only Butterworth + filtfilt, the numbers of scipy.signal's."""
import sys

import numpy as np
import pytest

from pose2pose_mocap.retarget import iir
from pose2pose_mocap.retarget.smoothing import filter_series

# scipy 1.17.1: signal.butter(2, 0.27), signal.butter(4, 0.1) and
# signal.filtfilt(b, a, X, axis=0, padlen=9) of X below (checked in Blender's Python too,
# which has no scipy).
B2 = [0.11065284440041209, 0.22130568880082419, 0.11065284440041209]
A2 = [1.0, -0.8642291411091995, 0.3068405187108478]
B4 = [0.00041659920440659937, 0.0016663968176263975, 0.002499595226439596,
      0.0016663968176263975, 0.00041659920440659937]
A4 = [1.0, -3.180638548874719, 3.8611943489942133, -2.112155355110969, 0.43826514226197977]
_X = np.array([0.0, 1.0, 0.5, -0.25, 2.0, 1.5, 1.25, -1.0, 0.0, 0.75, 3.0, 2.5])
X = np.stack([_X, _X[::-1] * 2 - 1], 1)
Y = [[0.003176906632737536, 4.0001174300484985], [0.3437204549930607, 2.477662029793339],
     [0.6334689183039619, 0.9604840379801367], [0.8880218887781961, -0.13297452438438057],
     [1.049000063960752, -0.33469137188880715], [0.9598711017647304, 0.2445000354689835],
     [0.6223946359067862, 0.9194649830161389], [0.3327729318830619, 1.0977174585258742],
     [0.4334504917286783, 0.7758392822723663], [0.9796948945739375, 0.26715000382660453],
     [1.737482638607593, -0.31131440015927386], [2.4980306658983333, -0.9908078027220665]]


def _close(got, want, rel=1e-12):
    """Equal within ``rel`` of the largest reference value (max norm)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    scale = max(np.abs(want).max(), 1e-300)
    assert np.abs(got - want).max() <= rel * scale, np.abs(got - want).max() / scale


def test_against_values_from_scipy():
    _close(iir.butter_lowpass(2, 0.27)[0], B2)
    _close(iir.butter_lowpass(2, 0.27)[1], A2)
    _close(iir.butter_lowpass(4, 0.1)[0], B4)
    _close(iir.butter_lowpass(4, 0.1)[1], A4)
    _close(iir.filtfilt(B2, A2, X, axis=0, padlen=9), Y)
    _close(iir.filtfilt(B2, A2, X.T, axis=1, padlen=9), np.asarray(Y).T)


def test_filtfilt_keeps_a_constant_and_a_line_and_is_zero_phase():
    b, a = iir.butter_lowpass(2, 0.2)
    t = np.arange(200.0)
    line = np.stack([np.full_like(t, 3.5), 0.25 * t - 7], 1)
    out = iir.filtfilt(b, a, line)
    np.testing.assert_allclose(out[:, 0], 3.5, atol=1e-12)
    # (the start state is the step's steady state, not a ramp's: the line is kept inside)
    np.testing.assert_allclose(out[30:-30, 1], line[30:-30, 1], atol=1e-9)
    sine = np.sin(2 * np.pi * 0.01 * t)        # far below the cutoff: no shift in time
    out = iir.filtfilt(b, a, sine)
    assert np.abs(out - sine)[20:-20].max() < 1e-3
    noise = np.random.default_rng(0).normal(size=200)
    assert iir.filtfilt(b, a, noise).std() < 0.5 * noise.std()


def _df2t(b, a, x, z):
    """The direct-form II transposed recursion, one sample at a time (``a[0] == 1``)."""
    y = np.empty_like(x)
    z = np.array(z, float)
    K = len(a) - 1
    for n in range(len(x)):
        y[n] = b[0] * x[n] + z[0]
        for i in range(K - 1):
            z[i] = b[i + 1] * x[n] + z[i + 1] - a[i + 1] * y[n]
        z[K - 1] = b[K] * x[n] - a[K] * y[n]
    return y


@pytest.mark.parametrize("block", [1, 3, 32, 1000])
def test_lfilter_blocks_equal_the_plain_recursion(monkeypatch, block):
    """Runs longer than a block: the state carried across blocks (no scipy needed)."""
    monkeypatch.setattr(iir, "BLOCK", block)
    rng = np.random.default_rng(block)
    x = np.cumsum(rng.normal(size=(203, 2)), 0)
    for b, a in ((B2, A2), (B4, A4)):
        z0 = rng.normal(size=(len(a) - 1, 2))
        want = np.stack([_df2t(b, a, x[:, c], z0[:, c]) for c in range(2)], 1)
        _close(iir.lfilter(b, a, x, z0), want)
    _close(iir.filtfilt(B2, A2, X, axis=0, padlen=9), Y)


@pytest.mark.parametrize("padlen", [0, 5, None])
def test_filtfilt_leaves_its_input_alone(padlen):
    x = np.cumsum(np.random.default_rng(3).normal(size=(60, 3)), 0)
    before = x.copy()
    out = iir.filtfilt(B2, A2, x, padlen=padlen)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(out, x) and np.abs(out - x).max() > 1e-3


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        iir.butter_lowpass(2, 1.0)
    with pytest.raises(ValueError):
        iir.butter_lowpass(0, 0.3)
    with pytest.raises(ValueError, match="padlen"):
        iir.filtfilt(B2, A2, np.zeros(9))       # default padlen 9 needs > 9 samples


def test_filter_series_butterworth_needs_no_scipy(monkeypatch):
    """Blender's own Python has no scipy: the Butterworth branch runs on numpy alone."""
    x = np.cumsum(np.random.default_rng(1).normal(size=(40, 3)), 0)
    with_scipy = filter_series(x, 30.0, "butterworth", 4.0)
    for name in [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "scipy", None)     # import scipy fails from here on
    without = filter_series(x, 30.0, "butterworth", 4.0)
    np.testing.assert_array_equal(without, with_scipy)
    assert np.abs(without - x).max() > 1e-3


# ------------------------------------------------------------- against scipy itself

@pytest.mark.parametrize("order", [1, 2, 3, 4, 6, 8])
def test_butter_equals_scipy(order):
    signal = pytest.importorskip("scipy.signal")
    for wn in (0.01, 0.05, 0.1, 0.27, 0.5, 0.8, 0.99):
        b, a = iir.butter_lowpass(order, wn)
        sb, sa = signal.butter(order, wn)
        _close(b, sb)
        _close(a, sa)


@pytest.mark.parametrize("shape,axis", [((5,), 0), ((7, 1), 0), ((31, 3), 0), ((32, 4), 0),
                                        ((33, 2, 3), 0), ((100, 5), 0), ((3, 250), 1),
                                        ((2, 1000, 3), 1), ((4, 2, 77), -1)])
def test_filtfilt_equals_scipy(shape, axis):
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(sum(shape))
    T = shape[axis]
    for order, wn in ((2, 0.03), (2, 0.27), (2, 0.6), (1, 0.2), (4, 0.15)):
        b, a = signal.butter(order, wn)
        x = np.cumsum(rng.normal(size=shape), axis=axis) + rng.normal(size=shape)
        for padlen in sorted({None, 0, min(9, T - 1), T - 1}, key=str):
            if padlen is None and T <= 3 * len(a):
                continue
            want = signal.filtfilt(b, a, x, axis=axis, padlen=padlen)
            _close(iir.filtfilt(b, a, x, axis=axis, padlen=padlen), want)


def test_filter_series_equals_scipy_filtfilt_per_valid_run():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.normal(size=(300, 4, 4)), 0)
    valid = np.ones(300, bool)
    valid[[50, 51, 120, 297]] = False
    got = filter_series(x, 30.0, "butterworth", 6.0, valid)
    b, a = signal.butter(2, 6.0 / 15.0)
    for s, e in ((0, 50), (52, 120), (121, 297)):
        _close(got[s:e], signal.filtfilt(b, a, x[s:e], axis=0, padlen=min(9, e - s - 1)))
    np.testing.assert_array_equal(got[~valid], x[~valid])
