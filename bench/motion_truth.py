# SPDX-License-Identifier: GPL-3.0-or-later
"""Ground-truth SMPL-X motions with planted feet, and a per-frame-estimator noise model.

Used by ``bench/motion_quality.py`` and the clean-up tests (``import bench.motion_truth``).
numpy only (plus the package's retarget code); deterministic for a given seed.

Truth (``make_truth(name, model)``)
-----------------------------------
Procedural SMPL-X motions in a Y-up world whose ground is the plane y = 0, seen by a
camera 6 m away, 1.5 m high, pitched down by ``CAMERA_TILT`` (so the ground is not
an axis plane of the camera frame). ``MOTIONS``:

* ``walk``: 1.0 m/s across the view, 1 step cycle per second, 60 % stance;
* ``run``: 2.0 m/s, 1.4 cycles per second, 35 % stance (flight phases);
* ``jump``: three jumps in place (0.3 s flight), both feet planted between them;
* ``turn``: turning 180 degrees on the spot in small alternating steps;
* ``sit``: sitting down (pelvis 0.45 m lower and 0.25 m back) and standing up again;
* ``clap``: standing, clapping 2 times a second;
* ``wave``: standing, the right hand waving above the shoulder.

A foot is in contact ("stance") in listed intervals: there its ankle is held at a
footprint with a flat foot (global rotation = a yaw only), so heel and toes rest
exactly on the ground and do not move; between stances the ankle swings on an
arc. Each leg is solved with the same analytic two-bone IK as the clean-up
(knee pole = the body's forward), so the truth's foot skate is zero (checked by
``truth_skate``). Upper body, fingers, jaw and expression follow smooth
procedural curves; the body shape is a fixed random ``betas`` (std 0.5).

Noise model (``add_noise(truth, seed)``), like a per-frame estimator (Hand4Whole)
--------------------------------------------------------------------------------
* every joint's local rotation gets a random rotation (axis-angle, Gaussian per
  component) with a per-region standard deviation ``ROTATION_NOISE_DEG``:
  global orientation 1.5, spine/neck/head 2, legs 3, arms 3, wrists 5, fingers 6,
  jaw and eyes 2 degrees; the noise is AR(1) over frames with ``NOISE_RHO`` = 0.5
  (neighbouring crops look alike), std kept;
* root translation: 1 cm in x and y, ``DEPTH_NOISE_M`` = 3 cm in depth (z), AR(1);
* betas +-0.1 and expression +-0.2 per frame;
* faults, at random non-overlapping places, recorded as ``(kind, start, end)`` rows
  (end exclusive), with kinds named as ``retarget.cleanup.qa.FLAG_KINDS``:
  ``wrist_flip`` (one wrist twisted 180 degrees about its bone axis for 1-4 rows,
  on average every 5 s), ``lr_swap`` (left and right limbs exchanged, mirrored,
  for 2-8 rows, every 8 s; placed where the exchange changes the limbs by at least
  ``MIN_SWAP_DEG`` on average; none in motions whose pose is symmetric throughout:
  there an exchange changes nothing), ``dropout`` (``valid=False`` for 1-8 rows, every 6 s;
  the rows hold junk).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pose2pose_mocap.retarget.cleanup.footlock import bone_frame, two_bone_ik
from pose2pose_mocap.retarget.cleanup.kinematics import LEG_CHAINS, foot_vertex_ids
from pose2pose_mocap.retarget.rotations import (axis_angle_to_matrix, matrix_to_axis_angle)
from pose2pose_mocap.retarget.smplx_model import JOINT_NAMES, rest_joints
from pose2pose_mocap.retarget.take import PARAM_COLUMNS, Take

MOTIONS = ("walk", "run", "jump", "turn", "sit", "clap", "wave")
FPS = 30.0
CAMERA_TILT = 0.15                       # rad, camera pitched down
CAMERA_POS = np.array([0.0, 1.5, -6.0])  # world (Y up); the camera looks along +Z
FOCAL, IMAGE = 800.0, (1920, 1080)
J = {n: i for i, n in enumerate(JOINT_NAMES)}

ROTATION_NOISE_DEG = {"global_orient": 1.5, "spine": 2.0, "legs": 3.0, "arms": 3.0,
                      "wrists": 5.0, "fingers": 6.0, "face": 2.0}
NOISE_RHO = 0.5
TRANSL_NOISE_M = 0.01
DEPTH_NOISE_M = 0.03
FAULT_RATES = {"wrist_flip": (5.0, 1, 4), "lr_swap": (8.0, 2, 8), "dropout": (6.0, 1, 8)}
# fault kind: (mean seconds between, min rows, max rows)
_SPINE = ("spine1", "spine2", "spine3", "neck", "head")
_LEGS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
         "left_foot", "right_foot")
_ARMS = ("left_collar", "right_collar", "left_shoulder", "right_shoulder", "left_elbow",
         "right_elbow")
_SWAP = ("hip", "knee", "ankle", "foot", "collar", "shoulder", "elbow", "wrist")


def rot(axis: str, angle) -> np.ndarray:
    """Rotations about a model axis by ``angle (T,)`` (or a scalar) -> ``(T, 3, 3)``."""
    a = np.atleast_1d(np.asarray(angle, float))
    v = np.zeros(a.shape + (3,))
    v[..., "xyz".index(axis)] = a
    return axis_angle_to_matrix(v)


def camera_rotation() -> np.ndarray:
    """World (Y up, camera looking along +Z) -> OpenCV camera axes, pitched down."""
    return rot("x", CAMERA_TILT)[0] @ np.diag([-1.0, -1.0, 1.0])


@dataclass
class Truth:
    name: str
    params: dict               # take-style arrays (T, n), camera frame
    fps: float
    contact: np.ndarray        # (T, 2) bool: left, right foot planted
    ground_normal: np.ndarray  # (3,) in the camera frame, pointing up
    ground_offset: float       # normal . p on the ground (camera frame)
    betas: np.ndarray          # (10,)

    @property
    def num_frames(self) -> int:
        return int(self.contact.shape[0])

    def height(self, p: np.ndarray) -> np.ndarray:
        return p @ self.ground_normal - self.ground_offset


@dataclass
class Noisy:
    take: Take
    faults: list = field(default_factory=list)   # (kind, start, end)


# --------------------------------------------------------------------------- motions

def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _gait(T, fps, cycle_hz, duty, phase):
    """Stance intervals [(a, b), ...] of one foot of a periodic gait."""
    t = np.arange(T) / fps
    ph = (t * cycle_hz + phase) % 1.0
    stance = ph < duty
    from pose2pose_mocap.retarget.cleanup.contacts import runs

    return runs(stance)


def _motion_spec(name: str, T: int, fps: float, rng):
    """Pelvis world path P (T,3), yaw (T,), pitch (T,), stance intervals per foot,
    footprint anchor ("mid" or "start"), swing arc height, upper-body curves."""
    t = np.arange(T) / fps
    P = np.zeros((T, 3))
    yaw = np.zeros(T)
    pitch = np.zeros(T)
    arc = 0.08
    anchor = "mid"
    hip_h = 0.70  # hip height above the ankle while standing (m), bent knees
    if name == "walk":
        v, hz, duty = 1.0, 1.0, 0.6
        P[:, 0] = -0.5 * v * t[-1] + v * t
        yaw[:] = np.pi / 2
        stances = [_gait(T, fps, hz, duty, 0.0), _gait(T, fps, hz, duty, 0.5)]
        bob = 0.015 * np.cos(4 * np.pi * hz * t)
        hip = hip_h + bob
    elif name == "run":
        v, hz, duty = 2.0, 1.4, 0.35
        P[:, 0] = -0.5 * v * t[-1] + v * t
        yaw[:] = np.pi / 2
        stances = [_gait(T, fps, hz, duty, 0.0), _gait(T, fps, hz, duty, 0.5)]
        hip = 0.66 + 0.04 * np.cos(4 * np.pi * hz * t + np.pi)
        arc = 0.18
        pitch[:] = 0.12
    elif name == "jump":
        period, flight = 1.4, 0.3
        ph = (t % period) - (period - flight) / 2 - 0.3
        air = (ph > 0) & (ph < flight)
        from pose2pose_mocap.retarget.cleanup.contacts import runs

        st = runs(~air)
        stances = [st, st]
        g = 9.81
        h = np.where(air, 0.5 * g * ph * (flight - ph), 0.0)
        crouch = 0.12 * np.exp(-((ph + 0.12) / 0.12) ** 2) + 0.12 * np.exp(
            -((ph - flight - 0.12) / 0.12) ** 2)
        hip = 0.74 - crouch + h
        yaw[:] = np.pi
        arc = 0.0
    elif name == "turn":
        yaw = np.pi + np.pi * _smoothstep((t - 0.5) / (t[-1] - 1.0))
        stances = [_gait(T, fps, 1.0, 0.75, 0.0), _gait(T, fps, 1.0, 0.75, 0.5)]
        hip = np.full(T, hip_h + 0.02)
        arc = 0.05
    elif name == "sit":
        s = _smoothstep((t - 0.8) / 1.6) - _smoothstep((t - t[-1] + 2.4) / 1.6)
        P[:, 2] = 0.25 * s        # back (the body faces -Z)
        hip = hip_h + 0.02 - 0.45 * s
        pitch = 0.5 * s
        yaw[:] = np.pi
        stances = [[(0, T)], [(0, T)]]
        anchor = "start"
    elif name in ("clap", "wave"):
        yaw[:] = np.pi
        P[:, 0] = 0.02 * np.sin(2 * np.pi * 0.3 * t)
        hip = np.full(T, hip_h + 0.03)
        stances = [[(0, T)], [(0, T)]]
        anchor = "start"
    else:
        raise ValueError(f"unknown motion {name!r} (choose {', '.join(MOTIONS)})")
    return P, yaw, pitch, stances, anchor, arc, hip


def _upper_body(name: str, T: int, fps: float, yaw_rate: np.ndarray) -> dict:
    """Local rotations (T, 3, 3) of spine, arms, head, by joint name."""
    t = np.arange(T) / fps
    out = {}
    down = np.radians(70)
    sw = {"walk": (np.radians(20), 1.0), "run": (np.radians(35), 1.4)}.get(name, (0.05, 0.3))
    amp, hz = sw
    swing = amp * np.sin(2 * np.pi * hz * t)
    out["left_shoulder"] = rot("z", -down) @ rot("y", swing)
    out["right_shoulder"] = rot("z", down) @ rot("y", swing)
    bend = np.radians(15 if name != "run" else 80)
    out["left_elbow"] = rot("y", -bend + 0 * t)
    out["right_elbow"] = rot("y", bend + 0 * t)
    out["spine2"] = rot("y", 0.05 * np.sin(2 * np.pi * 0.4 * t))
    out["neck"] = rot("x", 0.05 * np.sin(2 * np.pi * 0.25 * t))
    if name == "clap":
        c = 0.5 + 0.5 * np.cos(2 * np.pi * 2.0 * t)   # 1 = hands together
        out["left_shoulder"] = rot("z", -np.radians(30)) @ rot("y", -np.radians(60) - 0.35 * c)
        out["right_shoulder"] = rot("z", np.radians(30)) @ rot("y", np.radians(60) + 0.35 * c)
        out["left_elbow"] = rot("y", -np.radians(40) + 0 * t)
        out["right_elbow"] = rot("y", np.radians(40) + 0 * t)
    if name == "wave":
        out["right_shoulder"] = rot("z", -np.radians(50) + 0 * t)
        out["right_elbow"] = rot("y", np.radians(70) + 0 * t) @ rot(
            "z", -0.5 + 0.45 * np.sin(2 * np.pi * 1.5 * t))
        out["right_wrist"] = rot("z", 0.3 * np.sin(2 * np.pi * 1.5 * t + 0.5))
    return out


def make_truth(name: str, model, seconds: float = 6.0, fps: float = FPS,
               seed: int = 0) -> Truth:
    """The truth of motion ``name`` (``MOTIONS``) for ``model`` (an SmplxModel)."""
    rng = np.random.default_rng(seed)
    T = int(round(seconds * fps))
    betas = rng.normal(scale=0.5, size=10)
    rest = rest_joints(model, betas)
    P, yaw, pitch, stances, anchor, arc, hip_h = _motion_spec(name, T, fps, rng)
    Rroot = rot("y", yaw) @ rot("x", pitch)                        # (T, 3, 3) world
    ids = foot_vertex_ids(model)
    from pose2pose_mocap.retarget.smplx_model import shaped_vertices

    vs = shaped_vertices(model, betas)
    sole_y = min(vs[ids[k], 1].mean() for k in ids)
    ankle_h = rest[J["left_ankle"], 1] - sole_y
    # pelvis height: hip height above the ankle + ankle height - (hip - pelvis)
    P[:, 1] = hip_h + ankle_h - (rest[J["left_hip"], 1] - rest[0, 1])
    local = np.tile(np.eye(3), (T, 55, 1, 1))
    for jn, R in _upper_body(name, T, fps, np.gradient(yaw)).items():
        local[:, J[jn]] = R
    local[:, 0] = Rroot
    # fingers curl slowly, jaw opens a little
    t = np.arange(T) / fps
    for side, sgn in (("left", -1.0), ("right", 1.0)):
        for f in ("index", "middle", "ring", "pinky"):
            for k in (1, 2, 3):
                local[:, J[f"{side}_{f}{k}"]] = rot("z", sgn * (0.3 + 0.25 * np.sin(
                    2 * np.pi * 0.5 * t + k)))
    local[:, J["jaw"]] = rot("x", 0.1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    contact = np.zeros((T, 2), bool)
    # world global rotations of the upper chain needed for the legs: pelvis only
    fwd = np.einsum("tij,j->ti", rot("y", yaw), [0.0, 0.0, 1.0])
    for s, side in enumerate(("left", "right")):
        hip, knee, ankle, foot = LEG_CHAINS[side]
        st = [(a, b) for a, b in stances[s] if b > a]
        for a, b in st:
            contact[a:b, s] = True
        off = rest[hip] - rest[0]
        H = P + np.einsum("tij,j->ti", Rroot, off)
        # footprints
        fp, fy = [], []
        for a, b in st:
            m = a if anchor == "start" else (a + b - 1) // 2
            lat = rot("y", yaw[m])[0] @ np.array([off[0] * 1.15, 0.0, 0.0])
            p = np.array([P[m, 0], ankle_h, P[m, 2]]) + lat
            fp.append(p)
            fy.append(yaw[m])
        target = np.zeros((T, 3))
        tyaw = np.zeros(T)
        for k, (a, b) in enumerate(st):
            target[a:b] = fp[k]
            tyaw[a:b] = fy[k]
        # swings between stances, and before the first / after the last
        for k in range(len(st) + 1):
            a = st[k - 1][1] if k > 0 else 0
            b = st[k][0] if k < len(st) else T
            if b <= a:
                continue
            p0 = fp[k - 1] if k > 0 else fp[0] - (fp[1] - fp[0] if len(fp) > 1 else 0)
            p1 = fp[k] if k < len(st) else fp[-1] + (fp[-1] - fp[-2] if len(fp) > 1 else 0)
            y0 = fy[k - 1] if k > 0 else fy[0]
            y1 = fy[k] if k < len(st) else fy[-1]
            n = b - a
            # start/end phases outside the take: use the gait's stance time to place them
            s_ = (np.arange(a, b) - (a - 1)) / (n + 1)
            if k == 0 and len(st) > 1:
                s_ = 1 - (b - np.arange(a, b)) / (st[1][0] - st[0][1] + 1)
            if k == len(st) and len(st) > 1:
                s_ = (np.arange(a, b) - a + 1) / (st[1][0] - st[0][1] + 1)
            s_ = np.clip(s_, 0, 1)
            e = _smoothstep(s_)
            target[a:b] = p0 + e[:, None] * (p1 - p0)
            target[a:b, 1] += arc * np.sin(np.pi * s_)
            tyaw[a:b] = y0 + e * (y1 - y0)
        Ra = rot("y", tyaw)
        # knee pole: forward of the body
        K_guess = 0.5 * (H + target) + 0.3 * fwd
        l1 = np.linalg.norm(rest[knee] - rest[hip])
        l2 = np.linalg.norm(rest[ankle] - rest[knee])
        K2, A2, pole = two_bone_ik(H, K_guess, target, l1, l2)
        Fh = bone_frame(K2 - H, pole) @ bone_frame((rest[knee] - rest[hip])[None], np.array(
            [[0.0, 0.0, 1.0]])).swapaxes(-1, -2)
        Fk = bone_frame(A2 - K2, pole) @ bone_frame((rest[ankle] - rest[knee])[None], np.array(
            [[0.0, 0.0, 1.0]])).swapaxes(-1, -2)
        local[:, hip] = Rroot.swapaxes(-1, -2) @ Fh
        local[:, knee] = Fh.swapaxes(-1, -2) @ Fk
        local[:, ankle] = Fk.swapaxes(-1, -2) @ Ra
    C = camera_rotation()
    local[:, 0] = C @ Rroot
    aa = matrix_to_axis_angle(local)                                 # (T, 55, 3)
    pelvis_cam = (P - CAMERA_POS) @ C.T
    params = {
        "global_orient": aa[:, 0], "body_pose": aa[:, 1:22].reshape(T, 63),
        "jaw_pose": aa[:, 22], "leye_pose": aa[:, 23], "reye_pose": aa[:, 24],
        "left_hand_pose": aa[:, 25:40].reshape(T, 45),
        "right_hand_pose": aa[:, 40:55].reshape(T, 45),
        "betas": np.tile(betas, (T, 1)),
        "expression": 0.5 * np.sin(2 * np.pi * 0.3 * t[:, None] + np.arange(10)[None]),
        "transl": pelvis_cam - rest[0],
    }
    normal = C @ np.array([0.0, 1.0, 0.0])
    # the world ground y = 0 in camera coordinates: n . C (p - cam) = -cam.y
    offset = float(-normal @ (C @ CAMERA_POS))
    return Truth(name=name, params=params, fps=fps, contact=contact, ground_normal=normal,
                 ground_offset=offset, betas=betas)


def truth_take(truth: Truth) -> Take:
    """The truth as a take (all rows valid, the bench camera)."""
    T = truth.num_frames
    return Take(fps=truth.fps, frame_index=np.arange(T, dtype=np.int64),
                valid=np.ones(T, bool),
                params={k: np.asarray(truth.params[k], float).copy() for k in PARAM_COLUMNS},
                image_size=np.array(IMAGE), focal=np.array([FOCAL, FOCAL]),
                princpt=np.array([IMAGE[0] / 2, IMAGE[1] / 2]), source=f"truth:{truth.name}",
                model="bench", estimator="bench")


# --------------------------------------------------------------------------- noise

def _ar1(rng, shape, rho=NOISE_RHO) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0."""
    e = rng.normal(size=shape)
    out = np.empty_like(e)
    out[0] = e[0]
    c = np.sqrt(1 - rho * rho)
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + c * e[t]
    return out


