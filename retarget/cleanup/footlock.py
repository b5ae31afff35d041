# SPDX-License-Identifier: GPL-3.0-or-later
"""Foot locking: planted feet stay put (numpy only, vectorised over frames).

For each contact run of a foot (heel or toes on the ground, ``Contacts.foot``):

* the **lock**: while the heel is down, the ankle's position and the ankle's and
  toe joint's global rotations are held at their median / mean over the heel's
  rows (where the foot was planted, robust to per-frame noise), lowered or raised
  so the lower of heel and toes touches the ground; while only the toes are down
  (push-off, or a run on the toes) the toes stay where they are and the foot turns
  about them as estimated;
* a **weight** ``w`` is 1 inside the run and ramps to 0 over ``blend_frames``
  frames before and after it (smoothstep); targets are ``(1-w) estimate + w lock``
  (rotations by normalised quaternion blend);
* the **root** is moved by the low-passed, weight-averaged difference between the
  locks and the estimated ankles, so the body does not drift over planted feet
  and the legs need not stretch;
* each leg is then solved with **analytic two-bone IK** (hip -> knee -> ankle) to
  reach its target, the knee kept in the plane of the estimate's knee (its pole),
  thigh and shin lengths fixed; the ankle's and toe's local rotations are set so
  their global rotations are the targets.
* optional **penetration fix**: an ankle whose heel or toes would be below the
  ground is raised along the ground normal by that depth (outside contacts too;
  not while only the toes are held, which would make them slide).

Only ``global``-free quantities change: ``body_pose`` of hips, knees, ankles and
feet, and ``transl``.
"""
from __future__ import annotations

import numpy as np

from ..rotations import matrix_to_axis_angle, matrix_to_quaternion, quaternion_to_matrix
from .contacts import runs
from .kinematics import BODY_JOINTS, LEG_CHAINS, pose_rotations

ROOT_CUTOFF_HZ = 2.0    # low-pass of the root correction
_EPS = 1e-9


def _unit(v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, _EPS)


