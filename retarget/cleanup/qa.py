# SPDX-License-Identifier: GPL-3.0-or-later
"""The QA pass: find what is wrong in a take, frame span by frame span, and fix it (numpy).

``find_flags(take, motion=None, contacts=None, model=None) -> list[Flag]`` looks
for these kinds (``FLAG_KINDS``); each ``Flag`` is a span of rows
``[start, end)`` of the take (row indices, end exclusive):

* ``dropout``: rows with ``valid=False`` (nobody found).
* ``low_confidence``: valid rows whose ``raw_score`` is below ``LOW_SCORE``, or
  whose mean per-joint 2D confidence (``raw_joints_2d[..., 2]``, only for
  estimators that store a confidence there; Pose2Pose stores a heat-map depth)
  is below ``LOW_SCORE``.
* ``wrist_flip``: the twist of a wrist or an elbow about its bone axis (the
  forearm / hand axis, +-x in SMPL-X's rest frame) jumps by more than
  ``FLIP_DEG`` from one valid row to the next and jumps back within
  ``MAX_FAULT_S``: the span between the jumps (a jump with no return is paired
  with the take's nearer end when that is closer than ``MAX_FAULT_S``).
* ``lr_swap``: the left and right limbs (hips, knees, ankles, feet, collars,
  shoulders, elbows, wrists) exchanged for a few rows. Between two valid
  rows the limbs' rotations jump, and the row with its limbs exchanged
  (mirrored across the body's sagittal plane, or plainly swapped) matches its
  neighbour better than the row as it is. Measured in units of the take's
  median change from row to row (its noise and motion), the switches into and
  out of a swap must save more than ``SWAP_PAIR`` together, plus
  ``SWAP_ROW_COST`` per swapped row; the best labelling of the whole take as
  normal / swapped is found at once (two-state Viterbi), and swaps longer than
  ``MAX_FAULT_S`` are dropped. A swap of a symmetric pose changes nothing and
  cannot be seen.
* ``joint_limit``: elbows and knees bent past what a body can do
  (``JOINT_LIMITS``: hyperextension, bending sideways, beyond full flexion),
  for at least ``MIN_LIMIT_ROWS`` rows.
* ``foot_skate`` (needs ``motion`` and ``contacts``): contact rows where the
  foot slides along the ground faster than ``SKATE_M_PER_S``, for at least
  ``MIN_CONTACT_ROWS`` rows.
* ``penetration`` (needs ``motion`` and ``contacts``' ground): a foot point
  more than ``PENETRATION_M`` below the ground for ``MIN_CONTACT_ROWS`` rows.
* ``reprojection`` (needs ``motion``, the take's camera and Pose2Pose's 65
  ``raw_joints_2d``): the body's joints projected with the take's camera land
  further than ``REPROJECTION_FRACTION`` of the person's height in the image
  from the estimator's own 2D joints (median over 14 body joints).

The rotation-only kinds (flips, swaps, joint limits, dropouts, confidence)
need neither a model nor ``motion``. With ``model`` (a ``SmplxModel``) and no
``motion``, the motion is computed (``kinematics.take_motion``).

``apply_fixes(take, flags, fixes)`` returns a new take with, per flagged span
whose kind is in ``fixes`` (``{kind: fix}``, fix in ``FIXES``):

* ``interpolate``: every rotation parameter slerped (as quaternions) and
  ``transl``, ``betas``, ``expression`` interpolated linearly between the
  valid rows just outside the span (held from the one neighbour at the take's
  ends); the rows become valid. A span with no valid neighbour is invalidated.
* ``refilter``: the take's smoothing (``Smoothing``, default settings unless
  given) run on a window of ``REFILTER_PAD_S`` around the span, cross-faded
  into the take over that pad;
* ``invalidate``: ``valid=False`` for the span's rows.

Invalidations are applied first, then interpolations (whose neighbours are
rows not being interpolated), then re-filtering. The input take is never
modified.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import RetargetError
from ..rotations import (axis_angle_to_matrix, axis_angle_to_quaternion, quaternion_normalize,
                         quaternion_to_axis_angle)
from ..smplx_model import JOINT_NAMES, POSE_SLICES

FLAG_KINDS = ("dropout", "low_confidence", "wrist_flip", "lr_swap", "joint_limit",
              "foot_skate", "penetration", "reprojection")
FIXES = ("interpolate", "refilter", "invalidate")
SEVERITIES = ("info", "warning", "error")

# Thresholds (see the module docstring).
LOW_SCORE = 0.5            # detector score / mean 2D joint confidence below this
FLIP_DEG = 100.0           # twist change between neighbouring rows that counts as a flip
MAX_FAULT_S = 1.0          # flips and swaps last at most this long (seconds)
SWAP_PAIR = 0.8            # a switch there and back must save this in all (x median change)
SWAP_ROW_COST = 0.01       # ... plus this per swapped row (swaps are short)
SWAP_MIN_DEG = 8.0         # the median change counts as at least SWAP_MIN_DEG / 8 degrees
MIN_LIMIT_ROWS = 2
SKATE_M_PER_S = 0.15       # foot speed along the ground during a contact
PENETRATION_M = 0.02
MIN_CONTACT_ROWS = 2       # skate and penetration flags last at least this many rows
REPROJECTION_FRACTION = 0.10
REFILTER_PAD_S = 0.5
LONG_DROPOUT_S = 1.0       # longer dropouts are warnings, shorter ones info

_J = {n: i for i, n in enumerate(JOINT_NAMES)}
# Twisting joints whose flips are looked for: joint -> bone axis in its rest frame
# (SMPL-X's rest pose is a T-pose along +-x; the twist's sign does not matter).
FLIP_JOINTS = {"left_elbow": (1.0, 0.0, 0.0), "left_wrist": (1.0, 0.0, 0.0),
               "right_elbow": (-1.0, 0.0, 0.0), "right_wrist": (-1.0, 0.0, 0.0)}
# Left/right limb joints compared for swaps (body_pose joints).
LIMB_PAIRS = (("left_hip", "right_hip"), ("left_knee", "right_knee"),
              ("left_ankle", "right_ankle"), ("left_foot", "right_foot"),
              ("left_collar", "right_collar"), ("left_shoulder", "right_shoulder"),
              ("left_elbow", "right_elbow"), ("left_wrist", "right_wrist"))

# Anatomical limits of the hinge joints, in degrees, measured on the direction of the
# child bone in the joint's rest frame (so a twist about the bone never counts):
#   joint: (bone at rest, direction the bone moves when flexing, lowest flexion,
#           highest flexion, most bending out of the flexion plane)
# Sources / reasoning: normal range of motion (AAOS, "Joint Motion: Method of Measuring
# and Recording", 1965; Soucie et al. 2011, Haemophilia 17:500) is elbow 0..145-150 deg
# and knee 0..135-140 deg flexion; hyperextension beyond ~10 deg (elbow) and ~5-10 deg
# (knee, genu recurvatum) is rare. Neither is a ball joint: bending out of the
# flexion plane is a few degrees (the elbow's carrying angle ~10-15 deg, knee
# varus/valgus laxity < 10 deg). Every limit has a margin of 10-30 deg for the
# estimate's noise (a few degrees per joint) so that only clear errors are flagged.
# SMPL-X axes: x = the body's left, y = up, z = forward; elbows bend forward (+z),
# knees backward (-z).
JOINT_LIMITS = {
    "left_elbow": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), -20.0, 170.0, 45.0),
    "right_elbow": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), -20.0, 170.0, 45.0),
    "left_knee": ((0.0, -1.0, 0.0), (0.0, 0.0, -1.0), -15.0, 165.0, 30.0),
    "right_knee": ((0.0, -1.0, 0.0), (0.0, 0.0, -1.0), -15.0, 165.0, 30.0),
}
# Pose2Pose's 65 positional joints (estimator/pose2pose/joints.py POSITIONAL_JOINTS):
# the first 14 body joints and the SMPL-X joints they are.
POSE2POSE_BODY_2D = {0: "pelvis", 1: "left_hip", 2: "right_hip", 3: "left_knee",
                     4: "right_knee", 5: "left_ankle", 6: "right_ankle", 7: "neck",
                     8: "left_shoulder", 9: "right_shoulder", 10: "left_elbow",
                     11: "right_elbow", 12: "left_wrist", 13: "right_wrist"}
ROTATION_PARAMS = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose",
                   "jaw_pose", "leye_pose", "reye_pose")
LINEAR_PARAMS = ("transl", "betas", "expression")


@dataclass(frozen=True)
class Flag:
    """A span of rows ``[start, end)`` of a take that looks wrong, and why."""

    kind: str
    start: int
    end: int
    severity: str
    reason: str
    joint: str | None = None

    def __post_init__(self):
        if self.kind not in FLAG_KINDS:
            raise RetargetError(f"unknown QA flag kind {self.kind!r} "
                                f"(one of {', '.join(FLAG_KINDS)})")
        if self.severity not in SEVERITIES:
            raise RetargetError(f"unknown severity {self.severity!r}")
        if not 0 <= int(self.start) < int(self.end):
            raise RetargetError(f"bad flag span {self.start}..{self.end}")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start": int(self.start), "end": int(self.end),
                "severity": self.severity, "reason": self.reason, "joint": self.joint}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Flag":
        try:
            return cls(str(d["kind"]), int(d["start"]), int(d["end"]), str(d["severity"]),
                       str(d.get("reason", "")), d.get("joint"))
        except (KeyError, TypeError, ValueError) as exc:
            raise RetargetError(f"not a QA flag: {exc}"[:200]) from None


def check_fixes(fixes) -> dict:
    """``{kind: fix}`` checked (a mapping, or pairs); RetargetError on unknown names."""
    try:
        items = dict(fixes or {}).items()
    except (TypeError, ValueError):
        raise RetargetError("fixes must map flag kinds to fixes") from None
    for kind, fix in items:
        if kind not in FLAG_KINDS:
            raise RetargetError(f"unknown QA flag kind {kind!r} (one of {', '.join(FLAG_KINDS)})")
        if fix not in FIXES:
            raise RetargetError(f"unknown fix {fix!r} for {kind} (one of {', '.join(FIXES)})")
    return dict(items)


# --------------------------------------------------------------------------- span helpers

def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the True runs of a ``(T,)`` bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _close_gaps(mask: np.ndarray, gap: int) -> np.ndarray:
    """``mask`` with False gaps of at most ``gap`` rows between True runs filled."""
    out = np.asarray(mask, bool).copy()
    r = runs(out)
    for (_, e0), (s1, _) in zip(r[:-1], r[1:]):
        if s1 - e0 <= gap:
            out[e0:s1] = True
    return out


def _pair_switches(events: list[int], n: int, max_len: int) -> list[tuple[int, int]]:
    """Spans ``[a, b)`` between switches (a switch at k: between items k-1 and k).

    Consecutive switches at most ``max_len`` apart enclose a span; a switch that has
    no partner encloses the span to the nearer end of ``0 .. n`` when that is within
    ``max_len``, else it is dropped.
    """
    spans, i = [], 0
    events = sorted(set(int(e) for e in events))
    while i < len(events):
        k = events[i]
        if i + 1 < len(events) and events[i + 1] - k <= max_len:
            spans.append((k, events[i + 1]))
            i += 2
            continue
        if k <= max_len and (not spans or spans[-1][1] <= 0):
            spans.append((0, k))
        elif n - k <= max_len:
            spans.append((k, n))
        i += 1
    return [(a, b) for a, b in spans if b > a]


def _rows(valid_rows: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """Rows of the take covered by items ``[a, b)`` of the valid rows."""
    return int(valid_rows[a]), int(valid_rows[b - 1]) + 1


def _frames_of(take, seconds: float) -> int:
    return max(1, int(round(seconds * float(take.fps) / take.stride)))


# --------------------------------------------------------------------------- rotations

def local_axis_angles(take, names) -> np.ndarray:
    """Local axis-angles of the named SMPL-X joints, read from the take's parameters
    (``smplx_model.POSE_SLICES``). -> ``(T, len(names), 3)``."""
    T = take.num_frames
    out = np.zeros((T, len(names), 3))
    for i, n in enumerate(names):
        j = _J[n]
        for key, sl in POSE_SLICES.items():
            if sl.start <= j < sl.stop and key in take.params:
                k = j - sl.start
                out[:, i] = np.asarray(take.params[key], np.float64)[:, 3 * k:3 * k + 3]
    return out


def _local_quaternions(take, names) -> np.ndarray:
    """Local rotations of the named SMPL-X joints as unit quaternions. -> (T, len(names), 4)."""
    return axis_angle_to_quaternion(local_axis_angles(take, names))


def _geodesic(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Angle between unit quaternions ``(..., 4)``, radians."""
    d = np.abs(np.einsum("...i,...i->...", q1, q2))
    return 2.0 * np.arccos(np.clip(d, 0.0, 1.0))


