# SPDX-License-Identifier: GPL-3.0-or-later
"""Deterministic stand-ins for the licensed model files (numpy only; torch only
inside :func:`write_checkpoint_standin`).

The real SMPL-X model (MPI licence) and the Hand4Whole checkpoint cannot be
shipped. Tests and first-run demos use files this module generates instead:

``smplx/SMPLX_{NEUTRAL,MALE,FEMALE}.npz``
    Every array the ``smplx`` package reads for SMPL-X, under the real names
    and with the real shapes of the v1.1 ``.npz`` release (400 shape +
    expression directions). Dtypes follow the real files as far as known:
    float64 data, ``f``/``ft`` uint32, ``kintree_table`` int64 whose root
    parent is 4294967295 (uint32 max; ``smplx`` overwrites it with -1); the
    landmark face indices are int64. Also ``hands_coeffs{l,r}`` (small: 32
    rows), ``vt``/``ft`` (a per-part cylindrical atlas with seam copies, 11313
    uv entries like the real file) and a ``standin`` marker (a unicode
    scalar; ``locations.smplx_file_is_standin`` looks for it). No pickled
    arrays: ``np.load(allow_pickle=False)`` reads them; the real file's pickled
    ``part2num``/``joint2num`` are left out. The zip is numpy's own ``.npz``
    layout (stored, zip64) with fixed timestamps, so the bytes are the same
    on every run; files are written to a temporary name and committed
    (``common.files``).

``smpl/SMPL_{NEUTRAL,MALE,FEMALE}.npz``
    The SMPL body (for SMPL takes and I2L-MeshNet): see the SMPL stand-in
    section at the end of this module.

``pose2pose/standin.pth.tar``
    The official checkpoint container with the 834 official keys, values from
    :mod:`.standin_rule`.

The body
--------
A procedural T-posed humanoid in SMPL-X conventions (metres, +Y up, facing +Z,
the subject's left at +X, pelvis near (0, -0.35, 0), soles at y = -1.30, head
top at y = 0.405), rigged on the real 55-joint SMPL-X tree. It is a mannequin
of overlapping closed parts, eight mesh components:

* torso (crotch to the inside of the head; a tube with a pole at each end),
* head (a profiled UV sphere with nose, brows, ears, lips and a mouth),
* two eyeballs (UV spheres whose front poles are the pupils),
* two arms, each one closed surface: a shoulder cap and arm tube that ends in
  a subdivided palm box, whose proximal face is replaced by the arm tube and
  from whose distal face four finger tubes, and from whose front face the
  thumb tube, grow out of 2x2 (thumb 3x2) quad holes (so the hand, fingers
  and arm are one genus-0 surface),
* two legs, each one closed surface: a hip cap and leg tube that grows out of
  a quad hole in the top of a subdivided foot box.

Counts. For a triangle mesh, 2V - F = 2*chi + B (chi summed over components,
B = number of boundary edges). SMPL-X needs V = 10475 and F = 20908, so
2*chi + B = 42. Seven components are closed spheres (chi = 2, B = 0: 28).
The head is a sphere with one hole, the open mouth: a 4x2 block of grid quads
is left out (its 3 inner vertices are dropped), so chi = 1 and the mouth rim
has B = 12 edges: 2 + 12 = 14, and 28 + 14 = 42. Every limb, the torso and
the eyeballs are closed (each edge in exactly two triangles, consistently
oriented outward); the only boundary is the 12-edge mouth rim. Ring and
segment counts are chosen so that V comes out at exactly 10475.

Joints are designed positions; ``J_regressor`` rows are non-negative, sum to
one and reproduce them exactly from ``v_template`` (minimum-norm deviation
from a uniform average over a ring/shell of nearby vertices). The vertex ids
``smplx`` uses for extra joints (nose 9120, eyes, ears, toes, heels,
fingertips) are moved, by a permutation of the vertex order, onto the matching
vertices of this body (otherwise the order is construction order: torso, head,
eyes, arms, legs). Male and female differ in size, shoulder and hip width and
girth; topology, landmark faces and uv layout are shared. Skinning weights
blend 1-3 joints by inverse distance to the bones a body part may follow.
``shapedirs`` hold a few meaningful body-shape directions (height, girth,
shoulder width, leg length, torso length, head size, arm length, hip width,
chest depth, belly) then small smooth fields; expression directions 0-9 deform
the face only (jaw open, smile, brows up, frown, pucker, cheek puff, mouth
wide, lip corners down, nose wrinkle, squint), the rest are small face-only
fields. ``posedirs`` are small correctives localised around each joint (at
most 5 mm per unit feature).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.files import atomic_write
from ..common.smpl_file import (N_FACES as SMPL_N_FACES, N_JOINTS as SMPL_N_JOINTS,
                                N_POSE_FEATURES as SMPL_N_POSE_FEATURES, N_VERTS as SMPL_N_VERTS,
                                SMPL_SUBDIR)
from ..retarget.smplx_model import JOINT_NAMES as _SMPLX_JOINT_NAMES, PARENTS as _SMPLX_PARENTS
from ..retarget.smplx_model import SMPL_JOINT_NAMES, SMPL_PARENTS
from .locations import CHECKPOINT_SUBDIR, SMPLX_SUBDIR, STANDIN_CHECKPOINT_NAME
from .standin_rule import (STANDIN_SEED, make_state_dict, official_keys_and_shapes,
                           write_official_container)

N_VERTS, N_FACES, N_JOINTS = 10475, 20908, 55
N_VT = 11313
N_SHAPE, N_EXPR = 300, 100
N_POSE_FEATURES = (N_JOINTS - 1) * 9
N_HAND_COEFFS = 32
STANDIN_NOTE = "pose2pose_mocap stand-in, not the SMPL-X model"
# Root parent as stored in the real files (uint32 max); smplx replaces it by -1.
ROOT_PARENT = 4294967295
# A fixed zip timestamp so that the written bytes do not depend on the clock.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)

# The real SMPL-X kinematic tree and joint names (one copy, in the numpy SMPL-X core).
PARENTS = tuple(int(p) for p in _SMPLX_PARENTS)
JOINT_NAMES = _SMPLX_JOINT_NAMES
J = {name: i for i, name in enumerate(JOINT_NAMES)}
# smplx.vertex_ids.vertex_ids["smplx"]: vertices smplx reads as extra joints.
EXTRA_VERTEX_IDS = {
    "nose": 9120, "reye": 9929, "leye": 9448, "rear": 616, "lear": 6,
    "rthumb": 8079, "rindex": 7669, "rmiddle": 7794, "rring": 7905, "rpinky": 8022,
    "lthumb": 5361, "lindex": 4933, "lmiddle": 5058, "lring": 5169, "lpinky": 5286,
    "LBigToe": 5770, "LSmallToe": 5780, "LHeel": 8846,
    "RBigToe": 8463, "RSmallToe": 8474, "RHeel": 8635,
}
FINGERS = ("index", "middle", "pinky", "ring", "thumb")  # SMPL-X hand joint order
GENDER_FILES = {"neutral": "SMPLX_NEUTRAL.npz", "male": "SMPLX_MALE.npz",
                "female": "SMPLX_FEMALE.npz"}

FLOOR_Y = -1.30
# Resolution (fixed: topology is the same for every gender).
_TORSO_SEGS, _TORSO_RINGS = 40, 52
_HEAD_SEGS, _HEAD_RINGS = 48, 41
_EYE_SEGS, _EYE_RINGS = 15, 9
_ARM_RINGS = 32
_LEG_RINGS = 39
_FINGER_RINGS = 11
_THUMB_RINGS = 11
_PALM_N = (6, 2, 11)     # palm box cells: length (X), thickness (Y), width (Z)
_FOOT_N = (8, 3, 16)     # foot box cells: width (X), height (Y), length (Z)
_FOOT_HOLE = ((1, 7), (1, 7))  # top-face hole: Z cells, X cells


# ----------------------------------------------------------------------------- small helpers
def _smoothstep(x, e0, e1):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(d2, sigma):
    return np.exp(-0.5 * d2 / (sigma * sigma))


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _interp_profile(table, x):
    """Linear interpolation of the columns of ``table`` (first column = abscissa)."""
    table = np.asarray(table, dtype=np.float64)
    order = np.argsort(table[:, 0])
    t = table[order]
    return [np.interp(x, t[:, 0], t[:, c]) for c in range(1, t.shape[1])]


@dataclass(frozen=True)
class Proportions:
    """What differs between the neutral, male and female stand-ins."""

    scale: float = 1.0          # overall size about the pelvis
    shoulder: float = 0.0       # extra half-width at the shoulders (m)
    hip: float = 0.0            # extra half-width at the hips (m)
    girth: float = 1.0          # limb and torso thickness factor


PROPORTIONS = {
    "neutral": Proportions(),
    "male": Proportions(scale=1.035, shoulder=0.018, hip=-0.008, girth=1.04),
    "female": Proportions(scale=0.955, shoulder=-0.014, hip=0.014, girth=0.97),
}


# ----------------------------------------------------------------------------- mesh assembly
class _Part:
    """One mesh component being built: vertices, triangles, per-vertex labels."""

    def __init__(self, name):
        self.name = name
        self.pos: list[np.ndarray] = []
        self.center: list[np.ndarray] = []
        self.group: list[str] = []
        self.tris: list[tuple[int, int, int]] = []
        self.n = 0

    def add(self, pts, group, centers=None):
        pts = np.atleast_2d(np.asarray(pts, dtype=np.float64))
        centers = pts.copy() if centers is None else np.broadcast_to(
            np.asarray(centers, dtype=np.float64), pts.shape).copy()
        idx = np.arange(self.n, self.n + len(pts))
        self.pos.extend(pts)
        self.center.extend(centers)
        self.group.extend([group] * len(pts))
        self.n += len(pts)
        return idx

    def quad(self, a, b, c, d):
        self.tris.append((a, b, c))
        self.tris.append((a, c, d))

    def arrays(self):
        """Drop vertices no triangle uses; return pos, tris, centers, groups, old->new map."""
        pos = np.array(self.pos)
        tris = np.array(self.tris, dtype=np.int64)
        used = np.zeros(len(pos), bool)
        used[tris.ravel()] = True
        remap = -np.ones(len(pos), np.int64)
        remap[used] = np.arange(used.sum())
        return (pos[used], remap[tris], np.array(self.center)[used],
                np.array(self.group, dtype=object)[used], remap)


def _band(part, ring_a, ring_b):
    n = len(ring_a)
    for k in range(n):
        k1 = (k + 1) % n
        part.quad(ring_a[k], ring_a[k1], ring_b[k1], ring_b[k])


def _fan(part, ring, pole, reverse=False):
    n = len(ring)
    for k in range(n):
        k1 = (k + 1) % n
        part.tris.append((ring[k1], ring[k], pole) if reverse else (ring[k], ring[k1], pole))


def _frames(centers, ref):
    """Tangents and perpendicular frames (e1, e2) along a polyline of ring centres."""
    c = np.asarray(centers)
    t = np.empty_like(c)
    t[1:-1] = c[2:] - c[:-2]
    t[0] = c[1] - c[0]
    t[-1] = c[-1] - c[-2]
    t = _unit(t)
    ref = np.asarray(ref, dtype=np.float64)
    e1 = _unit(ref - (t @ ref)[:, None] * t)
    e2 = np.cross(t, e1)
    return t, e1, e2


def _polyline_points(points, s):
    """Points at arc lengths ``s`` along the polyline through ``points``."""
    p = np.asarray(points, dtype=np.float64)
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    acc = np.concatenate([[0.0], np.cumsum(seg)])
    return np.stack([np.interp(s, acc, p[:, c]) for c in range(3)], axis=1), acc


def _tube_from_loop(part, loop, axis_pts, ref, radii_fn, n_rings, group_fn, cap=True,
                    blend_len=0.03, base_pts=None):
    """Grow a tube out of the vertex loop ``loop`` (ordered like the faces it replaces).

    Rings follow the polyline ``axis_pts`` (which starts at the loop centre); ring i is an
    ellipse ``radii_fn(s) -> (a, b)`` around the axis, blended into the loop's own shape
    over ``blend_len``. The far end is closed by a hemispherical cap and a pole vertex.
    Returns the pole index and the list of rings (vertex index arrays).
    """
    lp = np.array([part.pos[i] for i in loop]) if base_pts is None else base_pts
    n = len(loop)
    total = float(np.sum(np.linalg.norm(np.diff(np.asarray(axis_pts), axis=0), axis=1)))
    a_end, b_end = radii_fn(total)
    r_end = 0.5 * (a_end + b_end)
    body_len = total - (r_end if cap else 0.0)
    s = np.linspace(0.0, body_len, n_rings + 1)
    centers, _ = _polyline_points(axis_pts, s)
    t, e1, e2 = _frames(centers, ref)
    c0 = centers[0]
    rel = lp - c0
    ang = np.unwrap(np.arctan2(rel @ e2[0], rel @ e1[0]))
    direction = 1.0 if ang[-1] > ang[0] else -1.0
    phi = ang[0] + direction * 2.0 * np.pi * np.arange(n) / n
    a0, b0 = radii_fn(0.0)
    circle0 = c0 + a0 * np.cos(phi)[:, None] * e1[0] + b0 * np.sin(phi)[:, None] * e2[0]
    offset = lp - circle0
    rings = [np.asarray(loop)]
    for i in range(1, n_rings + 1):
        a, b = radii_fn(s[i])
        keep = 1.0 - _smoothstep(s[i], 0.0, blend_len)
        pts = (centers[i] + a * np.cos(phi)[:, None] * e1[i] + b * np.sin(phi)[:, None] * e2[i]
               + keep * offset)
        rings.append(part.add(pts, group_fn(s[i]), centers[i]))
    pole_center = centers[-1]
    if cap:
        for alpha in np.radians([35.0, 62.0, 80.0]):
            ctr = centers[-1] + t[-1] * r_end * np.sin(alpha)
            pts = (ctr + a_end * np.cos(alpha) * np.cos(phi)[:, None] * e1[-1]
                   + b_end * np.cos(alpha) * np.sin(phi)[:, None] * e2[-1])
            rings.append(part.add(pts, group_fn(total), centers[-1]))
        pole_pos = centers[-1] + t[-1] * r_end
    else:
        pole_pos = centers[-1] + t[-1] * 0.3 * r_end
    for r0, r1 in zip(rings[:-1], rings[1:]):
        _band(part, r0, r1)
    pole = part.add(pole_pos, group_fn(total), pole_center)[0]
    _fan(part, rings[-1], pole)
    return pole, rings


def _box(part, n, mapper, group):
    """A subdivided box surface; quads keyed by face ``(axis, side)`` and cell ``(p, q)``."""
    keys = [(i, j, k) for i in range(n[0] + 1) for j in range(n[1] + 1) for k in range(n[2] + 1)
            if i in (0, n[0]) or j in (0, n[1]) or k in (0, n[2])]
    params = np.array(keys, dtype=np.float64) / np.array(n, dtype=np.float64)
    pos, centers = mapper(params)
    idx = part.add(pos, group, centers)
    index = dict(zip(keys, idx.tolist()))
    faces = {}
    for a in range(3):
        b, c = (a + 1) % 3, (a + 2) % 3
        for side in (0, 1):
            grid = {}
            for p in range(n[b]):
                for q in range(n[c]):
                    def key(pp, qq):
                        k = [0, 0, 0]
                        k[a], k[b], k[c] = side * n[a], pp, qq
                        return index[tuple(k)]
                    quad = [key(p, q), key(p + 1, q), key(p + 1, q + 1), key(p, q + 1)]
                    grid[(p, q)] = quad if side else quad[::-1]
            faces[(a, side)] = grid
    return index, faces


def _cut_hole(n, index, faces, face, prange, qrange):
    """Remove a block of quads from a box face; return its rim, ordered like the quads."""
    a, side = face
    b, c = (a + 1) % 3, (a + 2) % 3
    for p in range(*prange):
        for q in range(*qrange):
            del faces[face][(p, q)]
    (p0, p1), (q0, q1) = prange, qrange
    rim = ([(p, q0) for p in range(p0, p1)] + [(p1, q) for q in range(q0, q1)]
           + [(p, q1) for p in range(p1, p0, -1)] + [(p0, q) for q in range(q1, q0, -1)])
    loop = []
    for p, q in rim:
        k = [0, 0, 0]
        k[a], k[b], k[c] = side * n[a], p, q
        loop.append(index[tuple(k)])
    return loop if side else loop[::-1]


def _emit_box(part, faces):
    for grid in faces.values():
        for quad in grid.values():
            part.quad(*quad)


# ----------------------------------------------------------------------------- body design
def _design_joints(pr: Proportions) -> np.ndarray:
    """Joint positions that do not depend on the mesh (left side; right side mirrored)."""
    j = np.zeros((N_JOINTS, 3))
    j[J["pelvis"]] = (0.0, -0.35, 0.0)
    j[J["spine1"]] = (0.0, -0.23, -0.015)
    j[J["spine2"]] = (0.0, -0.10, -0.005)
    j[J["spine3"]] = (0.0, 0.01, 0.0)
    j[J["neck"]] = (0.0, 0.17, -0.02)
    j[J["head"]] = (0.0, 0.245, -0.005)
    j[J["jaw"]] = (0.0, 0.258, 0.012)
    j[J["left_hip"]] = (0.085 + pr.hip, -0.44, -0.005)
    j[J["left_knee"]] = (0.095 + pr.hip, -0.83, 0.0)
    j[J["left_ankle"]] = (0.10 + pr.hip, FLOOR_Y + 0.085, -0.035)
    j[J["left_collar"]] = (0.075 + 0.4 * pr.shoulder, 0.11, -0.015)
    j[J["left_shoulder"]] = (0.18 + pr.shoulder, 0.12, -0.02)
    j[J["left_elbow"]] = (0.44 + pr.shoulder, 0.12, -0.03)
    j[J["left_wrist"]] = (0.69 + pr.shoulder, 0.12, -0.02)
    return j


def _scale_about_pelvis(p, pr):
    pel = np.array([0.0, -0.35, 0.0])
    return pel + pr.scale * (np.asarray(p) - pel)


def _build_torso(pr):
    part = _Part("torso")
    g = pr.girth
    sh, hp = pr.shoulder, pr.hip
    # y, half-width x, half-depth z, centre z
    table = [
        (-0.530, 0.000, 0.000, 0.000),
        (-0.525, 0.055, 0.040, 0.000),
        (-0.510, 0.105 + hp, 0.070, 0.000),
        (-0.480, 0.148 + hp, 0.095, -0.006),
        (-0.440, 0.166 + hp, 0.106, -0.008),
        (-0.380, 0.172 + hp, 0.108, -0.004),
        (-0.300, 0.160 + 0.5 * hp, 0.100, 0.000),
        (-0.220, 0.145, 0.094, 0.004),
        (-0.140, 0.142, 0.095, 0.006),
        (-0.060, 0.150 + 0.3 * sh, 0.100, 0.008),
        (0.020, 0.163 + 0.7 * sh, 0.105, 0.006),
        (0.080, 0.172 + sh, 0.100, 0.000),
        (0.120, 0.175 + sh, 0.090, -0.010),
        (0.150, 0.150 + 0.8 * sh, 0.074, -0.015),
        (0.170, 0.090, 0.060, -0.018),
        (0.185, 0.061, 0.053, -0.018),
        (0.220, 0.053, 0.050, -0.015),
        (0.250, 0.050, 0.048, -0.012),
        (0.265, 0.036, 0.035, -0.010),
        (0.272, 0.000, 0.000, -0.010),
    ]
    t = np.array(table)
    # rings evenly spaced along the profile's arc length (in the y / mean-radius plane)
    prof = np.stack([t[:, 0], 0.5 * (t[:, 1] + t[:, 2])], axis=1)
    acc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(prof, axis=0), axis=1))])
    u = np.linspace(0.0, acc[-1], _TORSO_RINGS + 2)[1:-1]
    ys = np.interp(u, acc, t[:, 0])
    ax, az, cz = _interp_profile(table, ys)
    phi = 2.0 * np.pi * np.arange(_TORSO_SEGS) / _TORSO_SEGS
    rings = []
    for y, a, b, c in zip(ys, ax, az, cz):
        ctr = np.array([0.0, y, c])
        # a slightly squarer cross-section than an ellipse
        cs, sn = np.cos(phi), np.sin(phi)
        sq = 0.10
        rx = a * g * np.sign(cs) * np.abs(cs) ** (1 - sq)
        rz = b * g * np.sign(sn) * np.abs(sn) ** (1 - sq)
        pts = np.stack([rx, np.full_like(rx, y), c + rz], axis=1)
        rings.append(part.add(pts, "torso", ctr))
    bottom = part.add((0.0, t[0, 0], t[0, 3]), "torso", (0.0, t[0, 0], t[0, 3]))[0]
    top = part.add((0.0, t[-1, 0], t[-1, 3]), "torso", (0.0, t[-1, 0], t[-1, 3]))[0]
    _fan(part, rings[0], bottom, reverse=True)
    for r0, r1 in zip(rings[:-1], rings[1:]):
        _band(part, r0, r1)
    _fan(part, rings[-1], top)
    return part


_HEAD_TABLE = [  # y, half-width x, half-depth z, centre z (below the skull ellipsoid)
    (0.285, 0.077, 0.099, 0.006),
    (0.262, 0.072, 0.094, 0.008),
    (0.242, 0.064, 0.088, 0.010),
    (0.224, 0.055, 0.078, 0.012),
    (0.210, 0.046, 0.063, 0.012),
    (0.199, 0.042, 0.049, 0.000),
    (0.186, 0.045, 0.045, -0.012),
    (0.172, 0.046, 0.046, -0.015),
    (0.165, 0.000, 0.000, -0.015),
]
_HEAD_TOP = 0.405
_MOUTH_Y, _NOSE_Y, _EAR_Y, _EYE_Y = 0.245, 0.275, 0.29, 0.305


def _head_profile():
    ys = np.linspace(_HEAD_TOP, 0.30, 24)
    k = np.clip((ys - 0.30) / (_HEAD_TOP - 0.30), 0, 1)
    r = np.sqrt(np.clip(1 - k * k, 0, 1))
    upper = np.stack([ys, 0.078 * r, 0.100 * r, 0.006 * r], axis=1)
    return np.concatenate([upper, np.array(_HEAD_TABLE)])


def _head_rings_y():
    t = _head_profile()
    prof = np.stack([t[:, 0], 0.5 * (t[:, 1] + t[:, 2])], axis=1)
    acc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(prof, axis=0), axis=1))])
    u = np.linspace(0.0, acc[-1], _HEAD_RINGS + 2)[1:-1]
    return np.interp(u, acc, t[:, 0]), t


def _head_indices():
    """Topological landmarks of the head grid (ring, segment) -> used for vertex ids."""
    ys, _ = _head_rings_y()
    ring = lambda y: int(np.argmin(np.abs(ys - y)))  # noqa: E731
    S = _HEAD_SEGS
    return {"mouth_ring": ring(_MOUTH_Y), "nose_ring": ring(_NOSE_Y), "ear_ring": ring(_EAR_Y),
            "front": S // 2, "left_side": (3 * S) // 4, "right_side": S // 4}


def _build_head(pr):
    part = _Part("head")
    ys, table = _head_rings_y()
    ax, az, cz = _interp_profile(table, ys)
    S = _HEAD_SEGS
    phi = np.pi + 2.0 * np.pi * np.arange(S) / S      # k = S/2 is the front (+Z)
    hi = _head_indices()
    pts_all = []
    for y, a, b, c in zip(ys, ax, az, cz):
        x = a * np.sin(phi)
        z = c + b * np.cos(phi)
        pts_all.append(np.stack([x, np.full(S, y), z], axis=1))
    P = np.array(pts_all)  # (rings, S, 3)
    x, y, z = P[..., 0], P[..., 1], P[..., 2]
    front = _smoothstep(np.cos(phi), 0.35, 0.85)[None, :]
    side = np.abs(np.sin(phi))[None, :]
    # nose: a ridge from the brows to a tip at _NOSE_Y
    ramp = np.interp(y, [0.255, 0.262, _NOSE_Y, 0.292, 0.315], [0.0, 0.45, 1.0, 0.45, 0.12])
    dz = 0.024 * ramp * _gauss(x * x, 0.0085) * front
    # eye sockets, brow ridge, lips, chin
    for ex in (-0.032, 0.032):
        dz -= 0.0065 * _gauss((x - ex) ** 2 + (y - _EYE_Y) ** 2, 0.011) * front
    dz += 0.004 * _gauss((y - 0.322) ** 2, 0.006) * _smoothstep(0.058 - np.abs(x), 0, 0.02) * front
    dz += 0.0045 * _gauss(x * x, 0.02) * _gauss((y - _MOUTH_Y) ** 2, 0.008) * front
    dz += 0.006 * _gauss(x * x, 0.016) * _gauss((y - 0.212) ** 2, 0.01) * front
    # ears
    ear_y = ys[hi["ear_ring"]]          # centred on the ear vertices of the grid
    ear = 0.011 * _gauss((y - ear_y) ** 2, 0.015) * _gauss((z - cz[:, None]) ** 2, 0.011) \
        * side ** 6
    P[..., 0] = x + np.sign(x) * ear
    P[..., 2] = z + dz
    # the mouth: rows above/below the mouth ring move towards it, leaving a slit
    m, f = hi["mouth_ring"], hi["front"]
    for k, pull, tuck in zip(range(f - 2, f + 3), (0.85, 0.68, 0.62, 0.68, 0.85),
                             (0.0, 0.002, 0.002, 0.002, 0.0)):
        P[m - 1, k] += pull * (P[m, k] - P[m - 1, k])
        P[m + 1, k] += pull * (P[m, k] - P[m + 1, k])
        P[m - 1, k, 2] -= tuck
        P[m + 1, k, 2] -= tuck
    rings = []
    for i in range(len(ys)):
        ctr = np.stack([np.zeros(S), np.full(S, ys[i]), np.full(S, cz[i])], axis=1)
        rings.append(part.add(P[i], "head", ctr))
    top = part.add((0.0, table[0, 0], table[0, 3]), "head", (0.0, table[0, 0], table[0, 3]))[0]
    bottom = part.add((0.0, table[-1, 0], table[-1, 3]), "head",
                      (0.0, table[-1, 0], table[-1, 3]))[0]
    _fan(part, rings[0], top, reverse=True)
    mouth = {(m - 1, k) for k in range(f - 2, f + 2)} | {(m, k) for k in range(f - 2, f + 2)}
    for i in range(len(rings) - 1):
        for k in range(S):
            if (i, k) in mouth:
                continue
            k1 = (k + 1) % S
            part.quad(rings[i][k], rings[i][k1], rings[i + 1][k1], rings[i + 1][k])
    _fan(part, rings[-1], bottom)
    return part, {"nose": rings[hi["nose_ring"]][f],
                  "lear": rings[hi["ear_ring"]][hi["left_side"]],
                  "rear": rings[hi["ear_ring"]][hi["right_side"]]}


def _build_eye(center, radius):
    part = _Part("eye")
    S, R = _EYE_SEGS, _EYE_RINGS
    th = np.pi * np.arange(1, R + 1) / (R + 1)         # from the front pole
    phi = 2.0 * np.pi * np.arange(S) / S
    rings = []
    for t in th:
        pts = center + radius * np.stack([np.sin(t) * np.cos(phi), np.sin(t) * np.sin(phi),
                                          np.full(S, np.cos(t))], axis=1)
        rings.append(part.add(pts, "eye", center))
    front = part.add(center + (0, 0, radius), "eye", center)[0]
    back = part.add(center - (0, 0, radius), "eye", center)[0]
    _fan(part, rings[0], front, reverse=True)
    for r0, r1 in zip(rings[:-1], rings[1:]):
        _band(part, r0, r1)
    _fan(part, rings[-1], back)
    return part, front


_FINGER_SPEC = {  # z cells on the distal palm face, segment lengths, radius, spread (dz/dx)
    "index": ((9, 11), (0.040, 0.024, 0.022), 0.0085, 0.07),
    "middle": ((6, 8), (0.044, 0.027, 0.023), 0.0088, 0.0),
    "ring": ((3, 5), (0.041, 0.026, 0.022), 0.0082, -0.06),
    "pinky": ((0, 2), (0.032, 0.019, 0.020), 0.0072, -0.13),
}
_THUMB_SPEC = ((1, 4), (0.036, 0.031, 0.026), 0.0102, (0.62, -0.28, 0.73))


def _build_arm(pr, joints):
    """Left arm with hand as one closed surface; fills hand joints into ``joints``."""
    part = _Part("arm")
    g = pr.girth
    W = joints[J["left_wrist"]]
    E = joints[J["left_elbow"]]
    S = joints[J["left_shoulder"]]
    _, ny, nz = _PALM_N
    x0, length, width, thick = W[0] + 0.012, 0.085, 0.084, 0.028 * g
    zc, yc = W[2] + 0.003, W[1] - 0.002

    def palm_map(u):
        s0, s1, s2 = u[:, 0], u[:, 1], u[:, 2]
        w = width * (0.93 + 0.07 * s0)
        th = thick * (1.0 - 0.18 * (1 - s2))              # thinner on the little-finger side
        x = x0 + s0 * length
        y = yc + (s1 - 0.5) * th + 0.004 * (1 - (2 * s2 - 1) ** 2) * (s1 > 0.5)  # arched back
        z = zc + (s2 - 0.5) * w
        pos = np.stack([x, y, z], axis=1)
        ctr = np.stack([x, np.full_like(x, yc), np.full_like(x, zc)], axis=1)
        return pos, ctr

    index, faces = _box(part, _PALM_N, palm_map, "palm")
    arm_loop = _cut_hole(_PALM_N, index, faces, (0, 0), (0, ny), (0, nz))
    finger_loops = {}
    for name, (zr, _, _, _) in _FINGER_SPEC.items():
        finger_loops[name] = _cut_hole(_PALM_N, index, faces, (0, 1), (0, ny), zr)
    thumb_loop = _cut_hole(_PALM_N, index, faces, (2, 1), _THUMB_SPEC[0], (0, ny))
    _emit_box(part, faces)

    tips = {}
    pos = lambda ids: np.array([part.pos[i] for i in ids])  # noqa: E731
    for name, (_, segs, radius, spread) in _FINGER_SPEC.items():
        base = pos(finger_loops[name]).mean(axis=0)
        d = _unit(np.array([1.0, -0.03, spread]))
        pts = [base]
        for L in segs:
            pts.append(pts[-1] + L * d)
        j1 = J[f"left_{name}1"]
        joints[j1:j1 + 3] = pts[:3]
        total = sum(segs)
        radii = lambda s, r=radius, tot=total: (r * g * (1 - 0.2 * s / tot),) * 2  # noqa: E731
        groupf = lambda s, nm=name: "finger_" + nm  # noqa: E731
        pole, _ = _tube_from_loop(part, finger_loops[name], pts, (0.0, 1.0, 0.0), radii,
                                  _FINGER_RINGS, groupf, blend_len=0.018)
        tips[name] = pole
    (_, segs, radius, direction) = _THUMB_SPEC
    base = pos(thumb_loop).mean(axis=0)
    d = _unit(np.array(direction))
    pts = [base]
    for L in segs:
        pts.append(pts[-1] + L * d)
    joints[J["left_thumb1"]:J["left_thumb1"] + 3] = pts[:3]
    total = sum(segs)
    pole, _ = _tube_from_loop(
        part, thumb_loop, pts, (0.0, 1.0, 0.0),
        lambda s: (radius * g * (1 - 0.2 * s / total),) * 2, _THUMB_RINGS,
        lambda s: "finger_thumb", blend_len=0.025)
    tips["thumb"] = pole

    # the arm: from the palm's proximal face to a cap inside the shoulder
    p0 = pos(arm_loop).mean(axis=0)
    cap_end = S - np.array([0.052, 0.0, 0.0])
    axis = [p0, W, E, S, cap_end]
    d_w = np.linalg.norm(W - p0)
    d_e = d_w + np.linalg.norm(E - W)
    d_s = d_e + np.linalg.norm(S - E)
    d_c = d_s + np.linalg.norm(cap_end - S)
    ra = np.array([[0.0, 0.021, 0.034], [d_w, 0.024, 0.031], [d_w + 0.09, 0.033, 0.037],
                   [d_e - 0.02, 0.036, 0.038], [d_e, 0.037, 0.037], [d_e + 0.12, 0.044, 0.042],
                   [d_s, 0.050, 0.048], [d_c, 0.052, 0.052]])

    def radii(s):
        return (g * float(np.interp(s, ra[:, 0], ra[:, 1])),
                g * float(np.interp(s, ra[:, 0], ra[:, 2])))

    _tube_from_loop(part, arm_loop, axis, (0.0, 1.0, 0.0), radii, _ARM_RINGS,
                    lambda s: "arm", blend_len=0.035)
    return part, tips


def _build_leg(pr, joints):
    part = _Part("leg")
    g = pr.girth
    H, K, A = joints[J["left_hip"]], joints[J["left_knee"]], joints[J["left_ankle"]]
    nx, _, nz = _FOOT_N
    cx = A[0] + 0.004
    heel_z, foot_len = A[2] - 0.058, 0.262

    def height(s2):
        return 0.078 - 0.046 * _smoothstep(s2, 0.42, 0.95)

    def foot_map(u):
        s0, s1, s2 = u[:, 0], u[:, 1], u[:, 2]
        wid = np.interp(s2, [0.0, 0.25, 0.7, 1.0], [0.066, 0.074, 0.097, 0.088]) * g
        x = cx + (s0 - 0.5) * wid
        y = FLOOR_Y + s1 * height(s2)
        toe = 0.030 * s0 ** 2 * _smoothstep(s2, 0.75, 1.0)        # lateral toes are shorter
        heel = 0.012 * (2 * s0 - 1) ** 2 * (1 - _smoothstep(s2, 0.0, 0.2))  # rounded heel
        z = heel_z + s2 * foot_len - toe + heel
        pos = np.stack([x, y, z], axis=1)
        ctr = np.stack([np.full_like(x, cx), FLOOR_Y + 0.5 * height(s2),
                        np.full_like(x, heel_z) + s2 * foot_len], axis=1)
        return pos, ctr

    index, faces = _box(part, _FOOT_N, foot_map, "foot")
    zr, xr = _FOOT_HOLE
    loop = _cut_hole(_FOOT_N, index, faces, (1, 1), zr, xr)
    _emit_box(part, faces)
    keys = {"heel": (nx // 2, 1, 0), "big_toe": (1, 1, nz), "small_toe": (nx - 1, 1, nz)}
    marks = {k: index[v] for k, v in keys.items()}
    # the ball of the foot ("foot" joint)
    u = np.array([[0.45, 0.42, 0.74]])
    ball = foot_map(u)[0][0]
    joints[J["left_foot"]] = ball
    # the leg: from the foot hole up through ankle, knee and hip to a cap in the pelvis
    p0 = np.array([part.pos[i] for i in loop]).mean(axis=0)
    cap_end = H + np.array([0.0, 0.075, 0.0])
    axis = [p0, A, K, H, cap_end]
    d_a = np.linalg.norm(A - p0)
    d_k = d_a + np.linalg.norm(K - A)
    d_h = d_k + np.linalg.norm(H - K)
    d_c = d_h + np.linalg.norm(cap_end - H)
    ra = np.array([[0.0, 0.036, 0.046], [d_a + 0.03, 0.033, 0.036], [d_a + 0.12, 0.043, 0.050],
                   [d_a + 0.25, 0.052, 0.058], [d_k - 0.05, 0.050, 0.052], [d_k, 0.051, 0.052],
                   [d_k + 0.12, 0.062, 0.064], [d_h - 0.05, 0.080, 0.082], [d_h, 0.084, 0.086],
                   [d_c, 0.082, 0.084]])

    def radii(s):
        return (g * float(np.interp(s, ra[:, 0], ra[:, 1])),
                g * float(np.interp(s, ra[:, 0], ra[:, 2])))

    _tube_from_loop(part, loop, axis, (0.0, 0.0, 1.0), radii, _LEG_RINGS, lambda s: "leg",
                    blend_len=0.05)
    return part, marks


@dataclass
class _Body:
    v: np.ndarray            # (V, 3) in construction order
    f: np.ndarray            # (F, 3)
    center: np.ndarray       # (V, 3) axis point of each vertex
    group: np.ndarray        # (V,) object: body part label
    side: np.ndarray         # (V,) +1 left, -1 right, 0 middle
    comp: np.ndarray         # (V,) component id
    joints: np.ndarray       # (55, 3)
    marks: dict              # extra-joint name -> vertex index (construction order)
    comp_names: list


_LEFT_TO_RIGHT = {i: JOINT_NAMES.index(n.replace("left_", "right_"))
                  for i, n in enumerate(JOINT_NAMES) if n.startswith("left_")}


def _mirror_joints(j):
    for li, ri in _LEFT_TO_RIGHT.items():
        j[ri] = j[li] * np.array([-1.0, 1.0, 1.0])


def _build_body(pr: Proportions) -> _Body:
    joints = _design_joints(pr)
    comps = []  # (name, side, part-arrays, marks{name: local index})

    def take(part, name, side, marks=None, mirror=False):
        pos, tris, ctr, grp, remap = part.arrays()
        marks = {k: int(remap[v]) for k, v in (marks or {}).items()}
        if mirror:
            pos = pos * np.array([-1.0, 1.0, 1.0])
            ctr = ctr * np.array([-1.0, 1.0, 1.0])
            tris = tris[:, ::-1]
        t = pos[tris]
        if np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() < 0:
            tris = tris[:, ::-1]     # outward normals
        comps.append((name, side, pos, tris, ctr, grp, marks))

    take(_build_torso(pr), "torso", 0)
    head, head_marks = _build_head(pr)
    take(head, "head", 0, head_marks)
    # eyes sit in the sockets, their front poles 4 mm out of the head surface
    hp = np.array(head.pos)
    radius = 0.0125
    eyes = {}
    for side, ex in ((1, 0.032), (-1, -0.032)):
        near = np.argsort((hp[:, 0] - ex) ** 2 + (hp[:, 1] - _EYE_Y) ** 2 + 1e3 * (hp[:, 2] < 0))
        zsurf = float(np.mean(hp[near[:3], 2]))
        eyes[side] = np.array([ex, _EYE_Y, zsurf - radius + 0.004])
    joints[J["left_eye_smplhf"]] = eyes[1]
    joints[J["right_eye_smplhf"]] = eyes[-1]
    for side, key in ((1, "leye"), (-1, "reye")):
        eye, pupil = _build_eye(eyes[side], radius)
        take(eye, "eye_l" if side > 0 else "eye_r", side, {key: pupil})
    arm, tips = _build_arm(pr, joints)
    leg, foot_marks = _build_leg(pr, joints)
    _mirror_joints(joints)
    take(arm, "arm_l", 1, {"l" + k: v for k, v in tips.items()})
    take(arm, "arm_r", -1, {"r" + k: v for k, v in tips.items()}, mirror=True)
    fm = {"heel": "Heel", "big_toe": "BigToe", "small_toe": "SmallToe"}
    take(leg, "leg_l", 1, {"L" + fm[k]: v for k, v in foot_marks.items()})
    take(leg, "leg_r", -1, {"R" + fm[k]: v for k, v in foot_marks.items()}, mirror=True)

    vs, fs, cs, gs, sides, cids, marks, names = [], [], [], [], [], [], {}, []
    off = 0
    for cid, (name, side, pos, tris, ctr, grp, mk) in enumerate(comps):
        vs.append(pos)
        fs.append(tris + off)
        cs.append(ctr)
        gs.append(grp)
        sides.append(np.full(len(pos), side))
        cids.append(np.full(len(pos), cid))
        marks.update({k: v + off for k, v in mk.items()})
        names.append(name)
        off += len(pos)
    v = np.concatenate(vs)
    center = np.concatenate(cs)
    joints = _scale_about_pelvis(joints, pr)
    v = _scale_about_pelvis(v, pr)
    center = _scale_about_pelvis(center, pr)
    return _Body(v, np.concatenate(fs), center, np.concatenate(gs), np.concatenate(sides),
                 np.concatenate(cids), joints, marks, names)


# ----------------------------------------------------------------------------- rigging
def _bone_segments(joints):
    """Segment per joint along the bone it rotates (for skinning distances)."""
    seg = {}
    children = {}
    for j, p in enumerate(PARENTS):
        if p >= 0:
            children.setdefault(p, []).append(j)
    for j in range(N_JOINTS):
        a = joints[j]
        if JOINT_NAMES[j] == "pelvis":
            seg[j] = (a + (0, -0.11, 0), joints[J["spine1"]])
        elif JOINT_NAMES[j].endswith("wrist"):
            side = JOINT_NAMES[j].split("_")[0]
            seg[j] = (a, joints[J[f"{side}_middle1"]])
        elif JOINT_NAMES[j] == "spine3":
            seg[j] = (a, joints[J["neck"]])
        elif JOINT_NAMES[j].endswith("3") and "_" in JOINT_NAMES[j]:   # finger tips
            p = joints[PARENTS[j]]
            seg[j] = (a, a + (a - p) * 0.9)
        elif JOINT_NAMES[j].endswith("_foot"):
            ank = joints[J[JOINT_NAMES[j].replace("foot", "ankle")]]
            d = a - ank
            d[1] = 0.0
            seg[j] = (a, a + 0.8 * d)
        elif JOINT_NAMES[j] == "head":
            seg[j] = (a, a + (0, 0.12, 0.01))
        elif j in children and len(children[j]) == 1:
            seg[j] = (a, joints[children[j][0]])
        else:
            seg[j] = (a, a)
    return seg


def _dist_to_segment(p, a, b):
    ab = b - a
    den = float(ab @ ab)
    t = np.zeros(len(p)) if den == 0 else np.clip((p - a) @ ab / den, 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _allowed_joints(group, side):
    s = "left" if side > 0 else "right"
    if group == "torso":
        return ["pelvis", "spine1", "spine2", "spine3", "neck", "left_collar", "right_collar",
                "left_hip", "right_hip"]
    if group == "arm":
        return [f"{s}_collar", f"{s}_shoulder", f"{s}_elbow", f"{s}_wrist"]
    if group == "palm":
        return [f"{s}_wrist"] + [f"{s}_{f}1" for f in FINGERS]
    if group.startswith("finger_"):
        f = group.split("_")[1]
        return [f"{s}_wrist", f"{s}_{f}1", f"{s}_{f}2", f"{s}_{f}3"]
    if group == "leg":
        return ["pelvis", f"{s}_hip", f"{s}_knee", f"{s}_ankle"]
    if group == "foot":
        return [f"{s}_ankle", f"{s}_foot"]
    raise KeyError(group)


def _skinning(body: _Body) -> np.ndarray:
    v, joints = body.v, body.joints
    W = np.zeros((len(v), N_JOINTS))
    seg = _bone_segments(joints)
    keys = sorted({(g, s) for g, s in zip(body.group, body.side)}, key=str)
    for g, s in keys:
        idx = np.flatnonzero((body.group == g) & (body.side == s))
        p = v[idx]
        if g == "eye":
            W[idx, J["left_eye_smplhf" if s > 0 else "right_eye_smplhf"]] = 1.0
            continue
        if g == "head":
            pel = joints[J["head"]]
            front = _smoothstep(p[:, 2] - 0.02, 0.0, 0.03)
            below = _smoothstep(_MOUTH_Y - 0.004 - p[:, 1], 0.0, 0.012)
            lower = _smoothstep(pel[1] - p[:, 1], -0.01, 0.035) * (1 - front * below)
            jaw = front * below * _smoothstep(0.06 - np.abs(p[:, 0]), 0.0, 0.02)
            W[idx, J["jaw"]] = jaw
            W[idx, J["neck"]] = (1 - jaw) * lower
            W[idx, J["head"]] = (1 - jaw) * (1 - lower)
            continue
        names = _allowed_joints(g, s)
        ids = [J[n] for n in names]
        d = np.stack([_dist_to_segment(p, *seg[j]) for j in ids], axis=1)
        w = (d + 0.004) ** -5.0
        if g == "torso":
            for k, n in enumerate(names):
                if n.endswith("collar"):
                    sign = 1.0 if n.startswith("left") else -1.0
                    w[:, k] *= _smoothstep(sign * p[:, 0], 0.06, 0.14)
                if n.endswith("hip"):
                    w[:, k] *= _smoothstep(-p[:, 1], 0.40, 0.46)
        if g == "leg":
            w[:, 0] *= 0.3
        # keep the three largest, renormalise
        if w.shape[1] > 3:
            cut = np.sort(w, axis=1)[:, -3][:, None]
            w = np.where(w >= cut, w, 0.0)
        w /= w.sum(axis=1, keepdims=True)
        W[idx[:, None], np.array(ids)[None, :]] = w
    W /= W.sum(axis=1, keepdims=True)
    return W


def _regress_row(P, p):
    """Non-negative weights summing to 1 with ``P.T @ w == p``, close to uniform."""
    n = len(P)
    free = np.ones(n, bool)
    b = np.append(p, 1.0)
    for _ in range(60):
        idx = np.flatnonzero(free)
        Q = P[idx]
        A = np.vstack([Q.T, np.ones(len(idx))])
        u = np.full(len(idx), 1.0 / len(idx))
        x = u + np.linalg.lstsq(A, b - A @ u, rcond=None)[0]
        if x.min() >= 0.0:
            w = np.zeros(n)
            w[idx] = x
            if np.abs(A @ x - b).max() < 1e-10:
                return w
            return None
        free[idx[x < 0]] = False
        if free.sum() < 4:
            return None
    return None


def _j_regressor(body: _Body) -> np.ndarray:
    v, joints = body.v, body.joints
    R = np.zeros((N_JOINTS, len(v)))
    comp_of = {n: i for i, n in enumerate(body.comp_names)}
    for j, name in enumerate(JOINT_NAMES):
        s = "l" if name.startswith("left") else "r"
        if name in ("pelvis", "spine1", "spine2", "spine3", "neck") or name.endswith("collar"):
            cand = body.comp == comp_of["torso"]
        elif name in ("head", "jaw"):
            cand = body.comp == comp_of["head"]
        elif name.endswith("eye_smplhf"):
            cand = body.comp == comp_of["eye_" + s]
        elif any(k in name for k in ("hip", "knee", "ankle", "foot")):
            cand = body.comp == comp_of["leg_" + s]
        else:
            cand = body.comp == comp_of["arm_" + s]
        cidx = np.flatnonzero(cand)
        p = joints[j]
        if name.endswith("eye_smplhf"):
            row = _regress_row(v[cidx], p)
            if row is not None:
                R[j, cidx] = row
                continue
        found = _nearby_row(v, cidx, p, _RADII)
        if found is None:
            raise RuntimeError(f"no regressor for joint {name}")
        R[j, found[0]] = found[1]
    return R


_RADII = (0.012, 0.016, 0.022, 0.03, 0.04, 0.055, 0.075, 0.1, 0.14, 0.2)


def _nearby_row(v, cidx, p, radii):
    """(vertex ids, regressor row) for point p (3,) from the vertices cidx of v (V, 3) within
    the first radius of the nearest one that gives >= 6 vertices and a row; None if none."""
    d = np.linalg.norm(v[cidx] - p, axis=1)
    for radius in radii:
        near = cidx[d < d.min() + radius]
        if len(near) < 6:
            continue
        row = _regress_row(v[near], p)
        if row is not None:
            return near, row
    return None


# ----------------------------------------------------------------------------- blend shapes
def _smooth_fields(v, n, seed, amp0, decay, freq=(2.0, 9.0)):
    """``n`` smooth displacement fields (V, 3, n): sums of low-frequency sinusoids."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(v), 3, n))
    for i in range(n):
        k = _unit(rng.normal(size=(3, 2, 3))) * rng.uniform(*freq, size=(3, 2, 1))
        ph = rng.uniform(0, 2 * np.pi, size=(3, 2))
        amp = amp0 * decay ** i
        for c in range(3):
            waves = np.sin(v @ k[c].T + ph[c])          # (V, 2)
            out[:, c, i] = amp * 0.5 * waves.sum(axis=1)
    return out


