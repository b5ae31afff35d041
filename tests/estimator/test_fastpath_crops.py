"""fastpath.crops: crops cut from uploaded frames equal crop.crop_person (OpenCV) exactly."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pose2pose_mocap.estimator.crop import crop_affine, crop_person, process_bbox
from pose2pose_mocap.estimator.fastpath.crops import (inverse_affine, sample_positions,
                                                       warp_crops)
from pose2pose_mocap.estimator.pose2pose.inference import crops_to_tensor


def _boxes(rng, w, h, n):
    """Person boxes of every kind: inside, across the border, mostly outside, tiny, huge,
    fractional."""
    out = [(10, 5, 60, 150), (-40, -30, 120, 400), (w - 20.5, h * 0.3, 90.25, 77.75),
           (-3 * w, -3 * h, 7 * w, 7 * h), (w / 2, h / 2, 2.0, 3.0)]
    for _ in range(n):
        out.append((rng.uniform(-w / 2, w), rng.uniform(-h / 2, h),
                    rng.uniform(2, 1.5 * w), rng.uniform(2, 1.5 * h)))
    return out


@pytest.mark.parametrize("size", [(321, 239), (640, 360)])
def test_device_crops_equal_opencv_bit_for_bit(size):
    """Noise images (the worst case for any difference in sampling: a 1/64 px shift moves
    a pixel by up to 8 of 255 here) and boxes of every kind: not one value differs."""
    w, h = size
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3)]
    crops, frame_of = [], []
    for i, box in enumerate(_boxes(rng, w, h, 30)):
        pc = crop_person(frames[i % 3], box)
        if pc is not None:
            crops.append(pc)
            frame_of.append(i % 3)
    assert len(crops) >= 25
    got = warp_crops(torch.from_numpy(np.stack(frames)), frame_of,
                     np.stack([c.img2crop for c in crops]), (512, 384))
    want = crops_to_tensor([c.crop for c in crops])
    assert got.shape == want.shape and got.dtype == torch.float32
    assert torch.equal(got, want)


def test_float_sampling_would_not_be_equal():
    """Why the fixed-point replica: a float grid_sample of the same map differs from
    OpenCV by several levels on a noise image (so the equality above means something)."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    pc = crop_person(img, (30.3, 20.7, 150.2, 190.9))
    inv = inverse_affine(pc.img2crop[None])[0]
    ys, xs = np.mgrid[0:512, 0:384].astype(np.float64)
    u = inv[0] * xs + inv[1] * ys + inv[2]
    v = inv[3] * xs + inv[4] * ys + inv[5]
    grid = torch.from_numpy(np.stack([2 * u / 319 - 1, 2 * v / 239 - 1], -1)[None]).float()
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    out = torch.nn.functional.grid_sample(t, grid, align_corners=True)[0].permute(1, 2, 0)
    assert (out.round().numpy() - pc.crop).__abs__().max() >= 3


def test_inverse_map_is_opencvs():
    rng = np.random.default_rng(1)
    for box in _boxes(rng, 1920, 1080, 20):
        bbox = process_bbox(box, 1920, 1080)
        if bbox is None:
            continue
        a, _ = crop_affine(bbox)
        ref = cv2.invertAffineTransform(a.astype(np.float64)).ravel()
        np.testing.assert_array_equal(inverse_affine(a[None])[0], ref)


def test_sample_positions_within_1e3_px_of_opencvs_geometry():
    """Geometry on its own, independent of pixel values: warping an image whose values
    are its own x (and y) coordinates shows where OpenCV samples each crop pixel; ours
    are the same positions within 1e-3 px (float32 ramp rounding), and both are the
    exact affine map rounded to 1/32 px (at most 1/64 + 1/1024 px away)."""
    W, H = 1920, 1080
    ramp_x = np.tile(np.arange(W, dtype=np.float32), (H, 1))
    ramp_y = np.tile(np.arange(H, dtype=np.float32)[:, None], (1, W))
    rng = np.random.default_rng(5)
    for box in _boxes(rng, W, H, 6)[:8]:
        bbox = process_bbox(box, W, H)
        if bbox is None:
            continue
        a, _ = crop_affine(bbox)
        cx = cv2.warpAffine(ramp_x, a, (384, 512), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
        cy = cv2.warpAffine(ramp_y, a, (384, 512), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
        inv = torch.from_numpy(inverse_affine(a[None]))
        X, Y = (p[0].numpy() / 32.0 for p in sample_positions(inv, (512, 384)))
        inside = (X >= 0) & (X <= W - 1) & (Y >= 0) & (Y <= H - 1)  # (replicated border)
        assert inside.mean() > 0.2
        assert np.abs(X - cx)[inside].max() < 1e-3 and np.abs(Y - cy)[inside].max() < 1e-3
        m = inv[0].numpy()
        ys, xs = np.mgrid[0:512, 0:384].astype(np.float64)
        exact_x = m[0] * xs + m[1] * ys + m[2]
        assert np.abs(X - exact_x).max() <= 1 / 64 + 1 / 1024  # rounded twice: 1/1024, 1/32
