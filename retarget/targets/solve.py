# SPDX-License-Identifier: GPL-3.0-or-later
"""The retarget solve: SMPL-X rig motion -> pose channels of another armature (numpy only).

Frames and names (all rotations are 3x3 matrices acting on column vectors):

* Source: the SMPL-X rig exactly as Blender shows it (``posing.py``): armature =
  world, Z up, rest facing -Y, joint frames world-aligned at rest. ``dR_j(t)``
  is joint j's world rotation change from rest (its global rotation) and
  ``p_j(t)`` its posed head.
* Target: rest frames in world ``W_i = Ro B_i`` (``Ro`` the armature object's
  rotation, ``B_i`` = ``bone.matrix_local``), heads ``H_i`` (world metres).

Per mapped bone i (SMPL-X joint j) the transfer is rest-pose aware:

    D_i(t) = Q dR_j(t) Q^T S_i          world rotation change of bone i

``S_i`` turns the target bone's rest *segment* (head -> head of the bone mapped to
j's child joint, or its own tail for leaves) onto the SMPL-X segment (and, for the
pelvis, chest, head and hands, a second direction across the body or palm onto
the source's): this absorbs T- vs A-pose, bent rest elbows and knees, curled rest
fingers and any bone roll, so each mapped segment points exactly where the SMPL-X
one points. ``Q`` turns the source's facing into the target's (a yaw; identity
when both face Blender's -Y, as every importer leaves them).
Unmapped bones keep their rest pose relative to their parent (``D_i = D_parent``:
extra spine/neck bones, metacarpals, leaves, helpers); twist bones add ``share``
times the source joint's twist about the limb; ``follow`` bones copy another
bone's motion. The pose-bone rotation Blender keys is then

    L_i = W_i^T D_parent^T D_i W_i                   (``rotation_quaternion``)

Root motion: the hips bone's head follows the SMPL-X pelvis, its displacement
from rest scaled by the leg-length ratio ``k`` (target thigh + shin over the
rig's): ``P(t) = H_hips + k Q (p_pelvis(t) - p_pelvis_rest)``. With
``root_motion="root"`` the root bone carries that path's ground-plane part.

Feet IK (``ik=True``): in foot-contact runs the target ankle is held where FK put
it at the start of the run, plus ``k`` times the source ankle's own drift, by a
two-bone (thigh, shin) IK that keeps the knee's plane; weights ramp over
``IK_BLEND`` frames outside the runs. Contacts come from ``contacts`` (engineer
A's ``cleanup.contacts.Contacts`` or ``{"left": (T,), "right": (T,)}`` masks),
else from a simple height + speed test on the source feet (``simple_contacts``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RetargetError
from ..posing import CAMERA_TO_BLENDER, MAIN_CHILD, SMPLX_TO_ARMATURE, camera_to_blender, rig_rest
from ..rotations import (axis_angle_to_matrix, matrix_to_quaternion, quaternion_continuity)
from ..smplx_model import JOINT_NAMES, NUM_BETAS, NUM_EXPRESSION, PARENTS, full_pose
from .rig_target import EXPRESSION_KEYS, RigTarget, TargetSkeleton, _axis_rotation, check_target

IK_BLEND = 4                      # frames over which the feet IK fades in/out of a contact run
CONTACT_HEIGHT = 0.05             # m above the lowest foot height (simple_contacts)
CONTACT_SPEED = 0.25              # m/s
_J = {n: i for i, n in enumerate(JOINT_NAMES)}
# Second direction (across the body / palm / face) used to fix the roll of these segments.
_ACROSS = {"pelvis": ("left_hip", "right_hip"), "spine3": ("left_collar", "right_collar"),
           "head": ("left_eye_smplhf", "right_eye_smplhf"),
           "left_wrist": ("left_index1", "left_pinky1"),
           "right_wrist": ("right_pinky1", "right_index1")}


# --------------------------------------------------------------------------- source

@dataclass
class SourceMotion:
    """The SMPL-X rig's motion in Blender world (metres), what the Blender rig shows."""

    rest_heads: np.ndarray     # (J, 3) rest joints = the rig's bone heads
    rest_tails: np.ndarray     # (J, 3)
    rotations: np.ndarray      # (T, J, 3, 3) world rotation change from rest (global rotation)
    positions: np.ndarray      # (T, J, 3) posed joint positions
    fps: float = 30.0
    frame_index: np.ndarray | None = None   # (T,)
    valid: np.ndarray | None = None          # (T,) bool
    expression: np.ndarray | None = None     # (T, 10)

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]


