"""Retargeting onto the rig Rigify generates (issue 15): the ``rigify`` preset keys its FK
controls, and Blender's evaluation of the whole rig (constraints, drivers, MCH bones)
puts the DEF bones -- what deforms the mesh -- where the numpy solve on those DEF bones
puts them. The rig is generated headless from Blender's own Human metarig.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.blender.test_retarget import (_animation_state, _fcurves, _file_state, angle,
                                         blender_pose, scene)  # noqa: F401  (scene: fixture)

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.slow]   # (Rigify's generation: 4-35 s)

DIR_TOL = 1e-3   # rad


@pytest.fixture(scope="module")
def generated(scene):  # noqa: F811
    """The rig Rigify generates from the Human metarig (the metarig removed), moved and
    turned so object-space bugs show."""
    import addon_utils

    addon_utils.enable("rigify", default_set=True)
    before = set(bpy.data.objects)
    bpy.ops.object.armature_human_metarig_add()
    meta = next(o for o in bpy.data.objects if o not in before)
    bpy.context.view_layer.objects.active = meta
    assert bpy.ops.pose.rigify_generate() == {'FINISHED'}
    rig = bpy.data.objects["rig"]
    bpy.data.objects.remove(meta, do_unlink=True)
    rig.location = (0.4, -0.2, 0.1)
    rig.rotation_euler = (0.0, 0.0, 0.5)
    bpy.context.view_layer.update()
    yield rig


def _clear(rig):
    ad = rig.animation_data
    if ad is None:
        return
    for t in list(ad.nla_tracks):
        acts = [s.action for s in t.strips if s.action is not None]
        ad.nla_tracks.remove(t)
        for a in acts:
            if a.users == 0:
                bpy.data.actions.remove(a)


def _deform_solve(rig_src, rig, target):
    from pose2pose_mocap.retarget.blender.retarget import read_skeleton, source_pose
    from pose2pose_mocap.retarget.targets import retarget, rigify_controls

    deform = rigify_controls.deform_skeleton(read_skeleton(rig))
    return retarget(source_pose(rig_src), None, target, deform, spread=False), deform


def test_rigify_preset_on_a_generated_rig_drives_its_controls(scene, generated):  # noqa: F811
    from pose2pose_mocap.retarget.blender.retarget import retarget_rig, target_for_armature
    from pose2pose_mocap.retarget.targets import get_target, rigify_controls

    target, notes = target_for_armature(generated, get_target("rigify"))
    assert target.drive == "controls" and target.name == "rigify"
    assert any("FK controls" in n for n in notes)
    # Automatic mapping of a generated rig is the same preset.
    auto, _ = target_for_armature(generated)
    assert auto.drive == "controls" and auto.mapping == target.mapping
    try:
        written = retarget_rig(scene, generated, target)
        keyed = {fc.data_path for fc in _fcurves(written.action)}
        assert 'pose.bones["upper_arm_fk.L"].rotation_quaternion' in keyed
        assert 'pose.bones["thigh_parent.R"]["IK_FK"]' in keyed
        assert not any('"DEF-' in p or '"ORG-' in p or '"MCH-' in p for p in keyed)

        motion, deform = _deform_solve(scene, generated, target)
        body = [b.name for b in deform.bones if b.name.startswith("DEF-")
                and not b.name.startswith(("DEF-breast", "DEF-pelvis"))
                and deform.bones[deform.index()[b.name]].parent is not None
                and (b.name in target.mapping.values() or b.name.startswith(
                    ("DEF-spine", "DEF-palm", "DEF-upper_arm", "DEF-forearm", "DEF-thigh",
                     "DEF-shin")))]
        assert len(body) >= 50
        ix = [motion.bone_names.index(n) for n in body]
        got = blender_pose(generated, motion.frame_index, body)
        rest_w = np.asarray(deform.object_rotation) @ deform.matrices[ix]
        Dw = np.stack([motion.world_rotation_list[i] for i in ix], axis=1)     # (T, B, 3, 3)
        want = np.einsum("tbij,bjk->tbik", Dw, rest_w)
        err_y = angle(got[..., :3, 1], want[..., 1])
        worst = body[int(np.argmax(err_y.max(axis=0)))]
        assert err_y.max() < DIR_TOL, (err_y.max(), worst)
        err_x = angle(got[..., :3, 0], want[..., 0]).max(axis=0)
        rolled = [k for k, n in enumerate(body) if n not in rigify_controls.ROLL_FROM_RIGIFY]
        assert err_x[rolled].max() < DIR_TOL, (err_x[rolled].max(),
                                               body[rolled[int(np.argmax(err_x[rolled]))]])
        own = [k for k in range(len(body)) if k not in rolled]
        print(f"\nrigify controls: {len(body)} DEF bones; direction max {err_y.max():.2e} rad, "
              f"roll max {err_x[rolled].max():.2e} rad; roll Rigify sets itself: "
              + ", ".join(f"{body[k]} {err_x[k]:.3f}" for k in own))
        # (DEF-jaw turns about Rigify's jaw hinge, jaw_master, not about its own head)
        keep = [k for k, n in enumerate(body) if n != "DEF-jaw"]
        d_head = np.linalg.norm(got[..., :3, 3] - motion.world_heads[:, ix], axis=-1)  # (T, B)
        err_head = d_head[:, keep].max()
        print(f"rigify controls: heads max {err_head:.2e} m, DEF-jaw head "
              f"{d_head[:, body.index('DEF-jaw')].max():.3f} m")
        assert err_head < 1e-4 * 2.0, err_head            # metres, on a 2 m rig
        # It really moves (not rest matching rest), root motion included.
        assert angle(got[..., :3, 1], rest_w[None, :, :, 1]).max() > 0.3
    finally:
        _clear(generated)


def test_bake_on_a_generated_rig_leaves_the_users_animation_alone(scene, generated):  # noqa: F811
    """The user's own action on the rig (keys on controls and a switch) and its tracks are
    unchanged by a bake and a preview; muting our track gives the user's pose back."""
    from pose2pose_mocap.retarget.blender.fcurves import Curve, action_channelbag, write_curves
    from pose2pose_mocap.retarget.blender.retarget import (clear_preview, retarget_rig,
                                                           target_for_armature)
    from pose2pose_mocap.retarget.targets import get_target

    user = bpy.data.actions.new("hero walk")
    bag = action_channelbag(user, generated)
    write_curves(bag, np.array([1.0, 8.0]), [
        Curve('pose.bones["upper_arm_fk.L"].rotation_quaternion', 0, np.array([0.9, 0.8])),
        Curve('pose.bones["upper_arm_fk.L"].rotation_quaternion', 1, np.array([0.1, 0.5])),
        Curve('pose.bones["upper_arm_fk.L"].rotation_quaternion', 2, np.array([0.0, 0.0])),
        Curve('pose.bones["upper_arm_fk.L"].rotation_quaternion', 3, np.array([0.0, 0.0])),
        Curve('pose.bones["upper_arm_parent.L"]["IK_FK"]', 0, np.array([1.0, 1.0]))])
    ad = generated.animation_data or generated.animation_data_create()
    ad.action = user
    if hasattr(ad, "action_slot") and len(user.slots):
        ad.action_slot = user.slots[0]
    try:
        state, anim = _file_state(), _animation_state(generated)
        target, _ = target_for_armature(generated, get_target("rigify"))
        written = retarget_rig(scene, generated, target)
        retarget_rig(scene, generated, target, preview=True)
        after = _animation_state(generated)
        assert after["action"] == anim["action"] == user.name
        assert after["action_keys"] == anim["action_keys"]
        assert after["tracks"][:len(anim["tracks"])] == anim["tracks"]
        assert len(after["tracks"]) == len(anim["tracks"]) + 2
        clear_preview(generated)
        written.track.mute = True
        bpy.context.scene.frame_set(8)
        q = np.array(generated.pose.bones["upper_arm_fk.L"].rotation_quaternion)
        assert np.allclose(q, [0.8, 0.5, 0, 0], atol=1e-5)
        assert generated.pose.bones["upper_arm_parent.L"]["IK_FK"] == pytest.approx(1.0)
        assert all(set(a) <= set(b) for a, b in zip(state, _file_state()))
    finally:
        ad.action = None
        bpy.data.actions.remove(user)
        _clear(generated)


