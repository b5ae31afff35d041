"""The QA pass (retarget/cleanup/qa.py): each flag kind on seeded faults, the fixes."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget.cleanup import qa
from pose2pose_mocap.retarget.errors import RetargetError
from pose2pose_mocap.retarget.rotations import (axis_angle_to_matrix, axis_angle_to_quaternion,
                                                quaternion_multiply, quaternion_to_axis_angle)
from pose2pose_mocap.retarget.smplx_model import JOINT_NAMES

from .synthetic import make_take

J = {n: i for i, n in enumerate(JOINT_NAMES)}
FPS = 30.0


def walk_params(T: int = 300, seed: int = 0, noise_deg: float = 3.0) -> dict:
    """A walk-like motion (hips, knees, arms swinging at 1 Hz, elbows bent) with
    independent per-frame rotation noise on every body joint (a per-frame estimator)."""
    rng = np.random.default_rng(seed)
    ph = 2 * np.pi * np.arange(T) / FPS
    pose = np.zeros((T, 55, 3))
    pose[:, 0] = [np.pi, 0, 0]                      # upright in the camera frame
    hip = np.radians(25) * np.sin(ph)
    pose[:, J["left_hip"], 0], pose[:, J["right_hip"], 0] = -hip, hip
    pose[:, J["left_knee"], 0] = np.radians(30) * (1 + np.sin(ph + 1.2))
    pose[:, J["right_knee"], 0] = np.radians(30) * (1 + np.sin(ph + 1.2 + np.pi))
    pose[:, J["left_shoulder"], 2], pose[:, J["right_shoulder"], 2] = -1.2, 1.2
    pose[:, J["left_shoulder"], 1] = pose[:, J["right_shoulder"], 1] = 0.35 * np.sin(ph)
    pose[:, J["left_elbow"], 1], pose[:, J["right_elbow"], 1] = -0.5, 0.5
    pose[:, 1:22] += np.radians(noise_deg) * rng.normal(size=(T, 21, 3))
    zeros = lambda n: np.zeros((T, n))  # noqa: E731
    return {"global_orient": pose[:, 0], "body_pose": pose[:, 1:22].reshape(T, 63),
            "left_hand_pose": zeros(45), "right_hand_pose": zeros(45), "jaw_pose": zeros(3),
            "leye_pose": zeros(3), "reye_pose": zeros(3), "betas": zeros(10),
            "expression": zeros(10),
            "transl": np.column_stack([np.zeros(T), np.full(T, 0.3), 3 + np.arange(T) / FPS])}


def _body(params) -> np.ndarray:
    return params["body_pose"].reshape(-1, 21, 3)


def inject_flip(params, side: str, s: int, e: int, joint: str = "wrist") -> None:
    """Turn the forearm's joint by 180 deg about its bone axis on rows [s, e)."""
    bp = _body(params)
    j = J[f"{side}_{joint}"] - 1
    q = axis_angle_to_quaternion(bp[s:e, j])
    turn = axis_angle_to_quaternion(np.array([np.pi, 0.0, 0.0]))
    bp[s:e, j] = quaternion_to_axis_angle(quaternion_multiply(q, turn[None]))
    params["body_pose"] = bp.reshape(-1, 63)


def inject_swap(params, s: int, e: int, mirrored: bool = True) -> None:
    """Exchange the left and right limbs on rows [s, e) (mirrored: x -> -x)."""
    bp = _body(params)
    L = [J[a] - 1 for a, _ in qa.LIMB_PAIRS]
    R = [J[b] - 1 for _, b in qa.LIMB_PAIRS]
    m = np.array([1.0, -1.0, -1.0]) if mirrored else np.ones(3)
    seg = bp[s:e].copy()
    bp[s:e, L], bp[s:e, R] = seg[:, R] * m, seg[:, L] * m
    params["body_pose"] = bp.reshape(-1, 63)


def kinds(flags, kind):
    return [(f.start, f.end) for f in flags if f.kind == kind]


# --------------------------------------------------------------------------- detection

def test_a_clean_noisy_walk_has_no_flags():
    take = make_take(walk_params(600, seed=3, noise_deg=4.0))
    assert qa.find_flags(take) == []


@pytest.mark.parametrize("side,joint", [("left", "wrist"), ("right", "wrist"),
                                        ("left", "elbow")])
def test_wrist_flip_found_with_its_span(side, joint):
    p = walk_params()
    inject_flip(p, side, 100, 106, joint)
    flags = qa.find_flags(make_take(p))
    assert [(f.kind, f.start, f.end, f.joint) for f in flags] == [
        ("wrist_flip", 100, 106, f"{side}_wrist")]


