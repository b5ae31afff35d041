# SPDX-License-Identifier: GPL-3.0-or-later
"""Posed joints, global joint rotations and foot points of a take (numpy only).

The world is the take's camera frame (OpenCV axes, metres), like ``take.transl``.
The body shape is the take's median ``betas`` over valid rows (what the rig uses),
without expression, so the rest joints are computed once for the whole take; the
forward kinematics (``smplx_model.global_transforms``) is vectorised over T.

Foot points: four points per frame, ``left_heel``, ``left_toes``, ``right_heel``,
``right_toes``. Each is the mean of a few sole vertices picked once from the rest
mesh (``foot_vertex_ids``): the vertices skinned mostly to a foot (ankle or toe
joint), within ``SOLE_BAND`` of that foot's lowest vertex, and of those the
rearmost (heel) or frontmost (toes) ``SOLE_FRACTION``. Only those vertices are
skinned per frame (linear blend skinning without pose correctives), never the mesh.
This works on the real SMPL-X layout and the stand-in alike (both face +Z, Y up).

SMPL takes (``take.body_model == "smpl"``, I2L-MeshNet) work the same with an SMPL
model (``smplx_model.load_body_model(path, "smpl")``): SMPL's 24 joints begin with the
SMPL-X body's 22 (same names and order: ankles, ``*_foot`` = toe bases), so the leg
chains and the joint indices here are the same; the sole vertices are picked from
the SMPL mesh by the same rule. ``motion.joints`` then has 24 joints.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..rotations import axis_angle_to_matrix
from ..smplx_model import (JOINT_NAMES, NUM_BETAS, SMPLX_KIND, BodyKind, SmplxModel, full_pose,
                           global_transforms, rest_joints, skinning_transforms)

FOOT_POINTS = ("left_heel", "left_toes", "right_heel", "right_toes")
JOINT = {name: i for i, name in enumerate(JOINT_NAMES)}
LEG_CHAINS = {  # side -> (hip, knee, ankle, foot) joint indices
    "left": (JOINT["left_hip"], JOINT["left_knee"], JOINT["left_ankle"], JOINT["left_foot"]),
    "right": (JOINT["right_hip"], JOINT["right_knee"], JOINT["right_ankle"],
              JOINT["right_foot"]),
}
SOLE_BAND = 0.015       # m above the foot's lowest rest vertex that count as sole
SOLE_FRACTION = 0.25    # rearmost / frontmost share of the sole for heel / toes
MIN_SOLE_VERTS = 3


@dataclass(frozen=True)
class TakeMotion:
    """What a take's body does, per row. World = the take's camera frame (OpenCV, metres)."""

    joints: np.ndarray        # (T, J, 3) posed joint positions, transl included
    rotations: np.ndarray     # (T, J, 3, 3) global joint rotations
    foot_points: dict         # FOOT_POINTS name -> (T, 3)
    valid: np.ndarray         # (T,) bool
    fps: float                # rows per second (take.fps / take.stride)
    rest: np.ndarray | None = None   # (J, 3) rest joints used (median betas)
    # FOOT_POINTS name -> (u (3,), v (3,)): the point is ankle + R_ankle u + R_foot v
    # (linear blend skinning of its vertices by the ankle and toe joints; foot_offsets)
    foot_offsets: dict | None = None

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


def median_betas(take) -> np.ndarray:
    """The take's median betas over valid rows (all rows if none is valid). -> ``(10,)``."""
    b = np.asarray(take.params.get("betas", np.zeros((take.num_frames, NUM_BETAS))), float)
    v = np.asarray(take.valid, bool)
    rows = b[v] if v.any() else b
    return np.median(rows, axis=0) if rows.shape[0] else np.zeros(NUM_BETAS)


@lru_cache(maxsize=8)
def _foot_vertex_ids_cached(model_id: int, model) -> dict:
    weights = model.lbs_weights
    v = model.v_template
    out = {}
    for side in ("left", "right"):
        _, _, ankle, foot = LEG_CHAINS[side]
        owner = np.argmax(weights, axis=1)
        ids = np.flatnonzero((owner == ankle) | (owner == foot))
        if ids.size < 2 * MIN_SOLE_VERTS:
            raise ValueError(f"the body model has too few {side} foot vertices")
        y = v[ids, 1]
        sole = ids[y <= y.min() + SOLE_BAND]
        if sole.size < 2 * MIN_SOLE_VERTS:
            sole = ids[np.argsort(y)[:4 * MIN_SOLE_VERTS]]
        z = v[sole, 2]  # model faces +Z: heel = low z, toes = high z
        k = max(MIN_SOLE_VERTS, int(round(SOLE_FRACTION * sole.size)))
        order = np.argsort(z)
        out[f"{side}_heel"] = np.sort(sole[order[:k]])
        out[f"{side}_toes"] = np.sort(sole[order[-k:]])
    return out


def foot_vertex_ids(model: SmplxModel) -> dict:
    """FOOT_POINTS name -> sole vertex ids ``(n,)`` of the rest mesh (see module docstring)."""
    return _foot_vertex_ids_cached(id(model), model)


