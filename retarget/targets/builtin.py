# SPDX-License-Identifier: GPL-3.0-or-later
"""The built-in rig targets and their reference skeletons (data under ``data/``).

The data files are trimmed copies of ``shared/reference/rigs/*.json`` (bone names,
parents, SMPL-X roles, heads where a source gives them; each keeps its ``source``
citations). Where no source gives bone positions (UE4, UE5, VRM, Unity) the
reference skeleton takes the Mixamo X Bot's joint positions by SMPL-X role and
places the extra bones (UE5 spine_02/04, neck_02, metacarpals, twist bones) on
the segments they split; the UE mannequins get an A-pose (arms 45 deg down, UE5
also a 15 deg elbow bend). Every reference skeleton has non-trivial bone rolls,
so a roll bug shows. ``reference_skeleton(name)`` is the one function the bench
and the Blender test rigs use.

Armature spaces of the reference skeletons (how each arrives in Blender):

=========  =========================================================  ==============
target     armature space                                             object
=========  =========================================================  ==============
godot      Z up, faces -Y, metres (the profile's reference poses)     identity
mixamo     Y up, faces +Z, centimetres (an FBX import)                Rx(90) * 0.01
rigify     Z up, faces -Y, metres (Blender 5.0.1 DEF bones)           identity
ue4        Z up, faces -Y, centimetres                                scale 0.01
ue5        Z up, faces -Y, metres                                     identity
vrm        Z up, faces -Y, metres (glTF import turns Y up to Z up)    identity
unity      Z up, faces -Y, metres                                     identity
=========  =========================================================  ==============
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import RetargetError
from .rig_target import EXPRESSION_KEYS, RigTarget, TargetBone, TargetSkeleton, roll_from_matrix

DATA = Path(__file__).resolve().parent / "data"
_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # (x,y,z)->(x,-z,y)
_SIDES = (("left", "Left", "l", "L"), ("right", "Right", "r", "R"))
_FINGERS = (("index", "Index"), ("middle", "Middle"), ("ring", "Ring"), ("pinky", "Little"))


@lru_cache(maxsize=None)
def _data(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def _roles(name: str) -> dict:
    """SMPL-X joint -> bone name from a data file's ``humanoid_role`` tags."""
    return {b["humanoid_role"]: b["name"] for b in _data(name)["bones"] if b.get("humanoid_role")}


def _identity_keys() -> dict:
    return {k: k for k in EXPRESSION_KEYS}


# --------------------------------------------------------------------------- names

def _unity_names() -> dict:
    """SMPL-X joint -> Unity ``HumanBodyBones`` name (Unity's thumb names are shifted by one)."""
    m = {"pelvis": "Hips", "spine1": "Spine", "spine2": "Chest", "spine3": "UpperChest",
         "neck": "Neck", "head": "Head", "jaw": "Jaw",
         "left_eye_smplhf": "LeftEye", "right_eye_smplhf": "RightEye"}
    for side, Side, _, _ in _SIDES:
        m.update({f"{side}_collar": f"{Side}Shoulder", f"{side}_shoulder": f"{Side}UpperArm",
                  f"{side}_elbow": f"{Side}LowerArm", f"{side}_wrist": f"{Side}Hand",
                  f"{side}_hip": f"{Side}UpperLeg", f"{side}_knee": f"{Side}LowerLeg",
                  f"{side}_ankle": f"{Side}Foot", f"{side}_foot": f"{Side}Toes"})
        for f, F in _FINGERS + (("thumb", "Thumb"),):
            for k, part in enumerate(("Proximal", "Intermediate", "Distal"), 1):
                m[f"{side}_{f}{k}"] = f"{Side}{F}{part}"
    return m


