"""Rig targets as data: bone frames (Blender's roll convention), the built-in targets and their
reference skeletons, JSON presets, validation, and auto-mapping by names and structure."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pose2pose_mocap.retarget.errors import RetargetError
from pose2pose_mocap.retarget.smplx_model import JOINT_NAMES
from pose2pose_mocap.retarget.targets import (REQUIRED_JOINTS, TARGETS, RigTarget, TargetBone,
                                              TargetSkeleton, automap, bone_matrix, get_target,
                                              missing_required, reference_skeleton,
                                              roll_from_matrix)
from pose2pose_mocap.retarget.targets.automap import name_role, split_side, strip_prefix


def _directions(rng, n):
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    # the awkward ones: exactly along +-Y, and within 1e-4 of -Y (Blender's special cases)
    extra = np.array([[0, 1, 0], [0, -1, 0], [1e-4, -1, 0], [0, -1, 3e-6], [1, 0, 0], [0, 0, 1]],
                     float)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return np.concatenate([d, extra])


def test_bone_frame_is_a_rotation_with_y_along_the_bone_and_roll_round_trips():
    rng = np.random.default_rng(3)
    d = _directions(rng, 200)
    roll = rng.uniform(-np.pi, np.pi, len(d))
    M = bone_matrix(np.zeros_like(d), d * 0.3, roll)
    assert np.allclose(M.transpose(0, 2, 1) @ M, np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(M), 1.0)
    assert np.allclose(M[:, :, 1], d, atol=1e-5)   # Blender snaps bones within ~3e-5 of -Y
    back = roll_from_matrix(M)
    assert np.allclose(np.cos(back - roll), 1.0, atol=1e-9)


@pytest.mark.blender
def test_bone_frame_matches_blender():
    """Blender's own ``Bone.MatrixFromAxisRoll`` / ``AxisRollFromMatrix`` (vec_roll_to_mat3)."""
    bpy = pytest.importorskip("bpy")
    from mathutils import Matrix, Vector

    rng = np.random.default_rng(5)
    d = _directions(rng, 60)
    roll = rng.uniform(-np.pi, np.pi, len(d))
    ours = bone_matrix(np.zeros_like(d), d, roll)
    for i in range(len(d)):
        theirs = np.array(bpy.types.Bone.MatrixFromAxisRoll(Vector(d[i]), float(roll[i])))
        # Blender works in float32: within 1e-4 of -Y its frame differs by ~1e-4
        tol = 2e-4 if d[i][1] < -0.999 else 1e-5
        assert np.allclose(ours[i], theirs, atol=tol), (d[i], roll[i])
        _, r = bpy.types.Bone.AxisRollFromMatrix(Matrix(ours[i].tolist()))
        assert math.cos(r - float(roll_from_matrix(ours[i]))) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", TARGETS)
def test_builtin_targets_map_every_required_joint_to_a_bone_of_their_skeleton(name):
    target = get_target(name)
    sk = target.skeleton
    assert missing_required(target) == []
    assert set(target.mapping.values()) <= set(sk.names)
    assert len(set(target.mapping.values())) == len(target.mapping)
    assert set(target.twist) <= set(sk.names) and set(target.follow) <= set(sk.names)
    assert not set(target.twist) & set(target.mapping.values())
    assert target.source, "every built-in cites where its facts come from"
    # fingers and the thumb's first joint where the skeleton has them (SMPL-X thumb1 = metacarpal)
    assert target.mapping["left_thumb1"] in sk.names
    if target.root_bone is not None:
        assert target.root_bone in sk.names


