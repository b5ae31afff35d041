"""Retargeting in Blender (issue 15): the test rigs, the pose Blender evaluates against the
numpy solve, non-destructive baking and previews, refusals that change nothing.

Test rigs: every built-in target's reference skeleton (``targets.reference_skeleton``:
Mixamo, UE4, UE5, Unity, Godot, VRM and Rigify's deform bones, with non-trivial rolls)
built as a Blender armature; Blender's own Rigify human metarig (the rigify add-on,
headless). The source is an SMPL-X rig built from a synthetic take (stand-in model).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.retarget.synthetic import make_take, random_params, standin_smplx_root

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

T = 8
DIR_TOL = 1e-3   # rad: bone directions evaluated by Blender vs the numpy solve


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """An empty session with an SMPL-X rig keyed with a synthetic take (T rows)."""
    from pose2pose_mocap.retarget.convert import build_take
    from pose2pose_mocap.retarget.take import write_take

    folder = tmp_path_factory.mktemp("retarget")
    params = random_params(T, seed=3, max_angle=0.7)
    path = write_take(folder / "clip.take.npz", make_take(params))
    _model, built = build_take(path, standin_smplx_root())
    yield built.rig.armature
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _remove(ob):
    data = ob.data
    for a in {s.action for t in (ob.animation_data.nla_tracks if ob.animation_data else [])
              for s in t.strips if s.action is not None}:
        bpy.data.actions.remove(a)
    bpy.data.objects.remove(ob, do_unlink=True)
    if data is not None and data.users == 0:
        bpy.data.armatures.remove(data)


def blender_pose(ob, frames, names):
    """World matrices ``(F, B, 4, 4)`` of pose bones ``names`` as Blender evaluates them."""
    scene = bpy.context.scene
    before = scene.frame_current
    out = np.empty((len(frames), len(names), 4, 4))
    try:
        for k, f in enumerate(frames):
            scene.frame_set(int(f))
            ev = ob.evaluated_get(bpy.context.evaluated_depsgraph_get())
            mw = np.array(ev.matrix_world, dtype=np.float64)
            for b, n in enumerate(names):
                out[k, b] = mw @ np.array(ev.pose.bones[n].matrix, dtype=np.float64)
    finally:
        scene.frame_set(before)
    return out


def solve_for(rig, ob, target):
    from pose2pose_mocap.retarget.blender.retarget import read_skeleton, source_pose
    from pose2pose_mocap.retarget.targets import retarget

    return retarget(source_pose(rig), None, target, read_skeleton(ob))


def angle(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.arccos(np.clip(np.einsum("...i,...i->...", a, b), -1.0, 1.0))


def check_pose_matches_solve(rig, ob, target):
    """Every bone's Y (along the bone) and X (roll) axes and head, as Blender evaluates
    the baked action, against the numpy solve."""
    from pose2pose_mocap.retarget.blender.retarget import read_skeleton

    motion = solve_for(rig, ob, target)
    names = list(motion.bone_names)
    sk = read_skeleton(ob)
    got = blender_pose(ob, motion.frame_index, names)
    rest_w = np.asarray(sk.object_rotation) @ sk.matrices                   # (B, 3, 3)
    want = np.einsum("tbij,bjk->tbik", motion.world_rotations, rest_w)      # posed frames
    gy, gx = got[..., :3, 1], got[..., :3, 0]
    err_y = angle(gy, want[..., :, 1]).max()
    err_x = angle(gx, want[..., :, 0]).max()
    scale = sk.scale * np.ptp(sk.heads, axis=0).max()
    err_head = np.linalg.norm(got[..., :3, 3] - motion.world_heads, axis=-1).max() / scale
    worst = names[int(np.argmax(angle(gy, want[..., :, 1]).max(axis=0)))]
    assert err_y < DIR_TOL and err_x < DIR_TOL, (target.name, err_y, err_x, worst)
    assert err_head < 1e-4, (target.name, err_head)
    # The mapped bones really move (not a rest pose matching a rest pose).
    mapped = [names.index(b) for b in target.mapping.values()]
    moved = angle(gy[:, mapped], rest_w[mapped][:, :, 1][None])
    assert moved.max() > 0.3
    return motion


# --------------------------------------------------------------------------- the source

def test_source_pose_is_what_blender_shows(scene):
    """The solve's input read from the rig's keys equals the rig as Blender evaluates it
    (joint positions and world rotation changes), also with the rig object moved."""
    from pose2pose_mocap.retarget.blender.retarget import armature_rest, source_pose
    from pose2pose_mocap.retarget.smplx_model import JOINT_NAMES

    scene.location = (0.5, -1.0, 0.2)
    scene.rotation_euler = (0.0, 0.0, 0.7)
    bpy.context.view_layer.update()
    try:
        src = source_pose(scene)
        got = blender_pose(scene, src.frame_index, list(JOINT_NAMES))
        names, _, _, _, rest = armature_rest(scene)
        mw = np.array(scene.matrix_world)
        rest_w = mw[:3, :3] @ rest[[names.index(n) for n in JOINT_NAMES]]
        D = got[..., :3, :3] @ np.swapaxes(rest_w, -1, -2)[None]
        assert np.abs(got[..., :3, 3] - src.positions).max() < 1e-5
        assert np.abs(D - src.rotations).max() < 1e-5
        assert np.abs(src.positions[-1] - src.positions[0]).max() > 0.05   # it moves
    finally:
        scene.location = (0.0, 0.0, 0.0)
        scene.rotation_euler = (0.0, 0.0, 0.0)
        bpy.context.view_layer.update()


# --------------------------------------------------------------------------- test rigs

@pytest.mark.parametrize("name", ["mixamo", "ue5", "ue4", "unity", "godot", "vrm", "rigify"])
def test_built_armature_reads_back_exactly(name, scene):
    from pose2pose_mocap.retarget.blender.retarget import build_armature, read_skeleton
    from pose2pose_mocap.retarget.targets import reference_skeleton

    sk = reference_skeleton(name)
    ob = build_armature(sk)
    try:
        back = read_skeleton(ob)
        ix = back.index()
        order = [ix[n] for n in sk.names]
        assert [back.bones[i].parent for i in order] == [b.parent for b in sk.bones]
        assert np.abs(back.heads[order] - sk.heads).max() < 1e-5 * max(1.0, np.abs(sk.heads).max())
        assert np.abs(back.matrices[order] - sk.matrices).max() < 1e-5
        assert np.allclose(back.object_matrix, sk.object_matrix, atol=1e-6)
        rolls = np.degrees([abs(b.roll) for b in sk.bones])
        assert (rolls > 20).sum() > len(rolls) // 2, "the test rig needs non-trivial rolls"
    finally:
        _remove(ob)


@pytest.mark.parametrize("name", ["mixamo", "ue5", "ue4", "unity", "godot", "vrm", "rigify"])
def test_pose_in_blender_matches_the_numpy_solve(name, scene):
    """Roll handling proven in Blender: the baked action, evaluated, is the solve's pose."""
    from pose2pose_mocap.retarget.blender.retarget import resolve_target, retarget_rig

    ob, target, _notes = resolve_target(name)
    try:
        written = retarget_rig(scene, ob, target)
        assert written.track.name == written.action.name
        assert list(written.frames) == list(range(1, T + 1))
        check_pose_matches_solve(scene, ob, target)
    finally:
        _remove(ob)


