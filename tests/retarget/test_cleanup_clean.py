"""clean_take and its settings: order, raw source kept, re-cleaning, bad input (issue 14)."""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest

from bench.motion_truth import add_noise, make_truth
from pose2pose_mocap.retarget.cleanup.clean import (SOURCE_PREFIX, CleanOptions, clean_take,
                                                    feet_visible, settings_of, source_take)
from pose2pose_mocap.retarget.cleanup.kinematics import take_motion
from pose2pose_mocap.retarget.errors import RetargetError
from pose2pose_mocap.retarget.options import ConvertOptions
from pose2pose_mocap.retarget.smoothing import Smoothing, smooth_take
from pose2pose_mocap.retarget.smplx_model import load_smplx_model
from pose2pose_mocap.retarget.take import read_take, write_take

from .synthetic import standin_smplx_path


@pytest.fixture(scope="module")
def model():
    return load_smplx_model(standin_smplx_path())


@pytest.fixture(scope="module")
def walk(model):
    truth = make_truth("walk", model, seconds=4.0)
    return truth, add_noise(truth, seed=3)


def _skate(truth, motion, rows):
    out = []
    for s, side in enumerate(("left", "right")):
        both = truth.contact[1:, s] & truth.contact[:-1, s] & rows[1:] & rows[:-1]
        for part in ("heel", "toes"):
            d = np.linalg.norm(np.diff(motion.foot_points[f"{side}_{part}"], axis=0), axis=1)
            out.append(d[both])
    return np.concatenate(out).mean()


def _copy(take):
    return {k: np.array(v, copy=True) for k, v in take.params.items()}, take.valid.copy()


def test_clean_take_plants_the_feet_and_keeps_its_source(model, walk):
    truth, noisy = walk
    take = noisy.take
    params0, valid0 = _copy(take)
    res = clean_take(take, model, Smoothing(), CleanOptions())
    rows = np.asarray(take.valid, bool)
    smoothed = take_motion(smooth_take(take, Smoothing()), model)
    cleaned = take_motion(res.take, model)
    assert _skate(truth, cleaned, rows) < 0.25 * _skate(truth, smoothed, rows)
    assert res.contacts is not None and res.contacts.contact.any()
    # the input is untouched, the source is kept as raw arrays
    for k, v in params0.items():
        np.testing.assert_array_equal(take.params[k], v)
        np.testing.assert_array_equal(res.take.raw[SOURCE_PREFIX + k], v)
    np.testing.assert_array_equal(take.valid, valid0)
    np.testing.assert_array_equal(res.take.raw[SOURCE_PREFIX + "valid"], valid0)
    assert not any(k.startswith(SOURCE_PREFIX) for k in take.raw)


def test_a_cleaned_take_is_re_cleaned_from_its_source(model, walk, tmp_path):
    _, noisy = walk
    first = clean_take(noisy.take, model, Smoothing(), CleanOptions()).take
    path = write_take(tmp_path / "walk.take.npz", first.to_arrays())
    back = read_take(path)
    src = source_take(back)
    for k, v in noisy.take.params.items():
        np.testing.assert_allclose(src.params[k], v, atol=1e-6)   # float32 on disk
    other = CleanOptions(foot_lock=False)
    again = clean_take(back, model, Smoothing(method="gaussian"), other).take
    direct = clean_take(src, model, Smoothing(method="gaussian"), other).take
    for k in noisy.take.params:
        np.testing.assert_allclose(again.params[k], direct.params[k], atol=1e-9)
    assert settings_of(back) == (Smoothing(), CleanOptions())
    assert settings_of(again) == (Smoothing(method="gaussian"), other)
    assert settings_of(noisy.take) is None and settings_of(src) is None
    # the re-cleaned take still points at the original source, not at the first clean-up
    np.testing.assert_allclose(again.raw[SOURCE_PREFIX + "transl"], noisy.take.params["transl"],
                               atol=1e-6)