# Where each UE twist bone sits along its limb (0 = the limb's root joint, 1 = its end):
# UE4 one per limb at the middle; UE5 lowerarm/calf _01 near the wrist/ankle and _02 in
# the middle of the forearm side, upperarm/thigh _01 near the shoulder/hip. Not verified
# on an Epic asset (no primary dump; see the reference notes): the reference skeletons
# place them here and the shares below follow.
UE_TWIST_AT = {
    "ue4": {("lowerarm", "01"): 0.5, ("calf", "01"): 0.5, ("upperarm", "01"): 0.5,
            ("thigh", "01"): 0.5},
    "ue5": {("lowerarm", "01"): 0.75, ("lowerarm", "02"): 0.25, ("calf", "01"): 0.75,
            ("calf", "02"): 0.25, ("upperarm", "01"): 0.25, ("upperarm", "02"): 0.75,
            ("thigh", "01"): 0.25, ("thigh", "02"): 0.75},
}
_TWIST_JOINTS = {"lowerarm": ("wrist", +1), "calf": ("ankle", +1),
                 "upperarm": ("shoulder", -1), "thigh": ("hip", -1)}


def _ue_twist(names, key: str) -> dict:
    """UE twist bones -> (SMPL-X joint, share). A forearm/calf twist bone at fraction f of
    the limb takes f of the wrist/ankle twist; an upper-arm/thigh one unwinds 1 - f of the
    limb's own twist (so the twist grows linearly along each limb)."""
    out = {}
    for side, _, s, _ in _SIDES:
        for (limb, k), f in UE_TWIST_AT[key].items():
            bone = f"{limb}_twist_{k}_{s}"
            if bone not in names:
                continue
            joint, sign = _TWIST_JOINTS[limb]
            out[bone] = (f"{side}_{joint}", round(f if sign > 0 else -(1.0 - f), 3))
    return out


# --------------------------------------------------------------------------- targets

def _target(key: str) -> RigTarget:
    if key == "godot":
        d = _data("godot")
        return RigTarget(name="godot", mapping=_roles("godot"), root_bone="Root",
                         root_motion="root", rest_family="T", up_axis="Y", units="m",
                         shape_keys=_identity_keys(), source=tuple(d["source"]))
    if key == "vrm":
        d = _data("vrm1")
        return RigTarget(name="vrm", mapping=_roles("vrm1"), root_bone=None, root_motion="hips",
                         rest_family="T", up_axis="Y", units="m", shape_keys=_identity_keys(),
                         source=tuple(d["source"]))
    if key == "unity":
        return RigTarget(name="unity", mapping=_unity_names(), root_bone=None, root_motion="hips",
                         rest_family="T", up_axis="Y", units="m", shape_keys=_identity_keys(),
                         source=("https://docs.unity3d.com/2020.1/Documentation/ScriptReference/"
                                 "HumanBodyBones.html",
                                 "shared/reference/rigs/README.md section 7 (Unity Humanoid)"))
    if key == "mixamo":
        d = _data("mixamo")
        return RigTarget(name="mixamo", mapping=_roles("mixamo"), root_bone=None,
                         root_motion="hips", rest_family="T", up_axis="Y", units="cm",
                         shape_keys=_identity_keys(), source=tuple(d["source"]))
    if key in ("ue4", "ue5"):
        d = _data(key)
        names = {b["name"] for b in d["bones"]}
        follow = {"ik_foot_l": "foot_l", "ik_foot_r": "foot_r", "ik_hand_gun": "hand_r",
                  "ik_hand_r": "hand_r", "ik_hand_l": "hand_l"}
        return RigTarget(name=key, mapping=_roles(key), root_bone="root", root_motion="root",
                         rest_family="A", up_axis="Z", units="cm",
                         twist=_ue_twist(names, key),
                         follow={k: v for k, v in follow.items() if k in names},
                         shape_keys=_identity_keys(), source=tuple(d["source"]))
    if key == "rigify":
        d = _data("rigify_deform")
        names = {b["name"] for b in d["bones"]}
        twist = {}
        for _, _, _, S in _SIDES:
            side = "left" if S == "L" else "right"
            # The .001 halves: forearm/shin lower halves take half the wrist/ankle twist,
            # upper_arm/thigh lower halves half the limb's own (Rigify's B-bone split).
            for bone, v in ((f"DEF-forearm.{S}.001", (f"{side}_wrist", 0.5)),
                            (f"DEF-shin.{S}.001", (f"{side}_ankle", 0.5))):
                if bone in names:
                    twist[bone] = v
        return RigTarget(name="rigify", mapping=_roles("rigify_deform"), root_bone="root",
                         root_motion="hips", rest_family="A", drive="deform", up_axis="Z",
                         units="m", twist=twist, shape_keys=_identity_keys(),
                         source=tuple(d["source"]))
    raise RetargetError(f"unknown rig target {key!r}")


