# SPDX-License-Identifier: GPL-3.0-or-later
"""The take's one camera and the assembly of per-frame rows into a take (numpy only).

Generic: an estimator's results (``base.PersonResult.take_row``) give one row
per frame and person; ``assemble_take`` puts a person's rows into the arrays of
a ``p2p-take/1`` file. Every row is expressed in ONE static pinhole camera
(focal, princpt; OpenCV axes: x right, y down, z forward), whatever per-crop
camera the estimator works in.

The static focal comes from a field of view (``--fov``, horizontal, degrees).
Default: 60 degrees across the image's longer side - a phone's main camera
records about 65-70 degrees across the long side (26 mm equivalent), less with
video stabilisation; webcams are 60-70; so 60 errs to the long-lens side.
Only depth scales with the focal (x and y do not): a wrong FOV makes the
distance to the camera and forward/backward motion proportionally too large
or small, never the sideways motion.
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_FOV_DEG = 60.0
FLOAT = np.float32


def static_camera(image_size, fov_deg: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(focal (2,), princpt (2,)) in pixels of the take's one camera for an image (W, H).

    ``fov_deg``: horizontal field of view; None = 60 degrees across the longer side.
    The principal point is the image centre in OpenCV pixel coordinates (pixel
    centres at integers): ((W - 1) / 2, (H - 1) / 2).
    """
    W, H = float(image_size[0]), float(image_size[1])
    if fov_deg is None:
        half, side = math.radians(DEFAULT_FOV_DEG) / 2, max(W, H)
    else:
        if not 1.0 <= float(fov_deg) <= 179.0:
            raise ValueError(f"--fov {fov_deg}: the field of view must be between 1 and 179 "
                             "degrees")
        half, side = math.radians(float(fov_deg)) / 2, W
    f = side / 2 / math.tan(half)
    return np.array([f, f]), np.array([(W - 1) / 2, (H - 1) / 2])


def project(points, focal, princpt) -> np.ndarray:
    """Pinhole projection (..., 3) -> (..., 2) pixels."""
    p = np.asarray(points, np.float64)
    return p[..., :2] / p[..., 2:3] * np.asarray(focal) + np.asarray(princpt)


# The per-frame arrays of a take (``retarget.take``: PARAM_COLUMNS + RAW_SHAPES); a
# row (``PersonResult.take_row``) maps some of these names to one frame's values.
ROW_SHAPES = {
    "global_orient": (3,), "body_pose": (63,), "left_hand_pose": (45,), "right_hand_pose": (45,),
    "jaw_pose": (3,), "leye_pose": (3,), "reye_pose": (3,), "betas": (10,), "expression": (10,),
    "transl": (3,), "cam_trans": (3,), "bbox_xywh": (4,), "lhand_bbox": (4,), "rhand_bbox": (4,),
    "face_bbox": (4,), "joints_2d": (65, 3), "score": (),
}
# Estimator-specific raw outputs (``PersonResult.raw``): zeros where an estimator has none.
OPTIONAL_ROW_KEYS = ("cam_trans", "lhand_bbox", "rhand_bbox", "face_bbox")


def assemble_take(rows_by_seq: dict[int, dict], frame_index, *, fps: float, person_id: int,
                  image_size, source: str, model: str, standin: bool, focal, princpt,
                  gender: str = "neutral") -> dict:
    """The arrays of one take: ``rows_by_seq`` maps a row number (0..T-1) to its row.

    Rows without an entry are invalid (zeros, ``valid=False``). An optional raw
    output (``OPTIONAL_ROW_KEYS``) that a row does not have stays zero.
    """
    T = len(frame_index)
    arrays: dict = {k: np.zeros((T,) + s, FLOAT) for k, s in ROW_SHAPES.items()}
    valid = np.zeros(T, bool)
    for seq, row in rows_by_seq.items():
        if 0 <= seq < T:
            valid[seq] = True
            for k in ROW_SHAPES:
                if k in row or k not in OPTIONAL_ROW_KEYS:
                    arrays[k][seq] = row[k]
    arrays.update({
        "format": "p2p-take/1", "fps": float(fps),
        "frame_index": np.asarray(frame_index, np.int64), "valid": valid,
        "person_id": int(person_id),
        "image_size": np.asarray(image_size, np.int64).reshape(2),
        "source": str(source), "model": str(model), "standin": bool(standin),
        "gender": str(gender),
        "focal": np.asarray(focal, np.float64).reshape(2),
        "princpt": np.asarray(princpt, np.float64).reshape(2),
    })
    return arrays
