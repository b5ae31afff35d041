"""The numpy SMPL-X port against the smplx package, on the stand-in model."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget import smplx_model as sm
from pose2pose_mocap.retarget.errors import ModelFileError

from .synthetic import random_params, smplx_reference, standin_smplx_path, standin_smplx_root


@pytest.fixture(scope="module")
def model():
    return sm.load_smplx_model(standin_smplx_path())


def test_model_arrays(model):
    assert model.standin and model.gender == "neutral"
    assert model.v_template.shape == (10475, 3) and model.faces.shape == (20908, 3)
    assert model.shapedirs.shape == (10475, 3, 10) and model.exprdirs.shape == (10475, 3, 10)
    assert model.posedirs.shape == (10475, 3, 486)
    assert model.J_regressor.shape == (55, 10475) and model.lbs_weights.shape == (10475, 55)
    np.testing.assert_array_equal(model.parents, sm.PARENTS)


def test_joint_names_are_smplx_names():
    joint_names = pytest.importorskip("smplx.joint_names")
    assert sm.JOINT_NAMES == tuple(joint_names.JOINT_NAMES[:55])


@pytest.mark.torch
@pytest.mark.parametrize("pose_correctives", [True, False])
def test_forward_matches_smplx_package(model, pose_correctives):
    pytest.importorskip("torch")
    p = random_params(6, seed=3)
    p["betas"] = np.random.default_rng(4).normal(size=(6, 10))  # per-frame betas are fine here
    verts, joints = smplx_reference(standin_smplx_root(), p, pose_correctives)
    out = sm.forward(model, p, pose_correctives=pose_correctives)
    # smplx's Rodrigues adds 1e-8 to the axis-angle: differences are ~1e-7 m.
    assert np.abs(out.vertices - verts).max() < 1e-6
    assert np.abs(out.joints - joints).max() < 1e-6


def test_rest_joints_follow_expression(model):
    betas = np.zeros(10)
    e = np.zeros(10)
    e[:] = 3.0
    moved = np.abs(sm.rest_joints(model, betas, e) - sm.rest_joints(model, betas)).max(axis=1)
    assert moved[:15].max() < 1e-12  # the body does not move with the face
    # smplx regresses joints from the expression-shaped mesh: in the stand-in the
    # jaw joint moves (that is why the rig keys the jaw bone's location).
    assert moved[sm.JOINT_NAMES.index("jaw")] > 1e-5


def test_pose_features_layout():
    R = np.tile(np.eye(3), (2, 55, 1, 1))
    R[1, 7, 0, 2] = 5.0  # joint 7, entry (0, 2)
    f = sm.pose_features(R)
    assert f.shape == (2, 486)
    assert np.flatnonzero(f[1]).tolist() == [(7 - 1) * 9 + 0 * 3 + 2]


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        sm.load_smplx_model(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable"):
        sm.load_smplx_model(bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, v_template=np.zeros((3, 3)))
    with pytest.raises(ModelFileError, match="missing arrays"):
        sm.load_smplx_model(partial)