def test_deform_only_preset_is_still_refused_on_the_generated_rig(scene, generated):  # noqa: F811
    """A preset that drives DEF bones (not named ``rigify``) cannot key the generated rig's
    DEF bones (constraints override them): refused in one line, nothing changed."""
    from dataclasses import replace

    from pose2pose_mocap.retarget.blender.retarget import retarget_rig, target_for_armature
    from pose2pose_mocap.retarget.errors import RetargetError
    from pose2pose_mocap.retarget.targets import get_target

    target, _ = target_for_armature(generated, replace(get_target("rigify"), name="my deform"))
    assert target.drive == "deform"
    state, anim = _file_state(), _animation_state(generated)
    with pytest.raises(RetargetError, match="driven by constraints .*DEF-"):
        retarget_rig(scene, generated, target)
    assert _file_state() == state and _animation_state(generated) == anim


def test_controls_target_refuses_a_rig_without_the_controls(scene):  # noqa: F811
    """A controls preset on an armature that is not a generated Rigify rig: one line."""
    from pose2pose_mocap.retarget.blender.retarget import (build_armature, retarget_rig,
                                                           target_for_armature)
    from pose2pose_mocap.retarget.errors import RetargetError
    from pose2pose_mocap.retarget.targets import get_target, reference_skeleton, rigify_controls

    ob = build_armature(reference_skeleton("rigify"), name="deform only")
    try:
        target, _ = target_for_armature(ob, get_target("rigify"))
        assert target.drive == "deform"          # a deform-only armature keeps the deform map
        controls = rigify_controls.controls_target(target).with_skeleton(target.skeleton)
        with pytest.raises(RetargetError, match="not a rig Rigify generated"):
            retarget_rig(scene, ob, controls)
        assert ob.animation_data is None or not len(ob.animation_data.nla_tracks)
    finally:
        bpy.data.objects.remove(ob, do_unlink=True)


