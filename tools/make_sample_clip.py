# SPDX-License-Identifier: GPL-3.0-or-later
"""Render the sample clip ``samples/wave.mp4`` (and its ground truth) from scratch.

    python -m tools.make_sample_clip [--out samples/wave.mp4] [--no-truth] [--frames-dir DIR]

A person stands facing the camera, raises the right hand and waves (elbow
swings, wrist follows), opens and closes the fingers twice, turns the head a
little towards the hand, shifts weight from foot to foot and lowers the arm
again: 3 s at 30 fps, 640x360 (landscape 16:9 like phone video).

Everything is made here, so the clip carries no third-party footage:

* the figure is the procedural stand-in SMPL-X humanoid of
  :mod:`pose2pose_mocap.weights.standins` (neutral), built in memory and
  posed with the numpy SMPL-X forward of :mod:`pose2pose_mocap.retarget.smplx_model`;
* the motion is a set of smooth closed-form curves (no randomness);
* the renderer is a small numpy z-buffer rasterizer (2x2 supersampling,
  perspective-correct smooth normals, two directional lights + ambient) over
  an analytic room: a gradient wall with a skirting board and a plank floor
  with a soft contact shadow. Clothes are colours chosen per triangle from the
  skinning weights (shirt with short sleeves, trousers, shoes, hair);
* frames are encoded with ``cv2.VideoWriter`` (``mp4v``), read back with
  ``cv2.VideoCapture`` and checked (frame count, size, closeness to the
  rendered frames).

The camera is the one the estimator assumes by default (60 degrees across the
long side, principal point at the image centre, OpenCV axes), 3.1 m from the
person, 1.25 m above the floor, tilted a little down. The SMPL-X parameters are
expressed in that camera, so ``samples/wave.truth.npz`` is a valid
``p2p-take/2`` file (``pose2pose_mocap.retarget.take.read_take`` reads it)
holding the exact parameters of every frame, with ``model`` naming this tool,
``estimator`` empty (no estimator made it) and ``standin`` False (the motion is
real, only the body that shows it is the stand-in). Its raw arrays are Pose2Pose's,
as ground truth: ``raw_bbox_xywh`` is the person's silhouette box,
``raw_lhand_bbox``/``raw_rhand_bbox``/``raw_face_bbox`` (x1, y1, x2, y2) the
boxes of the projected hand and head vertices, ``raw_joints_2d`` the 65
positional joints of the network (``estimator.pose2pose.joints`` order)
projected, confidence 1, ``raw_score`` 1, and ``raw_cam_trans`` the pelvis
position in the camera (the network's own ``cam_trans`` lives in a per-crop
camera and has no ground-truth equivalent).

The output is deterministic: the frames depend only on this file, the stand-in
builder and numpy/OpenCV; with the same OpenCV build the mp4 bytes are the
same on every run, and the truth ``.npz`` is written with fixed timestamps.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

from pose2pose_mocap.retarget.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from pose2pose_mocap.retarget.smplx_model import (POSE_SLICES, forward, load_smplx_model,
                                                  rest_joints)
from pose2pose_mocap.retarget.take import RAW_PREFIX, TAKE_FORMAT, validate_take
from pose2pose_mocap.weights.standins import EXTRA_VERTEX_IDS, smplx_standin_arrays, write_npz

FPS = 30
N_FRAMES = 90                       # 3.0 s
WIDTH, HEIGHT = 640, 360
SUPERSAMPLE = 2
FOV_DEG = 60.0                      # horizontal, the estimator's default static camera
CAM_POS = np.array([0.0, -0.05, 3.1])     # body frame: metres, +Y up, the person faces +Z
CAM_TARGET = np.array([0.0, -0.40, 0.0])
FLOOR_Y = -1.30                     # the stand-in's soles
WALL_Z = -1.6
MAX_BYTES = 400_000
TRUTH_MAX_BYTES = 100_000
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
DEFAULT_OUT = Path("samples/wave.mp4")

# colours, BGR 0..1
SKIN = np.array([0.52, 0.63, 0.86])
SHIRT = np.array([0.62, 0.42, 0.20])
TROUSERS = np.array([0.28, 0.22, 0.20])
SHOES = np.array([0.16, 0.17, 0.19])
HAIR = np.array([0.11, 0.16, 0.24])
EYES = np.array([0.14, 0.12, 0.11])

# SMPL-X joint indices used below
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = range(10)
L_FOOT, R_FOOT, NECK, L_COLLAR, R_COLLAR, HEAD = 10, 11, 12, 13, 14, 15
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST, JAW = 16, 17, 18, 19, 20, 21, 22
L_EYE, R_EYE = 23, 24
L_HAND0, R_HAND0 = 25, 40          # index1 of each hand; 15 hand joints follow
# smplx's vertex joints after the 55 kinematic ones (VertexJointSelector order)
VERTEX_JOINTS = ("nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel",
                 "RBigToe", "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring",
                 "lpinky", "rthumb", "rindex", "rmiddle", "rring", "rpinky")


# ----------------------------------------------------------------------------- small maths
def smoothstep(t, a, b):
    x = np.clip((np.asarray(t, np.float64) - a) / (b - a), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def lerp(a, b, w):
    return a + (b - a) * w


def rot(axis, angle):
    """Rotation matrices ``(T, 3, 3)`` about one axis ``(3,)`` or per-frame axes ``(T, 3)``."""
    angle = np.asarray(angle, np.float64)
    axis = np.broadcast_to(np.asarray(axis, np.float64), angle.shape + (3,))
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis_angle_to_matrix(axis * angle[..., None])


X_AXIS, Y_AXIS, Z_AXIS = np.eye(3)


def rx(a):
    return rot(X_AXIS, a)


def ry(a):
    return rot(Y_AXIS, a)


def rz(a):
    return rot(Z_AXIS, a)


def mm(*mats):
    out = mats[0]
    for m in mats[1:]:
        out = out @ m
    return out


def camera_extrinsics():
    """World (body frame) -> OpenCV camera: ``x_cam = R @ x_world + t``."""
    fwd = CAM_TARGET - CAM_POS
    z = fwd / np.linalg.norm(fwd)
    x = np.cross(z, Y_AXIS)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ CAM_POS


def intrinsics(width=WIDTH, height=HEIGHT):
    """(focal (2,), princpt (2,)): 60 degrees across the long side, centre principal point.

    The same rule as the estimator's default static camera (pixel centres at integers).
    """
    f = max(width, height) / 2.0 / math.tan(math.radians(FOV_DEG) / 2.0)
    return np.array([f, f]), np.array([(width - 1) / 2.0, (height - 1) / 2.0])


# ----------------------------------------------------------------------------- the motion
def hand_pose_left(curl, spread, thumb):
    """Left-hand pose (T, 45) relative to the flat hand: curl 0 = open, 1 = loose fist."""
    curl = np.asarray(curl, np.float64)
    T = curl.shape[0]
    out = np.zeros((T, 15, 3))
    # SMPL-X finger order: index, middle, pinky, ring, thumb; spread sign: +Z = thumb side
    flex = (1.15, 1.35, 0.95)
    fan = {0: 0.10, 1: 0.0, 2: -0.22, 3: -0.11}
    for f in range(4):
        lag = 1.0 + 0.12 * f                                  # the little finger closes later
        c = np.clip(curl * lag, 0.0, 1.05)
        for i in range(3):
            out[:, 3 * f + i, 2] = -flex[i] * c               # towards the palm (-Y)
        out[:, 3 * f, 1] = fan[f] * spread * (1.0 - c)        # spread the open hand
    d = np.array([0.62, -0.28, 0.73])
    d /= np.linalg.norm(d)
    axis = np.cross(d, (0.0, -1.0, 0.0))
    axis /= np.linalg.norm(axis)
    for i, k in enumerate((0.45, 0.55, 0.65)):
        out[:, 12 + i] = (k * thumb)[:, None] * axis
    return out.reshape(T, 45)


MIRROR45 = np.tile([1.0, -1.0, -1.0], 15)      # left hand pose -> right hand pose


def motion(n_frames=N_FRAMES, fps=FPS):
    """Local joint rotations (T, 55, 3, 3) in the body frame, pelvis offset (T, 3), expression.

    Body frame: the stand-in's (+Y up, the person faces +Z, the subject's left at +X).
    Joint frames are world-aligned at rest, so a rotation about Z swings an arm in
    the frontal plane, about Y turns a head or bends an elbow forwards.
    """
    t = np.arange(n_frames) / float(fps)
    T = len(t)
    R = np.broadcast_to(np.eye(3), (T, 55, 3, 3)).copy()
    one = np.ones(T)

    # phases (seconds)
    raise_ = smoothstep(t, 0.15, 0.85) * (1.0 - smoothstep(t, 2.35, 2.95))
    wave_env = smoothstep(t, 0.60, 0.90) * (1.0 - smoothstep(t, 1.60, 1.85))
    wave = wave_env * np.sin(2.0 * np.pi * 2.2 * (t - 0.60))
    wave_lag = wave_env * np.sin(2.0 * np.pi * 2.2 * (t - 0.60) - 0.9)
    grip_on = (t >= 1.70) & (t <= 1.70 + 2.0 / 3.0)      # two close/open cycles at 3 Hz
    grip = np.where(grip_on, 0.5 - 0.5 * np.cos(2.0 * np.pi * 3.0 * (t - 1.70)), 0.0)
    look = smoothstep(t, 0.35, 1.05) * (1.0 - smoothstep(t, 2.20, 2.85))

    # weight shift: the pelvis slides sideways over planted feet
    shift = 0.035 * np.sin(2.0 * np.pi * t / 3.0)            # metres, +X = onto the left foot
    leg = 0.775                                              # hip to ankle
    lean = -np.arcsin(shift / leg)                           # leg angle about Z
    roll = 0.55 * shift                                      # pelvis drops on the free side
    R[:, PELVIS] = rz(roll)
    for hip in (L_HIP, R_HIP):
        R[:, hip] = rz(lean - roll)
    for ankle in (L_ANKLE, R_ANKLE):
        R[:, ankle] = rz(-lean)
    free_knee = np.clip(-shift, 0, None) / 0.035 * 0.06      # the unloaded knee softens
    R[:, L_KNEE] = rx(0.03 + free_knee)
    R[:, L_HIP] = R[:, L_HIP] @ rx(-0.5 * (0.03 + free_knee))
    free_knee_r = np.clip(shift, 0, None) / 0.035 * 0.06
    R[:, R_KNEE] = rx(0.03 + free_knee_r)
    R[:, R_HIP] = R[:, R_HIP] @ rx(-0.5 * (0.03 + free_knee_r))
    pelvis_offset = np.stack([shift, -leg * (1.0 - np.cos(lean)) - 0.004, 0.0 * one], axis=1)

    # spine: upright against the pelvis roll, a little twist and lean towards the wave
    for j, k in ((SPINE1, 0.4), (SPINE2, 0.35), (SPINE3, 0.25)):
        R[:, j] = mm(ry(-0.10 * look * k), rz(-1.5 * roll * k + 0.05 * raise_ * k),
                     rx(0.03 * k * one))

    # head: turns towards the waving hand and tilts a little, then back
    yaw = -0.30 * look + 0.05 * np.sin(2.0 * np.pi * t / 1.5)
    tilt = 0.09 * look
    nod = 0.05 * np.sin(2.0 * np.pi * (t - 0.3) / 1.5) * wave_env
    R[:, NECK] = mm(ry(0.4 * yaw), rz(0.4 * tilt), rx(0.4 * nod))
    R[:, HEAD] = mm(ry(0.6 * yaw), rz(0.6 * tilt), rx(0.6 * nod))

    # right arm (rest along -X, palm down): raise, turn the palm to the camera, wave
    R[:, R_COLLAR] = rz(-0.12 * raise_)
    shoulder = mm(rz(lerp(1.22, 0.30, raise_) + 0.05 * wave),
                  ry(lerp(0.12, 0.30, raise_)),
                  rx(lerp(0.0, -1.42, raise_)))
    R[:, R_SHOULDER] = shoulder
    R[:, R_ELBOW] = ry(lerp(0.22, 1.70, raise_) + 0.40 * wave)
    # the wrist flaps in the frontal plane (about the camera axis), behind the forearm
    forearm = shoulder @ R[:, R_ELBOW]
    flap_axis = np.einsum("tji,j->ti", forearm, Z_AXIS)      # world Z in the wrist frame
    R[:, R_WRIST] = rot(flap_axis, -0.30 * wave_lag) @ rz(0.12 * raise_)

    # left arm hangs and sways a little with the weight shift
    R[:, L_COLLAR] = rz(0.02 * one)
    R[:, L_SHOULDER] = mm(rz(-1.25 - 0.6 * shift), ry(-0.10 * one))
    R[:, L_ELBOW] = ry(-0.25 - 0.05 * np.sin(2.0 * np.pi * t / 3.0))
    R[:, L_WRIST] = rz(0.10 * one)

    # hands: relaxed when down, open when up, two quick closes at the end of the wave
    curl_r = lerp(0.42, 0.04, raise_) + 0.92 * grip
    left = hand_pose_left(0.40 + 0.04 * np.sin(2.0 * np.pi * t / 3.0), 0.3 * one, 0.4 * one)
    right = hand_pose_left(curl_r, 1.0 * raise_, lerp(0.4, 0.05, raise_) + 0.9 * grip)
    right = right * MIRROR45
    hands = np.concatenate([left, right], axis=1).reshape(T, 30, 3)
    R[:, L_HAND0:L_HAND0 + 30] = axis_angle_to_matrix(hands)

    # face: a smile while greeting, the jaw drops a touch
    smile = smoothstep(t, 0.5, 1.0) * (1.0 - smoothstep(t, 2.4, 2.95))
    R[:, JAW] = rx(0.06 * smile)
    expression = np.zeros((T, 10))
    expression[:, 1] = 1.2 * smile
    expression[:, 2] = 0.5 * smile
    return R, pelvis_offset, expression


def camera_params(model, n_frames=N_FRAMES, fps=FPS):
    """SMPL-X parameters (take layout, OpenCV camera frame) of every frame."""
    R_local, pelvis_offset, expression = motion(n_frames, fps)
    R_wc, t_wc = camera_extrinsics()
    R_local = R_local.copy()
    R_local[:, 0] = R_wc[None] @ R_local[:, 0]              # the root in camera axes
    aa = matrix_to_axis_angle(R_local)                      # (T, 55, 3)
    T = aa.shape[0]
    params = {}
    for key, sl in POSE_SLICES.items():
        params[key] = aa[:, sl].reshape(T, -1)
    betas = np.zeros((T, 10))
    j0 = rest_joints(model, betas, expression)[:, 0]         # (T, 3) rest pelvis
    # v_cam = R_wc (R_g (v - j0) + j0 + offset) + t_wc  =  R_cg (v - j0) + j0 + transl
    params["transl"] = (j0 + pelvis_offset) @ R_wc.T + t_wc - j0
    params["betas"] = betas
    params["expression"] = expression
    return params


# ----------------------------------------------------------------------------- the body
def load_standin_model():
    """The neutral stand-in SMPL-X body (built in memory, read through a temporary file)."""
    arrays = smplx_standin_arrays("neutral")
    with tempfile.TemporaryDirectory(prefix="p2p-sample-") as tmp:
        path = write_npz(Path(tmp) / "SMPLX_NEUTRAL.npz", arrays)
        model = load_smplx_model(path)
    return model


def face_albedo(model):
    """Per-triangle colour (F, 3) from its dominant skinning joint and rest-pose centroid."""
    f = model.faces
    dom = np.argmax(model.lbs_weights[f].sum(axis=1), axis=1)
    c = model.v_template[f].mean(axis=1)
    x, y, z = c[:, 0], c[:, 1], c[:, 2]
    SK, SH, TR, SO, HA, EY = range(6)
    label = np.full(len(f), SK)
    torso = np.isin(dom, (PELVIS, SPINE1, SPINE2, SPINE3, L_COLLAR, R_COLLAR, NECK))
    label[torso & (y > -0.33) & (y < 0.155)] = SH
    label[np.isin(dom, (L_SHOULDER, R_SHOULDER)) & (np.abs(x) < 0.34)] = SH
    legs = np.isin(dom, (PELVIS, SPINE1, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE))
    label[legs & (y <= -0.33)] = TR
    label[np.isin(dom, (L_ANKLE, R_ANKLE, L_FOOT, R_FOOT)) & (y < -1.17)] = SO
    label[legs & (y < -1.17)] = SO
    head = np.isin(dom, (HEAD, JAW, NECK)) & (y > 0.20)
    hair = head & ((y > 0.345) | ((z < -0.02) & (y > 0.215))
                   | ((z < 0.03) & (y > 0.315) & (np.abs(x) > 0.055)))
    label[hair] = HA
    label[np.isin(dom, (L_EYE, R_EYE))] = EY
    palette = np.stack([SKIN, SHIRT, TROUSERS, SHOES, HAIR, EYES])
    return palette[label]


# ----------------------------------------------------------------------------- rendering
def rasterize(px, invz, faces, width, height):
    """Z-buffer rasterization of triangles.

    px (V, 2) pixel coordinates (pixel centres at integers), invz (V,) 1/depth,
    faces (F, 3). Returns (face (H*W,) int64, -1 = empty; bary (H*W, 3)
    perspective-correct barycentric weights).
    """
    tri = px[faces]                                            # (F, 3, 2)
    x0, y0 = tri[:, 0, 0], tri[:, 0, 1]
    x1, y1 = tri[:, 1, 0], tri[:, 1, 1]
    x2, y2 = tri[:, 2, 0], tri[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    imin = np.maximum(np.ceil(tri[..., 0].min(1)), 0).astype(np.int64)
    imax = np.minimum(np.floor(tri[..., 0].max(1)), width - 1).astype(np.int64)
    jmin = np.maximum(np.ceil(tri[..., 1].min(1)), 0).astype(np.int64)
    jmax = np.minimum(np.floor(tri[..., 1].max(1)), height - 1).astype(np.int64)
    nx, ny = imax - imin + 1, jmax - jmin + 1
    ok = (nx > 0) & (ny > 0) & (np.abs(area) > 1e-12)
    size = np.maximum(nx, ny)
    pix_all, depth_all, face_all, w_all = [], [], [], []
    lo = 0
    s = 1
    while True:
        sel = np.nonzero(ok & (size > lo) & (size <= s))[0]
        if len(sel):
            oy, ox = np.divmod(np.arange(s * s), s)
            X = imin[sel, None] + ox[None]
            Y = jmin[sel, None] + oy[None]
            inb = (ox[None] < nx[sel, None]) & (oy[None] < ny[sel, None])
            a = area[sel, None]
            w0 = ((x1[sel, None] - X) * (y2[sel, None] - Y)
                   - (x2[sel, None] - X) * (y1[sel, None] - Y)) / a
            w1 = ((x2[sel, None] - X) * (y0[sel, None] - Y)
                  - (x0[sel, None] - X) * (y2[sel, None] - Y)) / a
            w2 = 1.0 - w0 - w1
            inside = inb & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
            r, c = np.nonzero(inside)
            fsel = sel[r]
            W = np.stack([w0[r, c], w1[r, c], w2[r, c]], axis=1)
            iz = np.einsum("nk,nk->n", W, invz[faces[fsel]])
            pix_all.append(Y[r, c] * width + X[r, c])
            depth_all.append(iz)
            face_all.append(fsel)
            w_all.append(W * invz[faces[fsel]] / iz[:, None])
        if s >= size[ok].max(initial=0):
            break
        lo, s = s, 2 * s
    face = -np.ones(width * height, np.int64)
    bary = np.zeros((width * height, 3))
    if not pix_all:
        return face, bary
    pix = np.concatenate(pix_all)
    depth = np.concatenate(depth_all)
    order = np.lexsort((-depth, pix))                         # per pixel, nearest first
    pix_s = pix[order]
    first = np.ones(len(pix_s), bool)
    first[1:] = pix_s[1:] != pix_s[:-1]
    win = order[first]
    face[pix[win]] = np.concatenate(face_all)[win]
    bary[pix[win]] = np.concatenate(w_all)[win]
    return face, bary


def vertex_normals(verts, faces):
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    vn = np.zeros_like(verts)
    for k in range(3):
        for c in range(3):
            vn[:, c] += np.bincount(faces[:, k], weights=fn[:, c], minlength=len(verts))
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12), fn


def _hash01(i):
    """Deterministic pseudo-random numbers in [0, 1) from integers."""
    i = np.asarray(i, np.int64)
    x = (i * 2654435761 + 12345) % 4294967296
    x = (x ^ (x >> 13)) * 1274126177 % 4294967296
    return (x % 10007) / 10007.0


class Room:
    """The analytic background: wall gradient, skirting board, plank floor; per-pixel world hits."""

    def __init__(self, width, height, focal, princpt, R_wc, t_wc):
        u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        d_cam = np.stack([(u - princpt[0]) / focal[0], (v - princpt[1]) / focal[1],
                          np.ones_like(u)], axis=-1)
        d = d_cam @ R_wc                                       # world directions (R^T d)
        C = -R_wc.T @ t_wc
        with np.errstate(divide="ignore", invalid="ignore"):
            t_floor = np.where(d[..., 1] < -1e-9, (FLOOR_Y - C[1]) / d[..., 1], np.inf)
            t_wall = np.where(d[..., 2] < -1e-9, (WALL_Z - C[2]) / d[..., 2], np.inf)
        floor = t_floor < t_wall
        t_hit = np.where(floor, t_floor, t_wall)
        P = C + t_hit[..., None] * d
        self.floor = floor
        self.floor_xz = P[..., [0, 2]]
        img = np.zeros((height, width, 3))
        # wall: warm off-white, lighter up high and in the middle, a skirting board
        wy = P[..., 1] - FLOOR_Y
        wx = P[..., 0]
        wall = (np.array([0.74, 0.80, 0.84])
                * (0.80 + 0.20 * np.clip(wy / 2.4, 0, 1))[..., None]
                * (1.0 - 0.10 * np.clip(np.abs(wx) / 2.2, 0, 1) ** 2)[..., None])
        board = (wy < 0.10)
        wall[board] = np.array([0.86, 0.88, 0.89]) * 0.82
        wall[(wy >= 0.10) & (wy < 0.115)] *= 0.80
        # floor: planks along the depth, each its own tone, darker far away
        fx, fz = P[..., 0], P[..., 2]
        plank = np.floor(fx / 0.16).astype(np.int64)
        seg = np.floor((fz + 0.9 * _hash01(plank)) / 1.3).astype(np.int64)
        tone = 0.90 + 0.11 * _hash01(plank * 131 + seg * 7)
        grain = 0.025 * np.sin(fx * 140.0 + 3.0 * np.sin(fz * 3.1 + plank))
        base = np.array([0.30, 0.45, 0.62]) * (tone + grain)[..., None]
        edge = (np.abs(fx / 0.16 - np.round(fx / 0.16)) < 0.025)
        edge |= np.abs((fz + 0.9 * _hash01(plank)) / 1.3
                       - np.round((fz + 0.9 * _hash01(plank)) / 1.3)) < 0.006
        base[edge] *= 0.72
        dist = np.linalg.norm(P - C, axis=-1)
        base *= (1.0 - 0.18 * np.clip((dist - 2.5) / 3.0, 0, 1))[..., None]
        base *= (1.0 - 0.25 * smoothstep(-fz, 0.6, WALL_Z * -1.0))[..., None]   # near the wall
        img[floor] = base[floor]
        img[~floor] = wall[~floor]
        self.image = img

    def shaded(self, pelvis_xz, feet_xz):
        """The background with a soft contact shadow under the pelvis and each foot."""
        img = self.image.copy()
        x, z = self.floor_xz[..., 0], self.floor_xz[..., 1]
        px, pz = pelvis_xz
        shade = 0.30 * np.exp(-(((x - px) / 0.30) ** 2 + ((z - pz) / 0.20) ** 2))
        for fx, fz in feet_xz:
            shade += 0.30 * np.exp(-(((x - fx) / 0.085) ** 2 + ((z - fz) / 0.15) ** 2))
        shade = np.where(self.floor, np.clip(shade, 0, 0.6), 0.0)
        return img * (1.0 - shade)[..., None]


LIGHT_KEY = np.array([-0.45, -0.75, -0.50])       # camera frame: from up-left, in front
LIGHT_FILL = np.array([0.70, -0.10, -0.70])


def render_frame(verts_cam, faces, albedo, room_img, focal, princpt, ss=SUPERSAMPLE):
    """One BGR uint8 frame (H, W, 3) of the posed mesh (camera frame) over ``room_img``."""
    H, W = room_img.shape[:2]
    z = verts_cam[:, 2]
    u = focal[0] * verts_cam[:, 0] / z + princpt[0]
    v = focal[1] * verts_cam[:, 1] / z + princpt[1]
    # supersampled pixel k covers final pixel coordinate (k + 0.5) / ss - 0.5
    px = np.stack([(u + 0.5) * ss - 0.5, (v + 0.5) * ss - 0.5], axis=1)
    vn, fn = vertex_normals(verts_cam, faces)
    centroid = verts_cam[faces].mean(axis=1)
    front = np.einsum("fc,fc->f", fn, centroid) < 0.0          # back faces are never visible
    fidx = np.nonzero(front)[0]
    face, bary = rasterize(px, 1.0 / z, faces[fidx], W * ss, H * ss)
    hit = face >= 0
    f_hit = fidx[face[hit]]
    n = np.einsum("nk,nkc->nc", bary[hit], vn[faces[f_hit]])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    lk = LIGHT_KEY / np.linalg.norm(LIGHT_KEY)
    lf = LIGHT_FILL / np.linalg.norm(LIGHT_FILL)
    p = np.einsum("nk,nkc->nc", bary[hit], verts_cam[faces[f_hit]])
    view = -p / np.linalg.norm(p, axis=1, keepdims=True)
    diffuse = 0.30 + 0.62 * np.clip(n @ lk, 0, None) + 0.22 * np.clip(n @ lf, 0, None)
    half = lk + view
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = 0.10 * np.clip(np.einsum("nc,nc->n", n, half), 0, None) ** 24
    col = albedo[f_hit] * diffuse[:, None] + spec[:, None]
    big = cv2.resize(room_img, (W * ss, H * ss), interpolation=cv2.INTER_LINEAR)
    big = big.reshape(-1, 3)
    big[hit] = col
    big = big.reshape(H * ss, W * ss, 3)
    small = cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(hit.reshape(H * ss, W * ss).astype(np.float64), (W, H),
                      interpolation=cv2.INTER_AREA)
    return np.clip(np.round(small * 255.0), 0, 255).astype(np.uint8), mask


# ----------------------------------------------------------------------------- ground truth
def positional_joints_2d(out, focal, princpt):
    """The network's 65 positional joints (``estimator.pose2pose.joints`` order), projected:
    (T, 65, 3)."""
    # indices into smplx's 55 kinematic + 21 vertex joints
    # (estimator.pose2pose.joints.SMPLX_JOINT_IDX_137)
    idx = (0, 1, 2, 4, 5, 7, 8, 12, 16, 17, 18, 19, 20, 21, 60, 61, 62, 63, 64, 65, 59, 58, 57,
           56, 55,
           37, 38, 39, 66, 25, 26, 27, 67, 28, 29, 30, 68, 34, 35, 36, 69, 31, 32, 33, 70,
           52, 53, 54, 71, 40, 41, 42, 72, 43, 44, 45, 73, 49, 50, 51, 74, 46, 47, 48, 75)
    vj = out.vertices[:, [EXTRA_VERTEX_IDS[n] for n in VERTEX_JOINTS]]
    allj = np.concatenate([out.joints, vj], axis=1)[:, idx]
    uv = project(allj, focal, princpt)
    return np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)


def project(p, focal, princpt):
    return p[..., :2] / p[..., 2:3] * focal + princpt


def _box_xyxy(uv):
    return np.concatenate([uv.min(axis=1), uv.max(axis=1)], axis=1)


def truth_arrays(model, params, out, masks, focal, princpt, source):
    T = params["transl"].shape[0]
    dom = np.argmax(model.lbs_weights, axis=1)
    lhand = np.nonzero((dom == L_WRIST) | ((dom >= L_HAND0) & (dom < L_HAND0 + 15)))[0]
    rhand = np.nonzero((dom == R_WRIST) | ((dom >= R_HAND0) & (dom < R_HAND0 + 15)))[0]
    head = np.nonzero(np.isin(dom, (HEAD, JAW, L_EYE, R_EYE)))[0]
    uv = project(out.vertices, focal, princpt)
    bbox = np.zeros((T, 4))
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m > 0.02)
        bbox[i] = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    arrays = {k: np.asarray(v, np.float32) for k, v in params.items()}
    arrays.update({
        "fps": np.array(float(FPS)), "frame_index": np.arange(T, dtype=np.int64),
        "valid": np.ones(T, bool), "person_id": np.array(0, np.int64),
        "image_size": np.array([WIDTH, HEIGHT], np.int64), "source": np.array(source),
        "model": np.array("ground truth: tools/make_sample_clip.py (rendered with the neutral "
                          "stand-in SMPL-X body)"),
        "standin": np.array(False), "gender": np.array("neutral"),
        "estimator": np.array(""), "body_model": np.array("smplx"),
        "focal": np.asarray(focal, np.float64), "princpt": np.asarray(princpt, np.float64),
    })
    arrays.update({RAW_PREFIX + k: v for k, v in {
        "cam_trans": out.joints[:, 0].astype(np.float32),
        "bbox_xywh": bbox.astype(np.float32),
        "lhand_bbox": _box_xyxy(uv[:, lhand]).astype(np.float32),
        "rhand_bbox": _box_xyxy(uv[:, rhand]).astype(np.float32),
        "face_bbox": _box_xyxy(uv[:, head]).astype(np.float32),
        "joints_2d": positional_joints_2d(out, focal, princpt).astype(np.float32),
        "score": np.ones(T, np.float32),
    }.items()})
    arrays["format"] = np.array(TAKE_FORMAT)
    validate_take(arrays, "wave.truth.npz")
    return arrays


def write_npz_deflated(path: Path, arrays: dict) -> Path:
    """A compressed ``.npz`` with fixed zip timestamps (same bytes every run), atomically
    (``common.files.atomic_write``: a hidden temporary file, then one commit; the
    generated file replaces the previous one, which is what this tool is for)."""
    from pose2pose_mocap.common.files import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for name in sorted(arrays):
                    info = zipfile.ZipInfo(name + ".npy", date_time=ZIP_DATE_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3
                    info.external_attr = 0o644 << 16
                    with z.open(info, "w") as out:
                        np.lib.format.write_array(out, np.asarray(arrays[name], order="C"),
                                                  allow_pickle=False)
        os.chmod(tmp, 0o644)

    return atomic_write(Path(path), write, replace=True)


# ----------------------------------------------------------------------------- video
def write_video(path: Path, frames: list, fps: int) -> Path:
    """``mp4v`` video, written to a hidden temporary file (with the real suffix, which
    OpenCV needs) and committed in one step (``common.files.atomic_write``)."""
    from pose2pose_mocap.common.files import atomic_write

    path = Path(path)
    h, w = frames[0].shape[:2]

    def write(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write mp4v video to {path}")
        try:
            for f in frames:
                writer.write(f)
        finally:
            writer.release()

    return atomic_write(path, write, replace=True)


def check_video(path: Path, frames: list, fps: int) -> dict:
    """Read the clip back: frame count, size, fps, and how close it is to the rendered frames."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot read {path} back")
    got = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        got.append(f)
    meta = {"frames": len(got), "fps": cap.get(cv2.CAP_PROP_FPS),
            "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "frame_count_prop": int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
            "bytes": path.stat().st_size}
    cap.release()
    problems = []
    if len(got) != len(frames):
        problems.append(f"{len(got)} frames read back, {len(frames)} written")
    if (meta["width"], meta["height"]) != (frames[0].shape[1], frames[0].shape[0]):
        problems.append(f"size {meta['width']}x{meta['height']}")
    if abs(meta["fps"] - fps) > 1e-3:
        problems.append(f"fps {meta['fps']}")
    if meta["bytes"] > MAX_BYTES:
        problems.append(f"{meta['bytes']} bytes, more than {MAX_BYTES}")
    if got and len(got) == len(frames):
        mse = np.mean([np.mean((a.astype(np.float64) - b) ** 2) for a, b in zip(got, frames)])
        meta["psnr_db"] = 10.0 * math.log10(255.0 ** 2 / max(mse, 1e-12))
        if meta["psnr_db"] < 30.0:
            problems.append(f"PSNR {meta['psnr_db']:.1f} dB against the rendered frames")
    if problems:
        raise RuntimeError(f"{path}: " + "; ".join(problems))
    return meta


