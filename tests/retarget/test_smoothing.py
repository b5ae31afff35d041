"""Smoothing: jitter goes down, steps stay sharp, gaps and rotations are handled."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget.errors import RetargetError
from pose2pose_mocap.retarget.rotations import axis_angle_to_quaternion
from pose2pose_mocap.retarget.smoothing import (NO_SMOOTHING, Smoothing, filter_rotations,
                                                filter_series, smooth_take, valid_runs)

from . import smoothing_study as study
from .synthetic import make_take, random_params

pytest.importorskip("scipy")
METHODS = ("butterworth", "savgol", "gaussian")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("region", ["root", "body", "hands", "face"])
def test_jitter_is_reduced(method, region):
    raw = study.region_error(region, "none", None, seconds=20)
    cutoff = getattr(Smoothing(method=method), f"{region}_hz")   # the method's default
    smoothed = study.region_error(region, method, cutoff, seconds=20)
    assert smoothed < (0.75 if method == "butterworth" else 0.9) * raw, (raw, smoothed)


def test_defaults_are_near_the_best_cutoff():
    # The defaults were chosen from smoothing_study at 30 fps: each is within 10 % of
    # the best cutoff's error for its region (Butterworth).
    d = Smoothing(method="butterworth")
    for region in ("root", "body", "hands", "face"):
        errors = {c: study.region_error(region, "butterworth", c, seconds=20)
                  for c in (2.0, 3.0, 4.0, 5.0, 6.0, 8.0)}
        assert errors[getattr(d, f"{region}_hz")] <= 1.1 * min(errors.values()), (region, errors)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cutoff", [2.0, 4.0, 6.0])
def test_step_is_not_smeared_beyond_the_time_constant(method, cutoff):
    fs = 120.0
    T = int(3 * fs)
    x = (np.arange(T) >= T // 2).astype(float)
    y = filter_series(x[:, None], fs, method, cutoff)[:, 0]
    assert study.rise_time(method, cutoff, fs) <= 0.55 / cutoff
    t = (np.arange(T) - (T // 2 - 0.5)) / fs
    far = np.abs(t) > 1.0 / cutoff
    assert np.abs(y - x)[far].max() < 0.01
    assert y.max() < 1.1 and y.min() > -0.1


def test_runs_are_filtered_separately_and_invalid_rows_untouched():
    rng = np.random.default_rng(0)
    T = 60
    x = np.where(np.arange(T) < 30, 0.0, 10.0)[:, None] + rng.normal(scale=0.1, size=(T, 1))
    valid = np.ones(T, bool)
    valid[28:32] = False   # gap between two levels
    valid[50] = False      # a run of 3 rows (47..49 are fine; 51..59 fine)
    valid[44] = False      # 45..49 is a 5-row run
    x[~valid] = 1e6        # junk where nobody was found
    y = filter_series(x, 30.0, "butterworth", 4.0, valid)
    assert valid_runs(valid) == [(0, 28), (32, 44), (45, 50), (51, 60)]
    np.testing.assert_array_equal(y[~valid], x[~valid])
    assert np.abs(y[:28] - 0.0).max() < 0.3 and np.abs(y[32:44] - 10.0).max() < 0.3
    short = np.ones(T, bool)
    short[3:] = False
    np.testing.assert_array_equal(filter_series(x, 30.0, "butterworth", 4.0, short), x)


def test_rotations_filtered_through_pi_without_flips():
    fs = 30.0
    t = np.arange(90) / fs
    angle = np.pi - 0.3 + 0.6 * t / t[-1]            # sweeps through pi: axis-angle flips
    axis = np.array([0.0, 0.0, 1.0])
    aa = np.where((angle <= np.pi)[:, None], angle[:, None] * axis,
                  (angle - 2 * np.pi)[:, None] * axis)[:, None]
    noisy = aa + np.random.default_rng(1).normal(scale=0.01, size=aa.shape)
    out = filter_rotations(noisy, fs, "butterworth", 4.0)
    err = study.angle_error(out, aa)
    assert err.max() < 0.02  # a flip would give errors near 2 pi
    q = axis_angle_to_quaternion(out[:, 0])
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0)


def test_smooth_take_per_region():
    T = 40
    p = random_params(T, seed=0, max_angle=0.5)
    take = make_take(p)
    only_hands = Smoothing(root_hz=None, body_hz=None, hands_hz=3.0, face_hz=0)
    s = smooth_take(take, only_hands)
    for k in ("transl", "global_orient", "body_pose", "jaw_pose", "expression", "betas"):
        np.testing.assert_array_equal(s.params[k], take.params[k])
    assert not np.allclose(s.params["left_hand_pose"], take.params["left_hand_pose"])
    assert take.params is not s.params
    np.testing.assert_array_equal(smooth_take(take, NO_SMOOTHING).params["body_pose"],
                                  take.params["body_pose"])


def test_settings_round_trip_and_checks():
    s = Smoothing(method="gaussian", root_hz=2.5, face_hz=None)
    assert Smoothing.from_dict(s.to_dict()) == s
    with pytest.raises(RetargetError, match="unknown smoothing method"):
        Smoothing(method="kalman")
    with pytest.raises(RetargetError, match=">= 0 Hz"):
        Smoothing(body_hz=-1.0)