def _metarig():
    import addon_utils

    addon_utils.enable("rigify", default_set=True)
    before = set(bpy.data.objects)
    bpy.ops.object.armature_human_metarig_add()
    return next(o for o in bpy.data.objects if o not in before)


def test_rigify_metarig_made_by_blender(scene):
    """Blender's own Rigify human metarig (A-pose, rolls of 118-139 deg on the arms) with
    the Rigify preset's map on its (un-prefixed) bones, retargeted, evaluated."""
    from dataclasses import replace

    from pose2pose_mocap.retarget.blender.retarget import retarget_rig, target_for_armature
    from pose2pose_mocap.retarget.targets import get_target

    meta = _metarig()
    try:
        assert len(meta.data.bones) > 150
        rigify = get_target("rigify")
        preset = replace(rigify, mapping={j: b[len("DEF-"):] for j, b in rigify.mapping.items()},
                         twist={}, root_bone=None, root_motion="hips", skeleton=None)
        target, _ = target_for_armature(meta, preset)
        retarget_rig(scene, meta, target)
        check_pose_matches_solve(scene, meta, target)
    finally:
        _remove(meta)


@pytest.mark.slow   # (Rigify's generation: 4 s alone, up to 35 s on a busy 2-core machine)
def test_rigify_generated_rig_is_refused_with_a_reason(scene):
    """The rig Rigify generates (headless): its DEF bones copy ORG bones through
    constraints, so keying them would do nothing; a preset that drives DEF bones says so
    and changes nothing (the ``rigify`` preset drives its FK controls instead:
    test_retarget_rigify.py)."""
    from dataclasses import replace

    from pose2pose_mocap.retarget.blender.retarget import retarget_rig, target_for_armature
    from pose2pose_mocap.retarget.errors import RetargetError
    from pose2pose_mocap.retarget.targets import get_target

    meta = _metarig()
    bpy.context.view_layer.objects.active = meta
    assert bpy.ops.pose.rigify_generate() == {'FINISHED'}
    rig = bpy.data.objects["rig"]
    try:
        assert len(rig.data.bones) > 700
        target, _ = target_for_armature(rig, replace(get_target("rigify"), name="DEF bones"))
        state, anim = _file_state(), _animation_state(rig)
        with pytest.raises(RetargetError, match="driven by constraints .*DEF-"):
            retarget_rig(scene, rig, target)
        assert _file_state() == state and _animation_state(rig) == anim
    finally:
        for ob in [o for o in bpy.data.objects if o.name in ("rig", "WGTS_rig")
                   or (o.parent is not None and o.parent.name == "WGTS_rig")] + [meta]:
            bpy.data.objects.remove(ob, do_unlink=True)


