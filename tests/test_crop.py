"""Person box processing, the 512x384 crop, and the maps back to the image.

Reference: ``data/preprocess_seed1.npz`` (the official demo's processing of a
480x640 image with two boxes, the second running off the image).
"""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.estimator import (body_hm_to_image, crop_affine, crop_boxes_to_image,
                                       crop_person, full_image_camera, process_bbox,
                                       sanitize_bbox)

from ._p2p_support import PREPROCESS_NPZ


@pytest.fixture(scope="module")
def ref():
    with np.load(PREPROCESS_NPZ) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("i", [0, 1])
def test_process_bbox_matches_the_reference(ref, i):
    h, w = ref["image"].shape[:2]
    got = process_bbox(ref[f"bbox_xywh_{i}"], w, h)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref[f"processed_bbox_{i}"], atol=1e-3, rtol=0)


@pytest.mark.parametrize("i", [0, 1])
def test_crop_and_affines_match_the_reference(ref, i):
    c = crop_person(ref["image"], ref[f"bbox_xywh_{i}"])
    assert c.crop.shape == (512, 384, 3) and c.crop.dtype == np.float32
    np.testing.assert_allclose(c.crop, ref[f"crop_{i}"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(c.img2crop, ref[f"img2bb_{i}"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(c.crop2img, ref[f"bb2img_{i}"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(c.bbox, ref[f"processed_bbox_{i}"], atol=1e-3, rtol=0)


def test_crop_of_an_already_processed_box(ref):
    box = ref["processed_bbox_0"]
    c = crop_person(ref["image"], box, processed=True)
    np.testing.assert_allclose(c.crop, ref["crop_0"], atol=1e-3, rtol=0)


def test_box_outside_the_image_gives_no_crop():
    assert sanitize_bbox([700, 10, 50, 50], 640, 480) is None
    assert process_bbox([10, 10, 0, 50], 640, 480) is None
    assert crop_person(np.zeros((480, 640, 3), np.uint8), [10, 500, 50, 50]) is None
    # Reference quirk: x and y are clamped to 0 before the width is applied, so a
    # box entirely above/left of the image becomes one at the corner.
    np.testing.assert_allclose(sanitize_bbox([-100, -100, 50, 50], 640, 480), [0, 0, 49, 49])


def test_affine_closed_form():
    """x' = (x - cx) * 384 / w + 192: the box's top-left corner maps to (0, 0)."""
    box = np.array([100.0, 50.0, 300.0, 400.0], np.float32)
    fwd, inv = crop_affine(box)
    np.testing.assert_allclose(fwd @ [100, 50, 1], [0, 0], atol=1e-3)
    np.testing.assert_allclose(fwd @ [400, 450, 1], [384, 512], atol=1e-3)
    np.testing.assert_allclose(inv @ [384, 512, 1], [400, 450], atol=1e-3)


def test_maps_back_to_the_image(ref):
    c = crop_person(ref["image"], ref["bbox_xywh_0"])
    bx, by, bw, bh = c.bbox.astype(np.float64)
    # Body heatmap cell (x, y) = crop pixel (64x, 64y).
    pts = np.array([[0.0, 0.0, 3.0], [6.0, 8.0, 1.0], [3.0, 4.0, 0.0]])
    want = [[bx, by], [bx + bw, by + bh], [bx + bw / 2, by + bh / 2]]
    np.testing.assert_allclose(body_hm_to_image(pts, c.crop2img), want, atol=1e-3)
    boxes = np.array([[0.0, 0.0, 384.0, 512.0], [96.0, 128.0, 192.0, 256.0]])
    np.testing.assert_allclose(crop_boxes_to_image(boxes, c.crop2img),
                               [[bx, by, bx + bw, by + bh],
                                [bx + bw / 4, by + bh / 4, bx + bw / 2, by + bh / 2]], atol=1e-3)


def test_full_image_camera_is_the_virtual_camera_seen_through_the_crop(ref):
    """A point projected by the network's 192x256 camera, mapped back through the
    crop, lands where the full-image camera projects it."""
    c = crop_person(ref["image"], ref["bbox_xywh_1"])
    cam = full_image_camera(c.bbox)
    bx, by, bw, bh = c.bbox.astype(np.float64)
    np.testing.assert_allclose(cam.focal, [5000 / 192 * bw, 5000 / 256 * bh])
    np.testing.assert_allclose(cam.princpt, [96 / 192 * bw + bx, 128 / 256 * bh + by])
    rng = np.random.default_rng(3)
    pts = rng.uniform([-0.8, -1.0, 20.0], [0.8, 1.0, 40.0], (50, 3))
    body_px = pts[:, :2] / pts[:, 2:] * 5000 + [96, 128]
    hm = body_px * [6 / 192, 8 / 256]
    np.testing.assert_allclose(cam.project(pts), body_hm_to_image(hm, c.crop2img), atol=1e-3)
    k = cam.matrix()
    proj = (k @ pts.T).T
    np.testing.assert_allclose(proj[:, :2] / proj[:, 2:], cam.project(pts), atol=1e-9)