def _shapedirs(body: _Body) -> np.ndarray:
    v, jt, g, side = body.v, body.joints, body.group, body.side
    V = len(v)
    sd = np.zeros((V, 3, N_SHAPE + N_EXPR))
    pel = jt[J["pelvis"]]
    radial = v - body.center
    limb = np.isin(g, ["arm", "leg"])
    hand = np.isin(g, ["palm", "foot"]) | np.array([str(x).startswith("finger") for x in g])
    torso, head = g == "torso", g == "head"
    eye = g == "eye"
    sgn = np.where(side != 0, side, np.sign(v[:, 0]))
    # 0: height / overall size
    sd[:, :, 0] = 0.04 * (v - pel)
    # 1: girth / weight
    fac = np.select([torso, limb, hand, head], [0.16, 0.14, 0.04, 0.03], 0.0)
    sd[:, :, 1] = fac[:, None] * radial
    belly = torso * _gauss((v[:, 1] + 0.2) ** 2, 0.09) * _smoothstep(v[:, 2], 0.0, 0.08)
    sd[:, 2, 1] += 0.02 * belly
    # 2: shoulder width
    upper = _smoothstep(v[:, 1], -0.05, 0.11)
    arm_side = np.isin(g, ["arm", "palm"]) | np.array([str(x).startswith("finger") for x in g])
    sd[:, 0, 2] = 0.022 * np.where(arm_side, sgn, torso * upper * np.tanh(v[:, 0] / 0.08))
    # 3: leg length (legs and feet longer, feet move down)
    leg_side = np.isin(g, ["leg", "foot"])
    hip_y = jt[J["left_hip"], 1]
    sd[:, 1, 3] = -0.05 * leg_side * np.clip((hip_y - v[:, 1]) / (hip_y - FLOOR_Y), 0.0, 1.0)
    # 4: torso length (everything above the pelvis rises)
    neck_y = jt[J["neck"], 1]
    rise = np.clip((v[:, 1] - pel[1]) / (neck_y - pel[1]), 0.0, 1.0)
    rise = np.where(arm_side, np.clip((jt[J["left_shoulder"], 1] - pel[1]) / (neck_y - pel[1]),
                                      0, 1), rise)
    rise = np.where(head | eye, 1.0, np.where(leg_side, 0.0, rise))
    sd[:, 1, 4] = 0.04 * rise
    # 5: head size
    hc = jt[J["head"]] + (0, 0.05, 0.01)
    sd[:, :, 5] = 0.06 * (head | eye)[:, None] * (v - hc)
    # 6: arm length
    sx, wx = abs(jt[J["left_shoulder"], 0]), abs(jt[J["left_wrist"], 0])
    sd[:, 0, 6] = 0.04 * arm_side * sgn * np.clip((np.abs(v[:, 0]) - sx) / (wx - sx), 0.0, 1.0)
    # 7: hip width
    low = 1.0 - _smoothstep(v[:, 1], -0.35, -0.2)
    sd[:, 0, 7] = 0.018 * np.where(leg_side, sgn, torso * low * np.tanh(v[:, 0] / 0.08))
    # 8: chest depth
    chest = torso * _gauss((v[:, 1] - 0.02) ** 2, 0.07) * _smoothstep(v[:, 2], 0.0, 0.09)
    sd[:, 2, 8] = 0.02 * chest
    # 9: belly
    sd[:, 2, 9] = 0.03 * belly
    # 10..299: small smooth fields
    sd[:, :, 10:N_SHAPE] = _smooth_fields(v, N_SHAPE - 10, 10, 0.003, 0.985)
    # expressions: face only
    sd[:, :, N_SHAPE:] = _expression_dirs(body)
    return sd