def test_rigify_metarig_automaps_like_the_preset(scene):
    from pose2pose_mocap.retarget.blender.retarget import target_for_armature
    from pose2pose_mocap.retarget.targets import get_target

    meta = _metarig()
    try:
        target, _ = target_for_armature(meta)
        want = {j: b[len("DEF-"):] for j, b in get_target("rigify").mapping.items()}
        assert {j: target.mapping.get(j) for j in want} == want
    finally:
        _remove(meta)


# --------------------------------------------------------------------------- non-destructive

def _animation_state(ob):
    """Everything of an object's animation a retarget must not change."""
    ad = ob.animation_data
    if ad is None:
        return None
    from pose2pose_mocap.retarget.blender.export import _action_fcurves

    def keys(action):
        out = []
        for fc in _action_fcurves(action):
            co = np.empty(2 * len(fc.keyframe_points))
            fc.keyframe_points.foreach_get("co", co)
            out.append((fc.data_path, fc.array_index, tuple(np.round(co, 6))))
        return sorted(out)

    return {"action": ad.action.name if ad.action else None,
            "action_keys": keys(ad.action) if ad.action else None,
            "tracks": [(t.name, t.mute, t.is_solo, [(s.name, s.action.name, s.frame_start,
                                                    s.frame_end, keys(s.action))
                                                   for s in t.strips]) for t in ad.nla_tracks]}


def _user_animated(name="hero"):
    """A Mixamo-like armature with the user's own active action (Euler bones) and an NLA
    track."""
    from pose2pose_mocap.retarget.blender.retarget import build_armature
    from pose2pose_mocap.retarget.targets import reference_skeleton

    ob = build_armature(reference_skeleton("mixamo"), name=name)
    pb = ob.pose.bones["mixamorig:LeftArm"]
    pb.rotation_mode = 'XYZ'
    ad = ob.animation_data_create()
    act = bpy.data.actions.new("user walk")
    ad.action = act
    for f, v in ((1, 0.0), (5, 0.8)):
        pb.rotation_euler = (v, 0.0, 0.0)
        pb.keyframe_insert("rotation_euler", frame=f)
        ob.pose.bones["mixamorig:Hips"].location = (0.0, v, 0.0)
        ob.pose.bones["mixamorig:Hips"].keyframe_insert("location", frame=f)
    old = bpy.data.actions.new("user idle")
    ob.pose.bones["mixamorig:Head"].rotation_quaternion = (0.9, 0.1, 0.0, 0.0)
    ad.action = old
    ob.pose.bones["mixamorig:Head"].keyframe_insert("rotation_quaternion", frame=1)
    ad.action = act
    track = ad.nla_tracks.new()
    track.name = "user idle track"
    track.strips.new("user idle", 1, old)
    return ob


