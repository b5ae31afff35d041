# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure tensor functions of the Pose2Pose test-mode forward pass.

Each function mirrors one step of the reference (fact sheet section 4) and
is written so that a batch gives, per item, what a batch of one gives.
Shapes use B for the batch, J for joints, C for channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import constants as C


def soft_argmax_3d(heatmap: torch.Tensor) -> torch.Tensor:
    """Expected (x, y, z) cell index of each joint's 3D heatmap.

    heatmap: (B, J, D, H, W) logits. The softmax runs jointly over all D*H*W
    cells; coordinates are plain cell indices 0..W-1, 0..H-1, 0..D-1.
    Returns (B, J, 3) as (x, y, z) in heatmap units.
    """
    b, j, d, h, w = heatmap.shape
    prob = F.softmax(heatmap.reshape(b, j, d * h * w), dim=2).reshape(b, j, d, h, w)
    return expectation_3d(prob)


def expectation_3d(prob: torch.Tensor) -> torch.Tensor:
    """(x, y, z) expectation of probabilities (B, J, D, H, W) -> (B, J, 3)."""
    d, h, w = prob.shape[2:]
    x = (prob.sum(dim=(2, 3)) * torch.arange(w, dtype=prob.dtype, device=prob.device)).sum(2)
    y = (prob.sum(dim=(2, 4)) * torch.arange(h, dtype=prob.dtype, device=prob.device)).sum(2)
    z = (prob.sum(dim=(3, 4)) * torch.arange(d, dtype=prob.dtype, device=prob.device)).sum(2)
    return torch.stack((x, y, z), dim=2)


