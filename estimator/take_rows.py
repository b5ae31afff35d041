# SPDX-License-Identifier: GPL-3.0-or-later
"""The take's one camera and the assembly of per-frame rows into a take (numpy only).

Generic: an estimator's results (``base.PersonResult.take_row``) give one row
per frame and person; ``assemble_take`` puts a person's rows into the arrays of
a ``p2p-take/2`` file (``retarget.take``). Every row is expressed in ONE static
pinhole camera (focal, princpt; OpenCV axes: x right, y down, z forward),
whatever per-crop camera the estimator works in.

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


# The per-frame values of a Pose2Pose row (``PersonResult.take_row``): SMPL-X
# parameters (``retarget.take.PARAM_COLUMNS``) and raw outputs (stored as ``raw_<name>``).
ROW_SHAPES = {
    "global_orient": (3,), "body_pose": (63,), "left_hand_pose": (45,), "right_hand_pose": (45,),
    "jaw_pose": (3,), "leye_pose": (3,), "reye_pose": (3,), "betas": (10,), "expression": (10,),
    "transl": (3,), "cam_trans": (3,), "bbox_xywh": (4,), "lhand_bbox": (4,), "rhand_bbox": (4,),
    "face_bbox": (4,), "joints_2d": (65, 3), "score": (),
}


def assemble_take(rows_by_seq: dict[int, dict], frame_index, *, fps: float, person_id: int,
                  image_size, source: str, model: str, standin: bool, focal, princpt,
                  gender: str = "neutral", estimator: str = "",
                  body_model: str = "smplx") -> dict:
    """The ``p2p-take/2`` arrays of one take: ``rows_by_seq`` maps a row number (0..T-1)
    to its row.

    Every row has the parameters of ``body_model`` (``retarget.take.BODY_MODELS``);
    every other value of a row is a raw array, ``raw_<name>`` (float32; bool and
    integer values keep their dtype). Rows without an entry are invalid (zeros,
    ``valid=False``); a raw value that a row does not have stays zero there.
    ``estimator``: the estimator's registry name.
    """
    from ..retarget.take import BODY_MODELS, RAW_PREFIX, TAKE_FORMAT

    T = len(frame_index)
    columns = BODY_MODELS[body_model]
    arrays: dict = {k: np.zeros((T, c), FLOAT) for k, c in columns.items()}
    raw: dict = {}
    valid = np.zeros(T, bool)
    for seq, row in rows_by_seq.items():
        if 0 <= seq < T:
            valid[seq] = True
            for k in columns:
                arrays[k][seq] = row[k]
            for k, v in row.items():
                if k in columns:
                    continue
                v = np.asarray(v)
                if k not in raw:
                    dtype = v.dtype if v.dtype.kind in "biu" else FLOAT
                    raw[k] = np.zeros((T,) + v.shape, dtype)
                raw[k][seq] = v
    arrays.update({RAW_PREFIX + k: v for k, v in raw.items()})
    arrays.update({
        "format": TAKE_FORMAT, "estimator": str(estimator), "body_model": str(body_model),
        "fps": float(fps),
        "frame_index": np.asarray(frame_index, np.int64), "valid": valid,
        "person_id": int(person_id),
        "image_size": np.asarray(image_size, np.int64).reshape(2),
        "source": str(source), "model": str(model), "standin": bool(standin),
        "gender": str(gender),
        "focal": np.asarray(focal, np.float64).reshape(2),
        "princpt": np.asarray(princpt, np.float64).reshape(2),
    })
    return arrays
