# SPDX-License-Identifier: GPL-3.0-or-later
"""Person crops for an estimator and the maps from crop pixels back to the image.

Generic: every estimator cuts its crops here, with the numbers of its
``base.CropSpec`` (input size, box aspect, box enlargement). The defaults are
the reference crop of Hand4Whole's demo (Pose2Pose's ``crop_spec``):
``process_bbox`` (sanitize, aspect 0.75, x1.25) -> ``crop_person`` (affine
warp of the uint8 image to 512x384, INTER_LINEAR, constant-0 border, then
float32 in 0..255; the network wants that / 255).

Back: ``apply_affine`` / ``crop_boxes_to_image`` map crop pixels to the image;
``PinholeCamera`` is a camera in image pixels. The maps of one network's own
output units (Pose2Pose's heatmaps and per-crop camera) are in that
estimator's package (``pose2pose.outputs``). Only numpy here (cv2 is imported
when a crop is made); torch tensors are accepted where arrays are and come
back as numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The reference crop (Hand4Whole's demo; Pose2Pose's crop_spec): the defaults below.
DEFAULT_OUT_SHAPE = (512, 384)  # (H, W) crop pixels
DEFAULT_BOX_ASPECT = 0.75       # W / H the person box is grown to (= 384 / 512)
DEFAULT_BOX_SCALE = 1.25        # enlargement of the grown box (context around the person)


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


def process_bbox(bbox_xywh, img_width: int, img_height: int, *,
                 aspect: float = DEFAULT_BOX_ASPECT,
                 scale: float = DEFAULT_BOX_SCALE) -> np.ndarray | None:
    """The reference person-box processing: the crop box (4,) float32 xywh, or None.

    Sanitize, grow the short side to aspect W/H = ``aspect`` (default
    384/512 = 0.75) around the center, then multiply w and h by ``scale``
    (default 1.25: context around the person).
    """
    box = sanitize_bbox(bbox_xywh, img_width, img_height)
    if box is None:
        return None
    w, h = box[2], box[3]
    cx, cy = box[0] + w / 2.0, box[1] + h / 2.0
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    w, h = w * scale, h * scale
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float32)


def crop_affine(bbox_xywh, out_shape=DEFAULT_OUT_SHAPE) -> tuple[np.ndarray, np.ndarray]:
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

    crop: np.ndarray  # (H, W, 3) float32 RGB, 0..255 (Pose2Pose: 512x384; it divides by 255)
    bbox: np.ndarray  # (4,) float32 xywh processed box in image pixels
    img2crop: np.ndarray  # (2, 3) float32
    crop2img: np.ndarray  # (2, 3) float32


def crop_person(image_rgb: np.ndarray, bbox_xywh, *, processed: bool = False,
                out_shape=DEFAULT_OUT_SHAPE, aspect: float | None = None,
                scale: float = DEFAULT_BOX_SCALE) -> PersonCrop | None:
    """The reference demo's crop of one person from an (H, W, 3) RGB image.

    bbox_xywh: the detector's box, processed here with ``process_bbox``
    (``aspect``: default the crop's W / H; ``scale``) (pass ``processed=True``
    for a box that already is). Returns None when the box does not overlap the
    image. A uint8 image is warped as uint8 and then cast (as the demo does); a
    float image is warped as float.
    """
    import cv2

    img_h, img_w = image_rgb.shape[:2]
    if aspect is None:
        aspect = out_shape[1] / out_shape[0]
    bbox = _np(bbox_xywh, np.float32) if processed else \
        process_bbox(bbox_xywh, img_w, img_h, aspect=aspect, scale=scale)
    if bbox is None:
        return None
    img2crop, crop2img = crop_affine(bbox, out_shape)
    patch = warp_crop(image_rgb, img2crop, out_shape)
    return PersonCrop(patch.astype(np.float32), bbox, img2crop, crop2img)


def warp_crop(image_rgb: np.ndarray, img2crop, out_shape=DEFAULT_OUT_SHAPE) -> np.ndarray:
    """The reference warp of an (H, W, 3) image to an ``out_shape`` crop (bilinear, black
    outside), in the image's dtype (uint8 stays uint8; ``crop_person`` casts to float32)."""
    import cv2

    return cv2.warpAffine(image_rgb, np.asarray(img2crop), (int(out_shape[1]), int(out_shape[0])),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def apply_affine(points, affine) -> np.ndarray:
    """Map points (..., 2) with one (2, 3) affine matrix -> (..., 2) float64."""
    a = _np(affine)
    return _np(points) @ a[:, :2].T + a[:, 2]


def crop_boxes_to_image(boxes_xyxy, crop2img) -> np.ndarray:
    """Part boxes (..., 4) xyxy in crop pixels -> xyxy image pixels (axis-aligned map)."""
    b = _np(boxes_xyxy)
    corners = np.stack((b[..., 0:2], b[..., 2:4]), axis=-2)  # (..., 2, 2)
    return apply_affine(corners, crop2img).reshape(b.shape)


@dataclass
class PinholeCamera:
    """A pinhole camera in image pixels: the take's one static camera, or (Pose2Pose's
    ``full_image_camera``) the camera under which a crop's mesh projects onto the image."""

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
