# SPDX-License-Identifier: GPL-3.0-or-later
"""SMPL-X parameters -> Blender armature rest pose and pose channels (numpy only).

Spaces
------
* **SMPL-X model space**: the T-posed body, Y up, facing +Z.
* **camera space**: the take's camera, OpenCV axes (x right, y down, z forward);
  SMPL-X outputs with ``global_orient`` and ``transl`` live here.
* **Blender world / armature space**: ``(X, Y, Z) = (x, z, -y)`` of camera
  space (CAMERA_TO_BLENDER): the camera sits at the origin looking along +Y,
  Z up. The armature object is at the origin with identity transform, so
  armature space is world space.
* **rest pose**: the armature's rest pose is the SMPL-X T-pose turned upright
  (SMPLX_TO_ARMATURE: ``(x, y, z) -> (x, -z, y)``), facing -Y like any
  Blender character; the mesh's rest coordinates are turned the same way.

Bone channels
-------------
With ``B_i`` the rest orientation of bone i (``bone.matrix_local`` 3x3),
``h_i`` its rest head, and the SMPL-X local rotation ``R_i`` expressed in
armature axes (``R'_0 = C R_0 A^T`` for the root, ``R'_i = A R_i A^T`` else;
C = CAMERA_TO_BLENDER, A = SMPLX_TO_ARMATURE), Blender's pose evaluation
``M_i = M_parent Rest_parent^-1 Rest_i [L_i | l_i]`` reproduces the SMPL-X
skinning transforms exactly when

    L_i = B_i^-1 R'_i B_i                                   (rotation_quaternion)
    l_i = B_i^-1 (R'_i - I) d_i                             (location, i > 0)
    l_0 = B_0^-1 (C (J_0 + transl) + R'_0 d_0 - h_0)        (location, root)

where ``J`` are the frame's SMPL-X rest joints (they move with the face
expression, since smplx regresses joints from the expression-shaped mesh) and
``d_i = h_i - A J_i`` is how far the rig's fixed rest head is from them
(zero for a neutral face). Only the root and the bones whose joints
expressions can move get location keys.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rotations import (axis_angle_to_matrix, axis_angle_to_quaternion, matrix_to_quaternion,
                        quaternion_continuity, quaternion_multiply, quaternion_to_matrix)
from .smplx_model import (JOINT_NAMES, SMPLX_KIND, BodyKind, SmplxModel, full_pose,
                          pose_features)

CAMERA_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
SMPLX_TO_ARMATURE = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Bones with several children point at this one (when the body has it: SMPL's wrists
# have one child, the hand joint).
MAIN_CHILD = {"pelvis": "spine1", "spine3": "neck", "left_wrist": "left_middle1",
              "right_wrist": "right_middle1"}
MIN_BONE_LENGTH = 0.005  # metres
LOCATION_EPSILON = 1e-7  # metres; below this a bone's location is not keyed
_FRONT = np.array([0.0, -1.0, 0.0])
_UP = np.array([0.0, 0.0, 1.0])


def camera_to_blender(points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` camera-space points -> Blender world ``(x, z, -y)``."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def smplx_to_armature(points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` SMPL-X model-space vectors -> upright armature rest space ``(x, -z, y)``."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


@dataclass
class RigRest:
    """The rig's rest pose in armature space (metres)."""

    betas: np.ndarray          # (10,) baked into the rest shape (median of the take)
    vertices: np.ndarray       # (V, 3) shaped template, upright
    joints: np.ndarray         # (J, 3) rest joints = bone heads
    tails: np.ndarray          # (J, 3)
    roll_z: np.ndarray         # (J, 3) direction each bone's local Z axis is aligned to
    joint_expression: np.ndarray  # (J, 3, 10) d joint / d expression, armature axes
    parents: np.ndarray        # (J,)
    kind: BodyKind = SMPLX_KIND  # the body model (SMPL-X or SMPL): joint names, parameters


def bone_tails(heads: np.ndarray, parents: np.ndarray, names=JOINT_NAMES) -> np.ndarray:
    """Tails: towards the (main) child; ``head`` points up; leaves continue their parent.

    heads ``(J, 3)`` armature space -> tails ``(J, 3)``. Eyes point forward (-Y);
    feet (toe joints) point forward along the ground. Every bone is at least
    MIN_BONE_LENGTH long.
    """
    index = {n: i for i, n in enumerate(names)}
    children: dict[int, list[int]] = {i: [] for i in range(len(names))}
    for i, p in enumerate(parents):
        if p >= 0:
            children[int(p)].append(i)
    tails = np.empty_like(heads)
    for i, name in enumerate(names):
        h = heads[i]
        p = int(parents[i])
        parent_vec = h - heads[p] if p >= 0 else np.array([0.0, 0.0, 0.1])
        plen = max(np.linalg.norm(parent_vec), MIN_BONE_LENGTH)
        if MAIN_CHILD.get(name) in index:
            t = heads[index[MAIN_CHILD[name]]]
        elif name == "head":
            t = h + _UP * plen
        elif "eye" in name:
            t = h + _FRONT * max(0.3 * plen, 0.02)
        elif name.endswith("_foot"):
            flat = parent_vec * np.array([1.0, 1.0, 0.0])
            flat = flat if np.linalg.norm(flat) > 1e-6 else _FRONT
            t = h + flat / np.linalg.norm(flat) * max(0.5 * plen, 0.03)
        elif len(children[i]) == 1:
            t = heads[children[i][0]]
        else:  # other leaves: fingertips, jaw
            t = h + parent_vec / plen * max(0.75 * plen, MIN_BONE_LENGTH)
        v = t - h
        n = np.linalg.norm(v)
        if n < MIN_BONE_LENGTH:
            v = (v / n if n > 1e-9 else _UP) * MIN_BONE_LENGTH
        tails[i] = h + v
    return tails