def twist_angle(q: np.ndarray, axis) -> np.ndarray:
    """Twist of rotations ``q (..., 4)`` about the unit ``axis (3,)`` (swing-twist), in
    (-pi, pi] radians."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    tw = 2.0 * np.arctan2(q[..., 1:] @ a, q[..., 0])
    return _wrap(tw)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


def _mirror(q: np.ndarray) -> np.ndarray:
    """A rotation mirrored across the body's sagittal plane (x -> -x): (w, x, -y, -z)."""
    return q * np.array([1.0, 1.0, -1.0, -1.0])


# --------------------------------------------------------------------------- the kinds

def _dropouts(take) -> list[Flag]:
    out = []
    long_rows = _frames_of(take, LONG_DROPOUT_S)
    for s, e in runs(~np.asarray(take.valid, bool)):
        n = e - s
        out.append(Flag("dropout", s, e, "warning" if n >= long_rows else "info",
                        f"nobody found in {n} row{'s' * (n != 1)}"))
    return out


def _confidence(take) -> np.ndarray | None:
    """Per-row confidence in [0, 1] (T,), NaN where unknown; None without any."""
    T = take.num_frames
    conf = np.full(T, np.nan)
    if "score" in take.raw and np.shape(take.raw["score"]) == (T,):
        conf = np.asarray(take.raw["score"], np.float64).copy()
    j2d = take.raw.get("joints_2d")
    # Pose2Pose's third column is a heat-map depth, not a confidence.
    if j2d is not None and take.estimator != "pose2pose" and np.ndim(j2d) == 3 \
            and np.shape(j2d)[2] >= 3:
        c = np.asarray(j2d, np.float64)[..., 2]
        if np.isfinite(c).all() and c.min() >= 0.0 and c.max() <= 1.0:
            conf = np.fmin(conf, c.mean(axis=1))  # fmin: NaN score -> the joints' mean
    return None if np.isnan(conf).all() else conf