def test_flip_at_the_start_pairs_with_the_start():
    p = walk_params()
    inject_flip(p, "right", 0, 4)
    assert kinds(qa.find_flags(make_take(p)), "wrist_flip") == [(0, 4)]


@pytest.mark.parametrize("mirrored", [True, False])
def test_lr_swap_found_with_its_span(mirrored):
    p = walk_params(seed=1)
    inject_swap(p, 140, 147, mirrored)
    flags = qa.find_flags(make_take(p))
    assert kinds(flags, "lr_swap") == [(140, 147)]
    # (plainly swapped, the elbows bend backwards: joint limits see that too)
    assert {f.kind for f in flags} == {"lr_swap"} | (set() if mirrored else {"joint_limit"})


def test_dropouts_and_low_confidence():
    p = walk_params()
    valid = np.ones(300, bool)
    valid[50:53] = False
    valid[200:260] = False
    take = make_take(p, valid=valid)
    take.raw["score"] = np.full(300, 0.9)
    take.raw["score"][120:124] = 0.2
    flags = qa.find_flags(take)
    drop = [f for f in flags if f.kind == "dropout"]
    assert [(f.start, f.end, f.severity) for f in drop] == [(50, 53, "info"),
                                                            (200, 260, "warning")]
    assert kinds(flags, "low_confidence") == [(120, 124)]


def test_swap_and_flip_across_a_dropout_still_paired():
    p = walk_params(seed=2)
    inject_flip(p, "left", 80, 90)
    valid = np.ones(300, bool)
    valid[84:86] = False     # the flip spans a dropout
    flags = qa.find_flags(make_take(p, valid=valid))
    assert kinds(flags, "wrist_flip") == [(80, 90)]


def test_joint_limit_conventions_match_the_model():
    """Positive flexion in JOINT_LIMITS moves the forearm forward and the shin backward on
    the model's own skeleton (so hyperextension is measured the right way round)."""
    from pose2pose_mocap.retarget.smplx_model import (global_transforms, load_smplx_model,
                                                      rest_joints)

    from .synthetic import standin_smplx_path

    model = load_smplx_model(standin_smplx_path())
    rest = rest_joints(model, np.zeros(10))
    for name, child, forward_sign in (("left_elbow", "left_wrist", 1), ("right_elbow",
                                      "right_wrist", 1), ("left_knee", "left_ankle", -1),
                                      ("right_knee", "right_ankle", -1)):
        p = walk_params(2, noise_deg=0.0)
        pose = np.zeros((2, 55, 3))
        bone, flex_dir, *_ = qa.JOINT_LIMITS[name]
        axis = np.cross(bone, flex_dir)     # turning the bone towards flex_dir
        pose[1, J[name]] = axis * np.radians(60)
        p["body_pose"] = pose[:, 1:22].reshape(2, 63)
        p["global_orient"] = np.zeros((2, 3))
        take = make_take(p)
        flex, side = qa.limb_angles(take, name)
        assert flex[1] == pytest.approx(60, abs=1) and side[1] < 1
        G = global_transforms(axis_angle_to_matrix(pose[1]), rest, model.parents)
        d = G[J[child], :3, 3] - G[J[name], :3, 3]
        assert np.sign(d[2]) == forward_sign and abs(d[2]) > 0.3 * np.linalg.norm(d)


def test_knee_hyperextension_flagged():
    p = walk_params(seed=4)
    bp = _body(p)
    bp[60:66, J["left_knee"] - 1] = [-np.radians(40), 0, 0]  # shin bent forward
    p["body_pose"] = bp.reshape(-1, 63)
    flags = [f for f in qa.find_flags(make_take(p)) if f.kind == "joint_limit"]
    assert [(f.start, f.end, f.joint) for f in flags] == [(60, 66, "left_knee")]
    assert "hyperextended" in flags[0].reason


# --------------------------------------------------------------------------- with positions

class _Ground:
    normal = np.array([0.0, -1.0, 0.0])    # camera y points down: up is -y
    offset = -1.0                          # the floor at y = +1 m

    def height(self, p):
        return np.asarray(p, float) @ self.normal - self.offset

    def to_dict(self):
        return {"normal": self.normal.tolist(), "offset": self.offset}


