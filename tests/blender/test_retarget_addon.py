"""The add-on's Retarget panel, headless: map (auto and preset), edit the list, live preview,
bake (the user's animation untouched), save/load a preset, refusals reported with nothing
changed."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.blender.test_addon_ui import MODULE, _Layout, _make_take
from tests.blender.test_retarget import _animation_state, check_pose_matches_solve

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender


class _ListLayout(_Layout):
    def template_list(self, listtype, _id, data, prop, active_data, active_prop, **kw):
        assert hasattr(bpy.types, listtype)
        assert prop in data.bl_rna.properties and active_prop in active_data.bl_rna.properties
        self.calls.append(("template_list", listtype))


def _hero(name="hero"):
    """A Mixamo character with the user's own active action."""
    from pose2pose_mocap.retarget.blender.retarget import build_armature
    from pose2pose_mocap.retarget.targets import reference_skeleton

    ob = build_armature(reference_skeleton("mixamo"), name=name)
    ad = ob.animation_data_create()
    ad.action = bpy.data.actions.new("user pose")
    ob.pose.bones["mixamorig:Head"].rotation_quaternion = (0.9, 0.2, 0.0, 0.0)
    ob.pose.bones["mixamorig:Head"].keyframe_insert("rotation_quaternion", frame=3)
    return ob


def _ops_error(fn, **kw):
    """Run an operator that must fail; -> its error text (bpy raises it as RuntimeError)."""
    with pytest.raises(RuntimeError) as info:
        fn(**kw)
    return str(info.value)