def test_bake_and_preview_never_change_the_users_animation(scene):
    from pose2pose_mocap.retarget.blender.retarget import (PREVIEW_TRACK, clear_preview,
                                                           retarget_rig, target_for_armature)

    ob = _user_animated()
    try:
        before = _animation_state(ob)
        n_actions = len(bpy.data.actions)
        target, _ = target_for_armature(ob, "mixamo")
        first = retarget_rig(scene, ob, target, preview=True).action.name
        retarget_rig(scene, ob, target, preview=True)   # replaces the first
        tracks = [t.name for t in ob.animation_data.nla_tracks]
        assert tracks.count(PREVIEW_TRACK) == 1 and ob.animation_data.nla_tracks[-1].is_solo
        assert len(bpy.data.actions) == n_actions + 1, (first, [a.name for a in bpy.data.actions])
        baked = retarget_rig(scene, ob, target)
        assert clear_preview(ob)
        after = _animation_state(ob)
        # The user's active action and track are as they were; one new track on top.
        assert after["action"] == before["action"]
        assert after["action_keys"] == before["action_keys"]
        assert after["tracks"][:len(before["tracks"])] == before["tracks"]
        assert [t[0] for t in after["tracks"][len(before["tracks"]):]] == [baked.action.name]
        assert len(bpy.data.actions) == n_actions + 1
        # The Euler bone was keyed in Euler (its mode, and the user's curves' meaning, kept).
        assert ob.pose.bones["mixamorig:LeftArm"].rotation_mode == 'XYZ'
        paths = {fc.data_path for fc in _fcurves(baked.action)}
        assert 'pose.bones["mixamorig:LeftArm"].rotation_euler' in paths
        assert 'pose.bones["mixamorig:LeftArm"].rotation_quaternion' not in paths
        # With the user's action muted from evaluation, the baked track plays the solve.
        ob.animation_data.action = None
        for t in ob.animation_data.nla_tracks[:-1]:
            t.mute = True
        check_pose_matches_solve(scene, ob, target)
    finally:
        _remove(ob)


def _fcurves(action):
    from pose2pose_mocap.retarget.blender.export import _action_fcurves

    return _action_fcurves(action)


def _file_state():
    return (sorted(a.name for a in bpy.data.actions), sorted(o.name for o in bpy.data.objects),
            sorted(a.name for a in bpy.data.armatures))


def test_refusals_name_the_problem_and_change_nothing(scene):
    from dataclasses import replace

    from pose2pose_mocap.retarget.blender.retarget import (build_armature, resolve_target,
                                                           retarget_rig, target_for_armature)
    from pose2pose_mocap.retarget.errors import RetargetError
    from pose2pose_mocap.retarget.targets import TargetBone, TargetSkeleton, get_target

    # Not a humanoid: a three-bone chain.
    chain = TargetSkeleton("tail", (TargetBone("a", None, (0, 0, 0), (0, 0, 1), 0.3),
                                    TargetBone("b", "a", (0, 0, 1), (0, 0, 2), 0.0),
                                    TargetBone("c", "b", (0, 0, 2), (0, 0, 3), 1.0)))
    ob = build_armature(chain)
    state = _file_state()
    with pytest.raises(RetargetError, match="missing: .*pelvis"):
        target_for_armature(ob)
    with pytest.raises(RetargetError, match="lacks the mapped bones"):
        target_for_armature(ob, "mixamo")
    assert _file_state() == state

    hero = _user_animated("scaled hero")
    try:
        target, _ = target_for_armature(hero, "mixamo")
        before = _animation_state(hero)
        state = _file_state()
        # Duplicate mapped bones.
        with pytest.raises(RetargetError, match="mapped twice"):
            bad = dict(target.mapping, right_hip=target.mapping["left_hip"])
            retarget_rig(scene, hero, replace(target, mapping=bad))
        # Non-uniform scale.
        scale = tuple(hero.scale)
        hero.scale = (scale[0], 2 * scale[1], scale[2])
        bpy.context.view_layer.update()
        with pytest.raises(RetargetError, match="non-uniform scale"):
            retarget_rig(scene, hero, target)
        hero.scale = scale
        bpy.context.view_layer.update()
        # The source is not an SMPL-X rig.
        with pytest.raises(RetargetError, match="not an SMPL-X rig"):
            retarget_rig(ob, hero, target)
        # A mapping naming a bone the armature lacks.
        with pytest.raises(RetargetError):
            retarget_rig(scene, hero, replace(target, mapping=dict(target.mapping,
                                                                   pelvis="nope")))
        assert _file_state() == state
        assert _animation_state(hero) == before
    finally:
        _remove(hero)
        _remove(ob)

    # Unsupported target files, missing files.
    state = _file_state()
    with pytest.raises(RetargetError, match="unsupported"):
        resolve_target("hero.obj")
    with pytest.raises(RetargetError, match="no such file"):
        resolve_target("/nonexistent/hero.fbx")
    with pytest.raises(RetargetError, match="unknown rig target|no such"):
        get_target("/nonexistent/preset.json")
    assert _file_state() == state