def _motion_and_contacts(T=60):
    from pose2pose_mocap.retarget.cleanup.contacts import Contacts
    from pose2pose_mocap.retarget.cleanup.kinematics import FOOT_POINTS, TakeMotion

    feet = {}
    for i, name in enumerate(FOOT_POINTS):
        p = np.zeros((T, 3))
        p[:, 0] = 0.1 * i
        p[:, 1] = 1.0 - 0.005          # 5 mm above the floor
        p[:, 2] = 3.0
        feet[name] = p
    motion = TakeMotion(joints=np.zeros((T, 55, 3)), rotations=np.tile(np.eye(3), (T, 55, 1, 1)),
                        foot_points=feet, valid=np.ones(T, bool), fps=FPS)
    contact = np.ones((T, len(FOOT_POINTS)), bool)
    return motion, Contacts(ground=_Ground(), feet=FOOT_POINTS, contact=contact)


def test_foot_skate_and_penetration_flagged_per_side():
    motion, contacts = _motion_and_contacts()
    heel = motion.foot_points["left_heel"]
    heel[20:, 0] += 0.02 * np.minimum(np.arange(40), 9)                  # slides 20 mm/frame
    motion.foot_points["right_toes"][40:45, 1] = 1.05                     # 50 mm under
    take = make_take(walk_params(60, noise_deg=0.0))
    flags = qa.find_flags(take, motion, contacts)
    skate = [f for f in flags if f.kind == "foot_skate"]
    assert [(f.start, f.end, f.joint) for f in skate] == [(21, 30, "left_foot")]
    pen = [f for f in flags if f.kind == "penetration"]
    assert [(f.start, f.end, f.joint) for f in pen] == [(40, 45, "right_foot")]


def test_reprojection_against_the_estimators_2d_joints():
    from pose2pose_mocap.retarget.cleanup.kinematics import take_motion
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model

    from .synthetic import standin_smplx_path

    model = load_smplx_model(standin_smplx_path())
    take = make_take(walk_params(60, noise_deg=0.0))
    take.estimator = "pose2pose"
    motion = take_motion(take, model)
    j2d = np.zeros((60, 65, 3))
    idx3d = [J[n] for n in qa.POSE2POSE_BODY_2D.values()]
    j2d[:, list(qa.POSE2POSE_BODY_2D), :2] = qa.project(motion.joints[:, idx3d], take.focal,
                                                         take.princpt)
    take.raw["joints_2d"] = j2d
    assert kinds(qa.find_flags(take, motion), "reprojection") == []
    j2d = j2d.copy()
    j2d[30:34, :, 0] += 120.0          # the estimator saw the person elsewhere
    take.raw["joints_2d"] = j2d
    assert kinds(qa.find_flags(take, motion), "reprojection") == [(30, 34)]
    assert kinds(qa.find_flags(take, model=model), "reprojection") == [(30, 34)]


# --------------------------------------------------------------------------- recall / precision

def test_recall_and_precision_on_seeded_faults():
    """Many seeded flips, swaps and dropouts in noisy walks: recall >= 0.95 and
    precision >= 0.90 per kind (a flag matches a fault it overlaps)."""
    rng = np.random.default_rng(7)
    truth = {"wrist_flip": [], "lr_swap": [], "dropout": []}
    found = {k: [] for k in truth}
    for clip in range(4):
        T = 900
        p = walk_params(T, seed=clip, noise_deg=4.0)
        valid = np.ones(T, bool)
        starts = np.arange(30, T - 60, 45)
        for s in starts:
            kind = ("wrist_flip", "lr_swap", "dropout")[rng.integers(3)]
            n = int(rng.integers(2, 12))
            if kind == "wrist_flip":
                inject_flip(p, ("left", "right")[rng.integers(2)], s, s + n)
            elif kind == "lr_swap":
                inject_swap(p, s, s + n)
            else:
                valid[s:s + n] = False
            truth[kind].append((clip, s, s + n))
        for f in qa.find_flags(make_take(p, valid=valid)):
            if f.kind in found:
                found[f.kind].append((clip, f.start, f.end))

    def overlaps(a, b):
        return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]

    for kind in truth:
        recall = np.mean([any(overlaps(t, f) for f in found[kind]) for t in truth[kind]])
        precision = np.mean([any(overlaps(f, t) for t in truth[kind]) for f in found[kind]])
        assert recall >= 0.95 and precision >= 0.90, (kind, recall, precision)


# --------------------------------------------------------------------------- fixes