def bone_roll_axes(heads: np.ndarray, tails: np.ndarray) -> np.ndarray:
    """Roll rule: local Z towards the front (-Y); up (+Z) for bones that point forward.

    A bone "points forward" when its direction is within ~45 deg of -Y/+Y
    (feet, eyes, jaw, some thumb bones). -> ``(J, 3)`` for ``EditBone.align_roll``.
    """
    y = tails - heads
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    along_y = np.abs(y[:, 1]) > np.sqrt(0.5)
    return np.where(along_y[:, None], _UP, _FRONT)


def rig_rest(model: SmplxModel, betas: np.ndarray) -> RigRest:
    """Rest shape, joints, tails and roll axes for ``betas (10,)``, upright in armature space."""
    betas = np.asarray(betas, dtype=np.float64).reshape(-1)
    v_shaped = model.v_template + np.einsum("k,vck->vc", betas, model.shapedirs)
    joints = model.J_regressor @ v_shaped
    heads = smplx_to_armature(joints)
    tails = bone_tails(heads, model.parents, model.kind.joint_names)
    jexpr = np.einsum("jv,vck->jck", model.J_regressor, model.exprdirs)  # (J, 3, 10)
    jexpr = np.stack([jexpr[:, 0], -jexpr[:, 2], jexpr[:, 1]], axis=1)
    return RigRest(betas=betas, vertices=smplx_to_armature(v_shaped), joints=heads, tails=tails,
                   roll_z=bone_roll_axes(heads, tails), joint_expression=jexpr,
                   parents=model.parents.copy(), kind=model.kind)


def located_bones(rest: RigRest, tol: float = LOCATION_EPSILON) -> np.ndarray:
    """``(J,) bool``: the root, and bones whose joint an expression can move."""
    jx = rest.joint_expression
    moving = (np.abs(jx).max(axis=(1, 2)) > tol if jx.size
              else np.zeros(len(rest.parents), bool))  # SMPL: no expression
    moving[0] = True
    return moving


def armature_rotations(pose_axis_angle: np.ndarray,
                       rotmats: np.ndarray | None = None) -> np.ndarray:
    """SMPL-X local rotations ``(T, J, 3)`` -> the same rotations in armature axes ``(T, J, 3, 3)``.

    Root: ``C R_0 A^T`` (model space -> camera -> Blender); others ``A R_i A^T``.
    ``rotmats``: the rotations as matrices, if already computed.
    """
    R = axis_angle_to_matrix(pose_axis_angle) if rotmats is None else rotmats
    A, C = SMPLX_TO_ARMATURE, CAMERA_TO_BLENDER
    out = A @ R @ A.T
    out[:, 0] = C @ R[:, 0] @ A.T
    return out


@dataclass
class PoseChannels:
    """Everything a take keys on the rig, per frame (T rows)."""

    quaternions: np.ndarray   # (T, J, 4) rotation_quaternion (w, x, y, z), sign-continuous
    locations: np.ndarray     # (T, J, 3) pose_bone.location (zero where not located)
    located: np.ndarray       # (J,) bool: bones whose location is keyed
    expression: np.ndarray    # (T, 10) Exp000.. shape key values ((T, 0) for SMPL)
    pose_features: np.ndarray  # (T, 486) Pose000.. shape key values ((T, 207) for SMPL)


def nearest_rotation(matrices: np.ndarray) -> np.ndarray:
    """Closest rotation (polar decomposition) of nearly orthonormal ``(..., 3, 3)`` matrices.

    Blender stores bone matrices in float32; their columns are orthonormal to ~1e-7.
    """
    u, _, vt = np.linalg.svd(np.asarray(matrices, dtype=np.float64))
    return u @ vt


