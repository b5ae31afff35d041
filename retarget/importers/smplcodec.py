# SPDX-License-Identifier: GPL-3.0-or-later
"""Meshcapade SMPLCodec ``.smpl`` files (an ``.npz`` of numbers with camelCase keys:
``bodyPose`` (N,22,3) pelvis..right wrist, ``headPose`` (N,3,3) jaw/left eye/right eye,
``leftHandPose``/``rightHandPose`` (N,15,3), ``bodyTranslation`` (N,3),
``shapeParameters`` (n,), ``frameRate``, ``smplVersion``, ``gender``), in a Y-up
world. See docs/importers.md."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

NAME = "smplcodec"
ESTIMATOR = "smplcodec"
EXPECTED = ("a Meshcapade .smpl file (SMPLCodec: bodyPose (N,22,3), bodyTranslation (N,3), "
            "smplVersion 2 = SMPL-X)")
PER_FRAME = {"bodyPose": 66, "headPose": 9, "leftHandPose": 45, "rightHandPose": 45,
             "bodyTranslation": 3}
SCALARS = ("smplVersion", "gender", "frameCount", "frameRate", "codecVersion")
SHAPES = ("shapeParameters", "expressionParameters")
GENDERS = {0: "neutral", 1: "male", 2: "female"}
VERSIONS = {0: "SMPL", 1: "SMPL-H", 2: "SMPL-X", 3: "SUPR", 4: "SMPL++", 5: "SKEL"}
MAX_MEMBER_BYTES = 1 << 30


def detect(path: Path) -> bool:
    from ...common.npz import npz_members

    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in (".smpl", ".npz"):
        return False
    names = set(npz_members(path))
    return "bodyPose" in names or (path.suffix.lower() == ".smpl" and "smplVersion" in names)


def read(path: Path, body=None, person: int = 0):
    from ...common.npz import check_sizes, npz_members, read_members, refuse_unsafe
    from ..rotations import axis_angle_to_matrix, matrix_to_axis_angle
    from ..take import MAX_FRAME_SPAN
    from ._common import ImportFormatError
    from ._common import finish_take

    path = Path(path)
    E = ImportFormatError
    members = npz_members(path, error=E)
    refuse_unsafe(path, members, error=E, what="this .smpl file")
    check_sizes(path, members, max_member_bytes=MAX_MEMBER_BYTES, error=E)
    if "bodyPose" not in members:
        raise E(f"{path.name}: no bodyPose array; expected {EXPECTED}")
    rows = members["bodyPose"].shape[0] if members["bodyPose"].shape else 0
    if rows > MAX_FRAME_SPAN:
        raise E(f"{path.name}: {rows:,} frames; at most {MAX_FRAME_SPAN:,} are supported")
    use = []
    for k, m in members.items():
        if m.dtype.kind not in "fiu":
            if k in PER_FRAME or k in SCALARS or k in SHAPES:
                raise E(f"{path.name}: '{k}' has dtype {m.dtype}, expected numbers")
            continue
        if k in PER_FRAME:
            if len(m.shape) < 1 or m.shape[0] != rows or math.prod(m.shape[1:]) != PER_FRAME[k]:
                raise E(f"{path.name}: '{k}' has shape {m.shape}, expected ({rows}, "
                        f"{PER_FRAME[k]} values)")
        elif k in SCALARS:
            if math.prod(m.shape) != 1:
                raise E(f"{path.name}: '{k}' must be one number, got shape {m.shape}")
        elif k in SHAPES:
            if len(m.shape) != 1 or not 1 <= m.shape[0] <= 400:
                raise E(f"{path.name}: '{k}' has shape {m.shape}, expected (n,), n 1..400")
        else:
            continue
        use.append(k)
    a = read_members(path, members, use, error=E)
    version = int(np.asarray(a.get("smplVersion", 2)).reshape(()))
    if version != 2:
        raise E(f"{path.name}: a {VERSIONS.get(version, f'version {version}')} file; only "
                "SMPL-X (smplVersion 2) .smpl files can drive this rig")
    notes = []
    g = int(np.asarray(a.get("gender", 0)).reshape(()))
    gender = GENDERS.get(g, "neutral")
    if g not in GENDERS:
        notes.append(f"gender code {g} not known: neutral used")
    T = rows
    pose = np.asarray(a["bodyPose"], np.float64).reshape(T, 66)
    head = np.asarray(a.get("headPose", np.zeros((T, 9))), np.float64).reshape(T, 9)
    p = {"global_orient": pose[:, :3], "body_pose": pose[:, 3:], "jaw_pose": head[:, :3],
         "leye_pose": head[:, 3:6], "reye_pose": head[:, 6:9]}
    for k, name in (("leftHandPose", "left_hand_pose"), ("rightHandPose", "right_hand_pose")):
        if k in a:
            p[name] = np.asarray(a[k], np.float64).reshape(T, 45)
    for k, name in (("shapeParameters", "betas"), ("expressionParameters", "expression")):
        v = np.zeros(10)
        if k in a:
            s = np.asarray(a[k], np.float64).reshape(-1)[:10]
            v[:s.shape[0]] = s
            if a[k].size > 10:
                notes.append(f"{k} has {a[k].size} components: the first 10 are used")
        p[name] = np.repeat(v[None], T, 0)
    t = np.asarray(a.get("bodyTranslation", np.zeros((T, 3))), np.float64).reshape(T, 3)
    # Y-up world -> the take's frame (y down, z forward): 180 degrees about x, about the
    # world origin. (= Y-up -> AMASS's Z-up world, +90 degrees about x, then
    # retarget.amass's Z-up world -> camera frame: the same frame as AMASS files.) The pelvis J0 (rest, no translation) moves with the rotation:
    # transl' = R (J0 + t) - J0.
    R = np.diag([1.0, -1.0, -1.0])
    if body is not None:
        J0 = np.asarray(body.pelvis(p["betas"], p["expression"]), np.float64).reshape(T, 3)
    else:
        from ..amass import DEFAULT_REST_PELVIS

        J0 = np.repeat(DEFAULT_REST_PELVIS[None], T, 0)
        notes.append("no SMPL-X model given: the turn uses the neutral template's pelvis "
                     "(off by millimetres to centimetres for other body shapes)")
    p["global_orient"] = matrix_to_axis_angle(R @ axis_angle_to_matrix(p["global_orient"]))
    p["transl"] = (J0 + t) @ R.T - J0
    notes.append(".smpl world (Y up) turned 180 degrees about x into the take's camera-style "
                 "frame (y down); no camera in the file (a default camera is used)")
    fps = float(np.asarray(a["frameRate"]).reshape(())) if "frameRate" in a else None
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        fps = None
    return finish_take(path, p, fps=fps, estimator=ESTIMATOR, notes=notes,
                       model="SMPLCodec .smpl file", gender=gender)