def global_rotations(local: np.ndarray, parents=PARENTS) -> np.ndarray:
    """``(T, J, 3, 3)`` local -> global rotations down the tree (parents first)."""
    G = np.empty_like(local)
    G[:, 0] = local[:, 0]
    for i in range(1, local.shape[1]):
        G[:, i] = G[:, parents[i]] @ local[:, i]
    return G


def forward_positions(G: np.ndarray, root: np.ndarray, heads: np.ndarray, parents) -> np.ndarray:
    """Posed heads ``(T, J, 3)`` from world rotation changes ``G (T, J, 3, 3)``, the posed
    root ``(T, 3)`` and rest heads ``(J, 3)`` (each bone rigid with its parent's frame)."""
    T, J = G.shape[:2]
    P = np.empty((T, J, 3))
    for i in range(J):
        p = int(parents[i])
        if p < 0:
            P[:, i] = root if i == 0 else heads[i]
        else:
            P[:, i] = P[:, p] + G[:, p] @ (heads[i] - heads[p])
    return P


def median_betas(take) -> np.ndarray:
    valid = np.asarray(take.valid, bool)
    betas = np.asarray(take.params["betas"], dtype=np.float64).reshape(-1, NUM_BETAS)
    if not valid.any():
        raise RetargetError("the take has no valid frames (nobody was found in any frame)")
    return np.median(betas[valid], axis=0)


def source_motion(take, model, betas=None) -> SourceMotion:
    """The take on its SMPL-X rig (rest from ``betas``, default the median), in Blender world.

    The same rest and conventions as ``posing.pose_channels`` (what the Blender rig
    plays); the joints' small expression-driven offsets are left out.
    """
    betas = median_betas(take) if betas is None else np.asarray(betas, np.float64)
    rest = rig_rest(model, betas)
    pose = np.nan_to_num(full_pose(take.params))
    A = SMPLX_TO_ARMATURE
    R = axis_angle_to_matrix(pose)
    G = global_rotations(R)                               # SMPL-X model axes
    Gw = np.einsum("ab,tjbc,dc->tjad", CAMERA_TO_BLENDER, G, A)        # C G A^T: world change from the rig rest
    transl = np.nan_to_num(np.asarray(take.params.get("transl", np.zeros((pose.shape[0], 3))),
                                      np.float64))
    root = camera_to_blender(rest.joints[0] @ A + transl)
    P = forward_positions(Gw, root, rest.joints, PARENTS)
    expr = take.params.get("expression")
    return SourceMotion(rest_heads=rest.joints, rest_tails=rest.tails, rotations=Gw, positions=P,
                        fps=float(take.fps), frame_index=np.asarray(take.frame_index),
                        valid=np.asarray(take.valid, bool),
                        expression=None if expr is None else np.nan_to_num(
                            np.asarray(expr, np.float64)).reshape(-1, NUM_EXPRESSION))


# --------------------------------------------------------------------------- result

@dataclass
class RetargetedMotion:
    """Per frame, per target bone: what to key on the target armature.

    rotations: ``(T, B, 4)`` ``pose_bone.rotation_quaternion`` (w, x, y, z), sign-continuous.
    locations: ``(T, B, 3)`` ``pose_bone.location``; only ``located`` bones need keys.
    root_location: ``(T, 3)`` the hips bone's head in armature space.
    world_rotations / world_heads: ``(T, B, 3, 3)`` / ``(T, B, 3)`` the posed bones in
    world (rotation change from rest, head), for checks and the bench.
    shape_keys: target shape-key name -> ``(T,)`` values (expressions).
    """

    bone_names: tuple
    rotations: np.ndarray
    locations: np.ndarray
    located: np.ndarray
    root_location: np.ndarray
    fps: float
    frame_index: np.ndarray
    valid: np.ndarray
    world_rotations: np.ndarray
    world_heads: np.ndarray
    shape_keys: dict = field(default_factory=dict)
    contacts: dict = field(default_factory=dict)    # side -> (T,) bool used by the IK
    scale: float = 1.0                               # leg-length ratio target / source
    notes: list = field(default_factory=list)