def pose_channels(params: dict, rest: RigRest, bone_rest: np.ndarray,
                  rest_heads: np.ndarray | None = None,
                  with_pose_features: bool = True) -> PoseChannels:
    """Pose-bone channels and shape-key values that reproduce SMPL-X exactly.

    params: take-style arrays for T frames (``global_orient``, ``body_pose``,
    hands, jaw, eyes, ``expression``, ``transl``). ``bone_rest (J, 3, 3)``: the
    rest orientations ``B_i`` as Blender stores them (``bone.matrix_local``),
    ``rest_heads (J, 3)`` the stored heads (default ``rest.joints``). Betas in
    params are ignored: the rig has ``rest.betas`` baked in.
    ``with_pose_features=False`` skips the 486 pose-corrective values (zeros).

    ``L_i = B_i^-1 R'_i B_i`` is a conjugation, so for every bone but the root
    its axis-angle is simply ``B_i^T A aa_i`` (same angle, axis in bone axes);
    the root's quaternion is the product ``q(B_0)^-1 q(C) q(R_0) q(A)^-1 q(B_0)``.
    """
    pose = full_pose(params, rest.kind)
    T, J = pose.shape[:2]
    B = nearest_rotation(bone_rest)
    Bt = np.swapaxes(B, -1, -2)
    heads = rest.joints if rest_heads is None else np.asarray(rest_heads, dtype=np.float64)
    aa_arm = smplx_to_armature(pose)                                    # A @ aa, (T, J, 3)
    quats = axis_angle_to_quaternion(np.einsum("jab,tjb->tja", Bt, aa_arm))
    qB0, qC, qA = matrix_to_quaternion(np.stack([B[0], CAMERA_TO_BLENDER, SMPLX_TO_ARMATURE]))
    conj = np.array([1.0, -1.0, -1.0, -1.0])
    q_root_arm = quaternion_multiply(quaternion_multiply(qC, axis_angle_to_quaternion(pose[:, 0])),
                                     qA * conj)                         # R'_0 = C R_0 A^T
    quats[:, 0] = quaternion_multiply(quaternion_multiply(qB0 * conj, q_root_arm), qB0)
    quats = quaternion_continuity(quats, axis=0)

    n_expr = rest.kind.num_expression
    expr = params.get("expression") if n_expr else None
    expr = np.zeros((T, n_expr)) if expr is None else np.asarray(expr, np.float64)
    transl = params.get("transl")
    transl = np.zeros((T, 3)) if transl is None else np.asarray(transl, np.float64)
    # The frame's rest joints (armature axes), then the rig's offset from them.
    located = located_bones(rest)
    idx = np.flatnonzero(located)
    joints_f = rest.joints[idx] + np.einsum("jck,tk->tjc", rest.joint_expression[idx], expr)
    d = heads[idx] - joints_f                                           # (T, n, 3)
    Rp = axis_angle_to_matrix(aa_arm[:, idx])                           # A R_j A^T
    Rp[:, 0] = quaternion_to_matrix(q_root_arm)                         # idx[0] is the root
    locs = np.zeros((T, J, 3))
    rd = np.einsum("tjab,tjb->tja", Rp, d) - d                          # (R' - I) d
    locs[:, idx] = np.einsum("jab,tjb->tja", Bt[idx], rd)
    # Root: world position of the SMPL-X root joint, plus the rig's offset rotated.
    root_world = camera_to_blender(joints_f[:, 0] @ SMPLX_TO_ARMATURE + transl)
    p0 = root_world + rd[:, 0] + d[:, 0] - heads[0]                     # + R'_0 d_0 - h_0
    locs[:, 0] = p0 @ B[0]                                              # B_0^T p0
    if with_pose_features:
        feats = pose_features(axis_angle_to_matrix(pose))
    else:
        feats = np.zeros((T, rest.kind.num_pose_features))
    return PoseChannels(quaternions=quats, locations=locs, located=located, expression=expr,
                        pose_features=feats)


def evaluate_armature(bone_rest: np.ndarray, heads: np.ndarray, parents: np.ndarray,
                      quaternions: np.ndarray, locations: np.ndarray) -> np.ndarray:
    """What Blender's pose evaluation computes, in numpy (for tests and checks).

    Deformation matrices ``D_i = M_i Rest_i^-1`` (``(T, J, 4, 4)``) where
    ``M_i = M_parent Rest_parent^-1 Rest_i Basis_i``, all bones unconnected,
    inheriting rotation and scale (Blender's defaults).
    """
    J = len(parents)
    rest = np.zeros((J, 4, 4))
    rest[:, :3, :3] = bone_rest
    rest[:, :3, 3] = heads
    rest[:, 3, 3] = 1.0
    T = quaternions.shape[0]
    basis = np.zeros((T, J, 4, 4))
    basis[..., :3, :3] = quaternion_to_matrix(quaternions)
    basis[..., :3, 3] = locations
    basis[..., 3, 3] = 1.0
    M = np.empty_like(basis)
    rest_inv = np.linalg.inv(rest)
    for i in range(J):
        p = int(parents[i])
        if p < 0:
            M[:, i] = rest[i] @ basis[:, i]
        else:
            M[:, i] = M[:, p] @ rest_inv[p] @ rest[i] @ basis[:, i]
    return M @ rest_inv
