# SPDX-License-Identifier: GPL-3.0-or-later
"""Person crops for the network and the maps from network outputs back to the image.

Forward (reference demo, fact sheet 3 and 6):
``process_bbox`` (sanitize, aspect 0.75, x1.25) -> ``crop_person`` (affine
warp of the uint8 image to 512x384, INTER_LINEAR, constant-0 border, then
float32 in 0..255; the network wants that / 255).

Back: boxes in crop pixels, ``joint_img`` / ``smplx_joint_proj`` in body
heatmap units, and ``smplx_mesh_cam`` through the full-image pinhole camera
of the crop. Only numpy here (cv2 is imported when a crop is made);
torch tensors are accepted where arrays are and come back as numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pose2pose import constants as C


def _np(x, dtype=np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def sanitize_bbox(bbox_xywh, img_width: int, img_height: int) -> np.ndarray | None:
    """Clip an xywh box to the image, shrinking w and h by one pixel first.

    Returns the clipped (x, y, w, h) as float64, or None if nothing is left.
    As in the reference, x and y are clamped to 0 *before* the width is
    applied, so a box wholly above or left of the image becomes one at the
    image corner rather than None.
    """
    x, y, w, h = (float(v) for v in _np(bbox_xywh))
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(img_height - 1.0, y1 + max(0.0, h - 1))
    if w * h > 0 and x2 > x1 and y2 > y1:
        return np.array([x1, y1, x2 - x1, y2 - y1])
    return None


def process_bbox(bbox_xywh, img_width: int, img_height: int) -> np.ndarray | None:
    """The reference person-box processing: the crop box (4,) float32 xywh, or None.

    Sanitize, grow the short side to aspect W/H = 384/512 = 0.75 around the
    center, then multiply w and h by 1.25 (context around the person).
    """
    box = sanitize_bbox(bbox_xywh, img_width, img_height)
    if box is None:
        return None
    w, h = box[2], box[3]
    cx, cy = box[0] + w / 2.0, box[1] + h / 2.0
    if w > C.BODY_ASPECT * h:
        h = w / C.BODY_ASPECT
    elif w < C.BODY_ASPECT * h:
        w = h * C.BODY_ASPECT
    w, h = w * C.BODY_BOX_SCALE, h * C.BODY_BOX_SCALE
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float32)


def crop_affine(bbox_xywh, out_shape=C.INPUT_IMG_SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """(img2crop, crop2img): (2, 3) float32 affine matrices of the crop of a processed box.

    Built like the reference (``gen_trans_from_patch_cv`` with scale 1, no
    rotation): three float32 point pairs (center, center + half height down,
    center + half width right) through ``cv2.getAffineTransform``, so the
    warp rounds exactly as the reference's does. In closed form
    x' = (x - cx) * 384 / w + 192, i.e. the box's top-left goes to (0, 0).
    """
    import cv2

    bx, by, bw, bh = (float(v) for v in _np(bbox_xywh))
    out_h, out_w = out_shape
    center = np.array([bx + 0.5 * bw, by + 0.5 * bh], dtype=np.float32)
    src = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0, bh * 0.5], dtype=np.float32)
    src[2] = center + np.array([bw * 0.5, 0], dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0] = np.array([out_w * 0.5, out_h * 0.5], dtype=np.float32)
    dst[1] = dst[0] + np.array([0, out_h * 0.5], dtype=np.float32)
    dst[2] = dst[0] + np.array([out_w * 0.5, 0], dtype=np.float32)
    img2crop = cv2.getAffineTransform(src, dst).astype(np.float32)
    crop2img = cv2.getAffineTransform(dst, src).astype(np.float32)
    return img2crop, crop2img


@dataclass
class PersonCrop:
    """One network input and how it relates to the original image."""

    crop: np.ndarray  # (512, 384, 3) float32 RGB, 0..255 (divide by 255 for the network)
    bbox: np.ndarray  # (4,) float32 xywh processed box in image pixels
    img2crop: np.ndarray  # (2, 3) float32
    crop2img: np.ndarray  # (2, 3) float32


def crop_person(image_rgb: np.ndarray, bbox_xywh, *, processed: bool = False,
                out_shape=C.INPUT_IMG_SHAPE) -> PersonCrop | None:
    """The reference demo's crop of one person from an (H, W, 3) RGB image.

    bbox_xywh: the detector's box, processed here with ``process_bbox``
    (pass ``processed=True`` for a box that already is). Returns None when
    the box does not overlap the image. A uint8 image is warped as uint8
    and then cast (as the demo does); a float image is warped as float.
    """
    import cv2

    img_h, img_w = image_rgb.shape[:2]
    bbox = _np(bbox_xywh, np.float32) if processed else process_bbox(bbox_xywh, img_w, img_h)
    if bbox is None:
        return None
    img2crop, crop2img = crop_affine(bbox, out_shape)
    patch = cv2.warpAffine(image_rgb, img2crop, (int(out_shape[1]), int(out_shape[0])),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return PersonCrop(patch.astype(np.float32), bbox, img2crop, crop2img)


def apply_affine(points, affine) -> np.ndarray:
    """Map points (..., 2) with one (2, 3) affine matrix -> (..., 2) float64."""
    a = _np(affine)
    return _np(points) @ a[:, :2].T + a[:, 2]


def crop_boxes_to_image(boxes_xyxy, crop2img) -> np.ndarray:
    """Part boxes (..., 4) xyxy in crop pixels -> xyxy image pixels (axis-aligned map)."""
    b = _np(boxes_xyxy)
    corners = np.stack((b[..., 0:2], b[..., 2:4]), axis=-2)  # (..., 2, 2)
    return apply_affine(corners, crop2img).reshape(b.shape)


def body_hm_to_crop(points) -> np.ndarray:
    """Body-heatmap (x, y[, z]) (..., 2+) -> 384x512 crop pixels (x 64, y 64); z is dropped."""
    p = _np(points)[..., :2]
    return p * np.array([C.INPUT_IMG_SHAPE[1] / C.OUTPUT_HM_SHAPE[2],
                         C.INPUT_IMG_SHAPE[0] / C.OUTPUT_HM_SHAPE[1]])


def body_hm_to_image(points, crop2img) -> np.ndarray:
    """``joint_img`` / ``smplx_joint_proj`` (J, 2+) in body-heatmap units -> image px (J, 2)."""
    return apply_affine(body_hm_to_crop(points), crop2img)


@dataclass
class PinholeCamera:
    """Full-image camera under which a crop's ``smplx_mesh_cam`` projects onto the image."""

    focal: np.ndarray  # (2,) fx, fy in image pixels
    princpt: np.ndarray  # (2,) cx, cy in image pixels

    def project(self, points_cam) -> np.ndarray:
        """(..., 3) camera-space points (metres) -> (..., 2) image pixels."""
        p = _np(points_cam)
        return p[..., :2] / p[..., 2:3] * self.focal + self.princpt

    def matrix(self) -> np.ndarray:
        """3x3 intrinsic matrix K."""
        return np.array([[self.focal[0], 0, self.princpt[0]],
                         [0, self.focal[1], self.princpt[1]],
                         [0, 0, 1.0]])


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
