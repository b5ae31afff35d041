"""Known-answer vectors of the fact sheet (section 4.2) and the geometric helpers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pose2pose_mocap.estimator.pose2pose import constants as C
from pose2pose_mocap.estimator.pose2pose import geometry as G

pytestmark = pytest.mark.torch


@pytest.mark.parametrize("sixd, want", [
    ([1, 0, 0, 1, 0, 0], [0, 0, 0]),
    ([0.3, -0.2, 0.5, 0.9, -0.7, 0.1], [0.191374, 1.079889, 0.604296]),
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [-1.373906, -1.482578, -0.461301]),
    ([-1, 0, 0, 1, 0, 0], [0, 3.141593, 0]),
])
def test_rot6d_to_axis_angle_known_answers(sixd, want):
    got = G.rot6d_to_axis_angle(torch.tensor([sixd], dtype=torch.float32))
    np.testing.assert_allclose(got[0].numpy(), want, atol=2e-6)


def test_rot6d_columns_are_interleaved():
    """Columns are (v0, v2, v4) and (v1, v3, v5), not the two halves."""
    r = G.rot6d_to_rotmat(torch.tensor([[0.0, 1, 1, 0, 0, 0]]))[0]
    np.testing.assert_allclose(r.numpy(), [[0, 1, 0], [1, 0, 0], [0, 0, -1]], atol=1e-7)


def test_axis_angle_conversion_agrees_with_scipy_near_pi_too():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    rv = Rotation.random(2000, random_state=1).as_rotvec()
    # Add angles within 1e-5 of pi, where the quaternion branches switch.
    axes = rng.standard_normal((200, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    rv = np.concatenate([rv, axes * (np.pi - rng.uniform(0, 1e-5, (200, 1)))])
    mats = torch.from_numpy(Rotation.from_rotvec(rv).as_matrix()).float()
    got = G.rotmat_to_axis_angle(mats).double().numpy()
    back = Rotation.from_rotvec(got).as_matrix()
    # Compare rotations (axis-angle is ambiguous at exactly pi).
    assert np.abs(back - mats.double().numpy()).max() < 5e-6
    assert np.linalg.norm(got, axis=1).max() <= np.pi + 1e-5


def test_batch_of_three_is_per_item():
    """The reference's torch.cross without dim mixes items at N=3; we do not."""
    x = torch.tensor([[0.3, -0.2, 0.5, 0.9, -0.7, 0.1],
                      [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                      [1.0, 0.1, -0.2, 1.0, 0.3, 0.2]])
    together = G.rot6d_to_axis_angle(x)
    alone = torch.cat([G.rot6d_to_axis_angle(x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(together.numpy(), alone.numpy(), atol=1e-7)


@pytest.mark.parametrize("extension, want", [
    (C.HAND_BOX_EXTENSION, [64, 96, 128, 160]),
    (C.FACE_BOX_EXTENSION, [72, 104, 120, 152]),
])
def test_restore_bbox_known_answers(extension, want):
    box = G.restore_bbox(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.5]]), 1.0, extension)
    np.testing.assert_allclose(box[0].numpy(), want, atol=1e-5)


def test_restore_bbox_keeps_signed_sizes():
    """A negative size is not clamped: the box comes out inverted, as in the reference."""
    box = G.restore_bbox(torch.tensor([[3.0, 4.0]]), torch.tensor([[-1.0, -0.5]]), 1.0, 2.0)[0]
    assert box[2] < box[0] and box[3] < box[1]


def test_soft_argmax_3d_sharp_peak():
    hm = torch.full((1, 1, 8, 8, 6), -1e4)
    hm[0, 0, 5, 2, 4] = 1e4  # (d, y, x)
    np.testing.assert_allclose(G.soft_argmax_3d(hm)[0, 0].numpy(), [4, 2, 5], atol=1e-6)


def test_soft_argmax_3d_flat():
    np.testing.assert_allclose(G.soft_argmax_3d(torch.zeros(1, 1, 8, 8, 6))[0, 0].numpy(),
                               [2.5, 3.5, 3.5], atol=1e-6)


def test_soft_argmax_2d():
    hm = torch.full((1, 1, 64, 48), -1e4)
    hm[0, 0, 10, 30] = 1e4
    np.testing.assert_allclose(G.soft_argmax_2d(hm)[0, 0].numpy(), [30, 10], atol=1e-5)
    np.testing.assert_allclose(G.soft_argmax_2d(torch.zeros(1, 1, 64, 48))[0, 0].numpy(),
                               [23.5, 31.5], atol=1e-5)


def test_sampling_at_an_integer_point_is_exact():
    feat = torch.randn(1, 4, 8, 6)
    got = G.sample_joint_features(feat, torch.tensor([[[5.0, 7.0]]]))
    torch.testing.assert_close(got[0, 0], feat[0, :, 7, 5], rtol=0, atol=0)


def test_camera_translation_depth_range():
    t = G.camera_translation(torch.tensor([[0.1, -0.2, 0.0]]))
    np.testing.assert_allclose(t[0].numpy(), [0.1, -0.2, 56.38186222554939 / 2], rtol=1e-6)


def test_projection_of_the_optical_axis_hits_the_principal_point():
    p = G.project_to_body_hm(torch.zeros(1, 1, 3), torch.tensor([[0.0, 0.0, 10.0]]))
    np.testing.assert_allclose(p[0, 0].numpy(), [96 / 192 * 6, 128 / 256 * 8], atol=1e-6)


def test_left_hand_unmirroring():
    j = torch.tensor([[[1.0, 2.0, 3.0]]])
    np.testing.assert_allclose(G.unmirror_hand_joints(j)[0, 0].numpy(), [6.0, 2.0, 3.0])
    aa = torch.tensor([[0.1, 0.2, 0.3, -0.4, 0.5, -0.6]])
    np.testing.assert_allclose(G.unmirror_axis_angle(aa)[0].numpy(),
                               [0.1, -0.2, -0.3, -0.4, -0.5, 0.6])


def test_hand_joints_map_through_their_box():
    box = torch.tensor([[32.0, 64.0, 96.0, 128.0]])  # 64x64 body-input px at (32, 64)
    j = torch.tensor([[[0.0, 0.0, 1.5], [8.0, 8.0, 2.0]]])
    got = G.hand_joints_to_body_hm(j, box)[0].numpy()
    np.testing.assert_allclose(got, [[1.0, 2.0, 1.5], [3.0, 4.0, 2.0]], atol=1e-6)