def test_retarget_panel_map_preview_bake_and_presets(addon, smplx_root, tmp_path):
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.smplx_path = str(smplx_root)
    bpy.context.scene.p2p_mocap.pose_correctives = False
    assert bpy.ops.p2p.import_take(filepath=str(_make_take(tmp_path / "clip.take.npz",
                                                           frames=6))) == {'FINISHED'}
    rig = bpy.context.view_layer.objects.active
    hero = _hero()
    before = _animation_state(hero)
    s = bpy.context.scene.p2p_retarget
    s.preset = 'AUTO'
    # Source and target from the selection (the rig, and the active armature).
    for ob in bpy.context.view_layer.objects:
        ob.select_set(ob in (rig, hero))
    bpy.context.view_layer.objects.active = hero

    # Map (auto): one row per SMPL-X joint, the bones found by name.
    assert bpy.ops.p2p.retarget_map() == {'FINISHED'}
    assert s.source == rig and s.target == hero
    rows = {r.joint: r.bone for r in s.mapping}
    assert len(rows) == 55 and rows["pelvis"] == "mixamorig:Hips"
    assert rows["left_elbow"] == "mixamorig:LeftForeArm" and rows["jaw"] == ""

    # Preview, then live: an edit of the list previews again.
    assert bpy.ops.p2p.retarget_preview() == {'FINISHED'}
    from pose2pose_mocap.retarget.blender.retarget import PREVIEW_TRACK

    tracks = hero.animation_data.nla_tracks
    assert [t.name for t in tracks] == [PREVIEW_TRACK] and tracks[0].is_solo
    def tip_angles(action):   # the undriven fingertip's keyed quaternion w per frame
        fc = next(fc for fc in _fcurves(action) if fc.array_index == 0 and fc.data_path ==
                  'pose.bones["mixamorig:LeftHandIndex3"].rotation_quaternion')
        return np.array([k.co[1] for k in fc.keyframe_points])

    assert not np.allclose(tip_angles(tracks[0].strips[0].action), 1.0)
    s.live = True
    row = next(r for r in s.mapping if r.joint == "left_index3")
    row.bone = ""                                          # fingertip no longer driven
    assert s.message == "Preview updated", s.message
    assert [t.name for t in tracks] == [PREVIEW_TRACK]
    assert np.allclose(tip_angles(tracks[0].strips[0].action), 1.0)
    s.live = False

    # Bake: a new track, the preview gone, the user's action untouched.
    assert bpy.ops.p2p.retarget_bake() == {'FINISHED'}
    after = _animation_state(hero)
    assert after["action"] == before["action"] and after["action_keys"] == before["action_keys"]
    assert [t[0] for t in after["tracks"]] == [f"{rig.animation_data.nla_tracks[-1].name} -> hero"]
    baked = hero.animation_data.nla_tracks[-1].strips[0].action
    tip = [fc for fc in _fcurves(baked)
           if fc.data_path == 'pose.bones["mixamorig:LeftHandIndex3"].rotation_quaternion']
    assert len(tip) == 4   # not driven: at rest relative to its parent on every frame
    for fc in tip:
        assert {round(k.co[1], 6) for k in fc.keyframe_points} == {float(fc.array_index == 0)}
    hero.animation_data.action = None
    from pose2pose_mocap.retarget.blender.retarget import target_for_armature
    from dataclasses import replace

    target, _ = target_for_armature(hero, "mixamo")
    target = replace(target, mapping={j: b for j, b in target.mapping.items()
                                      if j != "left_index3"})
    check_pose_matches_solve(rig, hero, target)

    # Save the list as a preset, load it back (after emptying a row).
    preset = tmp_path / "hero.json"
    assert bpy.ops.p2p.retarget_save_preset(filepath=str(preset)) == {'FINISHED'}
    data = json.loads(preset.read_text())
    assert data["mapping"]["pelvis"] == "mixamorig:Hips" and "left_index3" not in data["mapping"]
    assert len(data["skeleton"]["bones"]) == len(hero.data.bones)
    next(r for r in s.mapping if r.joint == "pelvis").bone = ""
    assert bpy.ops.p2p.retarget_load_preset(filepath=str(preset)) == {'FINISHED'}
    assert next(r.bone for r in s.mapping if r.joint == "pelvis") == "mixamorig:Hips"

    # Refusals: a report naming the problem, nothing changed.
    state = _animation_state(hero), sorted(a.name for a in bpy.data.actions)
    next(r for r in s.mapping if r.joint == "right_hip").bone = "mixamorig:LeftUpLeg"
    assert "mapped twice" in _ops_error(bpy.ops.p2p.retarget_bake)
    next(r for r in s.mapping if r.joint == "right_hip").bone = "mixamorig:RightUpLeg"
    next(r for r in s.mapping if r.joint == "head").bone = ""
    assert "missing: head" in _ops_error(bpy.ops.p2p.retarget_preview)
    assert (_animation_state(hero), sorted(a.name for a in bpy.data.actions)) == state

    # The panel draws (with the list).
    calls = []
    ui = __import__(MODULE + ".addon.retarget_ui", fromlist=["x"])
    ui.P2P_PT_retarget.draw(type("P", (), {"layout": _ListLayout(calls)})(), bpy.context)
    assert ("template_list", "P2P_UL_retarget_map") in calls
    assert {"p2p.retarget_map", "p2p.retarget_preview", "p2p.retarget_bake",
            "p2p.retarget_save_preset", "p2p.retarget_load_preset"} <= {
        c[1] for c in calls if c[0] == "operator"}
    prefs.smplx_path = ""


def test_a_target_that_is_not_a_humanoid_is_reported(addon):
    from pose2pose_mocap.retarget.blender.retarget import build_armature
    from pose2pose_mocap.retarget.targets import TargetBone, TargetSkeleton

    chain = build_armature(TargetSkeleton("tail", (
        TargetBone("a", None, (0, 0, 0), (0, 0, 1)), TargetBone("b", "a", (0, 0, 1), (0, 0, 2)))))
    s = bpy.context.scene.p2p_retarget
    s.target, s.preset = chain, 'AUTO'
    s.mapping.clear()
    text = _ops_error(bpy.ops.p2p.retarget_map)
    assert "missing:" in text and "pelvis" in text
    assert len(s.mapping) == 0 and chain.animation_data is None
    s.preset = 'ue5'
    assert "lacks the mapped bones" in _ops_error(bpy.ops.p2p.retarget_map)
    # Every property of the panel has a tooltip.
    for cls in (type(s), type(s.mapping.add())):
        for p in cls.bl_rna.properties:
            if p.identifier not in ("rna_type", "name", "bl_idname"):
                assert p.description, f"{cls.__name__}.{p.identifier} has no tooltip"
    s.mapping.clear()


def _fcurves(action):
    from pose2pose_mocap.retarget.blender.export import _action_fcurves

    return _action_fcurves(action)