def soft_argmax_2d(heatmap: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) pixel of each channel of heatmap (B, J, H, W) -> (B, J, 2)."""
    b, j, h, w = heatmap.shape
    prob = F.softmax(heatmap.reshape(b, j, h * w), dim=2).reshape(b, j, h, w)
    x = (prob.sum(dim=2) * torch.arange(w, dtype=prob.dtype, device=prob.device)).sum(2)
    y = (prob.sum(dim=3) * torch.arange(h, dtype=prob.dtype, device=prob.device)).sum(2)
    return torch.stack((x, y), dim=2)


def sample_joint_features(feat: torch.Tensor, joint_xy: torch.Tensor) -> torch.Tensor:
    """Bilinear features of feat (B, C, H, W) at joint_xy (B, J, 2) -> (B, J, C).

    joint_xy is in cells of feat (x = column, y = row). The reference uses
    ``grid_sample(align_corners=True)`` with zero padding, so an integer
    (x, y) returns exactly feat[:, :, y, x].
    """
    h, w = feat.shape[2:]
    gx = joint_xy[..., 0] / (w - 1) * 2 - 1
    gy = joint_xy[..., 1] / (h - 1) * 2 - 1
    grid = torch.stack((gx, gy), dim=2)[:, :, None, :]  # (B, J, 1, 2)
    out = F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[:, :, :, 0].permute(0, 2, 1).contiguous()


def restore_bbox(center: torch.Tensor, size: torch.Tensor, aspect_ratio: float,
                 extension: float) -> torch.Tensor:
    """Part box from BoxNet's center and size, both (B, 2) in body-heatmap units.

    Returns (B, 4) xyxy in 192x256 body-input pixels. The size is used signed
    and unclamped, as in the reference (a negative size gives an inverted box).
    The box is made ``aspect_ratio`` (W/H) by growing one side, then both
    sides are multiplied by ``extension``.
    """
    hm_h, hm_w = C.OUTPUT_HM_SHAPE[1], C.OUTPUT_HM_SHAPE[2]
    body_h, body_w = C.INPUT_BODY_SHAPE
    x1 = (center[:, 0] - size[:, 0] / 2) / hm_w * body_w
    y1 = (center[:, 1] - size[:, 1] / 2) / hm_h * body_h
    x2 = (center[:, 0] + size[:, 0] / 2) / hm_w * body_w
    y2 = (center[:, 1] + size[:, 1] / 2) / hm_h * body_h
    w = x2 - x1
    h = y2 - y1
    cx = x1 + w / 2
    cy = y1 + h / 2
    wider = w > aspect_ratio * h
    taller = w < aspect_ratio * h
    w, h = (torch.where(taller, h * aspect_ratio, w),
            torch.where(wider, w / aspect_ratio, h))
    w = w * extension
    h = h * extension
    x1 = cx - w / 2
    y1 = cy - h / 2
    return torch.stack((x1, y1, x1 + w, y1 + h), dim=1)


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """6D rotation (..., 6) -> rotation matrix (..., 3, 3).

    The 6 values are read as a row-major 3x2 matrix, so the two columns are
    (v0, v2, v4) and (v1, v3, v5); Gram-Schmidt gives b1, b2 and b3 = b1 x b2,
    which become the *columns* of R.
    """
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_axis_angle(rotmat: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (..., 3, 3) -> axis-angle (..., 3), angle in [0, pi].

    Same algorithm as torchgeometry 0.1.2 ``rotation_matrix_to_angle_axis``
    (used by the reference): matrix -> quaternion with its four eps=1e-6
    branches, then quaternion -> axis-angle. NaNs become 0 as in the reference.
    """
    shape = rotmat.shape[:-2]
    r = rotmat.reshape(-1, 3, 3).transpose(1, 2)  # torchgeometry works on R^T
    r00, r01, r02 = r[:, 0, 0], r[:, 0, 1], r[:, 0, 2]
    r10, r11, r12 = r[:, 1, 0], r[:, 1, 1], r[:, 1, 2]
    r20, r21, r22 = r[:, 2, 0], r[:, 2, 1], r[:, 2, 2]
    t0 = 1 + r00 - r11 - r22
    t1 = 1 - r00 + r11 - r22
    t2 = 1 - r00 - r11 + r22
    t3 = 1 + r00 + r11 + r22
    q0 = torch.stack((r12 - r21, t0, r01 + r10, r20 + r02), -1)
    q1 = torch.stack((r20 - r02, r01 + r10, t1, r12 + r21), -1)
    q2 = torch.stack((r01 - r10, r20 + r02, r12 + r21, t2), -1)
    q3 = torch.stack((t3, r12 - r21, r20 - r02, r01 - r10), -1)
    d2 = r22 < 1e-6
    d0_d1 = r00 > r11
    d0_nd1 = r00 < -r11
    c0 = (d2 & d0_d1)[:, None]
    c1 = (d2 & ~d0_d1)[:, None]
    c2 = (~d2 & d0_nd1)[:, None]
    q = torch.where(c0, q0, torch.where(c1, q1, torch.where(c2, q2, q3)))
    t = torch.where(c0[:, 0], t0, torch.where(c1[:, 0], t1, torch.where(c2[:, 0], t2, t3)))
    q = q / torch.sqrt(t)[:, None] * 0.5
    # quaternion (w, x, y, z) -> axis-angle
    qv = q[:, 1:]
    sin_sq = (qv * qv).sum(-1)
    sin_t = torch.sqrt(sin_sq)
    cos_t = q[:, 0]
    two_theta = 2.0 * torch.where(cos_t < 0.0, torch.atan2(-sin_t, -cos_t),
                                  torch.atan2(sin_t, cos_t))
    k = torch.where(sin_sq > 0.0, two_theta / sin_t, torch.full_like(sin_t, 2.0))
    aa = qv * k[:, None]
    aa = torch.where(torch.isnan(aa), torch.zeros_like(aa), aa)
    return aa.reshape(*shape, 3)


def rot6d_to_axis_angle(x: torch.Tensor) -> torch.Tensor:
    """6D rotations (B, 6) -> axis-angle (B, 3) (the reference ``rot6d_to_axis_angle``).

    Reference quirk (fact sheet 4.1): the official code calls ``torch.cross``
    without ``dim``, which picks the first axis of size 3. When exactly three
    rotations are converted in one call (root and jaw pose at batch size 3)
    that axis is the batch axis and the official result is wrong. We use
    ``dim=-1``, so every batch size gives the per-item result; this equals the
    official output for every batch size other than 3 (the demo uses 1).
    """
    return rotmat_to_axis_angle(rot6d_to_rotmat(x))