def test_builtin_names_follow_each_convention():
    assert get_target("mixamo").mapping["left_shoulder"] == "mixamorig:LeftArm"
    assert get_target("mixamo").mapping["left_thumb1"] == "mixamorig:LeftHandThumb1"
    assert get_target("ue5").mapping["spine3"] == "spine_05"
    assert get_target("ue4").mapping["left_foot"] == "ball_l"
    # Unity names are shifted by one on the thumb (README section 7 / VRM PR 381)
    unity = get_target("unity").mapping
    assert unity["left_thumb1"] == "LeftThumbProximal"
    assert unity["left_pinky3"] == "LeftLittleDistal"
    assert get_target("vrm").mapping["left_thumb1"] == "leftThumbMetacarpal"
    assert get_target("godot").mapping["spine3"] == "UpperChest"
    assert get_target("rigify").mapping["left_wrist"] == "DEF-hand.L"
    # Unity: the 15 required humanoid bones, with Hips the hierarchy root
    sk = get_target("unity").skeleton
    assert sk.bones[0].name == "Hips" and sk.bones[0].parent is None
    for j in REQUIRED_JOINTS:
        assert unity[j] in sk.names


@pytest.mark.parametrize("name", TARGETS)
def test_reference_skeletons_have_their_rest_family_and_real_rolls(name):
    target = get_target(name)
    sk = reference_skeleton(name)
    H = sk.to_world(sk.heads)
    ix = sk.index()
    m = target.mapping
    arm = H[ix[m["left_elbow"]]] - H[ix[m["left_shoulder"]]]
    below = math.degrees(math.asin(-arm[2] / np.linalg.norm(arm)))
    assert (below > 25) == (target.rest_family == "A"), below
    # every character faces Blender's -Y with its left at +X once in the world
    assert H[ix[m["left_hip"]]][0] > H[ix[m["right_hip"]]][0]
    assert H[ix[m["head"]]][2] > H[ix[m["pelvis"]]][2] > H[ix[m["left_ankle"]]][2]
    rolls = np.degrees([b.roll for b in sk.bones])
    assert (np.abs(rolls) > 30).sum() >= len(rolls) // 4, "rolls must be non-trivial"


def test_mixamo_reference_is_an_fbx_import_in_centimetres():
    sk = reference_skeleton("mixamo")
    assert sk.units == "cm" and sk.scale == pytest.approx(0.01)
    head = sk.to_world(sk.heads[sk.index()["mixamorig:HeadTop_End"]])
    assert 1.7 < head[2] < 1.9        # X Bot: 1.82 m to HeadTop_End


def test_preset_json_round_trip_and_no_overwrite(tmp_path):
    t = get_target("ue5")
    path = t.save(tmp_path / "manny.json")
    back = RigTarget.load(path)
    assert back.to_dict() == t.to_dict()
    assert np.allclose(back.skeleton.matrices, t.skeleton.matrices, atol=1e-9)
    before = path.read_bytes()
    with pytest.raises(RetargetError, match="exists"):
        t.save(path)
    assert path.read_bytes() == before
    t.save(path, force=True)
    assert get_target(str(path)).mapping == t.mapping
    plain = RigTarget(name="mine", mapping=dict(t.mapping))
    assert RigTarget.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain


@pytest.mark.parametrize("content, why", [
    ("{not json", "not valid JSON"),
    ('{"format": "p2p-rig-target/1", "name": "x"}', "missing field 'mapping'"),
    ('{"format": "pickle", "mapping": {}}', "not a rig target preset"),
    ('[1, 2]', "must be a JSON object"),
    ('{"format": "p2p-rig-target/1", "name": "x", "mapping": {"elbow": "a"}}',
     "not an SMPL-X joint"),
    ('{"format": "p2p-rig-target/1", "name": "x", "mapping": {"left_elbow": "a", '
     '"right_elbow": "a"}}', "mapped twice"),
    ('{"format": "p2p-rig-target/1", "name": "x", "mapping": {}, '
     '"twist": {"t": ["left_wrist", 9]}}',
     "share"),
    ('{"format": "p2p-rig-target/1", "name": "x", "mapping": {}, "exec": "os.system"}',
     "unknown field"),
    ('{"format": "p2p-rig-target/1", "name": "x", "mapping": {}, "skeleton": {"bones": '
     '[{"name": "a", "head": [0, 0, 0], "tail": [0, 0, 0]}]}}', "zero length"),
])
def test_bad_presets_are_refused_with_one_line(tmp_path, content, why):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(RetargetError) as e:
        RigTarget.load(path)
    assert why in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)
    assert path.read_text() == content