BUILTIN = ("rigify", "mixamo", "ue5", "ue4", "unity", "godot", "vrm")


def builtin_target(key: str) -> RigTarget:
    """A built-in preset with its reference skeleton attached (a fresh copy each call: its
    dicts are the caller's to edit)."""
    return _target(key).with_skeleton(reference_skeleton(key))


# --------------------------------------------------------------------------- skeletons

def _rot(axis, deg) -> np.ndarray:
    from .rig_target import _axis_rotation

    a = np.asarray(axis, float)
    return _axis_rotation(a / np.linalg.norm(a), math.radians(deg))


def _test_roll(i: int) -> float:
    """A deterministic, non-trivial roll for bone number ``i`` (radians): -150..+150 deg."""
    return math.radians(((i * 67) % 301) - 150)


def _tails(names, parents, heads, main_child: dict, leaf_len: float) -> np.ndarray:
    """Tails towards the main child (or the only child); leaves continue their parent."""
    ix = {n: i for i, n in enumerate(names)}
    kids: dict = {i: [] for i in range(len(names))}
    for i, p in enumerate(parents):
        if p >= 0:
            kids[p].append(i)
    tails = np.empty_like(heads)
    for i, n in enumerate(names):
        c = main_child.get(n)
        if c in ix:
            t = heads[ix[c]]
        elif len(kids[i]) == 1 and np.linalg.norm(heads[kids[i][0]] - heads[i]) > 1e-6:
            t = heads[kids[i][0]]
        else:
            p = parents[i]
            v = heads[i] - heads[p] if p >= 0 else np.array([0.0, 0.0, 1.0])
            nv = np.linalg.norm(v)
            v = v / nv if nv > 1e-6 else np.array([0.0, 0.0, 1.0])
            t = heads[i] + v * max(leaf_len, 0.5 * min(nv, 4 * leaf_len))
        tails[i] = t
    return tails


def _skeleton(name, names, parents_names, heads, tails, rolls, object_matrix=None,
              units="m") -> TargetSkeleton:
    bones = tuple(TargetBone(n, p, h, t, r)
                  for n, p, h, t, r in zip(names, parents_names, heads, tails, rolls))
    kw = {} if object_matrix is None else {"object_matrix": object_matrix}
    return TargetSkeleton(name=name, bones=bones, units=units, **kw)


def _parent_idx(names, parents_names) -> np.ndarray:
    ix = {n: i for i, n in enumerate(names)}
    return np.array([-1 if p is None else ix[p] for p in parents_names])


def _godot_skeleton() -> TargetSkeleton:
    d = _data("godot")
    names = [b["name"] for b in d["bones"]]
    pnames = [b["parent"] for b in d["bones"]]
    A = _Y_UP_TO_Z_UP
    heads = np.array([b["head"] for b in d["bones"]]) @ A.T
    y = np.array([b["bone_y_axis_world"] for b in d["bones"]]) @ A.T
    x = np.array([b["bone_x_axis_world"] for b in d["bones"]]) @ A.T
    parents = _parent_idx(names, pnames)
    lengths = np.full(len(names), 0.0)
    for i, p in enumerate(parents):   # a bone is as long as its furthest child along its axis
        if p >= 0:
            lengths[p] = max(lengths[p], float((heads[i] - heads[p]) @ y[p]))
    for i in range(len(names)):
        if lengths[i] < 0.02:
            p = parents[i]
            lengths[i] = max(0.5 * lengths[p], 0.02) if p >= 0 else 0.1
    tails = heads + y * lengths[:, None]
    mats = np.stack([x, y, np.cross(x, y)], axis=-1)
    return _skeleton("godot", names, pnames, heads, tails, roll_from_matrix(mats))