def _expression_dirs(body: _Body) -> np.ndarray:
    v = body.v
    V = len(v)
    e = np.zeros((V, 3, N_EXPR))
    head = body.group == "head"
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    front = head * _smoothstep(z - body.center[:, 2], 0.02, 0.06)
    g2 = lambda cx, cy, s: _gauss((x - cx) ** 2 + (y - cy) ** 2, s)  # noqa: E731
    below = _smoothstep(_MOUTH_Y - 0.002 - y, 0.0, 0.01) * _smoothstep(y, 0.17, 0.21)
    jawm = front * below * _smoothstep(0.065 - np.abs(x), 0.0, 0.025)
    e[:, 1, 0] = -0.008 * jawm                           # jaw open
    e[:, 2, 0] = -0.003 * jawm
    for cx in (-0.022, 0.022):
        c = front * g2(cx, _MOUTH_Y, 0.009)
        e[:, 0, 1] += 0.004 * np.sign(cx) * c           # smile
        e[:, 1, 1] += 0.004 * c
        e[:, 2, 1] -= 0.002 * c
        e[:, 0, 6] += 0.006 * np.sign(cx) * c           # mouth wide
        e[:, 1, 7] -= 0.004 * c                         # lip corners down
        ch = front * g2(1.9 * cx, 0.262, 0.014)
        e[:, 0, 5] += 0.005 * np.sign(cx) * ch          # cheek puff
        e[:, 2, 5] += 0.004 * ch
        sq = front * g2(1.45 * cx, 0.292, 0.01)
        e[:, 1, 9] += 0.003 * sq                        # squint
    brow = front * _gauss((y - 0.322) ** 2, 0.008) * _smoothstep(0.06 - np.abs(x), 0, 0.02)
    e[:, 1, 2] = 0.005 * brow                           # brows up
    inner = front * _gauss((y - 0.32) ** 2, 0.008) * _gauss((np.abs(x) - 0.015) ** 2, 0.012)
    e[:, 1, 3] = -0.003 * inner                         # frown
    e[:, 0, 3] = -0.002 * np.sign(x) * inner
    lips = front * g2(0.0, _MOUTH_Y, 0.012)
    e[:, 2, 4] = 0.006 * lips                           # pucker
    e[:, 0, 4] = -0.004 * np.tanh(x / 0.01) * lips
    nose = front * g2(0.0, 0.282, 0.012)
    e[:, 1, 8] = 0.003 * nose                           # nose wrinkle
    e[:, :, 10:] = _smooth_fields(v, N_EXPR - 10, 20, 0.0008, 0.98, freq=(20.0, 60.0)) \
        * front[:, None, None]
    return e