def test_retarget_panel_on_a_generated_rig_keys_the_controls(scene, generated):  # noqa: F811
    """The Retarget panel's list (Auto or the Rigify preset, edited or not) on a generated
    rig gives the controls target, as the command line does."""
    from types import SimpleNamespace as Settings

    from pose2pose_mocap.addon.retarget_ui import target_from_settings
    from pose2pose_mocap.retarget.targets import get_target

    rows = [Settings(joint=j, bone=b) for j, b in get_target("rigify").mapping.items()]
    for preset in ("AUTO", "rigify"):
        for mapping in ([], rows, rows[:-1]):
            target, _ = target_from_settings(Settings(target=generated, preset=preset,
                                                      mapping=mapping))
            assert target.drive == "controls" and target.name == "rigify", (preset, len(mapping))
    target, _ = target_from_settings(Settings(target=generated, preset="mixamo", mapping=rows))
    assert target.drive == "deform"


def test_a_copy_whose_def_bones_are_free_keeps_the_deform_map(scene, generated):  # noqa: F811
    """A copy of the generated rig whose DEF bones lost their constraints (as a deform-only
    export makes) is driven through its DEF bones: keying its controls would move nothing."""
    from pose2pose_mocap.retarget.blender.retarget import target_for_armature
    from pose2pose_mocap.retarget.targets import get_target

    copy = generated.copy()
    copy.data = generated.data.copy()
    bpy.context.scene.collection.objects.link(copy)
    try:
        for pb in copy.pose.bones:
            if pb.name.startswith("DEF-"):
                for c in list(pb.constraints):
                    pb.constraints.remove(c)
        target, _ = target_for_armature(copy, get_target("rigify"))
        assert target.drive == "deform"
    finally:
        data = copy.data
        bpy.data.objects.remove(copy, do_unlink=True)
        bpy.data.armatures.remove(data)
