# SPDX-License-Identifier: GPL-3.0-or-later
"""AMASS / SMPL-X add-on interchange (numpy only): the ``amass`` export preset and
reading AMASS files back in our frame.

What is written (``take_to_amass``, ``write_amass``; the facts behind it are in
``docs/amass.md``): one ``.npz``, float64 arrays, no pickled objects:

==================  ==========  =====================================================
array               shape       meaning
==================  ==========  =====================================================
poses               (T, 165)    the 55 SMPL-X joints' axis-angles in smplx's order:
                                global, body (21), jaw, left eye, right eye, left
                                hand (15), right hand (15); flat-hand convention
trans               (T, 3)      metres, AMASS's Z-up world
betas               (10,)       one body shape for the whole take
gender              () str      ``neutral``, ``male`` or ``female``
mocap_frame_rate    () float    frames per second of the rows
surface_model_type  () str      ``"smplx"``
root_orient         (T, 3)      = poses[:, 0:3]
pose_body           (T, 63)     = poses[:, 3:66]
pose_jaw            (T, 3)      = poses[:, 66:69]
pose_eye            (T, 6)      = poses[:, 69:75]
pose_hand           (T, 90)     = poses[:, 75:165]
==================  ==========  =====================================================

**Frames.** AMASS's world is Z-up (floor = XY plane). We put AMASS world =
our Blender world = ``(x, z, -y)`` of the take's OpenCV camera frame
(``AMASS_FROM_CAMERA``): what ``p2p-mocap convert`` shows with root mode
``camera`` is what AMASS tools show. Only the root changes: the global
orientation turns, ``R_g' = R @ R_g``. SMPL-X turns the body about its rest
pelvis ``J0`` (which depends on the betas), not about the origin, so the
translation must move with it: ``t' = R (J0 + t) - J0`` (reading back:
``t = R^T (J0 + t') - J0``). ``J0`` comes from the SMPL-X model file when
one is given (``rest_pelvis``); without one, ``DEFAULT_REST_PELVIS`` (the
neutral SMPL-X v1.1 template's pelvis, betas 0) is used, which is exact for
the round trip (the same ``J0`` both ways) and off by about
``|(R - I)(J0(betas) - J0(0))|`` (a few millimetres to centimetres) for a
body whose betas move its pelvis.

Not carried: expression (AMASS has none; the face is neutral), invalid rows
(filled with the nearest valid row: AMASS has no ``valid``), the camera,
per-frame betas (their mean over valid rows is written; the pelvis still
lands where the take put it). ``--root`` / ``--rest-frame`` do not apply.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import RetargetError
from .rotations import axis_angle_to_matrix, matrix_to_axis_angle

PRESET_NAME = "amass"
SUFFIX = ".npz"
SUMMARY = ("AMASS / SMPL-X Blender add-on .npz (poses (T,165), trans, betas, gender, "
           "mocap_frame_rate; Z-up world; no Blender needed)")

# Our camera frame (OpenCV: x right, y down, z forward) -> AMASS / Blender world (Z up).
AMASS_FROM_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# Pelvis of the neutral SMPL-X v1.1 template (betas 0), metres, model coordinates.
DEFAULT_REST_PELVIS = np.array([0.0031232606, -0.3514074683, 0.0120365508])

# smplx's full-pose order: take parameter -> columns, in ``poses``.
POSES_ORDER = (("global_orient", 3), ("body_pose", 63), ("jaw_pose", 3), ("leye_pose", 3),
               ("reye_pose", 3), ("left_hand_pose", 45), ("right_hand_pose", 45))
# AMASS's split keys -> slice of ``poses``.
SPLIT_KEYS = {"root_orient": slice(0, 3), "pose_body": slice(3, 66), "pose_jaw": slice(66, 69),
              "pose_eye": slice(69, 75), "pose_hand": slice(75, 165)}
AMASS_KEYS = ("poses", "trans", "betas", "gender", "mocap_frame_rate", "surface_model_type",
              *SPLIT_KEYS)
# take.py's reader marks takes read from AMASS-style files with a note starting so.
AMASS_NOTE = "AMASS-style file"


def rest_pelvis(model, betas) -> np.ndarray:
    """The rest pelvis ``J0`` of ``model`` (``smplx_model.SmplxModel``) for ``betas``
    ``(..., 10)`` -> ``(..., 3)``: row 0 of the joint regressor on the shaped template
    (as smplx computes it; expression is left out: AMASS files carry none)."""
    jreg0 = np.asarray(model.J_regressor[0], dtype=np.float64)
    base = jreg0 @ model.v_template
    dirs = np.einsum("v,vck->ck", jreg0, model.shapedirs)        # (3, 10)
    b = np.asarray(betas, dtype=np.float64)
    return base + b[..., : dirs.shape[1]] @ dirs.T


def change_frame(global_orient, transl, R, pelvis_from, pelvis_to=None):
    """Re-express an SMPL-X root in another frame ``x' = R x``.

    ``global_orient``, ``transl`` ``(T, 3)``; ``pelvis_from`` the rest pelvis of the
    body as posed by these parameters, ``pelvis_to`` that of the body that will be
    posed with the result (default the same), ``(3,)`` or ``(T, 3)``. Returns
    ``(global_orient', transl')`` so the body turns about its pelvis and the pelvis
    lands at ``R (J0 + t)``."""
    R = np.asarray(R, dtype=np.float64)
    go = np.asarray(global_orient, dtype=np.float64).reshape(-1, 3)
    t = np.asarray(transl, dtype=np.float64).reshape(-1, 3)
    j_from = np.asarray(pelvis_from, dtype=np.float64)
    j_to = j_from if pelvis_to is None else np.asarray(pelvis_to, dtype=np.float64)
    go2 = matrix_to_axis_angle(R @ axis_angle_to_matrix(go))
    t2 = (j_from + t) @ R.T - j_to
    return go2, t2


def _fill_invalid(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rows where ``valid`` is False replaced by the nearest earlier valid row (or the
    first valid row before it)."""
    idx = np.where(valid, np.arange(len(valid)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = int(np.argmax(valid))
    return a[idx]


def take_to_amass(take, model=None) -> tuple[dict, list[str]]:
    """The AMASS arrays (``AMASS_KEYS``) of ``take`` and notes on what was changed.

    ``model``: the ``SmplxModel`` of the take's gender for the exact pelvis; None:
    ``DEFAULT_REST_PELVIS`` (see the module docstring)."""
    notes: list[str] = []
    if take.body_model != "smplx":
        raise RetargetError(f"the amass preset writes SMPL-X; this take's body model is "
                            f"{take.body_model!r}")
    valid = np.asarray(take.valid, bool)
    if not valid.any():
        raise RetargetError("the take has no valid frame (nobody was found): nothing to export")
    p = {k: np.asarray(v, dtype=np.float64) for k, v in take.params.items()}
    if not valid.all():
        notes.append(f"{int((~valid).sum())} invalid frames hold the nearest valid frame's pose "
                     "(AMASS has no per-frame valid flag)")
        p = {k: _fill_invalid(v, valid) for k, v in p.items()}
    betas_rows = p["betas"]
    betas = betas_rows[valid].mean(axis=0)
    if np.ptp(betas_rows[valid], axis=0).max(initial=0.0) > 1e-9:
        notes.append("the take's betas vary per frame: their mean is written (one body "
                     "shape per AMASS file)")
    if np.abs(p["expression"][valid]).max(initial=0.0) > 0:
        notes.append("expression is not written (AMASS has none): the face is neutral")
    if model is None:
        j_take = j_file = DEFAULT_REST_PELVIS
        notes.append("no SMPL-X model file: the neutral template's rest pelvis is used for "
                     "the change of frame (give --smplx for the exact pelvis of these betas)")
    else:
        j_take, j_file = rest_pelvis(model, betas_rows), rest_pelvis(model, betas)
    go, trans = change_frame(p["global_orient"], p["transl"], AMASS_FROM_CAMERA, j_take, j_file)
    parts = dict(p, global_orient=go)
    poses = np.concatenate([parts[k].reshape(-1, c) for k, c in POSES_ORDER], axis=1)
    out = {"poses": poses, "trans": trans, "betas": betas.astype(np.float64),
           "gender": np.array(str(take.gender)),
           "mocap_frame_rate": np.array(float(take.fps), dtype=np.float64),
           "surface_model_type": np.array("smplx")}
    for k, s in SPLIT_KEYS.items():
        out[k] = np.ascontiguousarray(poses[:, s])
    return out, notes


def camera_from_amass(params: dict, pelvis=None) -> dict:
    """Take parameters read from an AMASS file (AMASS world) -> our camera frame.

    ``params``: take-style ``global_orient``, ``transl`` (T,3) and ``betas`` (T,10);
    ``pelvis``: the rest pelvis ``(3,)`` / ``(T, 3)`` of those betas, default
    ``DEFAULT_REST_PELVIS``. Returns a new dict; the other arrays are unchanged."""
    j = DEFAULT_REST_PELVIS if pelvis is None else pelvis
    go, t = change_frame(params["global_orient"], params["transl"], AMASS_FROM_CAMERA.T, j)
    return dict(params, global_orient=go, transl=t)


def with_model_pelvis(take, model):
    """A take ``take.read_take`` read from an AMASS-style file (turned about
    ``DEFAULT_REST_PELVIS``) corrected to ``model``'s exact pelvis for the file's betas;
    other takes are returned unchanged."""
    if model is None or not any(str(n).startswith(AMASS_NOTE) for n in take.notes):
        return take
    d = rest_pelvis(model, take.params["betas"]) - DEFAULT_REST_PELVIS
    # t_model = R^T (J0m + t') - J0m = t_default + (R^T - I)(J0m - J0d)
    transl = np.asarray(take.params["transl"], np.float64) + d @ AMASS_FROM_CAMERA - d
    return take.with_params({"transl": transl})


def _npz_bytes(arrays: dict) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def write_amass(take, path, *, model=None, overwrite: bool = False) -> tuple[Path, list[str]]:
    """Write ``take`` as an AMASS ``.npz`` at ``path`` atomically (never half a file;
    an existing file only with ``overwrite``). Returns the path and the notes."""
    from ..common.files import atomic_write

    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise RetargetError(f"{path}: an AMASS file name must end in {SUFFIX}")
    arrays, notes = take_to_amass(take, model)
    blob = _npz_bytes(arrays)

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            fh.write(blob)

    return atomic_write(path, write, replace=overwrite), notes


__all__ = ["AMASS_FROM_CAMERA", "AMASS_KEYS", "DEFAULT_REST_PELVIS", "PRESET_NAME",
           "camera_from_amass", "change_frame", "rest_pelvis", "take_to_amass",
           "with_model_pelvis", "write_amass"]
