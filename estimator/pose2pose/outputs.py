# SPDX-License-Identifier: GPL-3.0-or-later
"""Pose2Pose's output units back to the image, and its per-crop confidence (numpy only).

``joint_img`` / ``smplx_joint_proj`` are in body-heatmap units (an 8x6 grid over
the 512x384 crop); ``smplx_mesh_cam`` is in the crop's virtual camera
(``full_image_camera``). torch tensors are accepted where arrays are.
"""
from __future__ import annotations

import numpy as np

from ..crop import PinholeCamera, _np, apply_affine
from . import constants as C

# Body joints in the order of joint_img (see joints.BODY_POSITIONAL_JOINTS).
NUM_BODY = 25


def body_hm_to_crop(points) -> np.ndarray:
    """Body-heatmap (x, y[, z]) (..., 2+) -> 384x512 crop pixels (x 64, y 64); z is dropped."""
    p = _np(points)[..., :2]
    return p * np.array([C.INPUT_IMG_SHAPE[1] / C.OUTPUT_HM_SHAPE[2],
                         C.INPUT_IMG_SHAPE[0] / C.OUTPUT_HM_SHAPE[1]])


def body_hm_to_image(points, crop2img) -> np.ndarray:
    """``joint_img`` / ``smplx_joint_proj`` (J, 2+) in body-heatmap units -> image px (J, 2)."""
    return apply_affine(body_hm_to_crop(points), crop2img)


def full_image_camera(bbox_xywh) -> PinholeCamera:
    """The reference demo's original-image camera for a processed box (x, y, w, h).

    The network's virtual camera has focal 5000 and principal point (96, 128)
    in 192x256 body-input pixels; the crop is the box scaled, so
    focal = (5000/192 * w, 5000/256 * h), principal point =
    (96/192 * w + x, 128/256 * h + y).
    """
    bx, by, bw, bh = _np(bbox_xywh)
    body_h, body_w = C.INPUT_BODY_SHAPE
    focal = np.array([C.FOCAL[0] / body_w * bw, C.FOCAL[1] / body_h * bh])
    princpt = np.array([C.PRINCPT[0] / body_w * bw + bx, C.PRINCPT[1] / body_h * bh + by])
    return PinholeCamera(focal, princpt)


def crop_confidence(joint_img: np.ndarray, joint_proj: np.ndarray | None = None) -> float:
    """How much one output looks like a person was in the crop, in [0, 1].

    joint_img (65, 3) and joint_proj (137, 2) in body-heatmap units (8x6 grid).

    * spread: a person fills the crop (the person box is 1/1.25 of it), so the
      body joints span most of its height or width; with no person the
      soft-argmax of flat heatmaps puts every joint near the centre. Spread 0.15
      of the crop or less gives 0, 0.5 or more gives 1.
    * agreement: median distance, in heatmap cells (1/8 of the crop height),
      between the position head's body joints and the projected SMPL-X joints;
      exp(-(d/0.6)^2): 0.3 cells -> 0.78, 1 cell -> 0.06.

    These are heuristics; the thresholds that use them (``tracking.TrackerConfig``)
    are parameters.
    """
    j = np.asarray(joint_img, dtype=np.float64)[:NUM_BODY]
    if not np.isfinite(j).all():
        return 0.0
    span = max((j[:, 0].max() - j[:, 0].min()) / 6.0, (j[:, 1].max() - j[:, 1].min()) / 8.0)
    spread = float(np.clip((span - 0.15) / 0.35, 0.0, 1.0))
    if joint_proj is None:
        return spread
    p = np.asarray(joint_proj, dtype=np.float64)[:NUM_BODY, :2]
    if not np.isfinite(p).all():
        return 0.0
    d = float(np.median(np.linalg.norm(j[:, :2] - p, axis=1)))
    return spread * float(np.exp(-(d / 0.6) ** 2))