_MIXAMO_MAIN = {"Hips": "Spine", "Spine2": "Neck", "LeftHand": "LeftHandMiddle1",
                "RightHand": "RightHandMiddle1"}


def _mixamo_skeleton() -> TargetSkeleton:
    d = _data("mixamo")
    names = [b["name"] for b in d["bones"]]
    pnames = [b["parent"] for b in d["bones"]]
    heads = np.array([b["head"] for b in d["bones"]]) * 100.0   # Y-up centimetres
    parents = _parent_idx(names, pnames)
    main = {f"mixamorig:{k}": f"mixamorig:{v}" for k, v in _MIXAMO_MAIN.items()}
    tails = _tails(names, parents, heads, main, 3.0)
    rolls = [_test_roll(i) for i in range(len(names))]
    om = np.eye(4)
    om[:3, :3] = _rot([1, 0, 0], 90.0) * 0.01              # Y up -> Z up, cm -> m
    return _skeleton("mixamo", names, pnames, heads, tails, rolls, om, units="cm")


# Rigify DEF bones hang from ORG/MCH bones; the reference skeleton re-parents them
# to the DEF bone that moves like that ORG bone (what a deform-only export needs).
def _rigify_parent(bone: str, parent: str | None, names: set) -> str | None:
    if parent is None or parent in names:
        return parent
    if parent == "root":
        return "root"
    org = parent[4:] if parent.startswith("ORG-") else parent
    if org == "spine":
        return "DEF-spine"
    if org.startswith("shoulder."):
        side = org.split(".")[-1]
        return f"DEF-shoulder.{side}" if bone != f"DEF-shoulder.{side}" else "DEF-spine.003"
    if org.startswith("palm."):
        side = org.split(".")[-1]
        return f"DEF-palm.{org.split('.')[1]}.{side}" if not bone.startswith("DEF-palm") \
            else f"DEF-hand.{side}"
    if org.startswith("pelvis."):
        return "DEF-spine"
    if org.startswith("breast."):
        return "DEF-spine.003"
    if org in ("face", "jaw", "jaw_master"):
        return "DEF-spine.006"
    return "DEF-spine.006"


def _rigify_skeleton() -> TargetSkeleton:
    d = _data("rigify_deform")
    body = d["bones"]
    names = {b["name"] for b in body} | {"root"}
    bones = [TargetBone("root", None, (0.0, 0.0, 0.0), (0.0, 0.5607, 0.0), 0.0)]
    for b in body:
        bones.append(TargetBone(b["name"], _rigify_parent(b["name"], b["parent"], names),
                                b["head"], b["tail"], math.radians(b["roll_deg"] or 0.0)))
    return TargetSkeleton(name="rigify", bones=tuple(bones))


def _xbot_joints() -> dict:
    """SMPL-X joint -> X Bot head (Blender Z-up metres), plus 'head_top' and 'toe_end_*'."""
    d = _data("mixamo")
    out = {}
    for b in d["bones"]:
        h = np.asarray(b["head"]) @ _Y_UP_TO_Z_UP.T
        if b["humanoid_role"]:
            out[b["humanoid_role"]] = h
        elif b["name"].endswith("HeadTop_End"):
            out["head_top"] = h
        elif b["name"].endswith("LeftToe_End"):
            out["left_toe_end"] = h
        elif b["name"].endswith("RightToe_End"):
            out["right_toe_end"] = h
        for side, Side, _, _ in _SIDES:
            for f, F in (("index", "Index"), ("middle", "Middle"), ("ring", "Ring"),
                         ("pinky", "Pinky"), ("thumb", "Thumb")):
                if b["name"].endswith(f"{Side}Hand{F}4"):
                    out[f"{side}_{f}4"] = h
    # Eyes and jaw (X Bot has none): in front of the head joint.
    head = out["head"]
    for side, sx in (("left", 1.0), ("right", -1.0)):
        out[f"{side}_eye_smplhf"] = head + np.array([0.032 * sx, -0.08, 0.07])
    out["jaw"] = head + np.array([0.0, -0.02, 0.0])
    return out