# --------------------------------------------------------------------------- helpers

def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _frame(u: np.ndarray, v: np.ndarray | None) -> np.ndarray:
    """Orthonormal frame (columns) with first axis ``u`` and ``v`` in the first two axes."""
    e1 = _unit(u)
    if v is None or np.linalg.norm(v - (v @ e1) * e1) < 1e-9:
        helper = np.array([0.0, 0.0, 1.0]) if abs(e1[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        v = helper
    e2 = _unit(v - (v @ e1) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def align(u_from, u_to, v_from=None, v_to=None) -> np.ndarray:
    """Rotation taking ``u_from`` onto ``u_to`` exactly; with ``v_*`` also the plane of
    (u, v) onto the other's, else the shortest such rotation. -> ``(3, 3)``."""
    if v_from is None or v_to is None:
        return swing(u_from[None], u_to[None])[0]
    return _frame(u_to, v_to) @ _frame(u_from, v_from).T


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest rotations taking directions ``a (..., 3)`` onto ``b (..., 3)``. -> ``(..., 3, 3)``."""
    a, b = _unit(a), _unit(b)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.einsum("...i,...i->...", a, b)
    angle = np.arctan2(s, c)
    # Opposite directions: any perpendicular axis.
    perp = np.cross(a, np.array([1.0, 0.0, 0.0]))
    perp = np.where((np.linalg.norm(perp, axis=-1) < 1e-6)[..., None],
                    np.cross(a, np.array([0.0, 1.0, 0.0])), perp)
    axis = np.where((s < 1e-12)[..., None], perp, axis)
    return _axis_rotation(_unit(axis), angle)


def twist_angle(R: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Twist of rotations ``R (..., 3, 3)`` about unit ``axis (3,)`` (swing-twist), radians."""
    q = matrix_to_quaternion(R)
    return 2.0 * np.arctan2(q[..., 1:] @ axis, q[..., 0])


def _child_joint(j: int) -> int | None:
    name = JOINT_NAMES[j]
    if name in MAIN_CHILD:
        return _J[MAIN_CHILD[name]]
    kids = np.flatnonzero(PARENTS == j)
    return int(kids[0]) if len(kids) == 1 else None


def _is_descendant(parents: np.ndarray, i: int, anc: int) -> bool:
    p = int(parents[i])
    while p >= 0:
        if p == anc:
            return True
        p = int(parents[p])
    return False


def leg_scale(source: SourceMotion, target: RigTarget, heads_w: np.ndarray, index: dict) -> float:
    """Target thigh + shin length over the SMPL-X rig's, both legs averaged."""
    ratios = []
    for side in ("left", "right"):
        js = [f"{side}_hip", f"{side}_knee", f"{side}_ankle"]
        if not all(j in target.mapping and target.mapping[j] in index for j in js):
            continue
        th = [heads_w[index[target.mapping[j]]] for j in js]
        sh = [source.rest_heads[_J[j]] for j in js]
        lt = np.linalg.norm(th[1] - th[0]) + np.linalg.norm(th[2] - th[1])
        ls = np.linalg.norm(sh[1] - sh[0]) + np.linalg.norm(sh[2] - sh[1])
        if ls > 1e-6:
            ratios.append(lt / ls)
    return float(np.mean(ratios)) if ratios else 1.0


def _facing(points_left, points_right) -> float:
    """Yaw (radians, about world Z) of the body's left direction."""
    v = np.asarray(points_left) - np.asarray(points_right)
    return float(np.arctan2(v[1], v[0]))


def simple_contacts(source: SourceMotion, height: float = CONTACT_HEIGHT,
                    speed: float = CONTACT_SPEED) -> dict:
    """Foot contact per side ``(T,) bool``: ankle or toe joint within ``height`` of the
    take's lowest foot height (along world Z) and slower than ``speed`` m/s."""
    out = {}
    z = np.concatenate([source.positions[:, _J[f"{s}_{p}"], 2] for s in ("left", "right")
                        for p in ("ankle", "foot")])
    floor = np.percentile(z, 2) if z.size else 0.0
    for side in ("left", "right"):
        mask = np.zeros(source.num_frames, bool)
        for part, lift in (("ankle", 0.06), ("foot", 0.0)):
            p = source.positions[:, _J[f"{side}_{part}"]]
            v = np.gradient(p, axis=0) * source.fps if len(p) > 1 else np.zeros_like(p)
            low = p[:, 2] - floor < height + lift
            mask |= low & (np.linalg.norm(v, axis=-1) < speed)
        out[side] = mask
    return out


def _contact_masks(contacts, T: int) -> dict:
    if contacts is None:
        return {}
    out = {}
    for side in ("left", "right"):
        m = contacts.foot(side) if hasattr(contacts, "foot") else contacts.get(side)
        if m is None:
            continue
        m = np.asarray(m, bool).reshape(-1)
        if m.shape != (T,):
            raise RetargetError(f"contacts for the {side} foot have {m.shape[0]} frames, "
                                f"the motion {T}")
        out[side] = m
    return out


def _runs(mask: np.ndarray) -> list:
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _ik_weights(mask: np.ndarray, blend: int) -> np.ndarray:
    """1 inside contact runs, ramping to 0 over ``blend`` frames outside them."""
    T = mask.shape[0]
    if not mask.any():
        return np.zeros(T)
    idx = np.flatnonzero(mask)
    pos = np.arange(T)
    # distance to the nearest contact frame
    k = np.searchsorted(idx, pos)
    left = np.abs(pos - idx[np.clip(k - 1, 0, len(idx) - 1)])
    right = np.abs(idx[np.clip(k, 0, len(idx) - 1)] - pos)
    dist = np.minimum(left, right)
    return np.clip(1.0 - dist / (blend + 1.0), 0.0, 1.0)


def _two_bone(a, b, c, goal, l1, l2):
    """Knee and reached ankle ``(T, 3)`` for hip ``a``, knee ``b``, ankle ``c`` and ``goal``,
    the knee staying in the plane of (hip, goal, current knee)."""
    d_vec = goal - a
    d = np.linalg.norm(d_vec, axis=-1)
    n = _unit(d_vec)
    dmin, dmax = abs(l1 - l2) + 1e-6, (l1 + l2) * 0.99999
    d = np.clip(d, dmin, dmax)
    pole = (b - a) - np.einsum("ti,ti->t", b - a, n)[:, None] * n
    bad = np.linalg.norm(pole, axis=-1) < 1e-9
    if bad.any():   # knee on the hip-goal line: keep the old bend plane
        pole[bad] = (c - b)[bad] - np.einsum("ti,ti->t", (c - b)[bad], n[bad])[:, None] * n[bad]
    pole = _unit(pole)
    cos_a = np.clip((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a * cos_a)
    knee = a + l1 * (cos_a[:, None] * n + sin_a[:, None] * pole)
    return knee, a + d[:, None] * n


# --------------------------------------------------------------------------- solve

def retarget(take_or_source, model, target: RigTarget, skeleton: TargetSkeleton | None = None,
             *, contacts=None, ik: bool = True) -> RetargetedMotion:
    """Retarget a take (with its SMPL-X ``model``) or a :class:`SourceMotion` onto ``skeleton``.

    ``skeleton`` defaults to the target's reference skeleton. Mapped bones the
    skeleton lacks are skipped (noted); missing *required* ones raise one line.
    """
    src = take_or_source if isinstance(take_or_source, SourceMotion) else \
        source_motion(take_or_source, model)
    sk = skeleton if skeleton is not None else target.skeleton
    if sk is None:
        raise RetargetError(f"rig target {target.name!r} has no skeleton: pick a target armature")
    check_target(target, sk)
    notes = []
    names = sk.names
    index = sk.index()
    parents = sk.parents
    B = len(names)
    T = src.num_frames
    Ro = sk.object_rotation
    Wr = Ro @ sk.matrices                           # (B, 3, 3) rest frames in world
    H = sk.to_world(sk.heads)                       # (B, 3)
    Tl = sk.to_world(sk.tails)
    mapping = {j: b for j, b in target.mapping.items() if b in index}
    skipped = sorted(set(target.mapping) - set(mapping))
    if skipped:
        notes.append(f"not on this armature, left out: {', '.join(target.mapping[j] for j in skipped)}")
    bone_joint = {index[b]: _J[j] for j, b in mapping.items()}

    # Facing: yaw taking the rig's left (hip line) onto the target's.
    yaw = (_facing(H[index[mapping["left_hip"]]], H[index[mapping["right_hip"]]])
           - _facing(src.rest_heads[_J["left_hip"]], src.rest_heads[_J["right_hip"]]))
    Q = _axis_rotation(np.array([0.0, 0.0, 1.0]), yaw) if abs(yaw) > 1e-9 else np.eye(3)

    # Rest alignment S_i per mapped bone (segment onto segment, plus roll where defined).
    S = np.repeat(np.eye(3)[None], B, axis=0)
    seg_t = {}
    for i, j in bone_joint.items():
        c = _child_joint(j)
        cb = mapping.get(JOINT_NAMES[c]) if c is not None else None
        if cb is not None and _is_descendant(parents, index[cb], i) and \
                np.linalg.norm(H[index[cb]] - H[i]) > 1e-6:
            ut, us = H[index[cb]] - H[i], src.rest_heads[c] - src.rest_heads[j]
        else:
            ut, us = Tl[i] - H[i], src.rest_tails[j] - src.rest_heads[j]
        seg_t[i] = _unit(ut)
        vt = vs = None
        across = _ACROSS.get(JOINT_NAMES[j])
        if across and all(a in mapping for a in across):
            vt = H[index[mapping[across[0]]]] - H[index[mapping[across[1]]]]
            vs = src.rest_heads[_J[across[0]]] - src.rest_heads[_J[across[1]]]
        S[i] = align(ut, Q @ us, vt, None if vs is None else Q @ vs)

    # World rotation changes D (T, B, 3, 3), parents first.
    D = np.empty((T, B, 3, 3))
    QdRQ = np.einsum("ab,tjbc,dc->tjad", Q, src.rotations, Q)   # Q dR Q^T
    twist = {index[b]: v for b, v in target.twist.items() if b in index}
    follow = {index[b]: index[f] for b, f in target.follow.items() if b in index and f in index}
    for i in range(B):
        p = int(parents[i])
        if i in bone_joint:
            D[:, i] = QdRQ[:, bone_joint[i]] @ S[i]
        elif i in follow and follow[i] < i:
            D[:, i] = D[:, follow[i]]
        elif p < 0:
            D[:, i] = np.eye(3)
        elif i in twist:
            joint, share = twist[i]
            jj = _J[joint]
            pj = bone_joint.get(p)
            if pj is None:   # twist bone not under a mapped limb bone: plain follow
                D[:, i] = D[:, p]
                continue
            # Twist of the source joint's local rotation about the parent limb's axis.
            cj = _child_joint(pj)
            axis_s = _unit(src.rest_heads[cj] - src.rest_heads[pj]) if cj is not None else \
                _unit(src.rest_tails[pj] - src.rest_heads[pj])
            jp = int(PARENTS[jj])
            local = np.swapaxes(src.rotations[:, jp], -1, -2) @ src.rotations[:, jj]
            tau = twist_angle(local, axis_s)
            axis_t = seg_t.get(p, _unit(Tl[i] - H[i]))
            D[:, i] = D[:, p] @ _axis_rotation(axis_t, share * tau)
        else:
            D[:, i] = D[:, p]
    # follow bones listed before the bone they follow
    for i, f in follow.items():
        if f > i:
            D[:, i] = D[:, f]

    # Root motion.
    k = leg_scale(src, target, H, index)
    hips = index[mapping["pelvis"]]
    P_hips = H[hips] + k * (src.positions[:, 0] - src.rest_heads[0]) @ Q.T
    located = np.zeros(B, bool)
    located[hips] = True
    fixed_pos = {hips: P_hips}
    root = index.get(target.root_bone) if target.root_bone else None
    if root is not None and target.root_motion == "root" and _is_descendant(parents, hips, root):
        ground = P_hips - H[hips]
        ground[:, 2] = 0.0        # world Z is up in Blender
        fixed_pos[root] = H[root] + ground
        located[root] = True

    def fk(D):
        P = np.empty((T, B, 3))
        for i in range(B):
            p = int(parents[i])
            if i in fixed_pos:
                P[:, i] = fixed_pos[i]
            elif p < 0:
                P[:, i] = H[i]
            else:
                P[:, i] = P[:, p] + D[:, p] @ (H[i] - H[p])
        return P

    P = fk(D)

    # Feet IK in contact runs.
    used = {}
    if ik:
        masks = _contact_masks(contacts, T) if contacts is not None else simple_contacts(src)
        for side in ("left", "right"):
            js = [f"{side}_hip", f"{side}_knee", f"{side}_ankle"]
            if side not in masks or not all(j in mapping for j in js):
                continue
            i1, i2, i3 = (index[mapping[j]] for j in js)
            mask = masks[side]
            used[side] = mask
            if not mask.any():
                continue
            w = _ik_weights(mask, IK_BLEND)
            a, b, c = P[:, i1], P[:, i2], P[:, i3]
            goal = c.copy()
            src_ankle = src.positions[:, _J[f"{side}_ankle"]] @ Q.T
            for s0, s1 in _runs(mask):
                goal[s0:s1] = c[s0] + k * (src_ankle[s0:s1] - src_ankle[s0])
            # ramps: hold the run's ends
            run_goal = goal.copy()
            for s0, s1 in _runs(mask):
                lo, hi = max(0, s0 - IK_BLEND), min(T, s1 + IK_BLEND)
                run_goal[lo:s0] = goal[s0]
                run_goal[s1:hi] = goal[s1 - 1]
            g = c + w[:, None] * (run_goal - c)
            active = w > 0
            l1 = np.linalg.norm(H[i2] - H[i1])
            l2 = np.linalg.norm(H[i3] - H[i2])
            knee, reach = _two_bone(a[active], b[active], c[active], g[active], l1, l2)
            R1 = swing(b[active] - a[active], knee - a[active])
            R2 = swing(c[active] - b[active], reach - knee)
            # Bones from the thigh down to (not including) the ankle turn with the IK.
            chain_thigh = [x for x in range(B) if x == i1 or (_is_descendant(parents, x, i1)
                           and not _is_descendant(parents, x, i2) and x != i2)]
            chain_shin = [x for x in range(B) if x == i2 or (_is_descendant(parents, x, i2)
                          and not _is_descendant(parents, x, i3) and x != i3)]
            for x in chain_thigh:
                D[active, x] = R1 @ D[active, x]
            for x in chain_shin:
                D[active, x] = R2 @ D[active, x]
        if used:
            P = fk(D)

    # Follow bones sit on the bone they follow (rigidly, keeping their rest offset).
    for i, f in follow.items():
        fixed_pos[i] = P[:, f] + D[:, f] @ (H[i] - H[f])
        located[i] = True
    if follow:
        P = fk(D)

    # Pose channels.
    Wr_t = np.swapaxes(Wr, -1, -2)
    rel = np.empty_like(D)
    for i in range(B):
        p = int(parents[i])
        rel[:, i] = D[:, i] if p < 0 else np.swapaxes(D[:, p], -1, -2) @ D[:, i]
    L = np.einsum("bij,tbjk,bkl->tbil", Wr_t, rel, Wr)
    quats = quaternion_continuity(matrix_to_quaternion(L), axis=0)
    locs = np.zeros((T, B, 3))
    Bm = sk.matrices
    heads_arm = sk.heads
    P_arm = sk.from_world(P)
    for i in np.flatnonzero(located):
        p = int(parents[i])
        if p < 0:
            v = P_arm[:, i] - heads_arm[i]
        else:
            Da = np.einsum("ab,tbc,dc->tad", Ro.T, D[:, p], Ro.T)   # armature-space change
            v = np.einsum("tba,tb->ta", Da, P_arm[:, i] - P_arm[:, p]) - (heads_arm[i] - heads_arm[p])
        locs[:, i] = v @ Bm[i]                                     # B_i^T v
    shape_keys = {}
    if src.expression is not None:
        for ours, theirs in target.shape_keys.items():
            if ours in EXPRESSION_KEYS:
                shape_keys[theirs] = src.expression[:, EXPRESSION_KEYS.index(ours)].copy()
    frame_index = np.arange(T) if src.frame_index is None else np.asarray(src.frame_index)
    valid = np.ones(T, bool) if src.valid is None else np.asarray(src.valid, bool)
    return RetargetedMotion(bone_names=names, rotations=quats, locations=locs, located=located,
                            root_location=P_arm[:, hips], fps=src.fps, frame_index=frame_index,
                            valid=valid, world_rotations=D, world_heads=P, shape_keys=shape_keys,
                            contacts=used, scale=k, notes=notes)