def lock_weights(mask: np.ndarray, blend: int) -> np.ndarray:
    """``(T,)`` weights: 1 on ``mask``, smoothstep ramps of ``blend`` frames outside it."""
    m = np.asarray(mask, bool)
    T = m.shape[0]
    idx = np.flatnonzero(m)
    if idx.size == 0:
        return np.zeros(T)
    if blend <= 0:
        return m.astype(float)
    # distance (frames) to the nearest locked frame
    t = np.arange(T)
    pos = np.searchsorted(idx, t)
    left = idx[np.clip(pos - 1, 0, idx.size - 1)]
    right = idx[np.clip(pos, 0, idx.size - 1)]
    d = np.minimum(np.abs(t - left), np.abs(t - right)).astype(float)
    x = np.clip(1.0 - d / (blend + 1.0), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _mean_rotation(R: np.ndarray) -> np.ndarray:
    """Chordal mean of ``(n, 3, 3)`` rotations -> ``(3, 3)``."""
    u, _, vt = np.linalg.svd(R.sum(axis=0))
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _blend_rotations(Ra, Rb, w):
    """Normalised quaternion blend ``(T, 3, 3)`` x2, ``w (T,)`` -> ``(T, 3, 3)``."""
    qa, qb = matrix_to_quaternion(Ra), matrix_to_quaternion(Rb)
    qb = np.where((qa * qb).sum(-1, keepdims=True) < 0, -qb, qb)
    return quaternion_to_matrix(qa * (1 - w)[:, None] + qb * w[:, None])


def _lowpass(x: np.ndarray, fps: float, hz: float) -> np.ndarray:
    from ..smoothing import filter_series

    return filter_series(x, fps, "butterworth", hz)


POLE_BIAS_M = 0.02   # a nearly straight knee bends towards ``forward``


def two_bone_ik(H, K, target, l1, l2, forward=None):
    """Analytic two-bone IK. Hip H, knee K, target ``(T, 3)``; l1, l2 bone lengths.

    -> (new knee ``(T, 3)``, reached ankle ``(T, 3)``, pole ``(T, 3)``); the knee stays
    in the plane through H, target and the estimate's knee (its pole). ``forward
    (T, 3)``: the knee's front, added with ``POLE_BIAS_M`` so a straight leg (no
    pole to see) bends forwards, not in a direction its noise picks."""
    d_vec = target - H
    d = np.linalg.norm(d_vec, axis=-1)
    u = d_vec / np.maximum(d, _EPS)[:, None]
    d = np.clip(d, abs(l1 - l2) + 1e-4, (l1 + l2) * 0.9999)
    k = K - H
    if forward is not None:
        k = k + POLE_BIAS_M * _unit(forward)
    pole = k - (k * u).sum(-1, keepdims=True) * u
    pole = _unit(pole)
    a = (l1 * l1 - l2 * l2 + d * d) / (2 * d)
    h = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    K2 = H + a[:, None] * u + h[:, None] * pole
    return K2, H + d[:, None] * u, pole


def bone_frame(direction, pole):
    """Orthonormal frames ``(T, 3, 3)`` with columns (direction, pole-ish, cross)."""
    e1 = _unit(direction)
    e2 = _unit(pole - (pole * e1).sum(-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def lock_feet(params: dict, motion, contacts, model, *, blend_frames: int = 4,
              penetration_fix: bool = True, root_correction: bool = True):
    """Foot-locked copies of ``params`` (take-style arrays, the ones ``motion`` was
    computed from with ``motion.rest``). -> (new params, lock weights ``(T, 2)``)."""
    T = motion.num_frames
    ground = contacts.ground
    n = ground.normal
    rest = motion.rest
    parents = model.parents
    rots = motion.rotations
    joints = motion.joints
    valid = np.asarray(motion.valid, bool)
    out = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}

    sides = ("left", "right")
    weights = np.zeros((T, 2))
    tgt_pos, tgt_rot = {}, {}
    for s, side in enumerate(sides):
        hip, knee, ankle, foot = LEG_CHAINS[side]
        mask = contacts.foot(side) & valid
        heel = contacts.contact[:, list(contacts.feet).index(f"{side}_heel")] & mask
        w = lock_weights(mask, blend_frames) * valid
        wr = np.minimum(lock_weights(heel, blend_frames), w)   # rotation held: heel down
        weights[:, s] = w
        (u_heel, v_heel), (u_toes, v_toes) = (_point_offsets(motion, side, part)
                                              for part in ("heel", "toes"))
        toe_lock = np.zeros((T, 3))
        lock_Ra, lock_Rf = rots[:, ankle].copy(), rots[:, foot].copy()
        for a, b in runs(mask):
            hr = np.flatnonzero(heel[a:b]) + a
            if hr.size:
                # heel down: the foot is held where it was planted (robust centre over
                # the heel's rows), flat as it was then, its lower point on the ground
                p = np.median(joints[hr, ankle], axis=0)
                Ra, Rf = _mean_rotation(rots[hr, ankle]), _mean_rotation(rots[hr, foot])
                tp = p + Ra @ u_toes + Rf @ v_toes
                low = min(ground.height(p + Ra @ u_heel + Rf @ v_heel), ground.height(tp))
                toe_lock[a:b] = tp - low * n
                lock_Ra[a:b], lock_Rf[a:b] = Ra, Rf
            else:
                # toes only: they stay put, the foot turns about them as estimated
                tp = np.median(motion.foot_points[f"{side}_toes"][a:b], axis=0)
                toe_lock[a:b] = tp - ground.height(tp) * n
        # spread each lock into the blend ramps around its run
        toe_lock, lock_Ra, lock_Rf = _spread(mask, w, toe_lock, lock_Ra, lock_Rf)
        Ra_t = _blend_rotations(rots[:, ankle], lock_Ra, wr)
        Rf_t = _blend_rotations(rots[:, foot], lock_Rf, wr)
        # the ankle where the (possibly turning) foot keeps its toes on their lock
        ankle_lock = toe_lock - np.einsum("tij,j->ti", Ra_t, u_toes) - np.einsum(
            "tij,j->ti", Rf_t, v_toes)
        tgt_pos[side] = ankle_lock
        tgt_rot[side] = (Ra_t, Rf_t, wr)

    # root correction: weighted mean of (lock - estimate) over the feet, low-passed
    shift = np.zeros((T, 3))
    if root_correction:
        wsum = weights.sum(1)
        num = sum(weights[:, s, None] * (tgt_pos[side] - joints[:, LEG_CHAINS[side][2]])
                  for s, side in enumerate(sides))
        shift = np.where(wsum[:, None] > 1e-6, num / np.maximum(wsum, 1e-6)[:, None], 0.0)
        shift *= 0.5 * np.clip(wsum, 0, 2)[:, None]   # both feet planted: all of it
        shift = _lowpass(shift, motion.fps, ROOT_CUTOFF_HZ) if T >= 5 else shift
        shift[~valid] = 0.0
    out["transl"] = out["transl"] + shift
    J = joints + shift[:, None]

    local = pose_rotations(out, model.kind, BODY_JOINTS)        # (T, 22, 3, 3)
    for s, side in enumerate(sides):
        hip, knee, ankle, foot = LEG_CHAINS[side]
        w = weights[:, s]
        H, K, A = J[:, hip], J[:, knee], J[:, ankle]
        target = (1 - w)[:, None] * A + w[:, None] * tgt_pos[side]
        Ra_t, Rf_t, wr = tgt_rot[side]
        if penetration_fix:
            # heel / toes of the target foot pose; raise the ankle out of the ground
            (uh, vh), (ut, vt) = (_point_offsets(motion, side, part) for part in ("heel", "toes"))
            rel_h = np.einsum("tij,j->ti", Ra_t, uh) + np.einsum("tij,j->ti", Rf_t, vh)
            rel_t = np.einsum("tij,j->ti", Ra_t, ut) + np.einsum("tij,j->ti", Rf_t, vt)
            low = np.minimum(ground.height(target + rel_h), ground.height(target + rel_t))
            # not while only the toes are held: they stay, a heel the estimate puts a
            # little below the ground is the lesser evil
            lift = np.maximum(-low, 0.0) * (1.0 - w * (1.0 - wr))
            target = target + lift[:, None] * n
        active = valid & ((w > 0) | (penetration_fix & (np.linalg.norm(target - A, axis=-1)
                                                          > 1e-6)))
        if not active.any():
            continue
        l1 = np.linalg.norm(rest[knee] - rest[hip])
        l2 = np.linalg.norm(rest[ankle] - rest[knee])
        K2, A2, pole = two_bone_ik(H, K, target, l1, l2, forward=rots[:, knee, :, 2])
        Rh_old, Rk_old = rots[:, hip], rots[:, knee]
        Fh_old, Fh_new = bone_frame(K - H, pole), bone_frame(K2 - H, pole)
        Fk_old = bone_frame(A - K, pole)
        Fk_new = bone_frame(A2 - K2, pole)
        Rh_new = Fh_new @ np.swapaxes(Fh_old, -1, -2) @ Rh_old
        Rk_new = Fk_new @ np.swapaxes(Fk_old, -1, -2) @ Rk_old
        Rp = rots[:, parents[hip]]
        lh = np.swapaxes(Rp, -1, -2) @ Rh_new
        lk = np.swapaxes(Rh_new, -1, -2) @ Rk_new
        la = np.swapaxes(Rk_new, -1, -2) @ Ra_t
        lf = np.swapaxes(Ra_t, -1, -2) @ Rf_t
        for j, Rl in ((hip, lh), (knee, lk), (ankle, la), (foot, lf)):
            local[active, j] = Rl[active]
    body = out["body_pose"].reshape(T, -1, 3).copy()            # SMPL-X 21, SMPL 23 joints
    legs = [j for side in sides for j in LEG_CHAINS[side]]
    for j in legs:  # only the solved joints are re-encoded
        body[valid, j - 1] = matrix_to_axis_angle(local[valid, j])
    out["body_pose"] = body.reshape(T, -1)
    return out, weights


def _point_offsets(motion, side: str, part: str):
    """``(u, v)``: the foot point is ``ankle + R_ankle u + R_foot v``
    (``kinematics.foot_offsets``; estimated from the motion when it has none)."""
    name = f"{side}_{part}"
    if motion.foot_offsets is not None:
        return motion.foot_offsets[name]
    _, _, ankle, foot = LEG_CHAINS[side]
    return _joint_offset(motion, side, part, ankle), np.zeros(3)


def _joint_offset(motion, side: str, part: str, joint: int) -> np.ndarray:
    """Offset ``(3,)`` of a foot point in a joint's frame (median over valid rows):
    ``R_joint @ offset + joint`` is the point (heel: the ankle; toes: the toe joint)."""
    v = np.asarray(motion.valid, bool)
    v = v if v.any() else np.ones_like(v)
    d = motion.foot_points[f"{side}_{part}"][v] - motion.joints[v, joint]
    return np.median(np.einsum("tji,tj->ti", motion.rotations[v, joint], d), axis=0)


def _spread(mask, w, lock_p, lock_Ra, lock_Rf):
    """Copy each run's lock into the ramps before and after it (nearest run)."""
    T = mask.shape[0]
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return lock_p, lock_Ra, lock_Rf
    t = np.arange(T)
    pos = np.searchsorted(idx, t)
    left = idx[np.clip(pos - 1, 0, idx.size - 1)]
    right = idx[np.clip(pos, 0, idx.size - 1)]
    near = np.where(np.abs(t - left) <= np.abs(t - right), left, right)
    ramp = (w > 0) & ~mask
    src = np.where(ramp, near, t)
    return lock_p[src], lock_Ra[src], lock_Rf[src]