def _posedirs(body: _Body, weights: np.ndarray) -> np.ndarray:
    v, jt = body.v, body.joints
    pd = np.zeros((len(v), 3, N_POSE_FEATURES))
    radial = _unit(v - body.center)
    k = np.arange(9)
    for j in range(1, N_JOINTS):
        name = JOINT_NAMES[j]
        if name.endswith("eye_smplhf"):
            continue
        finger = any(f in name for f in FINGERS)
        amp, sigma = (0.0015, 0.012) if finger else \
            ((0.003, 0.03) if name in ("jaw", "head", "neck") else (0.005, 0.06))
        infl = weights[:, j] + weights[:, PARENTS[j]]
        idx = np.flatnonzero(infl > 1e-3)
        if len(idx) == 0:
            continue
        fall = _gauss(((v[idx] - jt[j]) ** 2).sum(1), sigma) * np.clip(infl[idx], 0, 1)
        a = amp * np.sin(1.37 * j + 2.11 * k + 0.4)
        pd[idx, :, 9 * (j - 1):9 * j] = (fall[:, None] * radial[idx])[:, :, None] * a[None, None, :]
    return pd


# ----------------------------------------------------------------------------- face landmarks
def _face_triangles(body: _Body):
    head_comp = body.comp_names.index("head")
    fids = np.flatnonzero(body.comp[body.f[:, 0]] == head_comp)
    tri = body.v[body.f[fids]]
    return fids, tri


