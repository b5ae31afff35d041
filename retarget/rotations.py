# SPDX-License-Identifier: GPL-3.0-or-later
"""Vectorised rotation conversions (numpy only; Blender's Python has no scipy).

Conventions
-----------
* axis-angle ("rotation vector"): ``(..., 3)``, direction = axis, norm = angle in
  radians (what SMPL-X stores).
* quaternion: ``(..., 4)`` **scalar first** ``(w, x, y, z)``, Blender's order.
  (scipy's ``Rotation.as_quat()`` is scalar last; the tests check against it.)
* matrix: ``(..., 3, 3)``, acting on column vectors (``v' = R @ v``).

Every function takes any number of leading batch dimensions.
"""
from __future__ import annotations

import numpy as np

_SMALL = 1e-8


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula. ``(..., 3)`` -> ``(..., 3, 3)``.

    Same maths as ``smplx.lbs.batch_rodrigues`` without its ``+1e-8`` bias;
    exact (series-expanded) for tiny angles.
    """
    aa = np.asarray(axis_angle, dtype=np.float64)
    theta2 = np.einsum("...i,...i->...", aa, aa)
    theta = np.sqrt(theta2)
    small = theta < 1e-4
    safe = np.where(small, 1.0, theta)
    # sin(t)/t and (1-cos(t))/t^2 with their Taylor series near 0.
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    x, y, z = aa[..., 0], aa[..., 1], aa[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    # K @ K == aa aa^T - theta^2 I for the cross-product matrix K of aa.
    out = a[..., None, None] * k + b[..., None, None] * (aa[..., :, None] * aa[..., None, :])
    diag = 1.0 - b * theta2
    out[..., 0, 0] += diag
    out[..., 1, 1] += diag
    out[..., 2, 2] += diag
    return out


def axis_angle_to_quaternion(axis_angle: np.ndarray) -> np.ndarray:
    """``(..., 3)`` -> ``(..., 4)`` (w, x, y, z), with ``w >= 0`` for angles <= pi."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1)
    # sin(t/2)/t == 0.5 * sinc(t / (2 pi)) with numpy's normalised sinc; exact at 0.
    s = 0.5 * np.sinc(theta / (2.0 * np.pi))
    return np.concatenate([np.cos(0.5 * theta)[..., None], aa * s[..., None]], axis=-1)


def quaternion_to_axis_angle(quaternion: np.ndarray) -> np.ndarray:
    """``(..., 4)`` (w, x, y, z), any norm > 0 -> ``(..., 3)`` with angle in [0, pi]."""
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., :1] < 0.0, -q, q)  # same rotation, angle <= pi
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1)
    theta = 2.0 * np.arctan2(s, q[..., 0])
    small = s < _SMALL
    # theta / s -> 2 / w as s -> 0.
    scale = np.where(small, 2.0 / np.where(small, q[..., 0], 1.0), theta / np.where(small, 1.0, s))
    return v * scale[..., None]


def quaternion_to_matrix(quaternion: np.ndarray) -> np.ndarray:
    """``(..., 4)`` (w, x, y, z), normalised first -> ``(..., 3, 3)``."""
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation -> ``(..., 4)`` (w, x, y, z) with ``w >= 0``.

    Shepperd's method: per matrix, the largest of the four ``4 q_i^2``
    candidates is used, so it is accurate for every angle up to pi.
    """
    m = np.asarray(matrix, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                     1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=-1)
    pick = np.argmax(cand, axis=-1)
    r = np.sqrt(np.maximum(np.take_along_axis(cand, pick[..., None], -1)[..., 0], 1e-300))
    d21, s21 = m[..., 2, 1] - m[..., 1, 2], m[..., 2, 1] + m[..., 1, 2]
    d02, s02 = m[..., 0, 2] - m[..., 2, 0], m[..., 0, 2] + m[..., 2, 0]
    d10, s10 = m[..., 1, 0] - m[..., 0, 1], m[..., 1, 0] + m[..., 0, 1]
    # Row k: the quaternion computed from candidate k (times 2r).
    rows = np.stack([
        np.stack([r * r, d21, d02, d10], -1),
        np.stack([d21, r * r, s10, s02], -1),
        np.stack([d02, s10, r * r, s21], -1),
        np.stack([d10, s02, s21, r * r], -1),
    ], axis=-2)
    q = np.take_along_axis(rows, pick[..., None, None], -2)[..., 0, :] / (2.0 * r[..., None])
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0.0, -q, q)


def matrix_to_axis_angle(matrix: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` -> ``(..., 3)``."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (rotation b first, then a). ``(..., 4)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def quaternion_continuity(quaternion: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so neighbours have a non-negative dot product.

    ``q`` and ``-q`` are the same rotation, but F-curves interpolate and
    filters average components: a sign flip between two frames would make the
    bone spin the long way round. ``(..., T, ..., 4)`` -> same shape.
    """
    q = np.moveaxis(np.asarray(quaternion, dtype=np.float64), axis, 0)
    if q.shape[0] < 2:
        return np.moveaxis(q.copy(), 0, axis)
    dots = np.einsum("t...i,t...i->t...", q[1:], q[:-1])
    flips = np.where(dots < 0.0, -1.0, 1.0)
    signs = np.concatenate([np.ones_like(flips[:1]), np.cumprod(flips, axis=0)], axis=0)
    return np.moveaxis(q * signs[..., None], 0, axis)


def quaternion_normalize(quaternion: np.ndarray) -> np.ndarray:
    q = np.asarray(quaternion, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / np.where(n > 0.0, n, 1.0)


def rotation_x(angle: float) -> np.ndarray:
    """``(3, 3)`` right-handed rotation about +X by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
