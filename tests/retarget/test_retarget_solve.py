"""The retarget solve, checked through Blender's pose evaluation (``posing.evaluate_armature``)
of the channels it writes: mapped segments point where the SMPL-X ones point, unmapped bones
keep their rest, twist shares, root motion, the limb IK, object transforms and facing."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pose2pose_mocap.retarget.errors import RetargetError
from pose2pose_mocap.retarget.posing import evaluate_armature
from pose2pose_mocap.retarget.rotations import quaternion_to_matrix
from pose2pose_mocap.retarget.smplx_model import JOINT_NAMES, load_smplx_model, rest_joints
from pose2pose_mocap.retarget.targets import (TARGETS, RigTarget, TargetBone, TargetSkeleton,
                                              get_target, retarget, source_motion)
from pose2pose_mocap.retarget.targets.solve import _child_joint, twist_angle

from .synthetic import make_take, random_params, standin_smplx_path

J = {n: i for i, n in enumerate(JOINT_NAMES)}


@pytest.fixture(scope="module")
def model():
    return load_smplx_model(standin_smplx_path())


@pytest.fixture(scope="module")
def source(model):
    return source_motion(make_take(random_params(40, seed=4, max_angle=0.9)), model)


def evaluated(sk: TargetSkeleton, motion):
    """World heads and tails ``(T, B, 3)`` as Blender poses the armature from the channels."""
    D = evaluate_armature(sk.matrices, sk.heads, sk.parents, motion.rotations, motion.locations)
    heads = np.einsum("tbij,bj->tbi", D[..., :3, :3], sk.heads) + D[..., :3, 3]
    tails = np.einsum("tbij,bj->tbi", D[..., :3, :3], sk.tails) + D[..., :3, 3]
    return sk.to_world(heads), sk.to_world(tails)


def angle_deg(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def segment_errors(src, target, sk, motion) -> dict:
    H, _ = evaluated(sk, motion)
    ix = sk.index()
    out = {}
    for j, b in target.mapping.items():
        c = _child_joint(J[j])
        cb = target.mapping.get(JOINT_NAMES[c]) if c is not None else None
        if cb is None:
            continue
        out[j] = angle_deg(H[:, ix[cb]] - H[:, ix[b]],
                           src.positions[:, c] - src.positions[:, J[j]]).max()
    return out


@pytest.mark.parametrize("name", TARGETS)
def test_mapped_segments_point_where_the_smplx_ones_point(source, name):
    """Rest-pose aware: T- or A-pose, any roll, cm or m, Y or Z up: every mapped segment
    (bone head -> head of the bone mapped to the SMPL-X child joint) is parallel."""
    target = get_target(name)
    motion = retarget(source, None, target, ik=False)
    errs = segment_errors(source, target, target.skeleton, motion)
    assert len(errs) >= 35
    assert max(errs.values()) < 1e-5, max(errs.items(), key=lambda kv: kv[1])
    q = motion.rotations
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0)
    assert (np.einsum("tbi,tbi->tb", q[1:], q[:-1]) >= 0).all(), "sign-continuous quaternions"


def test_a_flat_hierarchy_gets_heads_keyed_where_the_smplx_tree_puts_them(source):
    """Every bone a child of Root (some mocap exports): mapped bones are placed on the bone
    of their SMPL-X parent joint (location keys), so segments and limbs still match."""
    t = get_target("godot")
    sk = t.skeleton
    flat = TargetSkeleton("flat", tuple(replace(b, parent=None if b.name == "Root" else "Root")
                                        for b in sk.bones))
    m = retarget(source, None, t, flat, ik=False)
    errs = segment_errors(source, t, flat, m)
    assert max(errs.values()) < 1e-5
    ix = flat.index()
    assert m.located[ix["LeftLowerArm"]] and m.located[ix["LeftIndexDistal"]]
    base = retarget(source, None, t, ik=False)
    H_flat, _ = evaluated(flat, m)
    H_base, _ = evaluated(sk, base)
    mapped = [ix[b] for b in t.mapping.values()]
    assert np.allclose(H_flat[:, mapped], H_base[:, mapped], atol=1e-9)


def test_a_pose_target_gets_arms_raised_for_the_t_pose(model):
    """Zero pose (SMPL-X T-pose): UE5's A-posed upper arm is turned up ~45 deg, Godot's
    T-posed one hardly at all."""
    take = make_take({k: np.zeros_like(v) for k, v in random_params(2).items()})
    src = source_motion(take, model)
    for name, lo, hi in (("ue5", 35.0, 55.0), ("godot", 0.0, 8.0)):
        t = get_target(name)
        m = retarget(src, None, t, ik=False)
        i = t.skeleton.index()[t.mapping["left_shoulder"]]
        w = m.rotations[0, i, 0]
        angle = np.degrees(2 * np.arccos(min(1.0, abs(w))))
        assert lo <= angle <= hi, (name, angle)


def test_unmapped_bones_keep_their_rest_or_share_the_spine_bend(source):
    t = get_target("ue5")
    ix = t.skeleton.index()
    rigid = retarget(source, None, t, ik=False, spread=False)
    shared = retarget(source, None, t, ik=False)
    for bone in ("spine_02", "spine_04", "neck_02", "index_metacarpal_l", "pinky_metacarpal_r"):
        assert np.allclose(np.abs(rigid.rotations[:, ix[bone], 0]), 1.0, atol=1e-9), bone
        assert not shared.located[ix[bone]]
    for bone in ("index_metacarpal_l", "pinky_metacarpal_r"):
        assert np.allclose(np.abs(shared.rotations[:, ix[bone], 0]), 1.0, atol=1e-9), bone
    # shared: spine_01 and spine_02 each bend part of the way (about the same amount here,
    # the two are about equally long), and the chord spine_01 -> spine_03 stays exact
    def angle(m, b):
        return 2 * np.arccos(np.clip(np.abs(m.rotations[:, ix[b], 0]), 0, 1))
    a1, a2 = angle(shared, "spine_01"), angle(shared, "spine_02")
    assert (a2 > 1e-3).all() and (a1 < angle(rigid, "spine_01") + 1e-9).mean() > 0.8
    errs = segment_errors(source, t, t.skeleton, shared)
    assert errs["spine1"] < 1e-5 and errs["spine3"] < 1e-5 and errs["neck"] < 1e-5


def test_object_transform_and_facing_do_not_change_the_channels(source):
    """Same bones in world, the armature in cm under a 90 deg turn (an FBX import), or the
    whole character turned to face +X: the local rotations are the same."""
    t = get_target("godot")
    sk = t.skeleton
    base = retarget(source, None, t, ik=False)
    # 1) armature space in cm, Y up; object = Rx(90) * 0.01: identical world rest
    A = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])       # world -> armature (Z up -> Y up)
    om = np.eye(4)
    om[:3, :3] = A.T * 0.01
    bones = tuple(TargetBone(b.name, b.parent, A @ np.array(b.head) * 100,
                             A @ np.array(b.tail) * 100, 0.0) for b in sk.bones)
    # keep each bone's world frame: roll from the rotated rest frame
    from pose2pose_mocap.retarget.targets import roll_from_matrix

    rolls = roll_from_matrix(A @ sk.matrices)
    bones = tuple(replace(b, roll=float(r)) for b, r in zip(bones, rolls))
    sk_cm = TargetSkeleton("godot cm", bones, object_matrix=om, units="cm")
    assert np.allclose(sk_cm.to_world(sk_cm.heads), sk.heads)
    m_cm = retarget(source, None, t, sk_cm, ik=False)
    assert np.allclose(m_cm.rotations, base.rotations, atol=1e-9)
    # pose_bone.location is in the bone's rest axes, in armature units (cm here)
    assert np.allclose(m_cm.locations, base.locations * 100, atol=1e-6)
    # 2) the character turned 90 deg about world Z (object rotation only)
    rz = np.eye(4)
    rz[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    sk_turned = TargetSkeleton("godot turned", sk.bones, object_matrix=rz)
    m_turned = retarget(source, None, t, sk_turned, ik=False)
    assert np.allclose(m_turned.rotations, base.rotations, atol=1e-9)
    assert np.allclose(m_turned.locations, base.locations, atol=1e-9)


def test_twist_bones_take_their_share_of_the_wrist_twist(model):
    """Only the left wrist turns, about the forearm: lowerarm_twist_01_l turns about its own
    axis by half of it (UE4 preset share 0.5), the forearm and upper arm not at all."""
    T = 5
    theta = np.linspace(0.0, 1.2, T)
    p = {k: np.zeros_like(v) for k, v in random_params(T).items()}
    Jr = rest_joints(model, np.zeros(10))
    axis = Jr[J["left_wrist"]] - Jr[J["left_elbow"]]
    axis /= np.linalg.norm(axis)
    p["body_pose"][:, 19 * 3:20 * 3] = theta[:, None] * axis     # joint 20 = left_wrist
    src = source_motion(make_take(p), model)
    t = get_target("ue4")
    m = retarget(src, None, t, ik=False)
    ix = t.skeleton.index()
    q = m.rotations[:, ix["lowerarm_twist_01_l"]]
    R = quaternion_to_matrix(q)
    got = twist_angle(R, np.array([0.0, 1.0, 0.0]))
    assert np.allclose(got - got[0], 0.5 * theta, atol=1e-6)
    # the forearm and upper arm do not move (their channels hold the A -> T rest change)
    for bone in ("lowerarm_l", "upperarm_l", "upperarm_twist_01_l"):
        assert np.allclose(m.rotations[:, ix[bone]], m.rotations[:1, ix[bone]], atol=1e-9), bone


def test_root_motion_scaled_by_leg_length_and_split_onto_the_root_bone(source):
    for name in ("ue5", "mixamo"):
        t = get_target(name)
        sk = t.skeleton
        m = retarget(source, None, t, ik=False)
        H, _ = evaluated(sk, m)
        ix = sk.index()
        lh, rh = ix[t.mapping["left_hip"]], ix[t.mapping["right_hip"]]
        mid = 0.5 * (H[:, lh] + H[:, rh])
        mid0 = 0.5 * (sk.to_world(sk.heads[lh]) + sk.to_world(sk.heads[rh]))
        ms = 0.5 * (source.positions[:, J["left_hip"]] + source.positions[:, J["right_hip"]])
        ms0 = 0.5 * (source.rest_heads[J["left_hip"]] + source.rest_heads[J["right_hip"]])
        assert np.allclose(mid, mid0 + m.scale * (ms - ms0), atol=1e-9)
        if name == "ue5":   # root bone on the floor under the hips; hips carry height
            root = H[:, ix["root"]]
            assert np.allclose(root[:, 2], 0.0, atol=1e-12)
            hips = H[:, ix["pelvis"]]
            rest_offset = sk.to_world(sk.heads[ix["pelvis"]]) - sk.to_world(sk.heads[ix["root"]])
            assert np.allclose((hips - root)[:, :2], rest_offset[:2], atol=1e-9)
            assert np.allclose(np.abs(m.rotations[:, ix["root"], 0]), 1.0)   # no yaw on root
            assert m.located[ix["root"]] and m.located[ix["pelvis"]]
        else:               # Mixamo: no root bone, Hips carry everything
            assert list(np.flatnonzero(m.located)) == [ix["mixamorig:Hips"]]
        assert 0.7 < m.scale < 1.5


def test_follow_bones_sit_on_the_bone_they_follow(source):
    t = get_target("ue5")
    m = retarget(source, None, t, ik=False)
    H, _ = evaluated(t.skeleton, m)
    ix = t.skeleton.index()
    for ik_bone, bone in (("ik_foot_l", "foot_l"), ("ik_hand_gun", "hand_r"),
                          ("ik_hand_l", "hand_l")):
        assert np.allclose(H[:, ix[ik_bone]], H[:, ix[bone]], atol=1e-9), ik_bone


def _walk_like(T=40):
    """Slow motion: the body drifts forward while the knees and elbows bend."""
    p = {k: np.zeros((T,) + v.shape[1:]) for k, v in random_params(T).items()}
    s = np.linspace(0, 1, T)
    p["transl"] = np.column_stack([0.3 * s, np.zeros(T), np.full(T, 4.0)])
    p["body_pose"][:, 3 * 3] = 0.6 * np.sin(np.pi * s)        # left knee (joint 4) bends
    p["body_pose"][:, 4 * 3] = 0.3 * s                        # right knee
    p["body_pose"][:, 17 * 3 + 1] = -0.8 * s                  # left elbow (joint 18)
    p["body_pose"][:, 0] = -0.4 * s                           # left hip flexes
    return make_take(p)


@pytest.mark.parametrize("name", ["rigify", "ue4", "godot"])
def test_limb_ik_puts_hands_and_feet_where_the_scaled_rig_puts_them(model, name):
    src = source_motion(_walk_like(), model)
    t = get_target(name)
    sk = t.skeleton
    m = retarget(src, None, t, contacts={}, ik=True)
    H, _ = evaluated(sk, m)
    ix = sk.index()
    for a, mid, e in (("left_shoulder", "left_elbow", "left_wrist"),
                      ("left_hip", "left_knee", "left_ankle")):
        ia, im, ie = (ix[t.mapping[x]] for x in (a, mid, e))
        lt = (np.linalg.norm(sk.to_world(sk.heads[im]) - sk.to_world(sk.heads[ia]))
              + np.linalg.norm(sk.to_world(sk.heads[ie]) - sk.to_world(sk.heads[im])))
        ls = (np.linalg.norm(src.rest_heads[J[mid]] - src.rest_heads[J[a]])
              + np.linalg.norm(src.rest_heads[J[e]] - src.rest_heads[J[mid]]))
        want = (src.positions[:, J[e]] - src.positions[:, J[a]]) * lt / ls
        assert np.allclose(H[:, ie] - H[:, ia], want, atol=1e-6 * lt), (name, e)
    # the hand keeps the SMPL-X hand's direction (IK moves only upper arm and forearm)
    errs = segment_errors(src, t, sk, m)
    assert errs["left_wrist"] < 1e-5


def test_contact_runs_hold_the_foot_and_follow_only_the_sources_own_drift(model):
    src = source_motion(_walk_like(), model)
    t = get_target("rigify")
    mask = np.zeros(src.num_frames, bool)
    mask[8:30] = True
    m = retarget(src, None, t, contacts={"left": mask, "right": np.zeros_like(mask)},
                 ik=True, ends=False)
    H, _ = evaluated(t.skeleton, m)
    ankle = H[:, t.skeleton.index()[t.mapping["left_ankle"]]]
    src_ankle = src.positions[:, J["left_ankle"]]
    d_t = np.diff(ankle[8:30], axis=0)
    d_s = np.diff(src_ankle[8:30], axis=0) * m.scale
    assert np.allclose(d_t, d_s, atol=1e-6)
    # without the IK the same foot slides (proportions differ)
    free = retarget(src, None, t, contacts={"left": mask}, ik=False)
    H2, _ = evaluated(t.skeleton, free)
    slide = np.diff(H2[8:30, t.skeleton.index()[t.mapping["left_ankle"]]], axis=0)
    assert np.abs(slide - d_s).max() > 1e-3
    assert set(m.contacts) == {"left", "right"}


def test_face_jaw_and_expression_shape_keys(model):
    p = random_params(6, seed=2, max_angle=0.5)
    src = source_motion(make_take(p), model)
    t = get_target("godot")
    m = retarget(src, None, t, ik=False)
    assert np.allclose(m.shape_keys["Exp003"], p["expression"][:, 3])
    errs = segment_errors(src, t, t.skeleton, m)
    assert "jaw" not in errs          # a leaf: checked through its own tail below
    mine = RigTarget.from_dict({**t.to_dict(skeleton=False), "shape_keys": {"Exp000": "mouthOpen"}})
    m2 = retarget(src, None, mine, t.skeleton, ik=False)
    assert list(m2.shape_keys) == ["mouthOpen"]
    ix = t.skeleton.index()["Jaw"]
    _, tails = evaluated(t.skeleton, m)
    H, _ = evaluated(t.skeleton, m)
    jaw_dir = tails[:, ix] - H[:, ix]
    src_dir = np.einsum("tab,b->ta", src.rotations[:, J["jaw"]],
                        src.rest_tails[J["jaw"]] - src.rest_heads[J["jaw"]])
    assert angle_deg(jaw_dir, src_dir).max() < 1e-5


def test_refused_targets_name_the_missing_bones(source):
    t = get_target("mixamo")
    mapping = dict(t.mapping)
    del mapping["left_knee"]
    with pytest.raises(RetargetError, match=r"missing: left_knee"):
        retarget(source, None, RigTarget(name="broken", mapping=mapping), t.skeleton)
    with pytest.raises(RetargetError, match="has no skeleton"):
        retarget(source, None, RigTarget(name="x", mapping=dict(t.mapping)))
    with pytest.raises(RetargetError, match="frames"):
        retarget(source, None, t, contacts={"left": np.zeros(3, bool)})


def test_a_take_and_its_model_directly(model):
    take = make_take(random_params(5, seed=9, max_angle=0.5))
    a = retarget(take, model, get_target("vrm"), ik=False)
    b = retarget(source_motion(take, model), None, get_target("vrm"), ik=False)
    assert np.allclose(a.rotations, b.rotations) and np.array_equal(a.frame_index, take.frame_index)
    assert a.fps == take.fps
    # with the IK, a take's contacts come from the motion clean-up's contact finder
    c = retarget(take, model, get_target("vrm"), ik=True)
    assert set(c.contacts) <= {"left", "right"} and c.rotations.shape == a.rotations.shape


def test_source_motion_matches_the_smplx_forward_pass(model):
    """The rig in Blender world = camera_to_blender of smplx's joints (expression 0)."""
    from pose2pose_mocap.retarget.posing import camera_to_blender
    from pose2pose_mocap.retarget.smplx_model import forward

    p = random_params(4, seed=1, max_angle=1.0)
    p["expression"][:] = 0.0
    src = source_motion(make_take(p), model)
    out = forward(model, {**p, "betas": p["betas"][0]}, pose_correctives=False)
    assert np.allclose(src.positions, camera_to_blender(out.joints), atol=1e-9)