def _bary_2d(p, tri):
    a, b, c = tri[..., 0, :2], tri[..., 1, :2], tri[..., 2, :2]
    v0, v1, v2 = b - a, c - a, p - a
    d00 = (v0 * v0).sum(-1)
    d01 = (v0 * v1).sum(-1)
    d11 = (v1 * v1).sum(-1)
    d20 = (v2 * v0).sum(-1)
    d21 = (v2 * v1).sum(-1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-18, 1e-18, den)
    bv = (d11 * d20 - d01 * d21) / den
    bw = (d00 * d21 - d01 * d20) / den
    return np.stack([1 - bv - bw, bv, bw], axis=-1)


def _pick_front(body, targets_xy):
    """Front-most head triangle under each (x, y), with barycentrics."""
    fids, tri = _face_triangles(body)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    facing = normal[:, 2] > 0
    out_f, out_b = [], []
    for p in targets_xy:
        bc = _bary_2d(np.asarray(p)[None, :], tri)
        inside = facing & (bc.min(axis=1) >= -1e-9)
        if inside.any():
            cand = np.flatnonzero(inside)
            zc = (bc[cand] * tri[cand, :, 2]).sum(1)
            best = cand[np.argmax(zc)]
        else:
            cen = tri[:, :, :2].mean(1)
            dd = ((cen - p) ** 2).sum(1) + 1e3 * (~facing)
            best = int(np.argmin(dd))
        b = np.clip(_bary_2d(np.asarray(p)[None, :], tri[best:best + 1])[0], 0, None)
        out_f.append(fids[best])
        out_b.append(b / b.sum())
    return np.array(out_f), np.array(out_b)


