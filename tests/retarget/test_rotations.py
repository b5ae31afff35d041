"""Rotation conversions against scipy.spatial.transform.Rotation."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget import rotations as r

from .synthetic import random_rotvecs

Rotation = pytest.importorskip("scipy.spatial.transform").Rotation


@pytest.fixture
def rotvecs():
    rng = np.random.default_rng(0)
    aa = random_rotvecs(rng, (500,))
    aa[:5] *= 1e-9       # tiny angles
    aa[5:10] *= 0.0      # identity
    return aa


def to_wxyz(q_xyzw):
    return q_xyzw[..., [3, 0, 1, 2]]


def test_axis_angle_to_matrix_matches_scipy(rotvecs):
    np.testing.assert_allclose(r.axis_angle_to_matrix(rotvecs),
                               Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-12)


def test_quaternion_conversions_match_scipy(rotvecs):
    q = r.axis_angle_to_quaternion(rotvecs)
    np.testing.assert_allclose(q, to_wxyz(Rotation.from_rotvec(rotvecs).as_quat(canonical=True)),
                               atol=1e-12)
    np.testing.assert_allclose(r.quaternion_to_matrix(q), r.axis_angle_to_matrix(rotvecs),
                               atol=1e-12)
    np.testing.assert_allclose(r.matrix_to_quaternion(r.axis_angle_to_matrix(rotvecs)), q,
                               atol=1e-12)
    np.testing.assert_allclose(r.quaternion_to_axis_angle(q), rotvecs, atol=1e-12)
    np.testing.assert_allclose(r.quaternion_to_axis_angle(-q), rotvecs, atol=1e-12)


def test_matrix_to_quaternion_near_pi_is_accurate():
    rng = np.random.default_rng(1)
    aa = random_rotvecs(rng, (200,))
    aa *= (np.pi - 1e-7) / np.linalg.norm(aa, axis=-1, keepdims=True)
    m = r.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(r.quaternion_to_matrix(r.matrix_to_quaternion(m)), m, atol=1e-12)


def test_multiply_matches_matrix_product():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 50, 4))
    a /= np.linalg.norm(a, axis=-1, keepdims=True)
    b /= np.linalg.norm(b, axis=-1, keepdims=True)
    np.testing.assert_allclose(r.quaternion_to_matrix(r.quaternion_multiply(a, b)),
                               r.quaternion_to_matrix(a) @ r.quaternion_to_matrix(b), atol=1e-12)
    sa = Rotation.from_quat(a[:, [1, 2, 3, 0]]) * Rotation.from_quat(b[:, [1, 2, 3, 0]])
    np.testing.assert_allclose(r.quaternion_to_matrix(r.quaternion_multiply(a, b)),
                               sa.as_matrix(), atol=1e-12)


def test_quaternion_continuity_removes_sign_flips():
    # A rotation about z sweeping through +-pi: canonical quaternions flip sign there.
    angles = np.linspace(0.0, 4 * np.pi, 200)
    q = r.axis_angle_to_quaternion(np.column_stack([0 * angles, 0 * angles,
                                                    np.mod(angles + np.pi, 2 * np.pi) - np.pi]))
    assert (np.einsum("ti,ti->t", q[1:], q[:-1]) < 0).any()
    c = r.quaternion_continuity(q, axis=0)
    assert (np.einsum("ti,ti->t", c[1:], c[:-1]) > 0).all()
    np.testing.assert_allclose(np.abs(c), np.abs(q))
    # Batched over joints on another axis.
    qq = np.stack([q, -q], axis=1)
    cc = r.quaternion_continuity(qq, axis=0)
    assert (np.einsum("tji,tji->tj", cc[1:], cc[:-1]) > 0).all()
