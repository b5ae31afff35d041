# SPDX-License-Identifier: GPL-3.0-or-later
"""Pose2Pose outputs (per crop) -> take rows (``p2p-take/2``), numpy only.

Two conversions matter:

**Hands.** The network's hand poses are offsets from the SMPL-X mean hand (its
layer uses ``flat_hand_mean=False``). The take uses the convention of
``smplx.SMPLX(use_pca=False, flat_hand_mean=True)``, so it stores
offset + ``hands_mean`` of the SMPL-X file the network used.

**One static camera.** Each crop has its own virtual camera (the reference's
``render_original_img`` camera): focal f_c = 5000/192 * w (= 5000/256 * h;
the processed box has aspect 0.75), principal point at the box centre. The
body is at ``cam_trans`` t in that camera, with a very long focal (~2 degrees
across the crop), so t_z is tens of metres and jumps whenever the crop changes.
The take re-expresses every frame in ONE pinhole camera (focal f_s, principal
point pp_s; OpenCV axes: x right, y down, z forward) such that:

* the pelvis keeps its apparent size: its depth is scaled by f_s / f_c,
  Z' = (P_z + t_z) * f_s / f_c, where P is the pelvis of the SMPL-X body
  without translation (joint 0; it depends on betas and expression only);
* the pelvis projects to the same image pixel as under the crop's camera:
  u = f_c * (P_x + t_x) / (P_z + t_z) + pp_c, and
  transl_x = (u - pp_s,x) * Z' / f_s - P_x (same for y), transl_z = Z' - P_z.

So ``smplx(...).vertices + transl`` projected with (focal, princpt) lands where
the reference draws the mesh, exactly at the pelvis; the body is not rotated
towards the crop's off-centre viewing ray (neither does the reference), so
points away from the pelvis can differ slightly near the image border.

The static camera itself (``static_camera``: from the image size and ``--fov``)
and the assembly of rows into a take (``assemble_take``) are generic, in
``estimator.take_rows``.
"""
from __future__ import annotations

import numpy as np

from ..take_rows import (DEFAULT_FOV_DEG, FLOAT, ROW_SHAPES, assemble_take,  # noqa: F401
                         project, static_camera)
from . import constants as C