def test_too_short_and_upper_body_takes_are_notes(model, walk):
    _, noisy = walk
    take = noisy.take
    short = replace(take, frame_index=take.frame_index[:6], valid=np.ones(6, bool),
                    params={k: v[:6] for k, v in take.params.items()}, raw={})
    res = clean_take(short, model, Smoothing(), CleanOptions())
    assert res.contacts is None and any("too few valid frames" in n for n in res.notes)
    # a camera that sees only the upper body: the feet project below the image
    upper = replace(take, princpt=np.array([take.princpt[0], take.princpt[1] - 700.0]))
    res = clean_take(upper, model, Smoothing(), CleanOptions())
    assert res.contacts is None and any("in view" in n for n in res.notes)


def test_unusable_takes_are_one_line_errors(model, walk):
    _, noisy = walk
    take = noisy.take
    dead = replace(take, valid=np.zeros(take.num_frames, bool))
    with pytest.raises(RetargetError, match="no valid frames"):
        clean_take(dead, model, Smoothing(), CleanOptions())
    with pytest.raises(RetargetError, match="SMPL-X"):
        clean_take(replace(take, body_model="smpl"), model, Smoothing(), CleanOptions())
    with pytest.raises(RetargetError, match="body model"):
        clean_take(take, None, Smoothing(), CleanOptions())


def test_junk_in_invalid_rows_stays_out(model, walk):
    _, noisy = walk
    take = noisy.take
    valid = take.valid.copy()
    valid[40:46] = False
    params = {k: np.array(v, copy=True) for k, v in take.params.items()}
    for v in params.values():
        v[40:46] = np.nan                      # junk rows may hold anything
    res = clean_take(replace(take, valid=valid, params=params), model, Smoothing(),
                     CleanOptions())
    assert res.contacts is not None
    for k, v in res.take.params.items():
        assert np.isfinite(v[valid]).all(), k


def test_clean_options_validate_and_round_trip():
    o = CleanOptions(contact_height=0.04, blend_frames=5)
    assert CleanOptions.from_dict(o.to_dict()) == o
    for bad in ({"contact_height": -1.0}, {"contact_speed": float("nan")},
                {"min_contact_frames": 0}, {"foot_lock": "yes"}, {"nonsense": 1},
                {"fix_flags": "flip"}, {"fix_flags": {"wrist_flip": "explode"}}):
        with pytest.raises(RetargetError) as e:
            CleanOptions.from_dict(bad)
        assert "\n" not in str(e.value)


def test_convert_options_carry_the_clean_up():
    # on by default (the bench's choice); off + Butterworth = the settings (and hash) of before
    assert ConvertOptions().clean == CleanOptions()
    old = ConvertOptions(clean=None, smoothing=Smoothing(method="butterworth"))
    assert "clean" not in old.to_dict() and ConvertOptions.from_dict(old.to_dict()) == old
    c = ConvertOptions(clean=CleanOptions(blend_frames=2),
                       smoothing=Smoothing(method="one_euro", one_euro_beta=0.5))
    assert ConvertOptions.from_dict(c.to_dict()) == c
    ap = ConvertOptions.add_arguments(argparse.ArgumentParser())
    assert ConvertOptions.from_args(ap.parse_args([])) == ConvertOptions()
    ns = ap.parse_args(["--foot-lock", "off", "--smooth", "butterworth"])
    assert ConvertOptions.from_args(ns) == old
    ns = ap.parse_args(["--lock-blend", "2"])
    assert ConvertOptions.from_args(ns).clean == CleanOptions(blend_frames=2)
    assert ConvertOptions.from_args(ap.parse_args([]), clean_default=False).clean is None
    with pytest.raises(SystemExit):
        ap.parse_args(["--contact-height", "-3"])


def test_feet_outside_the_image_are_never_locked(model, walk):
    _, noisy = walk
    take = noisy.take
    m = take_motion(take, model)
    u = take.focal[0] * m.foot_points["left_toes"][:, 0] / m.foot_points["left_toes"][:, 2]
    # move the image so the feet leave it for the last part of the walk
    cut = np.quantile(u, 0.7)
    shifted = replace(take, princpt=np.array([take.image_size[0] - 1 - cut,
                                              take.princpt[1]]))
    res = clean_take(shifted, model, Smoothing(), CleanOptions())
    vis = feet_visible(shifted, take_motion(smooth_take(shifted, Smoothing()), model))
    assert res.contacts is not None and (~vis).any() and vis.any()
    assert not (res.contacts.contact & ~vis).any()
