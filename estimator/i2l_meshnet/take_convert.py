# SPDX-License-Identifier: GPL-3.0-or-later
"""I2L-MeshNet outputs (per crop) -> take rows (``p2p-take/2``, ``body_model="smpl"``), numpy only.

The parameters are SMPL's: ``global_orient`` (3,) = pose_param[:3] (already
in camera axes: x right, y down, z away), ``body_pose`` (69,), ``betas`` (10,).

**Placement in the take's one static camera.** The network gives no camera
translation: the demo places the body with an external root depth (RootNet,
for focal 1500) and back-projects. We use the network's own two meshes
instead: ``mesh_coord_cam`` (the SMPL mesh, metres, pelvis-relative, camera
axes) and ``mesh_coord_img`` (the lixel mesh, mapped to image pixels with the
crop's affine). The translation t that makes the SMPL mesh, seen by the
static camera (focal f, principal point c), land on the lixel mesh is linear
in t for a pinhole camera: per vertex (X, Y, Z) seen at (u, v),

    f t_x - (u - c_x) t_z = (u - c_x) Z - f X
    f t_y - (v - c_y) t_z = (v - c_y) Z - f Y,

solved by least squares over all 6890 vertices (2 x 6890 equations). So the
depth follows from the body's metric size against its size in the image at
the take's focal, as a RootNet-free root depth. Then ``transl`` = t - P, where
P is the regressed pelvis of the SMPL mesh before it was made root-relative
(``smpl(...).vertices + transl`` is the body in the static camera, as for
Pose2Pose takes).
"""
from __future__ import annotations

import numpy as np

from ..take_rows import FLOAT
from . import constants as C
from .outputs import lixel_to_image

MIN_DEPTH_M = 0.3  # a body nearer than this to the camera is a failed fit; clamp


def fit_translation(mesh_cam, mesh_img_px, focal, princpt) -> np.ndarray:
    """t (N,3) metres with project(mesh_cam + t) ~ mesh_img_px (least squares; see module).

    mesh_cam (N,V,3) metres; mesh_img_px (N,V,2) image pixels; focal, princpt (2,).
    """
    X = np.asarray(mesh_cam, np.float64)
    uv = np.asarray(mesh_img_px, np.float64)
    f = np.asarray(focal, np.float64).reshape(2)
    c = np.asarray(princpt, np.float64).reshape(2)
    n, v = X.shape[:2]
    d = uv - c  # (N,V,2)
    A = np.zeros((n, 2 * v, 3))
    A[:, :v, 0] = f[0]
    A[:, v:, 1] = f[1]
    A[:, :v, 2] = -d[..., 0]
    A[:, v:, 2] = -d[..., 1]
    b = np.concatenate([d[..., 0] * X[..., 2] - f[0] * X[..., 0],
                        d[..., 1] * X[..., 2] - f[1] * X[..., 1]], axis=1)  # (N, 2V)
    AtA = np.einsum("nki,nkj->nij", A, A)
    Atb = np.einsum("nki,nk->ni", A, b)
    t = np.linalg.solve(AtA, Atb[..., None])[..., 0]
    bad = ~np.isfinite(t).all(axis=1) | (t[:, 2] < MIN_DEPTH_M)
    if bad.any():
        # Fallback: keep the pelvis pixel, put it at the minimum depth.
        t[bad, 2] = MIN_DEPTH_M
        t[bad, :2] = 0.0
    return t


def rows_from_outputs(out: dict, bbox_xywh, crop2img, focal, princpt, scores,
                      joint_conf) -> dict[str, np.ndarray]:
    """Take rows for N crops.

    out: network outputs as numpy arrays (N, ...): ``joint_coord_img``,
    ``mesh_coord_img``, ``pose_param``, ``shape_param``, ``mesh_coord_cam`` and
    ``smpl_root`` (N,3) (the pelvis subtracted from the SMPL mesh). bbox_xywh
    (N,4) processed boxes; crop2img (N,2,3); scores (N,); joint_conf (N,29).
    Returns {take key: (N, ...) float32 array}.
    """
    n = out["pose_param"].shape[0]
    mesh_px = lixel_to_image(out["mesh_coord_img"], crop2img)
    t = fit_translation(out["mesh_coord_cam"], mesh_px, focal, princpt)
    pose = np.asarray(out["pose_param"], np.float64).reshape(n, C.NUM_SMPL_JOINTS * 3)
    joints_xy = lixel_to_image(out["joint_coord_img"], crop2img)
    rows = {
        "global_orient": pose[:, :3], "body_pose": pose[:, 3:],
        "betas": out["shape_param"],
        "transl": t - np.asarray(out["smpl_root"], np.float64).reshape(n, 3),
        "bbox_xywh": bbox_xywh,
        "joints_2d": np.concatenate([joints_xy, np.asarray(joint_conf)[..., None]], axis=2),
        "score": np.asarray(scores, np.float64).reshape(n),
    }
    return {k: np.asarray(v, FLOAT) for k, v in rows.items()}