def skin_points(model: SmplxModel, ids: np.ndarray, betas: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Linear blend skinning of a few vertices. ids ``(n,)``, betas ``(10,)``,
    A ``(T, J, 4, 4)`` skinning transforms -> ``(T, n, 3)`` (no transl, no correctives)."""
    v = model.v_template[ids] + np.einsum("k,vck->vc", betas, model.shapedirs[ids])
    w = model.lbs_weights[ids]
    cols = np.flatnonzero(np.abs(w).max(axis=0) > 0)      # the few joints that move them
    M = np.einsum("vj,tjab->tvab", w[:, cols], A[:, cols, :3, :], optimize=True)
    return np.einsum("tvab,vb->tva", M[..., :3], v) + M[..., 3]


def foot_offsets(model: SmplxModel, betas: np.ndarray, rest: np.ndarray) -> dict:
    """FOOT_POINTS name -> ``(u, v)`` with ``point = ankle + R_ankle u + R_foot v``.

    For a vertex skinned by the ankle (weight a) and toe joint (weight f), LBS gives
    ``a (A + R_a (x - J_a)) + f (F + R_f (x - J_f))`` with ``F = A + R_a (J_f - J_a)``;
    weights are renormalised over those two joints (the rest is tiny on a sole) and
    the point is the mean of its vertices."""
    out = {}
    for name, ids in foot_vertex_ids(model).items():
        _, _, ankle, foot = LEG_CHAINS[name.split("_")[0]]
        x = model.v_template[ids] + np.einsum("k,vck->vc", betas, model.shapedirs[ids])
        a, f = model.lbs_weights[ids, ankle], model.lbs_weights[ids, foot]
        tot = np.maximum(a + f, 1e-9)
        a, f = a / tot, f / tot
        u = (a[:, None] * (x - rest[ankle]) + f[:, None] * (rest[foot] - rest[ankle])).mean(0)
        v = (f[:, None] * (x - rest[foot])).mean(0)
        out[name] = (u, v)
    return out


def pose_rotations(params: dict, kind: BodyKind = SMPLX_KIND) -> np.ndarray:
    """Local rotation matrices of the model's joints. -> ``(T, 55, 3, 3)`` (SMPL: 24)."""
    return axis_angle_to_matrix(full_pose(params, kind))


def forward_kinematics(local: np.ndarray, rest: np.ndarray, parents: np.ndarray,
                       transl: np.ndarray):
    """local ``(T, J, 3, 3)``, rest ``(J, 3)``, transl ``(T, 3)`` ->
    (joints ``(T, J, 3)``, global rotations ``(T, J, 3, 3)``, G ``(T, J, 4, 4)``)."""
    G = global_transforms(local, rest, parents)
    return G[..., :3, 3] + transl[:, None], G[..., :3, :3], G


def motion_from_params(params: dict, valid, fps: float, model: SmplxModel,
                       betas: np.ndarray) -> TakeMotion:
    """``TakeMotion`` of take-style parameter arrays with one body shape ``betas (10,)``."""
    betas = np.asarray(betas, float).reshape(NUM_BETAS)
    rest = rest_joints(model, betas)
    local = pose_rotations(params, model.kind)
    transl = np.asarray(params["transl"], float)
    joints, rots, G = forward_kinematics(local, rest, model.parents, transl)
    A = skinning_transforms(G, rest)
    feet = {name: skin_points(model, ids, betas, A).mean(axis=1) + transl
            for name, ids in foot_vertex_ids(model).items()}
    return TakeMotion(joints=joints, rotations=rots, foot_points=feet,
                      valid=np.asarray(valid, bool).copy(), fps=float(fps), rest=rest,
                      foot_offsets=foot_offsets(model, betas, rest))


def model_problem(take, model) -> str | None:
    """Why ``model`` cannot compute ``take``'s motion (one line), or None: the take's
    ``body_model`` ("smplx" or "smpl") must be the model's kind."""
    body = getattr(take, "body_model", "smplx")
    kind = getattr(model, "kind", SMPLX_KIND)
    if body not in ("smplx", "smpl"):
        return f"motion clean-up needs an SMPL-X or SMPL take, this one is {body!r}"
    if body != kind.name:
        return (f"the take is {'SMPL-X' if body == 'smplx' else 'SMPL'} but the body model "
                f"given is {kind.label}")
    return None


def take_motion(take, model: SmplxModel) -> TakeMotion:
    """The motion of an SMPL-X or SMPL take (``retarget.take.Take``) with ``model`` (of
    the take's body model).

    Rows with ``valid=False`` are computed too (their values are junk); look at
    ``motion.valid``. Raises RetargetError for a take whose body model is not
    ``model``'s.
    """
    from ..errors import RetargetError

    why = model_problem(take, model)
    if why is not None:
        raise RetargetError(why)
    return motion_from_params(take.params, take.valid, float(take.fps) / take.stride, model,
                              median_betas(take))
