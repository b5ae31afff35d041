"""Rig maths without Blender: the bone channels reproduce SMPL-X through Blender's pose formula."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget import posing as P
from pose2pose_mocap.retarget import smplx_model as sm

from .synthetic import random_params, random_rotvecs, standin_smplx_path


@pytest.fixture(scope="module")
def model():
    return sm.load_smplx_model(standin_smplx_path())


def rule_bone_matrices(rest: P.RigRest) -> np.ndarray:
    """Bone rest orientations as Blender builds them from head, tail and align_roll."""
    y = rest.tails - rest.joints
    y /= np.linalg.norm(y, axis=-1, keepdims=True)
    z = rest.roll_z - np.einsum("ji,ji->j", rest.roll_z, y)[:, None] * y
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=-1)


def blender_vertices(model, rest, B, heads, params, pose_correctives=True):
    ch = P.pose_channels(params, rest, B, heads)
    D = P.evaluate_armature(B, heads, model.parents, ch.quaternions, ch.locations)
    disp = np.einsum("tk,vck->tvc", ch.expression, model.exprdirs)
    if pose_correctives:
        disp = disp + np.einsum("tk,vck->tvc", ch.pose_features, model.posedirs)
    u = rest.vertices + P.smplx_to_armature(disp)
    return sm.linear_blend_skinning(u, D, model.lbs_weights), D, ch


@pytest.mark.parametrize("bones", ["rule", "random"])
@pytest.mark.parametrize("pose_correctives", [True, False])
def test_pose_channels_reproduce_smplx(model, bones, pose_correctives):
    p = random_params(5, seed=11)
    rest = P.rig_rest(model, p["betas"][0])
    if bones == "rule":
        B = rule_bone_matrices(rest)
    else:
        B = sm.axis_angle_to_matrix(random_rotvecs(np.random.default_rng(5), (55,)))
    v, D, ch = blender_vertices(model, rest, B, rest.joints, p, pose_correctives)
    ref = sm.forward(model, p, pose_correctives=pose_correctives)
    assert np.abs(v - P.camera_to_blender(ref.vertices)).max() < 1e-9
    # Heads sit at the SMPL-X joints, except where the expression moved a joint.
    heads = D[..., :3, :3] @ rest.joints[..., None] + D[..., :3, 3:]
    off = np.linalg.norm(heads[..., 0] - P.camera_to_blender(ref.joints), axis=-1)
    assert off[:, ~ch.located].max() < 1e-9
    assert ch.located[0] and ch.located[sm.JOINT_NAMES.index("jaw")]


def test_quaternions_are_continuous_and_unit(model):
    p = random_params(40, seed=2)
    rest = P.rig_rest(model, p["betas"][0])
    ch = P.pose_channels(p, rest, rule_bone_matrices(rest))
    np.testing.assert_allclose(np.linalg.norm(ch.quaternions, axis=-1), 1.0, atol=1e-12)
    assert (np.einsum("tji,tji->tj", ch.quaternions[1:], ch.quaternions[:-1]) >= 0).all()


def test_upright_person_has_identity_root():
    # A person standing upright in front of the camera has global_orient = pi about x
    # (SMPL-X is Y-up, the camera is y-down): in Blender the root is not rotated.
    R = P.armature_rotations(np.array([[[np.pi, 0.0, 0.0]] + [[0.0, 0.0, 0.0]] * 54]))
    np.testing.assert_allclose(R[0, 0], np.eye(3), atol=1e-12)


def test_axes():
    np.testing.assert_allclose(P.camera_to_blender([1.0, 2.0, 3.0]), [1.0, 3.0, -2.0])
    np.testing.assert_allclose(P.CAMERA_TO_BLENDER @ [1.0, 2.0, 3.0], [1.0, 3.0, -2.0])
    np.testing.assert_allclose(P.smplx_to_armature([1.0, 2.0, 3.0]), [1.0, -3.0, 2.0])
    for M in (P.CAMERA_TO_BLENDER, P.SMPLX_TO_ARMATURE):
        np.testing.assert_allclose(M @ M.T, np.eye(3))
        assert np.isclose(np.linalg.det(M), 1.0)


def test_rest_bones(model):
    rest = P.rig_rest(model, np.zeros(10))
    lengths = np.linalg.norm(rest.tails - rest.joints, axis=-1)
    assert lengths.min() >= P.MIN_BONE_LENGTH - 1e-12
    names = sm.JOINT_NAMES
    i = names.index
    # Upright: head above pelvis, facing -Y: toes in front of (lower y than) the ankles.
    assert rest.joints[i("head"), 2] > rest.joints[i("pelvis"), 2] + 0.3
    assert rest.joints[i("left_foot"), 1] < rest.joints[i("left_ankle"), 1]
    # SMPL-X's left is +x.
    assert rest.joints[i("left_wrist"), 0] > 0.3
    np.testing.assert_allclose(rest.tails[i("pelvis")], rest.joints[i("spine1")])
    np.testing.assert_allclose(rest.tails[i("left_wrist")], rest.joints[i("left_middle1")])
    assert rest.tails[i("head"), 2] > rest.joints[i("head"), 2]
    assert rest.tails[i("left_eye_smplhf"), 1] < rest.joints[i("left_eye_smplhf"), 1]
    B = rule_bone_matrices(rest)
    np.testing.assert_allclose(B @ np.swapaxes(B, -1, -2), np.tile(np.eye(3), (55, 1, 1)),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(B), 1.0)