def _arm_pose(joints: dict, down_deg: float, elbow_deg: float) -> dict:
    """Turn each arm (shoulder joint down, then the forearm forward) for an A-pose."""
    out = dict(joints)
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        piv = joints[f"{side}_shoulder"]
        R = _rot([0, 1, 0], sgn * down_deg)
        arm = [k for k in joints if k.startswith(side) and any(
            s in k for s in ("shoulder", "elbow", "wrist", "index", "middle", "ring", "pinky",
                             "thumb"))]
        for k in arm:
            out[k] = piv + R @ (joints[k] - piv)
        piv2 = out[f"{side}_elbow"]
        R2 = _rot([0, 0, 1], -sgn * elbow_deg)   # forearm swings forward (-Y)
        for k in arm:
            if k != f"{side}_shoulder" and k != f"{side}_elbow":
                out[k] = piv2 + R2 @ (out[k] - piv2)
    return out


def _lerp(a, b, t):
    return a + (b - a) * t


def _ue_skeleton(key: str) -> TargetSkeleton:
    d = _data(key)
    roles = {b["name"]: b["humanoid_role"] for b in d["bones"]}
    names = [b["name"] for b in d["bones"]]
    pnames = [b["parent"] for b in d["bones"]]
    J = _arm_pose(_xbot_joints(), 45.0, 0.0 if key == "ue4" else 15.0)
    pos = {}
    for n in names:
        r = roles[n]
        if r:
            pos[n] = J[r]
    pos["root"] = np.zeros(3)
    for n in names:
        if n in pos:
            continue
        if n.startswith("ik_"):
            base = {"ik_foot_l": "left_ankle", "ik_foot_r": "right_ankle",
                    "ik_hand_gun": "right_wrist", "ik_hand_r": "right_wrist",
                    "ik_hand_l": "left_wrist"}.get(n)
            pos[n] = J[base] if base else np.zeros(3)
        elif n == "spine_02":
            pos[n] = _lerp(J["spine1"], J["spine2"], 0.5)
        elif n == "spine_04":
            pos[n] = _lerp(J["spine2"], J["spine3"], 0.5)
        elif n == "neck_02":
            pos[n] = _lerp(J["neck"], J["head"], 0.5)
        elif "_metacarpal_" in n:
            f, _, s = n.split("_")
            side = "left" if s == "l" else "right"
            pos[n] = _lerp(J[f"{side}_wrist"], J[f"{side}_{f}1"], 0.3)
        elif "_twist_0" in n:
            limb, _, k, s = n.split("_")
            side = "left" if s == "l" else "right"
            a, b = {"upperarm": ("shoulder", "elbow"), "lowerarm": ("elbow", "wrist"),
                    "thigh": ("hip", "knee"), "calf": ("knee", "ankle")}[limb]
            pos[n] = _lerp(J[f"{side}_{a}"], J[f"{side}_{b}"], UE_TWIST_AT[key][(limb, k)])
        else:
            raise RetargetError(f"{key}: no placement rule for bone {n!r}")
    heads = np.array([pos[n] for n in names])
    parents = _parent_idx(names, pnames)
    main = {"pelvis": "spine_01", "spine_03": "neck_01" if key == "ue4" else "spine_04",
            "spine_05": "neck_01", "hand_l": "middle_01_l", "hand_r": "middle_01_r",
            "root": "pelvis"}
    if key == "ue5":
        main.update({"hand_l": "middle_metacarpal_l", "hand_r": "middle_metacarpal_r"})
    tails = _tails(names, parents, heads, main, 0.03)
    # Twist bones lie along their limb (toward the limb's child joint).
    for i, n in enumerate(names):
        if "_twist_0" in n:
            p = parents[i]
            v = tails[p] - heads[p]
            tails[i] = heads[i] + v * 0.2
        if n.startswith("ik_") or n == "root":
            tails[i] = heads[i] + np.array([0.0, 0.1 if n == "root" else 0.05, 0.0])
    rolls = [_test_roll(i + 11) for i in range(len(names))]
    if key == "ue4":
        om = np.eye(4) * 0.01
        om[3, 3] = 1.0
        return _skeleton("ue4", names, pnames, heads * 100.0, tails * 100.0, rolls, om, "cm")
    return _skeleton(key, names, pnames, heads, tails, rolls)