def test_unknown_target_and_missing_file():
    with pytest.raises(RetargetError, match="unknown rig target"):
        get_target("maya")
    with pytest.raises(RetargetError, match="no such rig target preset"):
        get_target("/nonexistent/x.json")


def _bones(*spec):
    return tuple(TargetBone(n, p, h, t) for n, p, h, t in spec)


def test_skeleton_validation_names_the_problem():
    a = ("a", None, (0, 0, 0), (0, 0, 1))
    with pytest.raises(RetargetError, match="duplicate bone names: a"):
        TargetSkeleton("s", _bones(a, a))
    with pytest.raises(RetargetError, match="parent bone not found: b -> zz"):
        TargetSkeleton("s", _bones(a, ("b", "zz", (0, 0, 1), (0, 0, 2))))
    with pytest.raises(RetargetError, match="cycle"):
        TargetSkeleton("s", _bones(("a", "b", (0, 0, 0), (0, 0, 1)),
                                   ("b", "a", (0, 0, 1), (0, 0, 2))))
    m = np.diag([1.0, 2.0, 1.0, 1.0])
    with pytest.raises(RetargetError, match="non-uniform scale"):
        TargetSkeleton("s", _bones(a), object_matrix=m)
    with pytest.raises(RetargetError, match="mirrored"):
        TargetSkeleton("s", _bones(a), object_matrix=np.diag([-1.0, 1.0, 1.0, 1.0]))
    # children listed before parents are put in order
    sk = TargetSkeleton("s", _bones(("b", "a", (0, 0, 1), (0, 0, 2)), a))
    assert sk.names == ("a", "b") and list(sk.parents) == [-1, 0]


# --------------------------------------------------------------------------- automap

@pytest.mark.parametrize("name", TARGETS)
def test_automap_finds_the_builtin_mapping_on_each_reference_skeleton(name):
    target = get_target(name)
    found = automap(target.skeleton)
    assert found.mapping == target.mapping
    assert found.rest_family == target.rest_family


def _renamed(sk: TargetSkeleton, rename) -> TargetSkeleton:
    bones = tuple(TargetBone(rename(b.name), None if b.parent is None else rename(b.parent),
                             b.head, b.tail, b.roll) for b in sk.bones)
    return TargetSkeleton("renamed", bones, object_matrix=sk.object_matrix)


@pytest.mark.parametrize("rename", [
    lambda n: n.replace("mixamorig:", "mixamorig1:"),
    lambda n: n.replace("mixamorig:", "mixamorig"),        # glTF / Godot drop the colon
    lambda n: n.replace("mixamorig:", "Armature|"),
    lambda n: n.replace("mixamorig:", ""),
])
def test_automap_reads_mixamo_prefixes(rename):
    sk = _renamed(reference_skeleton("mixamo"), rename)
    found = automap(sk)
    want = {j: rename(b) for j, b in get_target("mixamo").mapping.items()}
    assert found.mapping == want


def test_automap_side_conventions():
    assert split_side("thigh.L")[0] == "left" and split_side("thigh_r")[0] == "right"
    assert split_side("LeftUpLeg")[0] == "left" and split_side("right_arm")[0] == "right"
    assert split_side("L_Hand")[0] == "left" and split_side("thigh.R.001")[0] == "right"
    assert strip_prefix("mixamorig12:LeftArm") == "LeftArm"
    assert strip_prefix("DEF-thigh.L") == "thigh.L"
    assert name_role("upperarm_twist_01_l") == (None, None)
    assert name_role("ik_foot_l") == (None, None)
    assert name_role("LeftToe_End") == (None, None)
    assert name_role("calf_l")[0] == "left_knee" and name_role("ball_r")[0] == "right_foot"


def test_automap_ue_names_in_other_case_and_blender_sides():
    sk = _renamed(reference_skeleton("ue4"),
                  lambda n: n.replace("_l", ".L").replace("_r", ".R").upper() if n != "root" else n)
    found = automap(sk)
    assert found.mapping["left_knee"] == "CALF.L"
    assert found.mapping["spine3"] == "SPINE_03"
    assert missing_required(found, sk) == []