def _pick_nearest(body, targets):
    fids, tri = _face_triangles(body)
    cen = tri.mean(1)
    out_f, out_b = [], []
    for p in targets:
        best = int(np.argmin(((cen - p) ** 2).sum(1)))
        t = tri[best]
        # barycentrics of the projection onto the triangle plane
        v0, v1, v2 = t[1] - t[0], t[2] - t[0], p - t[0]
        d00, d01, d11 = v0 @ v0, v0 @ v1, v1 @ v1
        d20, d21 = v2 @ v0, v2 @ v1
        den = d00 * d11 - d01 * d01
        bv = (d11 * d20 - d01 * d21) / den
        bw = (d00 * d21 - d01 * d20) / den
        b = np.clip(np.array([1 - bv - bw, bv, bw]), 0, None)
        out_f.append(fids[best])
        out_b.append(b / b.sum())
    return np.array(out_f), np.array(out_b)


def _static_landmarks(body):
    """The 51 inner face landmarks (iBUG 68 points 17-67; image-left = subject's right)."""
    pts = []
    for xs in ((-0.052, -0.043, -0.033, -0.023, -0.012), (0.012, 0.023, 0.033, 0.043, 0.052)):
        for x in xs:
            pts.append((x, 0.321 + 0.004 * np.cos((abs(x) - 0.032) / 0.02)))
    pts += [(0.0, 0.305), (0.0, 0.296), (0.0, 0.286), (0.0, 0.276)]           # bridge
    pts += [(-0.013, 0.265), (-0.0065, 0.263), (0.0, 0.262), (0.0065, 0.263), (0.013, 0.265)]
    for cx in (-0.032, 0.032):          # eyes: outer/inner corner first (iBUG order)
        ring = [(-0.013, 0.0), (-0.005, 0.005), (0.005, 0.005), (0.013, 0.0), (0.005, -0.005),
                (-0.005, -0.005)]
        pts += [(cx + dx, _EYE_Y + dy) for dx, dy in ring]
    my = _MOUTH_Y
    outer = [(-0.024, 0.0), (-0.016, 0.006), (-0.007, 0.009), (0.0, 0.008), (0.007, 0.009),
             (0.016, 0.006), (0.024, 0.0), (0.016, -0.008), (0.007, -0.011), (0.0, -0.012),
             (-0.007, -0.011), (-0.016, -0.008)]
    inner = [(-0.019, 0.0), (-0.008, 0.0045), (0.0, 0.0045), (0.008, 0.0045), (0.019, 0.0),
             (0.008, -0.0045), (0.0, -0.0045), (-0.008, -0.0045)]
    pts += [(x, my + y) for x, y in outer + inner]
    assert len(pts) == 51
    return _pick_front(body, np.array(pts))


def _contour_points(body, shift_deg):
    _, table = _head_rings_y()
    psi = np.radians(np.clip(np.linspace(-88.0, 88.0, 17) - shift_deg, -95.0, 95.0))
    ys = 0.268 - 0.058 * np.cos(psi / 2.0) ** 6
    ax, az, cz = _interp_profile(table, ys)
    return np.stack([ax * np.sin(psi), ys, cz + az * np.cos(psi)], axis=1)


def _dynamic_landmarks(body):
    faces = np.zeros((79, 17), np.int64)
    bary = np.zeros((79, 17, 3))
    for row in range(79):
        angle = row if row <= 39 else 39 - row
        f, b = _pick_nearest(body, _contour_points(body, 0.6 * angle))
        faces[row], bary[row] = f, b
    return faces, bary


# ----------------------------------------------------------------------------- hands
def _hand_mean_left():
    curl = {"index": (0.15, 0.28, 0.18), "middle": (0.18, 0.32, 0.2),
            "pinky": (0.28, 0.38, 0.24), "ring": (0.24, 0.35, 0.22),
            "thumb": (0.08, 0.12, 0.2)}
    spread = {"index": 0.06, "middle": 0.0, "pinky": -0.12, "ring": -0.06, "thumb": 0.0}
    out = []
    for f in FINGERS:
        for i in range(3):
            if f == "thumb":
                d = _unit(np.array(_THUMB_SPEC[3]))
                axis = _unit(np.cross(d, (0.0, -1.0, 0.0)))
                out.append(curl[f][i] * axis)
            else:
                rot = np.array([0.0, 0.0, -curl[f][i]])          # flex towards the palm (-Y)
                rot[1] = -0.5 * spread[f] if i == 0 else 0.0  # spread (+Z: thumb side)
                out.append(rot)
    return np.concatenate(out)


_MIRROR45 = np.tile([1.0, -1.0, -1.0], 15)


def _hand_components_left():
    """Orthonormal 45x45 basis (rows): curl, spread, thumb, distal curl, then seeded fill."""
    syn = np.zeros((4, 45))
    syn[0] = _hand_mean_left()                                 # curl all fingers
    for i, sp in enumerate((0.15, 0.0, -0.2, -0.1)):           # spread (first joints, about Y)
        syn[1, i * 9 + 1] = sp
    syn[2, 36:45] = 1.0                                        # thumb
    for i in range(4):                                         # distal joints curl (about -Z)
        syn[3, i * 9 + 5] = -1.0
        syn[3, i * 9 + 8] = -0.7
    rng = np.random.default_rng(45)
    M = np.vstack([syn, rng.standard_normal((45 - len(syn), 45))])
    q, r = np.linalg.qr(M.T)
    q = q * np.sign(np.diag(r))[None, :]
    return np.ascontiguousarray(q.T)


# ----------------------------------------------------------------------------- uv layout
def _uv_layout(body: _Body):
    """Cylindrical unwrap per component into an atlas; exactly N_VT uv entries."""
    axes = {"torso": 1, "head": 1, "eye_l": 2, "eye_r": 2, "arm_l": 0, "arm_r": 0,
            "leg_l": 1, "leg_r": 1}
    v, f = body.v, body.f
    uv = np.zeros((len(v), 2))
    ncomp = len(body.comp_names)
    for cid, name in enumerate(body.comp_names):
        idx = np.flatnonzero(body.comp == cid)
        p = v[idx] - v[idx].mean(0)
        a = axes[name]
        b, c = (a + 1) % 3, (a + 2) % 3
        # contiguous operands: numpy's SIMD arctan2 may round differently on strided views
        pc, pb = np.ascontiguousarray(p[:, c]), np.ascontiguousarray(p[:, b])
        u = (np.arctan2(pc, pb) + np.pi) / (2 * np.pi)
        h = p[:, a]
        h = (h - h.min()) / max(h.max() - h.min(), 1e-9)
        uv[idx] = np.stack([u, h], axis=1)
    extra = []
    ft = f.copy()
    nxt = len(v)
    seam = {}
    for fi in range(len(f)):
        us = uv[f[fi], 0]
        if us.max() - us.min() > 0.5:
            for c in range(3):
                if us[c] < 0.5:
                    vid = int(f[fi, c])
                    if vid not in seam:
                        extra.append((uv[vid, 0] + 1.0, uv[vid, 1]))
                        seam[vid] = nxt
                        nxt += 1
                    ft[fi, c] = seam[vid]
    # pad to the real count with duplicated corners (same uv, used by one face each)
    fi = 0
    while nxt < N_VT:
        c = fi % 3
        vid = ft[fi, c]
        src = uv[vid] if vid < len(v) else np.array(extra[vid - len(v)])
        extra.append(tuple(src))
        ft[fi, c] = nxt
        nxt += 1
        fi += 7
    if nxt > N_VT:
        raise RuntimeError(f"uv layout has {nxt} entries, more than {N_VT}")
    vt = np.concatenate([uv, np.array(extra).reshape(-1, 2)])
    # place each component in its tile
    comp_vt = np.empty(len(vt), np.int64)
    comp_vt[ft.ravel()] = body.comp[f.ravel()]
    cols, rows = 4, 2
    out = np.empty_like(vt)
    for cid in range(ncomp):
        m = comp_vt == cid
        uu = vt[m, 0] / max(vt[m, 0].max(), 1e-9)
        col, row = cid % cols, cid // cols
        out[m, 0] = (col + 0.02 + 0.96 * uu) / cols
        out[m, 1] = (row + 0.02 + 0.96 * vt[m, 1]) / rows
    return np.clip(out, 0.0, 1.0), ft


# ----------------------------------------------------------------------------- assembly
def _permutation(n, marks):
    """new -> old order that puts each marked vertex at its SMPL-X vertex id."""
    new2old = -np.ones(n, np.int64)
    taken = np.zeros(n, bool)
    for name, vid in EXTRA_VERTEX_IDS.items():
        new2old[vid] = marks[name]
        taken[marks[name]] = True
    new2old[new2old < 0] = np.flatnonzero(~taken)
    return new2old