def _humanoid_skeleton(key: str) -> TargetSkeleton:
    """VRM 1.0 / Unity: T-pose from the X Bot's joints, thumbs at 45 deg (VRM T-pose)."""
    J = _xbot_joints()
    if key == "vrm":
        d = _data("vrm1")
        roles = {b["name"]: b["humanoid_role"] for b in d["bones"]}
        names = [b["name"] for b in d["bones"]]
        pnames = [b["parent"] for b in d["bones"]]
    else:
        m = _unity_names()
        names = [m[j] for j in _SMPLX_ORDER if j in m]
        roles = {m[j]: j for j in m}
        from ..smplx_model import JOINT_NAMES, PARENTS

        pnames = []
        for n in names:
            p = PARENTS[JOINT_NAMES.index(roles[n])]
            pnames.append(None if p < 0 else m[JOINT_NAMES[p]])
    # VRM T-pose thumbs: along the bisector of X and +Z (Y-up) = forward -Y in Blender.
    for side, sx in (("left", 1.0), ("right", -1.0)):
        base = J[f"{side}_thumb1"]
        direction = np.array([sx, -1.0, 0.0]) / math.sqrt(2.0)
        seg = [np.linalg.norm(J[f"{side}_thumb{k + 1}"] - J[f"{side}_thumb{k}"]) for k in (1, 2, 3)]
        for k in (2, 3, 4):
            J[f"{side}_thumb{k}"] = base + direction * sum(seg[:k - 1])
    heads = np.array([J[roles[n]] for n in names])
    parents = _parent_idx(names, pnames)
    main = {}
    for n in names:
        r = roles[n]
        main[n] = {"pelvis": "spine1", "spine3": "neck", "left_wrist": "left_middle1",
                   "right_wrist": "right_middle1"}.get(r)
    inv = {r: n for n, r in roles.items()}
    main = {n: inv.get(c) for n, c in main.items() if c}
    tails = _tails(names, parents, heads, main, 0.03)
    for i, n in enumerate(names):   # leaves: the X Bot's end joints where it has them
        r = roles[n]
        end = {"head": "head_top", "left_foot": "left_toe_end",
               "right_foot": "right_toe_end"}.get(r)
        if r and r[-1] == "3" and r[:-1] + "4" in J:
            end = r[:-1] + "4"
        if end:
            tails[i] = J[end]
    rolls = [_test_roll(i + 5) for i in range(len(names))]
    return _skeleton(key, names, pnames, heads, tails, rolls)


_SMPLX_ORDER = None


def reference_skeleton(name: str) -> TargetSkeleton:
    """The test/bench skeleton of a built-in target (see the module's table)."""
    global _SMPLX_ORDER
    if _SMPLX_ORDER is None:
        from ..smplx_model import JOINT_NAMES

        _SMPLX_ORDER = JOINT_NAMES
    key = str(name).lower()
    if key == "godot":
        return _godot_skeleton()
    if key == "mixamo":
        return _mixamo_skeleton()
    if key == "rigify":
        return _rigify_skeleton()
    if key in ("ue4", "ue5"):
        return _ue_skeleton(key)
    if key in ("vrm", "unity"):
        return _humanoid_skeleton(key)
    raise RetargetError(f"no reference skeleton for {name!r} (known: {', '.join(BUILTIN)})")
