# SPDX-License-Identifier: GPL-3.0-or-later
"""I2L-MeshNet's crops and its outputs back in the image (numpy; cv2 for the crop).

**Crop** (``I2LCropSpec``, as the official demo makes it, fact sheet 3 and
4.4): ``process_bbox`` sanitizes the xywh box (x2 = min(W-1, x1 + w-1), ...),
makes it square around its centre and x1.25, in float64 (no float32 cast);
the 256x256 crop is warped from the **float32** image (not the uint8 one) with
the float32 affine of ``crop.crop_affine``, INTER_LINEAR, black border.

**Back to the image**: lixel x, y x4 = crop pixels, through the crop's
``bb2img`` affine = image pixels; lixel z/32 - 1 = metres relative to the pelvis.

**Confidence**: the network has no score, but it predicts the 29 joints twice,
independently: PoseNet's ``joint_coord_img`` and the joints regressed from
MeshNet's mesh (``joint_img_from_mesh``). Where they agree (in x, y) the
joint is well seen; a person fills the crop, so the joints must spread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import CropSpec
from ..crop import PersonCrop, crop_affine
from . import constants as C

LIXEL_TO_CROP = C.INPUT_IMG_SHAPE[1] / C.OUTPUT_HM_SHAPE[2]  # 4.0
AGREEMENT_LIXELS = 2.0  # joint confidence exp(-(d / 2)^2): d = 1 lixel -> 0.78, 2 -> 0.37


def process_bbox(bbox_xywh, img_width: int, img_height: int,
                 scale: float = C.BOX_SCALE) -> np.ndarray | None:
    """The reference ``process_bbox`` for I2L-MeshNet: (4,) float64 xywh, or None.

    Sanitize (x1 = max(0, x), x2 = min(W-1, x1 + max(0, w-1)); valid when
    w*h > 0 and x2 >= x1, y2 >= y1), square around the centre, x ``scale``.
    """
    x, y, w, h = (float(v) for v in np.asarray(bbox_xywh, np.float64).reshape(4))
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(img_height - 1.0, y1 + max(0.0, h - 1.0))
    if not (w * h > 0 and x2 >= x1 and y2 >= y1):
        return None
    w, h = x2 - x1, y2 - y1
    cx, cy = x1 + w / 2.0, y1 + h / 2.0
    if w > C.BOX_ASPECT * h:
        h = w / C.BOX_ASPECT
    elif w < C.BOX_ASPECT * h:
        w = h * C.BOX_ASPECT
    w, h = w * scale, h * scale
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float64)


def crop_person(image_rgb: np.ndarray, bbox_xywh, *, processed: bool = False
                ) -> PersonCrop | None:
    """The demo's 256x256 crop of one person (float32 RGB 0..255), or None.

    The image is warped as float32 (a uint8 frame is converted first, as the
    demo's loader does), so sub-pixel values are not rounded to integers.
    """
    import cv2

    img_h, img_w = image_rgb.shape[:2]
    box = np.asarray(bbox_xywh, np.float64).reshape(4) if processed else \
        process_bbox(bbox_xywh, img_w, img_h)
    if box is None or box[2] <= 0 or box[3] <= 0:
        return None
    img2crop, crop2img = crop_affine(box, C.INPUT_IMG_SHAPE)
    out_h, out_w = C.INPUT_IMG_SHAPE
    patch = cv2.warpAffine(np.asarray(image_rgb, np.float32), img2crop, (out_w, out_h),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return PersonCrop(patch, box, img2crop, crop2img)


@dataclass(frozen=True)
class I2LCropSpec(CropSpec):
    """``CropSpec`` of I2L-MeshNet: 256x256, square box x1.25, cut like the demo
    (float64 box, float32 warp; see the module docstring)."""

    def process_box(self, box_xywh, image_size) -> np.ndarray | None:
        return process_bbox(box_xywh, int(image_size[0]), int(image_size[1]), self.box_scale)

    def cut(self, image_rgb: np.ndarray, box_xywh) -> PersonCrop | None:
        return crop_person(image_rgb, box_xywh)


CROP_SPEC = I2LCropSpec(input_size=C.INPUT_IMG_SHAPE, box_scale=C.BOX_SCALE,
                        box_aspect=C.BOX_ASPECT)


def lixel_to_image(points, crop2img) -> np.ndarray:
    """Lixel (x, y[, z]) points (N, K, 2+) -> image pixels (N, K, 2), per-item affines (N,2,3)."""
    p = np.asarray(points, np.float64)[..., :2] * LIXEL_TO_CROP
    a = np.asarray(crop2img, np.float64)
    return np.einsum("nkj,nij->nki", p, a[:, :, :2]) + a[:, None, :, 2]


def lixel_depth_m(z) -> np.ndarray:
    """Lixel z -> metres relative to the pelvis (z/64 * 2 - 1) * 1.0 = z/32 - 1."""
    return (np.asarray(z, np.float64) / C.OUTPUT_HM_SHAPE[0] * 2 - 1) * (C.BBOX_3D_SIZE / 2)


def joint_confidence(joint_coord_img, joint_img_from_mesh) -> np.ndarray:
    """Per-joint confidence (N, 29) in [0, 1]: how well PoseNet's joints and the mesh's
    regressed joints agree in x, y (lixels): exp(-(d / AGREEMENT_LIXELS)^2)."""
    a = np.asarray(joint_coord_img, np.float64)[..., :2]
    b = np.asarray(joint_img_from_mesh, np.float64)[..., :2]
    d = np.linalg.norm(a - b, axis=-1)
    c = np.exp(-(d / AGREEMENT_LIXELS) ** 2)
    return np.where(np.isfinite(c), c, 0.0)


def crop_confidence(joint_coord_img, joint_conf) -> np.ndarray:
    """How much each crop looks like a person was there, (N,) in [0, 1].

    spread: the 24 body joints' extent over the 64-lixel crop (a person box is
    1/1.25 of it; flat heat maps put every joint near the centre): 0.15 of the
    crop or less -> 0, 0.5 or more -> 1; times the median joint agreement.
    """
    j = np.asarray(joint_coord_img, np.float64)[:, :C.NUM_SMPL_JOINTS, :2]
    if not np.isfinite(j).all():
        bad = ~np.isfinite(j).all(axis=(1, 2))
        j = np.where(bad[:, None, None], 0.0, j)
    else:
        bad = np.zeros(len(j), bool)
    span = (j.max(axis=1) - j.min(axis=1)).max(axis=1) / C.OUTPUT_HM_SHAPE[2]
    spread = np.clip((span - 0.15) / 0.35, 0.0, 1.0)
    agree = np.median(np.asarray(joint_conf, np.float64)[:, :C.NUM_SMPL_JOINTS], axis=1)
    return np.where(bad, 0.0, spread * agree)