def _joint_noise_deg() -> np.ndarray:
    std = np.zeros(55)
    std[0] = ROTATION_NOISE_DEG["global_orient"]
    for n in _SPINE:
        std[J[n]] = ROTATION_NOISE_DEG["spine"]
    for n in _LEGS:
        std[J[n]] = ROTATION_NOISE_DEG["legs"]
    for n in _ARMS:
        std[J[n]] = ROTATION_NOISE_DEG["arms"]
    std[J["left_wrist"]] = std[J["right_wrist"]] = ROTATION_NOISE_DEG["wrists"]
    std[25:55] = ROTATION_NOISE_DEG["fingers"]
    std[22:25] = ROTATION_NOISE_DEG["face"]
    return std


def _place_faults(rng, T, fps) -> list:
    """Non-overlapping (kind, start, end) with FAULT_RATES, at least 4 rows apart."""
    seconds = T / fps
    wanted = []
    for kind, (every, lo, hi) in FAULT_RATES.items():
        n = rng.poisson(seconds / every)
        wanted += [(kind, int(rng.integers(lo, hi + 1))) for _ in range(max(n, 1))]
    rng.shuffle(wanted)
    busy = np.zeros(T, bool)
    out = []
    for kind, n in wanted:
        for _ in range(50):
            a = int(rng.integers(3, T - n - 3))
            if not busy[a - 4:a + n + 4].any():
                busy[a:a + n] = True
                out.append((kind, a, a + n))
                break
    return sorted(out, key=lambda f: f[1])