def smplx_standin_arrays(gender: str = "neutral") -> dict[str, np.ndarray]:
    """Every array of one stand-in SMPL-X file, as written (see the module docstring)."""
    pr = PROPORTIONS[gender]
    body = _build_body(pr)
    n = len(body.v)
    if n != N_VERTS or len(body.f) != N_FACES:
        raise RuntimeError(f"stand-in mesh has {n} vertices / {len(body.f)} faces")
    weights = _skinning(body)
    jreg = _j_regressor(body)
    shapedirs = _shapedirs(body)
    posedirs = _posedirs(body, weights)
    # landmarks and uv layout are part of the topology: made on the neutral body for all
    ref = body if gender == "neutral" else _build_body(PROPORTIONS["neutral"])
    lmk_f, lmk_b = _static_landmarks(ref)
    dyn_f, dyn_b = _dynamic_landmarks(ref)
    vt, ft = _uv_layout(ref)
    new2old = _permutation(n, body.marks)
    old2new = np.empty(n, np.int64)
    old2new[new2old] = np.arange(n)
    comps = _hand_components_left()
    mean_l = _hand_mean_left()
    rng = np.random.default_rng(7)
    coeffs = rng.standard_normal((N_HAND_COEFFS, 45)) * np.geomspace(0.6, 0.02, 45)[None, :]
    kintree = np.array([[ROOT_PARENT] + list(PARENTS[1:]), list(range(N_JOINTS))], np.int64)
    return {
        "v_template": body.v[new2old].astype(np.float64),
        "f": old2new[body.f].astype(np.uint32),
        "shapedirs": np.ascontiguousarray(shapedirs[new2old]),
        "posedirs": np.ascontiguousarray(posedirs[new2old]),
        "J_regressor": np.ascontiguousarray(jreg[:, new2old]),
        "kintree_table": kintree,
        "weights": np.ascontiguousarray(weights[new2old]),
        "hands_componentsl": comps,
        "hands_componentsr": comps * _MIRROR45[None, :],
        "hands_meanl": mean_l,
        "hands_meanr": mean_l * _MIRROR45,
        "hands_coeffsl": coeffs,
        "hands_coeffsr": coeffs.copy(),
        "lmk_faces_idx": lmk_f.astype(np.int64),
        "lmk_bary_coords": lmk_b.astype(np.float64),
        "dynamic_lmk_faces_idx": dyn_f.astype(np.int64),
        "dynamic_lmk_bary_coords": dyn_b.astype(np.float64),
        "vt": vt.astype(np.float64),
        "ft": ft.astype(np.uint32),
        "standin": np.array(STANDIN_NOTE),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write an uncompressed ``.npz`` (numpy's own layout) with fixed zip timestamps, atomically.

    The file is written under a temporary name and committed in one step
    (``common.files.atomic_write``); an existing file of that name is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
                for name, arr in arrays.items():
                    info = zipfile.ZipInfo(name + ".npy", date_time=ZIP_DATE_TIME)
                    info.compress_type = zipfile.ZIP_STORED
                    info.create_system = 3
                    info.external_attr = 0o600 << 16
                    with z.open(info, "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, np.asarray(arr, order="C"),
                                                  allow_pickle=False)
        os.chmod(tmp, 0o644)

    return atomic_write(path, write, replace=True)


def write_smplx_standins(root: Path) -> list[Path]:
    """Write ``root/smplx/SMPLX_{NEUTRAL,MALE,FEMALE}.npz`` stand-ins; return their paths."""
    folder = Path(root) / SMPLX_SUBDIR
    paths = []
    for gender, fname in GENDER_FILES.items():
        arrays = smplx_standin_arrays(gender)
        paths.append(write_npz(folder / fname, arrays))
        del arrays
    return paths


def write_checkpoint_standin(root: Path, seed: int = STANDIN_SEED) -> Path:
    """Write ``root/pose2pose/standin.pth.tar`` in the official checkpoint container."""
    sd = make_state_dict(official_keys_and_shapes(), seed)
    return write_official_container(Path(root) / CHECKPOINT_SUBDIR / STANDIN_CHECKPOINT_NAME,
                                    sd, epoch=6)


def write_standins(root: Path) -> list[Path]:
    """All stand-ins: the three SMPL-X files, the three SMPL files and the network
    checkpoints (Pose2Pose, I2L-MeshNet)."""
    from .i2l_standins import write_i2l_standins

    return (write_smplx_standins(root) + write_smpl_standins(root)
            + [write_checkpoint_standin(root)] + write_i2l_standins(root))


# ----------------------------------------------------------------------------- SMPL stand-in
# The SMPL stand-ins (the SMPL body, for SMPL takes and I2L-MeshNet).
#
# ``smpl/SMPL_{NEUTRAL,MALE,FEMALE}.npz``: the arrays ``smplx.SMPL`` reads, under
# the real names, shapes and counts of the official SMPL release: ``v_template``
# (6890, 3), ``f`` (13776, 3) uint32, ``shapedirs`` (6890, 3, 10), ``posedirs``
# (6890, 3, 207), ``J_regressor`` (24, 6890), ``kintree_table`` (2, 24) int64 with
# the real SMPL tree (root parent stored as uint32 max, as in the real files),
# ``weights`` (6890, 24), ``J`` (24, 3), and a ``standin`` marker. No pickles;
# ``common.smpl_file`` reads them (and ``smplx.SMPL`` through ``data_struct``).
#
# The body is a procedural T-posed mannequin in SMPL conventions (metres, +Y up,
# facing +Z, the subject's left at +X, soles at y = -1.30), built on the
# SMPL-X stand-in's joint design (``weights.standins``). Like the real SMPL mesh
# it is ONE closed genus-0 surface (2V - F = 4, so V = 6890 gives F = 13776):
# a subdivided torso box mapped onto an ellipsoid, with five quad holes (neck,
# two shoulders, two hips) out of which tubes grow along the skeleton (head;
# arm to the hand; leg through the ankle to the toes), each closed by a cap.
# ``J_regressor`` rows are non-negative, sum to one and reproduce the designed
# joints from ``v_template``; skinning blends up to three bones a part may
# follow by inverse distance; ``shapedirs`` are a few meaningful directions
# (height, girth, shoulder width, leg length) then small smooth fields;
# ``posedirs`` are small correctives near each joint (at most 5 mm per unit
# feature). The vertex ids smplx (``vertex_ids['smplh']``) and I2L-MeshNet use
# as extra joints (nose, eyes, ears, toes, heels) are moved onto matching
# vertices by a permutation of the vertex order.
_SMPL_PARENTS = tuple(int(p) for p in SMPL_PARENTS)
_SJ = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
SMPL_N_SHAPE = 10
SMPL_STANDIN_NOTE = "pose2pose_mocap stand-in, not the SMPL model"
SMPL_GENDER_FILES = {"neutral": "SMPL_NEUTRAL.npz", "male": "SMPL_MALE.npz",
                     "female": "SMPL_FEMALE.npz"}
# Vertex ids read as extra joints: smplx.vertex_ids['smplh'] (nose .. heels) and
# I2L-MeshNet's nose, eyes and ears (§5.1 of its fact sheet).
SMPL_EXTRA_VERTEX_IDS = {
    "nose": (332, 331), "leye": (2800, 2802), "reye": (6260, 6262), "lear": (583, 3489),
    "rear": (4071, 3990), "LBigToe": (3216,), "LSmallToe": (3226,), "LHeel": (3387,),
    "RBigToe": (6617,), "RSmallToe": (6624,), "RHeel": (6787,),
}

_SMPL_BOX_N = (12, 16, 8)                  # torso box cells: x, y, z
_SMPL_HOLE = 4                             # every hole is 4 x 4 cells: a 16-vertex rim
_SMPL_RINGS = {"head": 80, "arm": 70, "leg": 73}   # sum 366: V comes out at exactly 6890
_SMPL_TORSO_C, _SMPL_TORSO_R = np.array([0.0, -0.16, -0.01]), np.array([0.175, 0.37, 0.11])


def _smpl_design_joints(pr) -> np.ndarray:
    """The 24 SMPL joints (T-pose), from the SMPL-X stand-in's design."""
    jx = _design_joints(pr)
    j = np.zeros((SMPL_N_JOINTS, 3))
    j[:22] = jx[:22]  # the same 22 joints, in the same order
    j[_SJ["head"]] = (0.0, 0.245, -0.005)
    j[_SJ["left_foot"]] = j[_SJ["left_ankle"]] + (0.0, -0.06, 0.13)
    j[_SJ["left_hand"]] = j[_SJ["left_wrist"]] + (0.09, 0.0, 0.0)
    for i, name in enumerate(SMPL_JOINT_NAMES):
        if name.startswith("right_"):
            j[i] = j[_SJ[name.replace("right_", "left_")]] * (-1.0, 1.0, 1.0)
    return _scale_about_pelvis(j, pr)


def _smpl_build_body(pr):
    """-> (v (V,3), f (F,3), centers (V,3), group (V,) str, side (V,), joints (24,3))."""
    joints = _smpl_design_joints(pr)
    g = pr.girth
    part = _Part("body")
    c, r = _SMPL_TORSO_C * 1.0, _SMPL_TORSO_R * np.array([g + pr.shoulder, 1.0, g])

    def torso_map(u):
        q = 2.0 * u - 1.0
        d = q / np.linalg.norm(q, axis=1, keepdims=True)
        return c + d * r, np.broadcast_to(c, d.shape).copy()

    nx, ny, nz = _SMPL_BOX_N
    index, faces = _box(part, _SMPL_BOX_N, torso_map, "torso")
    h = _SMPL_HOLE
    loops = {
        "head": _cut_hole(_SMPL_BOX_N, index, faces, (1, 1), (2, 2 + h), (nx // 2 - h // 2,
                                                                         nx // 2 + h // 2)),
        "arm_l": _cut_hole(_SMPL_BOX_N, index, faces, (0, 1), (ny - 1 - h, ny - 1), (2, 2 + h)),
        "arm_r": _cut_hole(_SMPL_BOX_N, index, faces, (0, 0), (ny - 1 - h, ny - 1), (2, 2 + h)),
        "leg_l": _cut_hole(_SMPL_BOX_N, index, faces, (1, 0), (2, 2 + h), (nx - 1 - h, nx - 1)),
        "leg_r": _cut_hole(_SMPL_BOX_N, index, faces, (1, 0), (2, 2 + h), (1, 1 + h)),
    }
    _emit_box(part, faces)

    def loop_center(loop):
        return np.array([part.pos[i] for i in loop]).mean(axis=0)

    def profile(table, gg=g):
        t = np.asarray(table, dtype=np.float64)

        def radii(s):
            return (gg * float(np.interp(s, t[:, 0], t[:, 1])),
                    gg * float(np.interp(s, t[:, 0], t[:, 2])))
        return radii

    def arc(points):
        return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])

    # head: up from the neck hole, a neck then a skull
    p0 = loop_center(loops["head"])
    top = np.array([0.0, 0.405, joints[_SJ["head"]][2]])
    axis = np.array([p0, joints[_SJ["neck"]] + (0, 0.02, 0), joints[_SJ["head"]], top])
    s = arc(axis)
    tube_groups = {}
    pole, rings = _tube_from_loop(
        part, loops["head"], axis, (0.0, 0.0, 1.0),
        profile([[0, 0.065, 0.06], [s[1], 0.055, 0.055], [s[2] - 0.01, 0.075, 0.09],
                 [s[2] + 0.06, 0.085, 0.1], [s[3], 0.08, 0.09]], 1.0),
        _SMPL_RINGS["head"], lambda _s: "head", blend_len=0.03)
    tube_groups["head"] = (rings, pole)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        pre = "left_" if side == "l" else "right_"
        # arm: shoulder -> elbow -> wrist -> hand end
        p0 = loop_center(loops["arm_" + side])
        sh, el, wr, ha = (joints[_SJ[pre + n]] for n in ("shoulder", "elbow", "wrist", "hand"))
        tip = ha + (sign * 0.09, 0.0, 0.0)
        axis = np.array([p0, sh + (sign * 0.04, 0, 0), el, wr, ha, tip])
        s = arc(axis)
        pole, rings = _tube_from_loop(
            part, loops["arm_" + side], axis, (0.0, 0.0, 1.0),
            profile([[0, 0.07, 0.07], [s[1], 0.055, 0.055], [s[2], 0.04, 0.042],
                     [s[3], 0.028, 0.035], [s[4], 0.02, 0.045], [s[5], 0.012, 0.035]]),
            _SMPL_RINGS["arm"], lambda _s: "arm", blend_len=0.04)
        tube_groups["arm_" + side] = (rings, pole)
        # leg: hip -> knee -> ankle -> ball of the foot -> toes
        p0 = loop_center(loops["leg_" + side])
        kn, an, fo = (joints[_SJ[pre + n]] for n in ("knee", "ankle", "foot"))
        toe = fo + (0.0, -0.005, 0.07)
        axis = np.array([p0, kn, an, fo, toe])
        s = arc(axis)
        pole, rings = _tube_from_loop(
            part, loops["leg_" + side], axis, (0.0, 0.0, 1.0),
            profile([[0, 0.08, 0.08], [s[1], 0.05, 0.052], [s[2] - 0.05, 0.036, 0.04],
                     [s[2], 0.04, 0.05], [s[3], 0.022, 0.045], [s[4], 0.015, 0.04]]),
            _SMPL_RINGS["leg"], lambda _s: "leg", blend_len=0.05)
        tube_groups["leg_" + side] = (rings, pole)
    v, f, centers, group, remap = part.arrays()
    side = np.sign(np.where(np.abs(v[:, 0]) < 1e-9, 0.0, v[:, 0]))
    # which tube a vertex belongs to (for skinning), in the new numbering
    region = np.array(["torso"] * len(v), dtype=object)
    for name, (rings, pole) in tube_groups.items():
        ids = np.concatenate([np.asarray(x) for x in rings[1:]] + [[pole]])
        region[remap[ids]] = name
    return v, f, centers, region, side, joints


def _smpl_segments(joints):
    """Per joint, the bone segment it rotates (for skinning distances)."""
    seg = {}
    children = {}
    for j, p in enumerate(_SMPL_PARENTS):
        if p >= 0:
            children.setdefault(p, []).append(j)
    for j, name in enumerate(SMPL_JOINT_NAMES):
        a = joints[j]
        if name == "pelvis":
            seg[j] = (a + (0, -0.11, 0), joints[_SJ["spine1"]])
        elif name == "spine3":
            seg[j] = (a, joints[_SJ["neck"]])
        elif name == "head":
            seg[j] = (a, a + (0, 0.14, 0.01))
        elif name.endswith("_hand"):
            seg[j] = (a, a + (a - joints[_SMPL_PARENTS[j]]) * 1.0)
        elif name.endswith("_foot"):
            seg[j] = (a, a + (0.0, 0.0, 0.07))
        elif j in children and len(children[j]) == 1:
            seg[j] = (a, joints[children[j][0]])
        else:
            seg[j] = (a, a)
    return seg


def _smpl_allowed(region):
    if region == "torso":
        return ["pelvis", "spine1", "spine2", "spine3", "neck", "left_collar", "right_collar",
                "left_hip", "right_hip", "left_shoulder", "right_shoulder"]
    if region == "head":
        return ["spine3", "neck", "head"]
    s = "left" if region.endswith("_l") else "right"
    if region.startswith("arm"):
        return [f"{s}_collar", f"{s}_shoulder", f"{s}_elbow", f"{s}_wrist", f"{s}_hand"]
    return ["pelvis", f"{s}_hip", f"{s}_knee", f"{s}_ankle", f"{s}_foot"]


def _smpl_skinning(v, region, joints) -> np.ndarray:
    W = np.zeros((len(v), SMPL_N_JOINTS))
    seg = _smpl_segments(joints)
    for reg in sorted(set(region)):
        idx = np.flatnonzero(region == reg)
        names = _smpl_allowed(reg)
        ids = [_SJ[n] for n in names]
        p = v[idx]
        d = np.stack([_dist_to_segment(p, *seg[j]) for j in ids], axis=1)
        w = (d + 0.004) ** -5.0
        if reg == "torso":
            for k, n in enumerate(names):
                if n.endswith(("collar", "shoulder")):
                    sign = 1.0 if n.startswith("left") else -1.0
                    w[:, k] *= _smoothstep(sign * p[:, 0], 0.06, 0.14)
                if n.endswith("hip"):
                    w[:, k] *= _smoothstep(-p[:, 1], 0.40, 0.46)
        if w.shape[1] > 3:  # keep the three largest
            cut = np.sort(w, axis=1)[:, -3][:, None]
            w = np.where(w >= cut, w, 0.0)
        W[idx[:, None], np.array(ids)[None, :]] = w / w.sum(axis=1, keepdims=True)
    return W / W.sum(axis=1, keepdims=True)


def _smpl_j_regressor(v, joints) -> np.ndarray:
    R = np.zeros((SMPL_N_JOINTS, len(v)))
    for j, name in enumerate(SMPL_JOINT_NAMES):
        found = _nearby_row(v, np.arange(len(v)), joints[j], _RADII + (0.3,))
        if found is None:
            raise RuntimeError(f"no regressor for SMPL stand-in joint {name}")
        R[j, found[0]] = found[1]
    return R


def _smpl_shapedirs(v, centers, joints) -> np.ndarray:
    sd = np.zeros((len(v), 3, SMPL_N_SHAPE))
    floor = np.array([0.0, FLOOR_Y, 0.0])
    sd[:, :, 0] = 0.06 * (v - floor) * np.array([0.3, 1.0, 0.3])      # taller
    sd[:, :, 1] = 0.12 * (v - centers)                                  # girth
    sd[:, 0, 2] = 0.05 * np.sign(v[:, 0]) * _smoothstep(v[:, 1], -0.05, 0.12)  # shoulders
    sd[:, 1, 3] = -0.06 * (1 - _smoothstep(v[:, 1], joints[_SJ["pelvis"]][1] - 0.1,
                                             joints[_SJ["pelvis"]][1]))      # leg length
    sd[:, :, 4:] = _smooth_fields(v, SMPL_N_SHAPE - 4, 31, 0.01, 0.8)
    return sd


def _smpl_posedirs(v, centers, weights, joints) -> np.ndarray:
    pd = np.zeros((len(v), 3, SMPL_N_POSE_FEATURES))
    radial = _unit(v - centers + 1e-12)
    k = np.arange(9)
    for j in range(1, SMPL_N_JOINTS):
        infl = weights[:, j] + weights[:, _SMPL_PARENTS[j]]
        idx = np.flatnonzero(infl > 1e-3)
        if len(idx) == 0:
            continue
        amp, sigma = (0.003, 0.03) if SMPL_JOINT_NAMES[j] in ("head", "neck") else (0.005, 0.06)
        fall = _gauss(((v[idx] - joints[j]) ** 2).sum(1), sigma) * np.clip(infl[idx], 0, 1)
        a = amp * np.sin(1.37 * j + 2.11 * k + 0.4)
        pd[idx, :, 9 * (j - 1):9 * j] = (fall[:, None] * radial[idx])[:, :, None] * a[None, None]
    return pd


def _smpl_marks(v, region, joints) -> dict[str, int]:
    """The vertex to put at each extra-joint id: nearest of its part to a designed point."""
    head = joints[_SJ["head"]]
    targets = {
        "nose": ("head", head + (0.0, 0.01, 0.2)), "leye": ("head", head + (0.035, 0.04, 0.2)),
        "reye": ("head", head + (-0.035, 0.04, 0.2)), "lear": ("head", head + (0.2, 0.02, 0.0)),
        "rear": ("head", head + (-0.2, 0.02, 0.0)),
    }
    for s, pre in (("l", "left_"), ("r", "right_")):
        foot, ankle = joints[_SJ[pre + "foot"]], joints[_SJ[pre + "ankle"]]
        sign = 1.0 if s == "l" else -1.0
        big, small, heel = ("LBigToe", "LSmallToe", "LHeel") if s == "l" else \
            ("RBigToe", "RSmallToe", "RHeel")
        targets[big] = ("leg_" + s, foot + (-sign * 0.02, -0.03, 0.2))
        targets[small] = ("leg_" + s, foot + (sign * 0.04, -0.03, 0.2))
        targets[heel] = ("leg_" + s, ankle + (0.0, -0.08, -0.2))
    out = {}
    for name, (reg, p) in targets.items():
        idx = np.flatnonzero(region == reg)
        d = np.linalg.norm(v[idx] - p, axis=1)
        d[np.isin(idx, list(out.values()))] = np.inf  # one vertex per mark
        out[name] = int(idx[np.argmin(d)])
    return out


def _smpl_permutation(n, marks) -> np.ndarray:
    """new -> old order that puts each marked vertex at its vertex id(s); a mark with two
    ids (smplx's and I2L-MeshNet's) gets its nearest neighbour on the second."""
    new2old = -np.ones(n, np.int64)
    taken = np.zeros(n, bool)
    for name, ids in SMPL_EXTRA_VERTEX_IDS.items():
        for vid, old in zip(ids, marks[name]):
            new2old[vid] = old
            taken[old] = True
    new2old[new2old < 0] = np.flatnonzero(~taken)
    return new2old


def smpl_standin_arrays(gender: str = "neutral") -> dict[str, np.ndarray]:
    """Every array of one stand-in SMPL file, as written (see the module docstring)."""
    pr = PROPORTIONS[gender]
    v, f, centers, region, _side, joints = _smpl_build_body(pr)
    if len(v) != SMPL_N_VERTS or len(f) != SMPL_N_FACES:
        raise RuntimeError(f"SMPL stand-in mesh has {len(v)} vertices / {len(f)} faces")
    weights = _smpl_skinning(v, region, joints)
    jreg = _smpl_j_regressor(v, joints)
    shapedirs = _smpl_shapedirs(v, centers, joints)
    posedirs = _smpl_posedirs(v, centers, weights, joints)
    # the vertex order is part of the topology: made on the neutral body for all genders
    rv, _f, _c, rregion, _s, rjoints = (_smpl_build_body(PROPORTIONS["neutral"])
                                        if gender != "neutral" else (v, f, centers, region,
                                                                     None, joints))
    marks = _smpl_marks(rv, rregion, rjoints)
    pairs, used = {}, set(marks.values())
    for name, vid in marks.items():
        if len(SMPL_EXTRA_VERTEX_IDS[name]) == 1:
            pairs[name] = (vid,)
            continue
        # a second vertex next to it (not marked) for the second id
        same = np.flatnonzero(rregion == rregion[vid])
        d = np.linalg.norm(rv[same] - rv[vid], axis=1)
        d[np.isin(same, list(used))] = np.inf
        second = int(same[np.argmin(d)])
        used.add(second)
        pairs[name] = (vid, second)
    new2old = _smpl_permutation(len(v), pairs)
    old2new = np.empty(len(v), np.int64)
    old2new[new2old] = np.arange(len(v))
    kintree = np.array([[ROOT_PARENT] + list(_SMPL_PARENTS[1:]), list(range(SMPL_N_JOINTS))],
                       np.int64)
    v_template = v[new2old].astype(np.float64)
    J_regressor = np.ascontiguousarray(jreg[:, new2old])
    return {
        "v_template": v_template,
        "f": old2new[f].astype(np.uint32),
        "shapedirs": np.ascontiguousarray(shapedirs[new2old]),
        "posedirs": np.ascontiguousarray(posedirs[new2old]),
        "J_regressor": J_regressor,
        "kintree_table": kintree,
        "weights": np.ascontiguousarray(weights[new2old]),
        "J": J_regressor @ v_template,
        "standin": np.array(SMPL_STANDIN_NOTE),
    }


def write_smpl_standins(root: Path) -> list[Path]:
    """Write ``root/smpl/SMPL_{NEUTRAL,MALE,FEMALE}.npz`` stand-ins; return their paths."""
    folder = Path(root) / SMPL_SUBDIR
    return [write_npz(folder / fname, smpl_standin_arrays(gender))
            for gender, fname in SMPL_GENDER_FILES.items()]
