# SPDX-License-Identifier: GPL-3.0-or-later
"""Person crops cut on the device, equal to ``crop.crop_person`` bit for bit.

``crop.crop_person`` warps the uint8 frame with ``cv2.warpAffine`` (INTER_LINEAR,
constant-0 border). OpenCV does that in fixed point: the inverse map of each
crop pixel is rounded to 1/32 pixel (``INTER_BITS`` = 5, through a 1/1024
intermediate, ``AB_BITS`` = 10), the four neighbours are weighted with integer
weights that sum to 32768, and the sum is rounded back to uint8. A float
``grid_sample`` differs from that by up to |image gradient| x 1/64 px per axis
(measured: up to 7 levels of 255 on a noise image). So this module replicates
the fixed-point arithmetic in integer tensor operations: the crops equal
OpenCV's exactly (tested), on any device, and the geometry (the affine matrices)
is the very same ``crop.crop_affine`` output.

Shapes: frames (F, H, W, 3) uint8 (RGB, one size per call); one crop per row of
``frame_of`` (N,) and ``img2crop`` (N, 2, 3). Output (N, 3, h, w) float32 in
[0, 1], what ``pose2pose.inference.crops_to_tensor`` makes of the uint8 crops.
"""
from __future__ import annotations

import numpy as np
import torch

INTER_BITS = 5          # OpenCV: sub-pixel positions in 1/32 px
AB_BITS = 10            # OpenCV: the map's intermediate fixed point, 1/1024 px
# Crops warped per chunk: bounds the temporaries (about 50 bytes per crop pixel).
CHUNK_CROPS = 16


def inverse_affine(img2crop) -> np.ndarray:
    """(N, 2, 3) float32 image->crop maps -> (N, 6) float64 crop->image maps, computed
    as ``cv2.invertAffineTransform`` does inside ``warpAffine`` (same operation order,
    so the same doubles)."""
    m = np.asarray(img2crop, dtype=np.float64).reshape(-1, 6)
    d = m[:, 0] * m[:, 4] - m[:, 1] * m[:, 3]
    d = np.where(d != 0, 1.0 / np.where(d != 0, d, 1.0), 0.0)
    a11, a22 = m[:, 4] * d, m[:, 0] * d
    a12, a21 = -m[:, 1] * d, -m[:, 3] * d
    b1 = -a11 * m[:, 2] - a12 * m[:, 5]
    b2 = -a21 * m[:, 2] - a22 * m[:, 5]
    return np.stack([a11, a12, b1, a21, a22, b2], axis=1)


def sample_positions(inv: torch.Tensor, out_shape) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 6) float64 crop->image maps -> X, Y (N, h, w) int32: each crop pixel's source
    position in 1/32 image pixels, rounded as OpenCV rounds it (half to even, like
    ``cvRound``)."""
    h, w = int(out_shape[0]), int(out_shape[1])
    dev = inv.device
    x = torch.arange(w, dtype=torch.float64, device=dev)
    y = torch.arange(h, dtype=torch.float64, device=dev)
    scale = float(1 << AB_BITS)
    half = (1 << AB_BITS) // (1 << INTER_BITS) // 2
    adelta = torch.round(inv[:, 0:1] * x * scale).long()        # (N, w)
    bdelta = torch.round(inv[:, 3:4] * x * scale).long()
    x0 = torch.round((inv[:, 1:2] * y + inv[:, 2:3]) * scale).long() + half   # (N, h)
    y0 = torch.round((inv[:, 4:5] * y + inv[:, 5:6]) * scale).long() + half
    shift = AB_BITS - INTER_BITS
    X = (x0[:, :, None] + adelta[:, None, :]) >> shift
    Y = (y0[:, :, None] + bdelta[:, None, :]) >> shift
    return X.to(torch.int32), Y.to(torch.int32)


def warp_crops(frames: torch.Tensor, frame_of, img2crop, out_shape) -> torch.Tensor:
    """Cut N crops out of F uploaded frames: (N, 3, h, w) float32 in [0, 1].

    frames: (F, H, W, 3) uint8 on the device; frame_of: (N,) which frame each crop
    comes from; img2crop: (N, 2, 3) the crops' image->crop maps (``crop.crop_affine``).
    """
    F_, H, W, C = frames.shape
    dev = frames.device
    h, w = int(out_shape[0]), int(out_shape[1])
    fid = torch.as_tensor(np.asarray(frame_of, dtype=np.int64), device=dev)
    inv_all = torch.as_tensor(inverse_affine(img2crop), device=dev)
    flat = frames.reshape(F_ * H * W, C)
    out = torch.empty((len(fid), C, h, w), dtype=torch.float32, device=dev)
    one = 1 << INTER_BITS
    for a in range(0, len(fid), CHUNK_CROPS):
        b = min(a + CHUNK_CROPS, len(fid))
        X, Y = sample_positions(inv_all[a:b], (h, w))
        sx, fx = X >> INTER_BITS, X & (one - 1)
        sy, fy = Y >> INTER_BITS, Y & (one - 1)
        base = (fid[a:b] * (H * W)).view(-1, 1, 1)
        acc = torch.zeros((b - a, h, w, C), dtype=torch.int32, device=dev)
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            wx = fx if dx else one - fx
            wy = fy if dy else one - fy
            xx, yy = sx + dx, sy + dy
            inside = (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
            idx = base + yy.clamp(0, H - 1).long() * W + xx.clamp(0, W - 1).long()
            px = flat.index_select(0, idx.reshape(-1)).view(b - a, h, w, C).to(torch.int32)
            acc += px * (wx * wy * inside).unsqueeze(-1)
        # weights sum to 32*32; OpenCV's sum to 32768 with rounding (v + 2^14) >> 15
        val = ((acc + (1 << (2 * INTER_BITS - 1))) >> (2 * INTER_BITS)).clamp_(0, 255)
        out[a:b] = val.permute(0, 3, 1, 2).to(torch.float32) / 255.0
    return out


def stack_frames(images) -> torch.Tensor:
    """Uploaded frames of one size, (H, W, 3) uint8 each -> (F, H, W, 3)."""
    return torch.stack(list(images)) if len(images) > 1 else images[0].unsqueeze(0)