MIN_SWAP_DEG = 8.0   # a swap must change the limbs by this much on average to count


def _swap_change_deg(R: np.ndarray, a: int, b: int) -> float:
    """Mean angle (deg) by which a mirrored left/right exchange changes the limbs."""
    M = np.diag([-1.0, 1.0, 1.0])
    out = []
    for part in _SWAP:
        li, ri = J[f"left_{part}"], J[f"right_{part}"]
        d = np.swapaxes(R[a:b, li], -1, -2) @ (M @ R[a:b, ri] @ M)
        out.append(np.degrees(np.arccos(np.clip((np.trace(d, axis1=-2, axis2=-1) - 1) / 2,
                                                -1, 1))))
    return float(np.mean(out))


def _visible_swap(R, a, b, found, T):
    """The swap's span moved (same length) to where exchanging left and right changes
    the true pose ``R`` (``MIN_SWAP_DEG``), or None: a swap of a symmetric pose
    (standing, jumping, clapping) is no fault at all. Keeps clear of the other faults."""
    n = b - a
    busy = np.zeros(T, bool)
    for _, s, e in found:
        if (s, e) != (a, b):
            busy[max(0, s - 4):e + 4] = True
    starts = [a] + [s for s in range(3, T - n - 3, max(1, (T - n) // 200))
                     if not busy[s:s + n].any()]
    for s in starts:
        if not busy[s:s + n].any() and _swap_change_deg(R, s, s + n) >= MIN_SWAP_DEG:
            return s, s + n
    return None


def add_noise(truth: Truth, seed: int = 0, faults: bool = True) -> Noisy:
    """A noisy estimate of ``truth`` (see the module docstring) and its injected faults."""
    rng = np.random.default_rng(1000 + seed)
    T = truth.num_frames
    from pose2pose_mocap.retarget.smplx_model import full_pose

    pose = full_pose(truth.params)                                    # (T, 55, 3)
    R = axis_angle_to_matrix(pose)
    R_true = R.copy()
    std = np.radians(_joint_noise_deg())
    noise = _ar1(rng, (T, 55, 3)) * std[None, :, None]
    R = R @ axis_angle_to_matrix(noise)
    transl = np.asarray(truth.params["transl"], float) + _ar1(rng, (T, 3)) * np.array(
        [TRANSL_NOISE_M, TRANSL_NOISE_M, DEPTH_NOISE_M])
    valid = np.ones(T, bool)
    placed = _place_faults(rng, T, truth.fps) if faults else []
    found = []
    for kind, a, b in placed:
        if kind == "wrist_flip":
            side = ("left", "right")[int(rng.integers(2))]
            sgn = 1.0 if side == "left" else -1.0
            R[a:b, J[f"{side}_wrist"]] = R[a:b, J[f"{side}_wrist"]] @ rot("x", sgn * np.pi)[0]
        elif kind == "lr_swap":
            M = np.diag([-1.0, 1.0, 1.0])   # mirror x -> -x (the body's sagittal plane)
            span = _visible_swap(R_true, a, b, placed, T)
            if span is None:
                continue
            a, b = span
            for part in _SWAP:
                li, ri = J[f"left_{part}"], J[f"right_{part}"]
                Rl, Rr = R[a:b, li].copy(), R[a:b, ri].copy()
                R[a:b, li] = M @ Rr @ M
                R[a:b, ri] = M @ Rl @ M
        elif kind == "dropout":
            valid[a:b] = False
            R[a:b] = axis_angle_to_matrix(rng.normal(scale=1.0, size=(b - a, 55, 3)))
            transl[a:b] = rng.normal(size=(b - a, 3))
        found.append((kind, a, b))
    aa = matrix_to_axis_angle(R)
    params = {
        "global_orient": aa[:, 0], "body_pose": aa[:, 1:22].reshape(T, 63),
        "jaw_pose": aa[:, 22], "leye_pose": aa[:, 23], "reye_pose": aa[:, 24],
        "left_hand_pose": aa[:, 25:40].reshape(T, 45),
        "right_hand_pose": aa[:, 40:55].reshape(T, 45),
        "betas": truth.params["betas"] + rng.normal(scale=0.1, size=(T, 10)),
        "expression": truth.params["expression"] + rng.normal(scale=0.2, size=(T, 10)),
        "transl": transl,
    }
    take = truth_take(truth)
    take = Take(**{**take.__dict__, "params": params, "valid": valid,
                   "source": f"noisy:{truth.name}:{seed}"})
    return Noisy(take=take, faults=found)


def truth_skate(truth: Truth, model) -> float:
    """Largest per-frame slide (m) of a planted foot's heel/toes in the truth (should be ~0)."""
    from pose2pose_mocap.retarget.cleanup.kinematics import motion_from_params

    m = motion_from_params(truth.params, np.ones(truth.num_frames, bool), truth.fps, model,
                           truth.betas)
    worst = 0.0
    for s, side in enumerate(("left", "right")):
        both = truth.contact[1:, s] & truth.contact[:-1, s]
        for part in ("heel", "toes"):
            d = np.linalg.norm(np.diff(m.foot_points[f"{side}_{part}"], axis=0), axis=-1)
            if both.any():
                worst = max(worst, float(d[both].max()))
    return worst