def test_interpolate_repairs_a_flip_and_leaves_the_input_alone():
    clean = walk_params(noise_deg=0.0)
    p = {k: v.copy() for k, v in clean.items()}
    inject_flip(p, "left", 100, 106)
    take = make_take(p)
    before = {k: v.copy() for k, v in take.params.items()}
    flags = qa.find_flags(take)
    fixed = qa.apply_fixes(take, flags, {"wrist_flip": "interpolate"})
    for k, v in take.params.items():
        np.testing.assert_array_equal(v, before[k])
    j = J["left_wrist"] - 1
    got = axis_angle_to_quaternion(_body(fixed.params)[100:106, j])
    want = axis_angle_to_quaternion(_body(clean)[100:106, j])
    assert np.degrees(qa._geodesic(got, want)).max() < 5.0
    assert qa.find_flags(fixed) == []
    assert fixed.valid.all() and any("QA: fixed 1" in n for n in fixed.notes)


def test_interpolate_fills_a_dropout_between_its_neighbours():
    p = walk_params(noise_deg=0.0)
    valid = np.ones(300, bool)
    valid[50:55] = False
    p["transl"][50:55] = 99.0       # junk in invalid rows
    take = make_take(p, valid=valid)
    fixed = qa.apply_fixes(take, qa.find_flags(take), {"dropout": "interpolate"})
    assert fixed.valid.all()
    expect = np.linspace(p["transl"][49], p["transl"][55], 7)[1:-1]
    np.testing.assert_allclose(fixed.params["transl"][50:55], expect, atol=1e-9)
    assert not take.valid[50:55].any()


def test_invalidate_and_refilter():
    p = walk_params(seed=5)
    inject_swap(p, 100, 106)
    take = make_take(p)
    flags = qa.find_flags(take)
    inv = qa.apply_fixes(take, flags, {"lr_swap": "invalidate"})
    assert np.flatnonzero(~inv.valid).tolist() == list(range(100, 106))
    ref = qa.apply_fixes(take, flags, {"lr_swap": "refilter"})
    changed = np.flatnonzero(np.abs(ref.params["body_pose"] - take.params["body_pose"])
                             .max(axis=1) > 1e-9)
    pad = int(qa.REFILTER_PAD_S * FPS)
    assert changed.min() >= 100 - pad and changed.max() < 106 + pad
    assert ref.valid.all()


def test_unknown_fix_and_kind_refused():
    take = make_take(walk_params(20))
    with pytest.raises(RetargetError, match="unknown fix"):
        qa.apply_fixes(take, [], {"wrist_flip": "undo"})
    with pytest.raises(RetargetError, match="unknown QA flag kind"):
        qa.apply_fixes(take, [], {"flip": "interpolate"})
    with pytest.raises(RetargetError):
        qa.Flag("wrist_flip", 5, 5, "warning", "empty span")


def test_flag_round_trip():
    f = qa.Flag("lr_swap", 3, 9, "warning", "why", None)
    assert qa.Flag.from_dict(f.to_dict()) == f


def test_two_close_swaps_are_two_spans_not_the_gap_between():
    """Switches at 42, 46, 55, 62: the swaps are [42, 46) and [55, 62), not [46, 55)
    (even though the middle switches save the most)."""
    saving = np.full(120, -1.0)
    saving[[42, 46, 55, 62]] = [2.26, 2.77, 2.34, 2.08]
    assert qa.swapped_segments(saving, qa.SWAP_PAIR / 2, qa.SWAP_ROW_COST) == [(42, 46),
                                                                               (55, 62)]
    p = walk_params(seed=6)
    inject_swap(p, 140, 144)
    inject_swap(p, 153, 160)
    assert kinds(qa.find_flags(make_take(p)), "lr_swap") == [(140, 144), (153, 160)]


def test_the_sample_clips_truth_is_clean_and_its_2d_joints_reproject():
    """samples/wave.truth.npz: the exact parameters and 2D joints the sample clip was
    rendered with: no flag, and the projected joints land on its 2D joints."""
    from pathlib import Path

    from pose2pose_mocap.retarget.cleanup.kinematics import take_motion
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model
    from pose2pose_mocap.retarget.take import read_take

    from .synthetic import standin_smplx_path

    take = read_take(Path(__file__).resolve().parents[2] / "samples" / "wave.truth.npz")
    model = load_smplx_model(standin_smplx_path())
    motion = take_motion(take, model)
    assert qa.find_flags(take, motion) == []
    assert np.nanmax(qa.reprojection_error(take, motion)) < 1e-4
    bad = take.with_params({})
    bad.raw = dict(take.raw, joints_2d=take.raw["joints_2d"].copy())
    bad.raw["joints_2d"][40:45, :, 1] += 60.0         # 2D joints 60 px lower for 5 frames
    assert kinds(qa.find_flags(bad, motion), "reprojection") == [(40, 45)]