# ----------------------------------------------------------------------------- main
def render_clip(n_frames=N_FRAMES, fps=FPS, log=print):
    """(frames [BGR uint8], params, model, forward output, silhouette masks)."""
    t0 = time.perf_counter()
    model = load_standin_model()
    params = camera_params(model, n_frames, fps)
    out = forward(model, params, pose_correctives=True)
    log(f"  body and motion: {time.perf_counter() - t0:.1f} s")
    focal, princpt = intrinsics()
    R_wc, t_wc = camera_extrinsics()
    room = Room(WIDTH, HEIGHT, focal, princpt, R_wc, t_wc)
    albedo = face_albedo(model)
    # contact shadow positions in the body (world) frame
    world = (out.joints - t_wc) @ R_wc                       # camera -> world
    frames, masks = [], []
    t1 = time.perf_counter()
    for i in range(out.vertices.shape[0]):
        shadow_bg = room.shaded(world[i, PELVIS, [0, 2]],
                                [world[i, L_ANKLE, [0, 2]] + (0, 0.04),
                                 world[i, R_ANKLE, [0, 2]] + (0, 0.04)])
        img, mask = render_frame(out.vertices[i], model.faces, albedo, shadow_bg, focal, princpt)
        frames.append(img)
        masks.append(mask)
    log(f"  rendered {len(frames)} frames {WIDTH}x{HEIGHT}: {time.perf_counter() - t1:.1f} s")
    return frames, params, model, out, masks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.make_sample_clip", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="the clip to write (.mp4); the truth goes next to it as "
                         "<stem>.truth.npz (default: %(default)s)")
    ap.add_argument("--no-truth", action="store_true", help="do not write <stem>.truth.npz")
    ap.add_argument("--frames-dir", type=Path, default=None,
                    help="also write every rendered frame as PNG into this folder (for looking)")
    args = ap.parse_args(argv)
    if args.out.suffix.lower() != ".mp4":
        ap.error("--out must end in .mp4")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"rendering {N_FRAMES} frames at {FPS} fps ...")
    frames, params, model, out, masks = render_clip()
    if args.frames_dir is not None:
        args.frames_dir.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames):
            cv2.imwrite(str(args.frames_dir / f"frame_{i:03d}.png"), f)
    write_video(args.out, frames, FPS)
    meta = check_video(args.out, frames, FPS)
    print(f"wrote {args.out}: {meta['bytes']} bytes, {meta['frames']} frames, "
          f"{meta['fps']:g} fps, {meta['width']}x{meta['height']}, "
          f"PSNR {meta['psnr_db']:.1f} dB against the rendered frames")
    if not args.no_truth:
        truth = args.out.with_name(args.out.stem + ".truth.npz")
        focal, princpt = intrinsics()
        try:
            source = str(args.out.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            source = args.out.name
        arrays = truth_arrays(model, params, out, masks, focal, princpt, source)
        write_npz_deflated(truth, arrays)
        size = truth.stat().st_size
        if size > TRUTH_MAX_BYTES:
            truth.unlink()
            print(f"ground truth skipped: {size} bytes, more than {TRUTH_MAX_BYTES}")
        else:
            print(f"wrote {truth}: {size} bytes ({TAKE_FORMAT} ground truth)")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