def test_automap_refuses_what_is_not_a_humanoid():
    chain = tuple(TargetBone(f"Bone.{i:03d}", None if i == 0 else f"Bone.{i - 1:03d}",
                             (0, 0, i * 0.1), (0, 0, i * 0.1 + 0.1)) for i in range(6))
    with pytest.raises(RetargetError, match=r"missing: pelvis, spine1, head, left_hip"):
        automap(TargetSkeleton("Tail", chain))
    # no arms at all: the missing joints are named
    mix = reference_skeleton("mixamo")
    armless = tuple(b for b in mix.bones
                    if not any(w in b.name for w in ("Shoulder", "Arm", "Hand")))
    with pytest.raises(RetargetError, match=r"missing: left_shoulder, left_elbow, left_wrist, "
                                            r"right_shoulder, right_elbow, right_wrist$"):
        automap(TargetSkeleton("armless", armless, object_matrix=mix.object_matrix))
    # an unnamed forearm is found by the structure pass
    sk = _renamed(mix, lambda n: "bone_17" if n == "mixamorig:LeftForeArm" else n)
    assert automap(sk).mapping["left_elbow"] == "bone_17"


def test_every_joint_name_in_the_builtins_is_an_smplx_joint():
    for name in TARGETS:
        assert set(get_target(name).mapping) <= set(JOINT_NAMES)


_FACE_AND_FINGERS = ("index", "middle", "ring", "pinky", "thumb", "eye", "jaw")


@pytest.mark.parametrize("name", TARGETS)
def test_automap_by_structure_alone_finds_the_body(name):
    """Every bone renamed ``b000``..: hips, legs, spine, neck, head and arms come from the tree
    and the rest positions (fingers, eyes and jaw need names)."""
    target = get_target(name)
    sk = target.skeleton
    rename = {b.name: f"b{i:03d}" for i, b in enumerate(sk.bones)}
    found = automap(_renamed(sk, rename.get))
    want = {j: rename[b] for j, b in target.mapping.items()
            if not any(f in j for f in _FACE_AND_FINGERS)}
    got = {j: b for j, b in found.mapping.items() if j in want}
    assert got == want


def test_automap_keeps_face_rigs_off_the_head_chain():
    """Rigify's metarig hangs a face rig (face -> brow, ear ...) under its head bone, whose name
    says nothing: the head is the last neck-chain bone, not a face bone above it."""
    sk = _renamed(reference_skeleton("rigify"),
                  lambda n: {"DEF-spine.006": "spine.006"}.get(n, n))
    h = np.array(next(b for b in sk.bones if b.name == "spine.006").tail)
    face = (TargetBone("face", "spine.006", h - [0, 0, 0.1], h + [0, 0, 0.02]),
            TargetBone("brow.T.L.003", "face", h + [0.02, -0.1, 0.0], h + [0.03, -0.1, 0.03]),
            TargetBone("ear.L", "face", h + [0.08, 0.0, 0.01], h + [0.08, 0.0, 0.06]))
    found = automap(TargetSkeleton("metarig-like", sk.bones + face))
    assert found.mapping["head"] == "spine.006"


@pytest.mark.parametrize("name", ["ue4", "ue5"])
def test_ue_twist_shares_follow_where_the_twist_bones_sit(name):
    """A forearm/calf twist bone at fraction f along the limb takes f of the wrist/ankle
    twist; an upper-arm/thigh one unwinds 1 - f of the limb's own."""
    target = get_target(name)
    sk = target.skeleton
    ix = sk.index()
    H = sk.heads
    assert len(target.twist) == (8 if name == "ue4" else 16)
    for bone, (joint, share) in target.twist.items():
        limb = sk.bones[ix[bone]].parent
        child = next(b.name for b in sk.bones if b.parent == limb and "twist" not in b.name)
        f = np.linalg.norm(H[ix[bone]] - H[ix[limb]]) / np.linalg.norm(H[ix[child]] - H[ix[limb]])
        if joint.endswith(("wrist", "ankle")):
            assert share == pytest.approx(f, abs=1e-3), bone
        else:
            assert share == pytest.approx(-(1 - f), abs=1e-3), bone
