"""Takes as NLA actions: bulk keys, gaps, timing, continuity, re-smoothing, channelbags."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pose2pose_mocap.retarget import smplx_model as sm
from pose2pose_mocap.retarget.smoothing import NO_SMOOTHING, Smoothing

from tests.retarget.synthetic import make_take, random_params, standin_smplx_path

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def model():
    return sm.load_smplx_model(standin_smplx_path())


@pytest.fixture
def rig(model):
    from pose2pose_mocap.retarget.blender.rig import build_rig

    bpy.ops.wm.read_factory_settings(use_empty=True)
    return build_rig(model, np.zeros(10), pose_correctives=False)


def fcurves_of(action, id_data):
    from pose2pose_mocap.retarget.blender.fcurves import action_channelbag

    return action_channelbag(action, id_data).fcurves


def keys(fc) -> np.ndarray:
    co = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def quat_curves(action, arm, bone):
    fcs = fcurves_of(action, arm)
    path = f'pose.bones["{bone}"].rotation_quaternion'
    return np.stack([keys(fcs.find(path, index=i))[:, 1] for i in range(4)], axis=-1)


def snapshot(action, id_data):
    return {(fc.data_path, fc.array_index): keys(fc).copy() for fc in fcurves_of(action, id_data)}


def test_each_take_is_a_new_nla_action_and_nothing_is_overwritten(rig):
    from pose2pose_mocap.retarget.blender.anim import write_take_actions

    arm, key = rig.armature, rig.mesh.data.shape_keys
    user = bpy.data.actions.new("UserAction")     # the user's own active action stays
    arm.animation_data_create().action = user
    t1 = make_take(random_params(6, seed=1, max_angle=1.0), source="/footage/clip.mp4")
    first = write_take_actions(rig, t1)
    assert first.body.name == "clip p0" and first.face.name == "clip p0 face"
    before_body, before_face = snapshot(first.body, arm), snapshot(first.face, key)
    assert len(before_body) == 55 * 4 + 2 * 3       # quaternions; root and jaw locations
    assert len(before_face) == 10                     # Exp000..Exp009 (no pose keys on this rig)

    second = write_take_actions(rig, make_take(random_params(6, seed=2, max_angle=1.0),
                                               source="/footage/clip.mp4"))
    assert second.body.name == "clip p0.001" and second.face.name == "clip p0.001 face"
    assert arm.animation_data.action == user
    assert [t.name for t in arm.animation_data.nla_tracks] == ["clip p0", "clip p0.001"]
    assert [t.name for t in key.animation_data.nla_tracks] == ["clip p0 face", "clip p0.001 face"]
    assert arm.animation_data.nla_tracks[0].strips[0].action == first.body
    for (k, v), (k2, v2) in zip(before_body.items(), snapshot(first.body, arm).items()):
        assert k == k2 and np.array_equal(v, v2)
    for (k, v), (k2, v2) in zip(before_face.items(), snapshot(first.face, key).items()):
        assert k == k2 and np.array_equal(v, v2)
    assert json.loads(first.body["p2p_take"])["source"] == "/footage/clip.mp4"
    assert first.face["p2p_take_uid"] == json.loads(first.body["p2p_take"])["uid"]


def test_invalid_frames_get_no_keys_and_the_curve_interpolates(rig, model):
    from pose2pose_mocap.retarget.blender.anim import write_take_actions

    p = random_params(8, seed=3, max_angle=0.5)
    valid = np.array([1, 1, 1, 0, 0, 1, 1, 1], bool)
    p["global_orient"][~valid] = np.nan          # what an estimator leaves there
    take = make_take(p, valid=valid)
    acts = write_take_actions(rig, take)
    fc = fcurves_of(acts.body, rig.armature).find('pose.bones["pelvis"].location', index=0)
    k = keys(fc)
    assert k[:, 0].tolist() == [1, 2, 3, 6, 7, 8]
    assert all(kp.interpolation == 'LINEAR' for kp in fc.keyframe_points)
    assert np.isfinite(k).all()
    mid = fc.evaluate(4.5)
    assert min(k[2, 1], k[3, 1]) - 1e-6 <= mid <= max(k[2, 1], k[3, 1]) + 1e-6


def test_timing_with_stride_and_ntsc_fps(rig):
    from pose2pose_mocap.retarget.blender.anim import write_take_actions
    from pose2pose_mocap.retarget.blender.scene import set_scene_timing

    take = make_take(random_params(5, seed=4, max_angle=0.5), fps=29.97,
                     frame_index=np.array([100, 102, 104, 106, 108]))
    acts = write_take_actions(rig, take)
    assert set_scene_timing(bpy.context.scene, take) == (1, 9)
    r = bpy.context.scene.render
    assert (r.fps, r.fps_base) == (30, pytest.approx(1.001))
    assert r.fps / r.fps_base == pytest.approx(29.97, rel=1e-5)
    assert keys(fcurves_of(acts.body, rig.armature)[0])[:, 0].tolist() == [1, 3, 5, 7, 9]
    strip = rig.armature.animation_data.nla_tracks[-1].strips[0]
    assert (strip.frame_start, strip.frame_end) == (1, 9)


def test_quaternion_keys_have_no_sign_flips(rig):
    from pose2pose_mocap.retarget.blender.anim import write_take_actions

    T = 40
    p = random_params(T, seed=5, max_angle=0.2)
    angle = np.linspace(2.5, 3.9, T)   # the knee turns through pi: axis-angle wraps
    wrapped = np.where(angle > np.pi, angle - 2 * np.pi, angle)
    p["body_pose"][:, 3:6] = wrapped[:, None] * np.array([1.0, 0.0, 0.0])
    acts = write_take_actions(rig, make_take(p))
    for bone in ("left_knee", "pelvis", "right_wrist"):
        q = quat_curves(acts.body, rig.armature, bone)
        assert (np.einsum("ti,ti->t", q[1:], q[:-1]) > 0).all(), bone


def test_resmooth_rewrites_only_that_take(rig):
    from pose2pose_mocap.retarget.blender.anim import (resmooth_take, take_smoothing,
                                                       write_take_actions)

    T = 30
    noisy = random_params(T, seed=6, max_angle=0.3)
    noisy["body_pose"] += np.random.default_rng(0).normal(scale=0.05, size=noisy["body_pose"].shape)
    a = write_take_actions(rig, make_take(noisy, source="a.mp4"), NO_SMOOTHING)
    b = write_take_actions(rig, make_take(random_params(T, seed=7, max_angle=0.3), source="b.mp4"))
    raw_a, snap_b = quat_curves(a.body, rig.armature, "left_knee"), snapshot(b.body, rig.armature)
    settings = Smoothing(body_hz=3.0)
    assert resmooth_take(rig.armature, settings, a.body) == a.body
    smooth_a = quat_curves(a.body, rig.armature, "left_knee")
    assert not np.allclose(smooth_a, raw_a)
    jerk = [np.abs(np.diff(q, 2, axis=0)).mean() for q in (smooth_a, raw_a)]
    assert jerk[0] < 0.5 * jerk[1]
    assert take_smoothing(a.body) == settings
    for (k, v), (k2, v2) in zip(snap_b.items(), snapshot(b.body, rig.armature).items()):
        assert k == k2 and np.array_equal(v, v2)
    assert [t.strips[0].action for t in rig.armature.animation_data.nla_tracks] == [a.body, b.body]
    # Back to raw: the raw take kept on the action gives the very first keys again.
    resmooth_take(rig.armature, NO_SMOOTHING, a.body)
    np.testing.assert_array_equal(quat_curves(a.body, rig.armature, "left_knee"), raw_a)
    # Default: the take on the top track (b).
    assert resmooth_take(rig.armature, settings) == b.body


def test_channelbag_helper_on_this_blender(rig):
    from pose2pose_mocap.retarget.blender.fcurves import Curve, action_channelbag, write_curves

    key = rig.mesh.data.shape_keys
    for id_data in (rig.armature, key):
        action = bpy.data.actions.new("probe")
        bag = action_channelbag(action, id_data)
        if bpy.app.version >= (4, 4, 0):
            assert bag.slot is not None and bag.slot.target_id_type == id_data.id_type
        else:
            assert bag.slot is None and bag.fcurves == action.fcurves
        assert action_channelbag(action, id_data).fcurves == bag.fcurves   # found, not added
        frames = np.array([1, 2, 5])
        values = np.array([0.5, -2.0, 12.0])
        path = ('pose.bones["jaw"].location' if id_data == rig.armature
                else 'key_blocks["Exp000"].value')
        (fc,) = write_curves(bag, frames, [Curve(path, 0, values, "G")])
        np.testing.assert_allclose(keys(fc), np.column_stack([frames, values]))
        (fc2,) = write_curves(bag, frames[:2], [Curve(path, 0, values[:2], "G")])  # refill
        assert fc2 == fc and len(fc.keyframe_points) == 2
        assert fc.group.name == "G"
        assert action.users == 0 and id_data.animation_data is None or \
            id_data.animation_data.action != action


def test_one_armature_per_person_and_one_camera_per_footage(model):
    from pose2pose_mocap.retarget.blender.build import build_take_scene

    bpy.ops.wm.read_factory_settings(use_empty=True)
    p = random_params(4, seed=8, max_angle=0.5)
    first = build_take_scene(model, make_take(p, person_id=1, source="/f/clip.mp4"),
                             pose_correctives=False)
    again = build_take_scene(model, make_take(p, person_id=1, source="/f/clip.mp4"),
                             pose_correctives=False)
    other = build_take_scene(model, make_take(p, person_id=2, source="/f/clip.mp4"),
                             pose_correctives=False)
    arms = sorted(o.name for o in bpy.data.objects if o.type == 'ARMATURE')
    assert arms == ["SMPL-X person 1 (stand-in)", "SMPL-X person 2 (stand-in)"]
    assert again.rig.armature == first.rig.armature and other.rig.armature != first.rig.armature
    assert [t.name for t in first.rig.armature.animation_data.nla_tracks] == \
        ["clip p1", "clip p1.001"]
    assert any("existing rig" in n for n in again.notes)
    assert len([o for o in bpy.data.objects if o.type == 'CAMERA']) == 1


def test_resmooth_after_renaming_the_armature(rig):
    from pose2pose_mocap.retarget.blender.anim import resmooth_take, write_take_actions

    acts = write_take_actions(rig, make_take(random_params(12, seed=9, max_angle=0.3)))
    n_curves = len(fcurves_of(acts.body, rig.armature))
    rig.armature.name = "Hero"
    resmooth_take(rig.armature, Smoothing(body_hz=2.0), acts.body)
    assert len(fcurves_of(acts.body, rig.armature)) == n_curves
    if hasattr(acts.body, "slots"):
        assert len(acts.body.slots) == 1