def crop_camera(bbox_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-crop camera (focal (N,2), princpt (N,2)) of processed boxes (N,4) (reference demo)."""
    b = np.asarray(bbox_xywh, np.float64).reshape(-1, 4)
    body_h, body_w = C.INPUT_BODY_SHAPE
    focal = np.stack([C.FOCAL[0] / body_w * b[:, 2], C.FOCAL[1] / body_h * b[:, 3]], axis=1)
    princpt = np.stack([C.PRINCPT[0] / body_w * b[:, 2] + b[:, 0],
                        C.PRINCPT[1] / body_h * b[:, 3] + b[:, 1]], axis=1)
    return focal, princpt


class PelvisModel:
    """Rest-pose pelvis (SMPL-X joint 0, no translation) as a linear function of shape.

    P = J_regressor[0] @ (v_template + shapedirs . betas + expr_dirs . expression);
    posing rotates about the pelvis, so this is also the posed pelvis.
    """

    def __init__(self, j0_template, j0_shape, j0_expr):
        self.template = np.asarray(j0_template, np.float64).reshape(3)
        self.shape = np.asarray(j0_shape, np.float64)  # (3, n_betas)
        self.expr = np.asarray(j0_expr, np.float64)  # (3, n_expr)

    @classmethod
    def from_layer(cls, layer) -> "PelvisModel":
        """From an ``smplx.SMPLX`` module (the network's own layer)."""
        def np_(t):
            return t.detach().cpu().double().numpy()

        jr0 = np_(layer.J_regressor)[0]  # (V,)
        return cls(jr0 @ np_(layer.v_template), np.einsum("v,vck->ck", jr0, np_(layer.shapedirs)),
                   np.einsum("v,vck->ck", jr0, np_(layer.expr_dirs)))

    def __call__(self, betas, expression) -> np.ndarray:
        b = np.asarray(betas, np.float64).reshape(-1, self.shape.shape[1])
        e = np.asarray(expression, np.float64).reshape(-1, self.expr.shape[1])
        return self.template + b @ self.shape.T + e @ self.expr.T


def static_translation(pelvis, cam_trans, bbox_xywh, focal, princpt) -> np.ndarray:
    """transl (N,3) in the static camera (see the module docstring).

    pelvis (N,3) rest pelvis; cam_trans (N,3) network output; bbox_xywh (N,4)
    processed crop boxes in image pixels; focal, princpt (2,) static camera.
    """
    P = np.asarray(pelvis, np.float64).reshape(-1, 3)
    t = np.asarray(cam_trans, np.float64).reshape(-1, 3)
    fc, ppc = crop_camera(bbox_xywh)
    fs, pps = np.asarray(focal, np.float64), np.asarray(princpt, np.float64)
    depth_c = P[:, 2] + t[:, 2]
    uv = fc * (P[:, :2] + t[:, :2]) / depth_c[:, None] + ppc  # pelvis pixel, crop camera
    # Apparent size ~ f / depth; scale the depth by the ratio of focals (geometric mean
    # of x and y, which are equal for the 0.75-aspect boxes).
    depth_s = depth_c * np.sqrt(fs[0] * fs[1]) / np.sqrt(fc[:, 0] * fc[:, 1])
    xy = (uv - pps) * depth_s[:, None] / fs - P[:, :2]
    return np.concatenate([xy, (depth_s - P[:, 2])[:, None]], axis=1)


def _affine(points, crop2img) -> np.ndarray:
    """Points (N, K, 2) through per-item affines (N, 2, 3)."""
    a = np.asarray(crop2img, np.float64)
    return np.einsum("nkj,nij->nki", np.asarray(points, np.float64), a[:, :, :2]) + a[:, None, :, 2]


def rows_from_outputs(out: dict, bbox_xywh, crop2img, pelvis_model: PelvisModel,
                      hands_mean: tuple, focal, princpt, scores) -> dict[str, np.ndarray]:
    """Take rows for N crops.

    out: network outputs as numpy arrays (N, ...) (test-mode keys). bbox_xywh (N,4)
    processed boxes; crop2img (N,2,3) crop-to-image affines; hands_mean
    (left (45,), right (45,)); scores (N,). Returns {take key: (N, ...) array}.
    """
    n = out["smplx_root_pose"].shape[0]
    betas = np.asarray(out["smplx_shape"], np.float64)
    expr = np.asarray(out["smplx_expr"], np.float64)
    lmean, rmean = (np.asarray(m, np.float64).reshape(1, 45) for m in hands_mean)
    transl = static_translation(pelvis_model(betas, expr), out["cam_trans"], bbox_xywh,
                                focal, princpt)
    j = np.asarray(out["joint_img"], np.float64)  # (N,65,3) body-hm units
    scale = np.array([C.INPUT_IMG_SHAPE[1] / C.OUTPUT_HM_SHAPE[2],
                      C.INPUT_IMG_SHAPE[0] / C.OUTPUT_HM_SHAPE[1]])
    joints_xy = _affine(j[..., :2] * scale, crop2img)

    def boxes(key):
        b = np.asarray(out[key], np.float64).reshape(n, 2, 2)
        return _affine(b, crop2img).reshape(n, 4)

    zeros3 = np.zeros((n, 3))
    rows = {
        "global_orient": out["smplx_root_pose"], "body_pose": out["smplx_body_pose"],
        "left_hand_pose": np.asarray(out["smplx_lhand_pose"], np.float64) + lmean,
        "right_hand_pose": np.asarray(out["smplx_rhand_pose"], np.float64) + rmean,
        "jaw_pose": out["smplx_jaw_pose"], "leye_pose": zeros3, "reye_pose": zeros3,
        "betas": betas, "expression": expr, "transl": transl,
        "cam_trans": out["cam_trans"], "bbox_xywh": bbox_xywh,
        "lhand_bbox": boxes("lhand_bbox"), "rhand_bbox": boxes("rhand_bbox"),
        "face_bbox": boxes("face_bbox"),
        "joints_2d": np.concatenate([joints_xy, j[..., 2:3]], axis=2),
        "score": np.asarray(scores, np.float64).reshape(n),
    }
    return {k: np.asarray(v, FLOAT) for k, v in rows.items()}