def camera_translation(cam_param: torch.Tensor) -> torch.Tensor:
    """Raw camera head output (B, 3) -> translation (B, 3) in metres.

    t = (c0, c1, k * sigmoid(c2)), k = sqrt(fx*fy*2.5^2 / (256*192)) taken as
    float32 like the reference. Camera frame of the virtual 192x256 body crop.
    """
    k = torch.tensor(C.CAMERA_DEPTH_K, dtype=torch.float32).to(cam_param)
    return torch.cat((cam_param[:, :2], (k * torch.sigmoid(cam_param[:, 2]))[:, None]), dim=1)


def project_to_body_hm(joint_cam: torch.Tensor, cam_trans: torch.Tensor) -> torch.Tensor:
    """Project camera-space points (B, J, 3) + cam_trans (B, 3) -> (B, J, 2) body hm units.

    Pinhole with focal 5000 and principal point (96, 128) in 192x256 body-input
    pixels (+1e-4 on the depth, as in the reference), then scaled to the 8x6
    heatmap grid (x * 6/192, y * 8/256).
    """
    p = joint_cam + cam_trans[:, None, :]
    z = p[..., 2] + C.PROJECTION_DEPTH_EPS
    x = p[..., 0] / z * C.FOCAL[0] + C.PRINCPT[0]
    y = p[..., 1] / z * C.FOCAL[1] + C.PRINCPT[1]
    x = x / C.INPUT_BODY_SHAPE[1] * C.OUTPUT_HM_SHAPE[2]
    y = y / C.INPUT_BODY_SHAPE[0] * C.OUTPUT_HM_SHAPE[1]
    return torch.stack((x, y), dim=2)


def hand_joints_to_body_hm(hand_joints: torch.Tensor, bbox: torch.Tensor) -> torch.Tensor:
    """Hand joints (B, 20, 3) in hand-heatmap units -> body-heatmap units.

    bbox: (B, 4) xyxy of the hand crop in 192x256 body-input pixels. x and y
    are mapped through the box; z stays in hand-heatmap units (as reference).
    """
    hm_w, hm_h = C.OUTPUT_HM_SHAPE[2], C.OUTPUT_HM_SHAPE[1]
    body_h, body_w = C.INPUT_BODY_SHAPE
    hand_d, hand_h, hand_w = C.OUTPUT_HAND_HM_SHAPE
    x1, y1, x2, y2 = (bbox[:, None, i] for i in range(4))
    x = hand_joints[..., 0] * (((x2 - x1) / body_w * hm_w) / hand_w) + x1 / body_w * hm_w
    y = hand_joints[..., 1] * (((y2 - y1) / body_h * hm_h) / hand_h) + y1 / body_h * hm_h
    return torch.stack((x, y, hand_joints[..., 2]), dim=2)


def unmirror_hand_joints(joints: torch.Tensor) -> torch.Tensor:
    """Undo the left-hand crop mirror on joints (B, 20, 3) in hand-heatmap units.

    x -> (W - 1) - x = 7 - x, as the reference (not the exact pixel mirror
    7.96875 - x); it matches flipping the 8-wide feature map under
    align_corners=True sampling.
    """
    w = C.OUTPUT_HAND_HM_SHAPE[2]
    return torch.cat(((w - 1) - joints[..., :1], joints[..., 1:]), dim=-1)


def unmirror_axis_angle(pose: torch.Tensor) -> torch.Tensor:
    """Undo a horizontal mirror on axis-angles (B, 3K): (ax, ay, az) -> (ax, -ay, -az)."""
    p = pose.reshape(pose.shape[0], -1, 3)
    return torch.cat((p[..., :1], -p[..., 1:]), dim=-1).reshape(pose.shape[0], -1)
