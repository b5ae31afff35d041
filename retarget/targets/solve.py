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
metacarpals, leaves, helpers), except extra spine and neck bones between two
mapped torso joints (UE5 spine_02/04, neck_02; Rigify's second neck bone): they
share the span's rotation by rest length, and the span is then turned so its
chord is exact (``spread=True``); twist bones add ``share``
times the source joint's twist about the limb; ``follow`` bones copy another
bone's motion. The pose-bone rotation Blender keys is then

    L_i = W_i^T D_parent^T D_i W_i                   (``rotation_quaternion``)

Root motion: the midpoint of the target's hip joints follows the rig's, its
displacement from rest scaled by the leg-length ratio ``k`` (target thigh + shin
over the rig's): ``m(t) = m_rest + k Q (m_smplx(t) - m_smplx_rest)``; the hips
bone's head is placed so its hip joints land there. With ``root_motion="root"``
the root bone carries the hips' ground-plane path.

Limb IK (``ik=True``): with ``ends=True`` each hand and foot goes where the scaled
rig puts it relative to the shoulder/hip (``limb-length ratio x`` the SMPL-X
vector), by a two-bone IK that keeps the elbow/knee plane and leaves the
hand/foot orientation as transferred; in foot-contact runs the ankle is held at
the run's mean position plus ``k`` times the source ankle's own drift, the offset
fading out over ``IK_BLEND`` frames outside the runs. Contacts come from
``contacts`` (the motion clean-up's ``cleanup.contacts.Contacts`` or
``{"left": (T,), "right": (T,)}`` masks); for a take, the clean-up's contact
finder (``take_contacts``); otherwise (a ``SourceMotion``, or no ground found) a
simple height + speed test on the source feet (``simple_contacts``).
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
_SPREAD_JOINTS = ("pelvis", "spine1", "spine2", "spine3", "neck")
LIMBS = {"left arm": ("left_shoulder", "left_elbow", "left_wrist"),
         "right arm": ("right_shoulder", "right_elbow", "right_wrist"),
         "left leg": ("left_hip", "left_knee", "left_ankle"),
         "right leg": ("right_hip", "right_knee", "right_ankle")}
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


def mm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for stacks of 3x3 matrices ``(..., 3, 3)``."""
    return np.matmul(A, B)


def mtm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A^T @ B`` for stacks of 3x3 matrices."""
    return np.matmul(np.swapaxes(A, -1, -2), B)


def mv(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``A @ v`` for stacks ``(..., 3, 3)`` and vectors ``(..., 3)`` or one ``(3,)``."""
    v = np.asarray(v)
    return np.einsum("...ij,j->...i", A, v) if v.ndim == 1 else np.einsum("...ij,...j->...i", A, v)


def sandwich(L: np.ndarray, X: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``L @ X @ R`` for one ``L``, ``R (3, 3)`` and a stack ``X (..., 3, 3)`` (BLAS)."""
    shape = X.shape
    XR = X.reshape(-1, 3) @ R                                   # rows of X times R
    XR = XR.reshape(shape)
    return np.swapaxes((np.swapaxes(XR, -1, -2).reshape(-1, 3) @ L.T).reshape(shape), -1, -2)


def global_rotations(local: np.ndarray, parents=PARENTS) -> np.ndarray:
    """``(J, T, 3, 3)`` local -> global rotations down the tree (bone-major, parents first)."""
    G = np.empty_like(local)
    G[0] = local[0]
    for i in range(1, local.shape[0]):
        G[i] = mm(G[parents[i]], local[i])
    return G


def forward_positions(G: np.ndarray, root: np.ndarray, heads: np.ndarray, parents) -> np.ndarray:
    """Posed heads ``(J, T, 3)`` from world rotation changes ``G (J, T, 3, 3)`` (bone-major),
    the posed root ``(T, 3)`` and rest heads ``(J, 3)`` (each bone rigid with its parent)."""
    J, T = G.shape[:2]
    P = np.empty((J, T, 3))
    for i in range(J):
        p = int(parents[i])
        if p < 0:
            P[i] = root if i == 0 else heads[i]
        else:
            P[i] = P[p] + mv(G[p], heads[i] - heads[p])
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
    R = axis_angle_to_matrix(np.ascontiguousarray(np.swapaxes(pose, 0, 1)))   # (J, T, 3, 3)
    G = global_rotations(R)                               # SMPL-X model axes
    Gw = sandwich(CAMERA_TO_BLENDER, G, A.T)              # C G A^T: world change from the rig rest
    transl = np.nan_to_num(np.asarray(take.params.get("transl", np.zeros((pose.shape[0], 3))),
                                      np.float64))
    root = camera_to_blender(rest.joints[0] @ A + transl)
    P = forward_positions(Gw, root, rest.joints, PARENTS)
    expr = take.params.get("expression")
    # Public layout (T, J, ...): views of the bone-major arrays the solve reads.
    return SourceMotion(rest_heads=rest.joints, rest_tails=rest.tails,
                        rotations=np.swapaxes(Gw, 0, 1), positions=np.swapaxes(P, 0, 1),
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
    world_rotation_list: list      # B arrays (T, 3, 3); rigid children share their parent's
    world_heads: np.ndarray
    shape_keys: dict = field(default_factory=dict)
    contacts: dict = field(default_factory=dict)    # side -> (T,) bool used by the IK
    scale: float = 1.0                               # leg-length ratio target / source
    notes: list = field(default_factory=list)

    @property
    def world_rotations(self) -> np.ndarray:
        """``(T, B, 3, 3)`` world rotation change of every bone from its rest."""
        return np.stack([np.asarray(d) for d in self.world_rotation_list], axis=1)


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
    """Shortest rotations taking directions ``a (..., 3)`` onto ``b (..., 3)``.
    -> ``(..., 3, 3)``."""
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
    """Twist of rotations ``R (..., 3, 3)`` about unit ``axis (3,)`` (swing-twist), radians.

    With ``q = (w, v)`` the quaternion, twist = ``2 atan2(v.axis, w)``; both scaled by
    ``4w``: ``v 4w = (R32-R23, R13-R31, R21-R12)`` and ``4w^2 = 1 + trace R``.
    """
    s = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                  R[..., 1, 0] - R[..., 0, 1]], axis=-1)
    return 2.0 * np.arctan2(s @ axis, 1.0 + np.trace(R, axis1=-2, axis2=-1))


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


def take_contacts(take, model) -> tuple:
    """Foot contacts of a take by the motion clean-up (``cleanup.contacts.find_contacts``:
    ground plane, height and speed with hysteresis). -> ``(contacts or None, note)``."""
    from ..cleanup.report import find_contacts_for_report

    contacts, why = find_contacts_for_report(take, None, model)
    return contacts, why


def _fk_order(parents, anchor: dict) -> list:
    """Bones in an order where each comes after its parent and its anchor (anchors that
    would make a cycle are dropped from ``anchor``)."""
    B = len(parents)
    done, order, left = set(), [], list(range(B))
    while left:
        rest = []
        for i in left:
            deps = [int(parents[i])] + ([anchor[i]] if i in anchor else [])
            if all(d < 0 or d in done for d in deps):
                order.append(i)
                done.add(i)
            else:
                rest.append(i)
        if len(rest) == len(left):       # only anchors can make a cycle
            anchor.pop(rest[0], None)
        left = rest
    return order


def _torso_spans(bone_joint, mapping, index, parents, excluded) -> dict:
    """Mapped torso bone -> (its span: itself and the unmapped bones up to the next mapped
    one, parents first; that next mapped bone). UE5 spine_01 -> [spine_01, spine_02]."""
    out = {}
    for i, j in bone_joint.items():
        if JOINT_NAMES[j] not in _SPREAD_JOINTS:
            continue
        c = _child_joint(j)
        cb = mapping.get(JOINT_NAMES[c]) if c is not None else None
        if cb is None:
            continue
        path, x = [], int(parents[index[cb]])
        while x >= 0 and x != i:
            path.append(x)
            x = int(parents[x])
        if x != i or not path or any(y in bone_joint or y in excluded for y in path):
            continue
        out[i] = ([i] + path[::-1], index[cb])
    return out


def _share_span(D, span, end, D_parent, H) -> None:
    """Spread the span's rotation relative to its parent over its bones by rest length,
    then turn the whole span so its chord (first head -> ``end`` head) points exactly
    where the rigid transfer put it. Writes ``D[span]`` in place."""
    first = span[0]
    rigid = D[first].copy()
    F = mtm(D_parent, rigid)                                   # relative, world-rest axes
    q = matrix_to_quaternion(F)
    angle = 2.0 * np.arctan2(np.linalg.norm(q[:, 1:], axis=-1), q[:, 0])
    axis = _unit(q[:, 1:])
    heads = [H[b] for b in span] + [H[end]]
    lengths = np.array([np.linalg.norm(heads[m + 1] - heads[m]) for m in range(len(span))])
    w = lengths / max(lengths.sum(), 1e-12)
    cur = D_parent
    for m, b in enumerate(span):
        cur = mm(cur, _axis_rotation(axis, w[m] * angle))
        D[b] = cur
    chord = sum(mv(D[b], heads[m + 1] - heads[m]) for m, b in enumerate(span))
    fix = swing(chord, mv(rigid, H[end] - H[first]))
    for b in span:
        D[b] = mm(fix, D[b])


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


def _ik_offsets(mask: np.ndarray, ankle: np.ndarray, src_ankle: np.ndarray, k: float) -> np.ndarray:
    """How far to move the target ankle ``(T, 3)`` so contact runs stay planted.

    In a run the goal is the run's mean FK ankle plus ``k`` times the source ankle's
    own drift (so a source that slides slides the same, scaled); the offset from FK
    fades to zero over ``IK_BLEND`` frames on either side (offsets are continuous).
    """
    T = mask.shape[0]
    off = np.zeros((T, 3))
    runs = _runs(mask)
    for s0, s1 in runs:
        drift = k * (src_ankle[s0:s1] - src_ankle[s0:s1].mean(axis=0))
        off[s0:s1] = ankle[s0:s1].mean(axis=0) + drift - ankle[s0:s1]
    # fades: outside runs, the nearest run end's offset times a ramp
    w_best = np.zeros(T)
    fade = np.zeros((T, 3))
    for s0, s1 in runs:
        before, after = range(max(0, s0 - IK_BLEND), s0), range(s1, min(T, s1 + IK_BLEND))
        for frames, edge in ((before, s0), (after, s1 - 1)):
            for t in frames:
                if mask[t]:
                    continue
                w = 1.0 - abs(t - edge) / (IK_BLEND + 1.0)
                if w > w_best[t]:
                    w_best[t] = w
                    fade[t] = w * off[edge]
    return np.where(mask[:, None], off, fade)


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
             *, contacts=None, ik: bool = True, ends: bool = True,
             spread: bool = True) -> RetargetedMotion:
    """Retarget a take (with its SMPL-X ``model``) or a :class:`SourceMotion` onto ``skeleton``.

    ``skeleton`` defaults to the target's reference skeleton. Mapped bones the
    skeleton lacks are skipped (noted); missing *required* ones raise one line.
    ``ik``: the limb IK pass (off: pure rotation transfer); ``ends``: within it,
    hands and feet go where the scaled source puts them (else only contacts are held).
    ``spread``: extra spine/neck bones share the bend of their span (else they follow
    rigidly); the span's chord still points exactly where the SMPL-X segment does.
    """
    notes = []
    src = take_or_source if isinstance(take_or_source, SourceMotion) else \
        source_motion(take_or_source, model)
    sk = skeleton if skeleton is not None else target.skeleton
    if sk is None:
        raise RetargetError(f"rig target {target.name!r} has no skeleton: pick a target armature")
    check_target(target, sk)
    if ik and contacts is None and not isinstance(take_or_source, SourceMotion):
        contacts, why = take_contacts(take_or_source, model)
        if why:
            notes.append(f"feet IK: {why}")
    names = sk.names
    index = sk.index()
    parents = sk.parents
    B = len(names)
    T = src.num_frames
    # Bone-major copies (views when the source came from source_motion).
    src_R = np.ascontiguousarray(np.swapaxes(src.rotations, 0, 1))     # (J, T, 3, 3)
    src_P = np.ascontiguousarray(np.swapaxes(src.positions, 0, 1))     # (J, T, 3)
    Ro = sk.object_rotation
    Wr = Ro @ sk.matrices                           # (B, 3, 3) rest frames in world
    H = sk.to_world(sk.heads)                       # (B, 3)
    Tl = sk.to_world(sk.tails)
    mapping = {j: b for j, b in target.mapping.items() if b in index}
    skipped = sorted(set(target.mapping) - set(mapping))
    if skipped:
        notes.append("not on this armature, left out: "
                     + ", ".join(target.mapping[j] for j in skipped))
    bone_joint = {index[b]: _J[j] for j, b in mapping.items()}

    # Facing: yaw taking the rig's left (hip line) onto the target's.
    yaw = (_facing(H[index[mapping["left_hip"]]], H[index[mapping["right_hip"]]])
           - _facing(src.rest_heads[_J["left_hip"]], src.rest_heads[_J["right_hip"]]))
    yaw = (yaw + np.pi) % (2 * np.pi) - np.pi
    Q = _axis_rotation(np.array([0.0, 0.0, 1.0]), yaw) if abs(yaw) > 1e-9 else np.eye(3)

    # Rest alignment S_i per mapped bone (segment onto segment, plus roll where defined).
    S = np.repeat(np.eye(3)[None], B, axis=0)
    seg_t = {}
    for i, j in bone_joint.items():
        c = _child_joint(j)
        cb = mapping.get(JOINT_NAMES[c]) if c is not None else None
        # (a mapped child that is not a descendant here is anchored to this bone below)
        if cb is not None and np.linalg.norm(H[index[cb]] - H[i]) > 1e-6:
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

    # World rotation changes D (B, T, 3, 3), parents first.
    # One (T, 3, 3) array per bone; a bone that moves rigidly with its parent (or follows
    # another bone) shares that bone's array: big rigs (faces) cost no memory or time.
    eye = np.broadcast_to(np.eye(3), (T, 3, 3))
    D: list = [None] * B
    twist = {index[b]: v for b, v in target.twist.items() if b in index}
    follow = {index[b]: index[f] for b, f in target.follow.items() if b in index and f in index}
    spans = _torso_spans(bone_joint, mapping, index, parents, set(twist) | set(follow)) \
        if spread else {}
    done = set()
    for i in range(B):
        p = int(parents[i])
        if i in done:
            continue
        if i in bone_joint:
            R = src_R[bone_joint[i]]
            if abs(yaw) > 1e-9:
                R = sandwich(Q, R, Q.T)
            D[i] = (R.reshape(-1, 3) @ S[i]).reshape(T, 3, 3)
            if i in spans:
                span, end = spans[i]
                _share_span(D, span, end, eye if p < 0 else D[p], H)
                done.update(span)
        elif i in follow and follow[i] < i:
            D[i] = D[follow[i]]
        elif p < 0:
            D[i] = eye
        elif i in twist and p in bone_joint:
            joint, share = twist[i]
            jj, pj = _J[joint], bone_joint[p]
            # Twist of the source joint's local rotation about the parent limb's axis.
            cj = _child_joint(pj)
            axis_s = _unit(src.rest_heads[cj] - src.rest_heads[pj]) if cj is not None else \
                _unit(src.rest_tails[pj] - src.rest_heads[pj])
            tau = twist_angle(mtm(src_R[int(PARENTS[jj])], src_R[jj]), axis_s)
            D[i] = mm(D[p], _axis_rotation(seg_t[p], share * tau))
        else:
            D[i] = D[p]
    for i, f in follow.items():   # follow bones listed before the bone they follow
        if f > i:
            D[i] = D[f]

    # Root motion.
    k = leg_scale(src, target, H, index)
    hips = index[mapping["pelvis"]]
    # The hip joints' midpoint follows the rig's, scaled; the hips bone sits where that
    # puts it (its own offset from the hip joints differs between skeletons, and a
    # tilting pelvis would otherwise move the leg roots and the planted feet).
    lh, rh = index[mapping["left_hip"]], index[mapping["right_hip"]]
    mid_t = 0.5 * (H[lh] + H[rh])
    mid_s = 0.5 * (src_P[_J["left_hip"]] + src_P[_J["right_hip"]])
    mid_s0 = 0.5 * (src.rest_heads[_J["left_hip"]] + src.rest_heads[_J["right_hip"]])
    P_hips = mid_t + k * (mid_s - mid_s0) @ Q.T - mv(D[hips], mid_t - H[hips])
    located = np.zeros(B, bool)
    located[hips] = True
    fixed_pos = {hips: P_hips}
    root = index.get(target.root_bone) if target.root_bone else None
    if root is not None and target.root_motion == "root" and _is_descendant(parents, hips, root):
        ground = P_hips - H[hips]
        ground[:, 2] = 0.0        # world Z is up in Blender
        fixed_pos[root] = H[root] + ground
        located[root] = True

    # Mapped bones whose SMPL-X parent's bone is not their ancestor here (a flat or odd
    # hierarchy): their head is put on that bone and keyed as a location.
    anchor = {}
    for i, j in bone_joint.items():
        pj = int(PARENTS[j])
        while pj >= 0 and JOINT_NAMES[pj] not in mapping:
            pj = int(PARENTS[pj])
        if i == hips or pj < 0:
            continue
        a = index[mapping[JOINT_NAMES[pj]]]
        if not _is_descendant(parents, i, a):
            anchor[i] = a
    order = _fk_order(parents, anchor)
    for i in anchor:
        located[i] = True

    def fk(P):
        for i in order:
            p = int(parents[i])
            if i in fixed_pos:
                P[i] = fixed_pos[i]
            elif i in anchor:
                a = anchor[i]
                P[i] = P[a] + mv(D[a], H[i] - H[a])
            elif p < 0:
                P[i] = H[i]
            else:
                P[i] = P[p] + mv(D[p], H[i] - H[p])
        return P

    P = fk(np.empty((B, T, 3)))

    # Limb IK: hands and feet where the scaled source puts them (relative to the limb's
    # root joint), and feet held still in contact runs.
    used = {}
    if ik:
        if contacts is not None:
            masks = _contact_masks(contacts, T)
        else:
            masks = simple_contacts(src)
            notes.append("feet IK: contacts found by the simple height/speed test")
        for limb, (j1, j2, j3) in LIMBS.items():
            if not all(j in mapping for j in (j1, j2, j3)):
                continue
            i1, i2, i3 = (index[mapping[j]] for j in (j1, j2, j3))
            a, b, c = P[i1], P[i2], P[i3]
            l1 = np.linalg.norm(H[i2] - H[i1])
            l2 = np.linalg.norm(H[i3] - H[i2])
            s1, s2, s3 = (_J[j] for j in (j1, j2, j3))
            ls = (np.linalg.norm(src.rest_heads[s2] - src.rest_heads[s1])
                  + np.linalg.norm(src.rest_heads[s3] - src.rest_heads[s2]))
            goal = a + ((l1 + l2) / ls) * (src_P[s3] - src_P[s1]) @ Q.T if ends else c.copy()
            side = limb.split()[0]
            if limb.endswith("leg") and side in masks:
                used[side] = masks[side]
                goal = goal + _ik_offsets(masks[side], goal, src_P[s3] @ Q.T, k)
            active = np.flatnonzero(np.linalg.norm(goal - c, axis=-1) > 1e-7)
            if not active.size:
                continue
            a, b, c = a[active], b[active], c[active]
            mid, reach = _two_bone(a, b, c, goal[active], l1, l2)
            R1 = swing(b - a, mid - a)
            R2 = swing(c - b, reach - mid)
            # Bones from the upper limb down to (not including) the hand/foot turn with it
            # (each array once: rigid children share their parent's).
            turn: dict = {}
            for x in range(B):
                if x == i3 or _is_descendant(parents, x, i3):
                    continue
                if x == i2 or _is_descendant(parents, x, i2):
                    turn[id(D[x])] = (D[x], R2)
                elif x == i1 or _is_descendant(parents, x, i1):
                    turn.setdefault(id(D[x]), (D[x], R1))
            for arr, R in turn.values():
                arr[active] = mm(R, arr[active])
            P = fk(P)

    # Follow bones sit on the bone they follow (rigidly, keeping their rest offset).
    if follow:
        for i, f in follow.items():
            fixed_pos[i] = P[f] + mv(D[f], H[i] - H[f])
            located[i] = True
        P = fk(P)

    # Pose channels.
    quats = np.zeros((T, B, 4))
    quats[..., 0] = 1.0
    for i in range(B):
        p = int(parents[i])
        if D[i] is (eye if p < 0 else D[p]):
            continue                     # rest relative to the parent: identity
        rel = D[i] if p < 0 else mtm(D[p], D[i])
        quats[:, i] = matrix_to_quaternion(sandwich(Wr[i].T, rel, Wr[i]))
    quats = quaternion_continuity(quats, axis=0)
    locs = np.zeros((T, B, 3))
    Bm = sk.matrices
    heads_arm = sk.heads
    for i in np.flatnonzero(located):
        p = int(parents[i])
        Pi = sk.from_world(P[i])
        if p < 0:
            v = Pi - heads_arm[i]
        else:
            Da = sandwich(Ro.T, D[p], Ro)                         # armature-space change
            v = (mv(np.swapaxes(Da, -1, -2), Pi - sk.from_world(P[p]))
                 - (heads_arm[i] - heads_arm[p]))
        locs[:, i] = v @ Bm[i]                                     # B_i^T v
    shape_keys = {}
    if src.expression is not None:
        for ours, theirs in target.shape_keys.items():
            if ours in EXPRESSION_KEYS:
                shape_keys[theirs] = src.expression[:, EXPRESSION_KEYS.index(ours)].copy()
    frame_index = np.arange(T) if src.frame_index is None else np.asarray(src.frame_index)
    valid = np.ones(T, bool) if src.valid is None else np.asarray(src.valid, bool)
    return RetargetedMotion(bone_names=names, rotations=quats, locations=locs, located=located,
                            root_location=sk.from_world(P[hips]), fps=src.fps,
                            frame_index=frame_index, valid=valid,
                            world_rotation_list=D,
                            world_heads=np.swapaxes(P, 0, 1), shape_keys=shape_keys,
                            contacts=used, scale=k, notes=notes)
