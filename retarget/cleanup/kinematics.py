# SPDX-License-Identifier: GPL-3.0-or-later
"""Posed joints, global joint rotations and foot points of a take (numpy only).

The world is the take's camera frame (OpenCV axes, metres), like ``take.transl``.
The body shape is the take's median ``betas`` over valid rows (what the rig uses),
without expression, so the rest joints are computed once for the whole take; the
forward kinematics (``body_kinematics``) is vectorised over T.

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
the SMPL mesh by the same rule.

Only the body's first 22 joints (``BODY_JOINTS``, pelvis to wrists: all the
clean-up looks at) are posed, with 3x3 rotations (``body_kinematics``), and each
foot point is its vertices' skinning reduced to a few joints
(``mean_point_skinning``): about 0.1 ms per frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..rotations import axis_angle_to_matrix
from ..smplx_model import (JOINT_NAMES, NUM_BETAS, SMPLX_KIND, BodyKind, SmplxModel, full_pose,
                           global_transforms, rest_joints)

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
BODY_JOINTS = 22        # pelvis .. right_wrist: the joints SMPL-X and SMPL share, all posed here


@dataclass(frozen=True)
class TakeMotion:
    """What a take's body does, per row. World = the take's camera frame (OpenCV, metres)."""

    joints: np.ndarray        # (T, 22, 3) posed body joints (BODY_JOINTS), transl included
    rotations: np.ndarray     # (T, 22, 3, 3) their global rotations
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


def mean_point_skinning(model: SmplxModel, ids: np.ndarray, betas: np.ndarray,
                        rest: np.ndarray, num_joints: int) -> tuple:
    """The mean of the vertices ``ids`` under linear blend skinning, reduced to its joints:
    ``point = sum_j R_j m_j + c_j P_j`` for the global rotations ``R_j`` and positions
    ``P_j`` of the joints ``cols`` (``c_j`` the vertices' mean weight, ``m_j`` their
    mean weighted rest offset from the joint). Exact (LBS is linear); weights on
    joints from ``num_joints`` on are dropped (none on a sole).
    -> (cols ``(k,)``, m ``(k, 3)``, c ``(k,)``)."""
    x = model.v_template[ids] + np.einsum("k,vck->vc", betas, model.shapedirs[ids])
    w = model.lbs_weights[ids, :num_joints]
    cols = np.flatnonzero(np.abs(w).max(axis=0) > 0)
    c = w[:, cols].mean(axis=0)
    m = np.einsum("vj,vb->jb", w[:, cols], x) / len(ids) - c[:, None] * rest[cols]
    return cols, m, c


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


def pose_rotations(params: dict, kind: BodyKind = SMPLX_KIND,
                   num_joints: int | None = None) -> np.ndarray:
    """Local rotation matrices of the model's joints (the first ``num_joints``).
    -> ``(T, 55, 3, 3)`` (SMPL: 24)."""
    aa = full_pose(params, kind)
    return axis_angle_to_matrix(aa if num_joints is None else aa[:, :num_joints])


def forward_kinematics(local: np.ndarray, rest: np.ndarray, parents: np.ndarray,
                       transl: np.ndarray):
    """local ``(T, J, 3, 3)``, rest ``(J, 3)``, transl ``(T, 3)`` ->
    (joints ``(T, J, 3)``, global rotations ``(T, J, 3, 3)``, G ``(T, J, 4, 4)``)."""
    G = global_transforms(local, rest, parents)
    return G[..., :3, 3] + transl[:, None], G[..., :3, :3], G


def body_kinematics(local: np.ndarray, rest: np.ndarray, parents: np.ndarray):
    """Forward kinematics of the first ``J`` joints with 3x3 rotations and positions (no
    4x4 matrices). local ``(T, J, 3, 3)``, rest ``(>=J, 3)`` -> (positions ``(T, J, 3)``
    without transl, global rotations ``(T, J, 3, 3)``)."""
    T, J = local.shape[:2]
    R = np.empty_like(local)
    P = np.empty((T, J, 3))
    R[:, 0] = local[:, 0]
    P[:, 0] = rest[0]
    for i in range(1, J):  # parents come before children
        p = parents[i]
        np.matmul(R[:, p], local[:, i], out=R[:, i])
        P[:, i] = P[:, p] + R[:, p] @ (rest[i] - rest[p])
    return P, R


def motion_from_params(params: dict, valid, fps: float, model: SmplxModel,
                       betas: np.ndarray) -> TakeMotion:
    """``TakeMotion`` of take-style parameter arrays with one body shape ``betas (10,)``.
    Only the body's first ``BODY_JOINTS`` joints are posed (what the clean-up uses)."""
    betas = np.asarray(betas, float).reshape(NUM_BETAS)
    rest = rest_joints(model, betas)
    local = pose_rotations(params, model.kind, BODY_JOINTS)
    transl = np.asarray(params["transl"], float)
    P, rots = body_kinematics(local, rest, model.parents)
    feet = {}
    for name, ids in foot_vertex_ids(model).items():
        cols, m, c = mean_point_skinning(model, ids, betas, rest, BODY_JOINTS)
        feet[name] = (np.einsum("tjab,jb->ta", rots[:, cols], m)
                      + np.einsum("j,tja->ta", c, P[:, cols]) + transl)
    return TakeMotion(joints=P + transl[:, None], rotations=rots, foot_points=feet,
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