def _low_confidence(take) -> list[Flag]:
    conf = _confidence(take)
    if conf is None:
        return []
    low = np.asarray(take.valid, bool) & (conf < LOW_SCORE)
    return [Flag("low_confidence", s, e, "info",
                 f"confidence {np.nanmin(conf[s:e]):.2f} (below {LOW_SCORE:g})")
            for s, e in runs(low)]


def _flips(take, vi: np.ndarray, max_len: int) -> list[Flag]:
    names = tuple(FLIP_JOINTS)
    q = _local_quaternions(take, names)[vi]               # (N, 4 joints, 4)
    found: dict[str, list] = {"left": [], "right": []}
    for j, name in enumerate(names):
        tw = twist_angle(q[:, j], FLIP_JOINTS[name])
        jump = np.abs(_wrap(np.diff(tw)))
        events = (np.flatnonzero(jump > np.radians(FLIP_DEG)) + 1).tolist()
        for a, b in _pair_switches(events, len(vi), max_len):
            found[name.split("_")[0]].append((a, b, name))
    out = []
    for side, spans in found.items():  # one flag per side for overlapping elbow+wrist spans
        for a, b, joints in _merge_spans(spans):
            s, e = _rows(vi, a, b)
            out.append(Flag("wrist_flip", s, e, "warning",
                            f"the {side} forearm twists by ~180 deg and back "
                            f"({'/'.join(sorted(joints))})", joint=f"{side}_wrist"))
    return out