@pytest.mark.parametrize("fmt", ["fbx", "glb"])
def test_a_character_file_imported_by_blender(fmt, scene, tmp_path):
    """A character that comes in through Blender's FBX / glTF importer (its bone axes and
    rolls are the importer's, the object carries the file's axes and units): auto-mapped,
    retargeted, evaluated."""
    from pose2pose_mocap.retarget.blender.output import captured_output
    from pose2pose_mocap.retarget.blender.retarget import (build_armature, resolve_target,
                                                           retarget_rig)
    from pose2pose_mocap.retarget.targets import reference_skeleton

    src = build_armature(reference_skeleton("ue5"), name="manny")
    path = tmp_path / f"manny.{fmt}"
    with captured_output(), bpy.context.temp_override(active_object=src, object=src,
                                                      selected_objects=[src]):
        for ob in bpy.context.view_layer.objects:
            ob.select_set(ob == src)
        if fmt == "fbx":
            bpy.ops.export_scene.fbx(filepath=str(path), use_selection=True,
                                     object_types={'ARMATURE'}, add_leaf_bones=False,
                                     bake_anim=False)
        else:
            bpy.ops.export_scene.gltf(filepath=str(path), use_selection=True,
                                      export_animations=False)
    _remove(src)
    state = _file_state()
    ob, target, notes = resolve_target(str(path))
    try:
        assert any("mapped automatically" in n for n in notes)
        assert target.mapping["pelvis"] == "pelvis" and target.mapping["left_elbow"] == "lowerarm_l"
        retarget_rig(scene, ob, target)
        check_pose_matches_solve(scene, ob, target)
    finally:
        for o in [o for o in bpy.data.objects if o.name not in state[1]]:
            if o.type == 'ARMATURE':
                _remove(o)
            else:
                bpy.data.objects.remove(o, do_unlink=True)


def test_expressions_go_to_the_characters_shape_keys(scene):
    """A character mesh with shape keys named in the preset's table gets the take's
    expression values on a new action of its shape keys (the user's keys untouched)."""
    from pose2pose_mocap.retarget.blender.retarget import (build_armature, retarget_rig,
                                                           source_pose, target_for_armature)
    from pose2pose_mocap.retarget.targets import reference_skeleton

    ob = build_armature(reference_skeleton("godot"), name="face hero")
    me = bpy.data.meshes.new("face hero body")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    body = bpy.data.objects.new("face hero body", me)
    bpy.context.scene.collection.objects.link(body)
    body.parent = ob
    for n in ("Basis", "Exp000", "Exp003", "smile"):
        body.shape_key_add(name=n)
    key = me.shape_keys
    try:
        target, _ = target_for_armature(ob, "godot")
        written = retarget_rig(scene, ob, target)
        assert any("shape keys" in n for n in written.notes)
        tracks = key.animation_data.nla_tracks
        assert len(tracks) == 1
        face = tracks[0].strips[0].action
        curves = {fc.data_path: fc for fc in _fcurves(face)}
        assert set(curves) == {'key_blocks["Exp000"].value', 'key_blocks["Exp003"].value'}
        want = source_pose(scene).expression
        for k in (0, 3):
            got = [p.co[1] for p in curves[f'key_blocks["Exp{k:03d}"].value'].keyframe_points]
            assert np.allclose(got, want[:, k], atol=1e-6)
        assert np.abs(want[:, [0, 3]]).max() > 0.1
    finally:
        face_actions = [s.action for t in key.animation_data.nla_tracks for s in t.strips] \
            if key.animation_data else []
        bpy.data.objects.remove(body, do_unlink=True)
        bpy.data.meshes.remove(me)
        for a in face_actions:
            bpy.data.actions.remove(a)
        _remove(ob)