def _merge_spans(spans):
    """Overlapping ``(a, b, name)`` merged -> ``[(a, b, {names})]``."""
    out = []
    for a, b, name in sorted(spans):
        if out and a < out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
            out[-1][2].add(name)
        else:
            out.append([a, b, {name}])
    return [tuple(x) for x in out]


def swap_distances(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame-to-frame change of the limbs as they are and with left/right exchanged.

    q: ``(N, 2P, 4)`` local quaternions of the limb pairs (left ones first, then
    the right ones in the same order). -> ``(keep, swap)``, each ``(N-1,)``, the mean
    geodesic angle (radians) between row k and row k-1 as it is, and between row
    k with its limbs exchanged (the smaller of mirrored and plain) and row k-1.
    """
    P = q.shape[1] // 2
    exch = np.concatenate([q[:, P:], q[:, :P]], axis=1)
    keep = _geodesic(q[1:], q[:-1]).mean(axis=1)
    plain = _geodesic(exch[1:], q[:-1]).mean(axis=1)
    mirrored = _geodesic(_mirror(exch[1:]), q[:-1]).mean(axis=1)
    return keep, np.minimum(plain, mirrored)


def swapped_segments(saving: np.ndarray, switch_cost: float, row_cost: float) -> list:
    """The best labelling of items as normal / swapped, as swapped spans ``[a, b)``.

    Two-state Viterbi: switching state before item k costs ``switch_cost - saving[k]``
    (a switch pays where the exchanged limbs match the previous item better), every
    swapped item costs ``row_cost`` (swaps are short and rare), and the take starts
    and ends normal unless a switch at its edge (``switch_cost``) is worth it.
    saving: ``(n,)``, ``saving[0]`` unused. -> ``[(a, b), ...]``.
    """
    n = saving.shape[0]
    if n == 0:
        return []
    # c0, c1: best cost of items 0..k ending normal / swapped; back[k, s]: state of k-1.
    c0, c1 = 0.0, switch_cost + row_cost
    back = ([0] * n, [1] * n)
    sw = (switch_cost - np.asarray(saving, float)).tolist()
    for k in range(1, n):
        from1, from0 = c1 + sw[k], c0 + sw[k]
        b0, b1 = c0 > from1, c1 > from0
        c0, c1 = (from1 if b0 else c0), (from0 if b1 else c1) + row_cost
        back[0][k], back[1][k] = int(b0), int(not b1)
    state = 0 if c0 <= c1 + switch_cost else 1
    labels = np.zeros(n, bool)
    for k in range(n - 1, -1, -1):
        labels[k] = state == 1
        state = back[state][k]
    return runs(labels)


def _swaps(take, vi: np.ndarray, max_len: int) -> list[Flag]:
    if len(vi) < 3:
        return []
    names = [p[0] for p in LIMB_PAIRS] + [p[1] for p in LIMB_PAIRS]
    q = _local_quaternions(take, names)[vi]
    keep, swap = swap_distances(q)
    # How much better the exchanged limbs match, in units of the take's usual change
    # from row to row (noise and motion); across a gap of g rows the pose has moved
    # on, so the saving counts 1/g. Item k is the switch between valid rows k-1 and k.
    scale = max(float(np.median(keep)), np.radians(SWAP_MIN_DEG) / 8.0)
    gap = np.diff(vi).astype(float)
    saving = np.concatenate([[0.0], (keep - swap) / scale / gap])
    out = []
    for a, b in swapped_segments(saving, SWAP_PAIR / 2.0, SWAP_ROW_COST):
        if b - a > max_len:
            continue
        s, e = _rows(vi, a, b)
        out.append(Flag("lr_swap", s, e, "warning",
                        f"left and right limbs exchanged for {e - s} row{'s' * (e - s != 1)}"))
    return out


def limb_angles(take, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Flexion and out-of-plane bend (degrees, ``(T,)`` each) of a hinge joint in
    ``JOINT_LIMITS`` from its local rotation."""
    bone, flex_dir, *_ = JOINT_LIMITS[name]
    bone, flex_dir = np.asarray(bone, float), np.asarray(flex_dir, float)
    side = np.cross(bone, flex_dir)
    R = axis_angle_to_matrix(local_axis_angles(take, [name])[:, 0])
    d = R @ bone                                         # (T, 3) the child bone now
    flex = np.degrees(np.arctan2(d @ flex_dir, d @ bone))
    out_of_plane = np.degrees(np.arcsin(np.clip(np.abs(d @ side), 0.0, 1.0)))
    return flex, out_of_plane


def _joint_limits(take) -> list[Flag]:
    valid = np.asarray(take.valid, bool)
    out = []
    for name, (_, _, lo, hi, side_max) in JOINT_LIMITS.items():
        flex, side = limb_angles(take, name)
        tests = ((flex < lo, "hyperextended", lambda s, e: f"{flex[s:e].min():.0f} deg "
                  f"(limit {lo:g})"),
                 (flex > hi, "bent beyond full flexion", lambda s, e: f"{flex[s:e].max():.0f} "
                  f"deg (limit {hi:g})"),
                 (side > side_max, "bent sideways", lambda s, e: f"{side[s:e].max():.0f} deg "
                  f"out of its plane (limit {side_max:g})"))
        label = name.replace("_", " ")
        for mask, what, amount in tests:
            for s, e in runs(_close_gaps(mask & valid, 2) & valid):
                if e - s >= MIN_LIMIT_ROWS:
                    out.append(Flag("joint_limit", s, e, "warning",
                                    f"{label} {what}: {amount(s, e)}", joint=name))
    return out


def _by_side(names) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in names:
        out.setdefault(n.split("_")[0], []).append(n)
    return out


def _foot_skate(take, motion, contacts) -> list[Flag]:
    contact = np.asarray(contacts.contact, bool)
    normal = np.asarray(contacts.ground.normal, float)
    valid = np.asarray(motion.valid, bool)
    limit = SKATE_M_PER_S * take.stride / float(take.fps)   # metres per row
    out = []
    for side, feet in _by_side(contacts.feet).items():
        slide = np.zeros(contact.shape[0], bool)
        speed = np.zeros(contact.shape[0])
        for f in feet:
            p = np.asarray(motion.foot_points[f], float)
            step = np.diff(p, axis=0)
            step -= np.outer(step @ normal, normal)            # along the ground only
            v = np.concatenate([[0.0], np.linalg.norm(step, axis=1)])
            c = contact[:, contacts.feet.index(f)]
            both = c & np.concatenate([[False], c[:-1]]) & valid & np.concatenate(
                [[False], valid[:-1]])
            slide |= both & (v > limit)
            speed = np.maximum(speed, np.where(both, v, 0.0))
        for s, e in runs(_close_gaps(slide, 1)):
            if e - s < MIN_CONTACT_ROWS:
                continue
            out.append(Flag("foot_skate", s, e, "warning",
                            f"{side} foot slides {1000 * speed[s:e].max():.0f} mm/frame while "
                            "planted", joint=f"{side}_foot"))
    return out


def _penetration(motion, ground) -> list[Flag]:
    valid = np.asarray(motion.valid, bool)
    out = []
    for side, feet in _by_side(motion.foot_points).items():
        h = np.min([np.asarray(ground.height(np.asarray(motion.foot_points[f], float)))
                    for f in feet], axis=0)
        for s, e in runs(_close_gaps((h < -PENETRATION_M) & valid, 1) & valid):
            if e - s < MIN_CONTACT_ROWS:
                continue
            out.append(Flag("penetration", s, e, "warning",
                            f"{side} foot {1000 * -h[s:e].min():.0f} mm below the ground",
                            joint=f"{side}_foot"))
    return out


def project(points: np.ndarray, focal, princpt) -> np.ndarray:
    """Pinhole projection of camera-frame points ``(..., 3)`` (OpenCV axes) -> ``(..., 2)``
    pixels."""
    p = np.asarray(points, float)
    z = np.where(np.abs(p[..., 2:3]) < 1e-6, 1e-6, p[..., 2:3])
    return p[..., :2] / z * np.asarray(focal, float) + np.asarray(princpt, float)


def reprojection_error(take, motion) -> np.ndarray | None:
    """Median distance (T,) between the body's projected joints and the estimator's 2D
    joints, as a fraction of the person's height in the image; None when the take
    has no camera or no Pose2Pose 2D joints."""
    j2d = take.raw.get("joints_2d")
    if take.focal is None or take.princpt is None or j2d is None or \
            np.shape(j2d)[1:] != (65, 3) or take.estimator not in ("pose2pose", ""):
        return None
    idx2d = list(POSE2POSE_BODY_2D)
    idx3d = [_J[POSE2POSE_BODY_2D[i]] for i in idx2d]
    seen = np.asarray(j2d, float)[:, idx2d, :2]                          # (T, 14, 2)
    proj = project(np.asarray(motion.joints, float)[:, idx3d], take.focal, take.princpt)
    dist = np.linalg.norm(proj - seen, axis=-1)
    height = seen[..., 1].max(axis=1) - seen[..., 1].min(axis=1)
    bbox = take.raw.get("bbox_xywh")
    if bbox is not None and np.shape(bbox) == (take.num_frames, 4):
        height = np.maximum(height, np.asarray(bbox, float)[:, 3])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.median(dist, axis=1) / np.where(height > 1.0, height, np.nan)


def _reprojection(take, motion) -> list[Flag]:
    err = reprojection_error(take, motion)
    if err is None:
        return []
    bad = np.asarray(take.valid, bool) & (np.nan_to_num(err) > REPROJECTION_FRACTION)
    return [Flag("reprojection", s, e, "warning",
                 f"the body lands {100 * np.nanmax(err[s:e]):.0f} % of its height away from "
                 "the estimator's 2D joints")
            for s, e in runs(bad) if e - s >= 2]


# --------------------------------------------------------------------------- find / fix

def find_flags(take, motion=None, contacts=None, *, model=None) -> list[Flag]:
    """Every flag of ``take`` (sorted by start, then kind). See the module docstring.

    motion: ``kinematics.TakeMotion`` of the take (positions); contacts:
    ``contacts.Contacts`` (foot skate, penetration); model: a ``SmplxModel`` to
    compute ``motion`` from when it is not given.
    """
    if take.body_model not in ("smplx", "smpl"):  # SMPL: the same first 22 body joints
        raise RetargetError(f"the QA pass needs an SMPL-X or SMPL take, not {take.body_model}")
    if motion is None and model is not None:
        from .kinematics import take_motion

        motion = take_motion(take, model)
    valid = np.asarray(take.valid, bool)
    vi = np.flatnonzero(valid)
    flags = _dropouts(take) + _low_confidence(take)
    if len(vi) >= 2:
        max_len = _frames_of(take, MAX_FAULT_S)
        flags += _flips(take, vi, max_len) + _swaps(take, vi, max_len)
    flags += _joint_limits(take)
    if motion is not None:
        if contacts is not None:
            flags += _foot_skate(take, motion, contacts)
            flags += _penetration(motion, contacts.ground)
        flags += _reprojection(take, motion)
    return sorted(flags, key=flag_order)


def flag_order(f: Flag) -> tuple:
    """Sort key of flags: by start row, then kind (``FLAG_KINDS`` order), then end."""
    return (f.start, FLAG_KINDS.index(f.kind), f.end)


def _slerp(q0: np.ndarray, q1: np.ndarray, t) -> np.ndarray:
    """Slerp of unit quaternions ``q0, q1 (..., 4)`` at ``t`` (broadcast against
    ``q0.shape[:-1]``) -> ``(..., 4)``."""
    dot = np.einsum("...i,...i->...", q0, q1)
    q1 = np.where(dot[..., None] < 0.0, -q1, q1)
    theta = np.arccos(np.clip(np.abs(dot), 0.0, 1.0))[..., None]
    t = np.asarray(t, float)[..., None]
    s = np.sin(theta)
    small = s < 1e-6
    safe = np.where(small, 1.0, s)
    w0 = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(small, t, np.sin(t * theta) / safe)
    return quaternion_normalize(w0 * q0 + w1 * q1)


def _interpolate(params: dict, s: int, e: int, usable: np.ndarray) -> bool:
    """Fill rows ``[s, e)`` of ``params`` (in place) from the usable rows around them;
    False when there is none."""
    before = np.flatnonzero(usable[:s])
    after = np.flatnonzero(usable[e:]) + e
    a = int(before[-1]) if before.size else None
    b = int(after[0]) if after.size else None
    if a is None and b is None:
        return False
    rows = np.arange(s, e)
    if a is None or b is None:
        src = a if b is None else b
        for k, v in params.items():
            v[s:e] = v[src]
        return True
    t = (rows - a) / float(b - a)
    for k, v in params.items():
        if k in ROTATION_PARAMS:
            aa = v.reshape(v.shape[0], -1, 3)
            q0, q1 = axis_angle_to_quaternion(aa[a]), axis_angle_to_quaternion(aa[b])
            aa[s:e] = quaternion_to_axis_angle(_slerp(q0[None], q1[None], t[:, None]))
        else:
            v[s:e] = v[a] + (v[b] - v[a]) * t.reshape((-1,) + (1,) * (v.ndim - 1))
    return True


def _refilter(take, params: dict, valid: np.ndarray, s: int, e: int, smoothing) -> None:
    """Smooth a window around rows ``[s, e)`` and cross-fade it in (``params`` in place)."""
    from ..smoothing import smooth_params

    T = valid.shape[0]
    pad = _frames_of(take, REFILTER_PAD_S)
    lo, hi = max(0, s - pad), min(T, e + pad)
    window = {k: v[lo:hi] for k, v in params.items()}
    fs = float(take.fps) / take.stride
    sm = smooth_params(window, valid[lo:hi], fs, smoothing)
    rows = np.arange(lo, hi)
    w = np.ones(hi - lo)
    w[rows < s] = (rows[rows < s] - (s - pad) + 1) / (pad + 1.0)
    w[rows >= e] = ((e + pad) - rows[rows >= e]) / (pad + 1.0)
    w = np.clip(w, 0.0, 1.0)
    for k, v in params.items():
        if k == "betas":
            continue
        new = np.asarray(sm[k], float)
        if k in ROTATION_PARAMS:
            q_old = axis_angle_to_quaternion(v[lo:hi].reshape(hi - lo, -1, 3))
            q_new = axis_angle_to_quaternion(new.reshape(hi - lo, -1, 3))
            blended = _slerp(q_old, q_new, w[:, None])
            v[lo:hi] = quaternion_to_axis_angle(blended).reshape(hi - lo, -1)
        else:
            v[lo:hi] = v[lo:hi] + (new - v[lo:hi]) * w.reshape((-1,) + (1,) * (v.ndim - 1))


def apply_fixes(take, flags, fixes: Mapping, *, smoothing=None):
    """A new take with ``fixes`` (``{kind: fix}``) applied to ``flags``' spans; see the
    module docstring. ``smoothing``: the ``Smoothing`` for ``refilter`` (default
    settings when None). The input take is not modified."""
    fixes = check_fixes(fixes)
    if smoothing is None:
        from ..smoothing import Smoothing

        smoothing = Smoothing()
    T = take.num_frames
    params = {k: np.array(v, dtype=np.float64, copy=True) for k, v in take.params.items()}
    valid = np.asarray(take.valid, bool).copy()
    chosen = [(f, fixes[f.kind]) for f in flags if f.kind in fixes]
    spans = {fix: [(max(0, f.start), min(T, f.end)) for f, x in chosen if x == fix]
             for fix in FIXES}
    for s, e in spans["invalidate"]:
        valid[s:e] = False
    to_fill = np.zeros(T, bool)
    for s, e in spans["interpolate"]:
        to_fill[s:e] = True
    usable = valid & ~to_fill
    for s, e in runs(to_fill):
        if _interpolate(params, s, e, usable):
            valid[s:e] = True
        else:
            valid[s:e] = False
    for s, e in spans["refilter"]:
        _refilter(take, params, valid, s, e, smoothing)
    out = take.with_params({k: v.astype(np.asarray(take.params[k]).dtype)
                            for k, v in params.items()})
    out.valid = valid
    n = len(chosen)
    if n:
        out.notes.append(f"QA: fixed {n} flagged span{'s' * (n != 1)} ("
                         + ", ".join(f"{k}={v}" for k, v in sorted(fixes.items())) + ")")
    return out
