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


# --------------------------------------------------------------------------- the stored take

def _float32_take_with_raw(T=7):
    take = make_take(random_params(T, seed=11, max_angle=0.4), source="/f/c.mp4", person_id=3)
    take.params = {k: v.astype(np.float32) for k, v in take.params.items()}
    take.valid[2] = False
    take.params["transl"][2] = np.nan                       # junk in an invalid row
    take.raw = {"score": np.linspace(0, 1, T, dtype=np.float32)}
    take.estimator, take.notes = "pose2pose", ["a note"]
    return take


def test_the_take_stored_on_the_rig_round_trips_exactly(rig, tmp_path):
    from pose2pose_mocap.retarget.blender.anim import (TAKE_DATA, raw_take_from_action,
                                                       write_take_actions)
    from pose2pose_mocap.retarget.take import take_from_bytes, write_take

    take = _float32_take_with_raw()
    take.path = write_take(tmp_path / "c.take.npz", take)
    acts = write_take_actions(rig, take, Smoothing(body_hz=3.0))
    assert isinstance(acts.body[TAKE_DATA], bytes) and "p2p_raw" not in acts.body
    # the same serialized form as the file, without the raw_ arrays
    assert take_from_bytes(acts.body[TAKE_DATA]).raw == {}
    name, blend = acts.body.name, tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    back = raw_take_from_action(bpy.data.actions[name])
    for k in ("fps", "person_id", "source", "model", "standin", "gender", "estimator",
              "body_model", "path", "notes"):
        assert getattr(back, k) == getattr(take, k), k
    for k in ("frame_index", "valid", "image_size", "focal", "princpt"):
        assert np.array_equal(getattr(back, k), getattr(take, k)), k
    assert back.params.keys() == take.params.keys() and back.raw == {}
    for k, v in take.params.items():
        assert back.params[k].dtype == np.float32
        np.testing.assert_array_equal(back.params[k], v)   # NaN in the invalid row too
    bpy.ops.wm.read_factory_settings(use_empty=True)


def test_rigs_made_before_take_format_2_still_resmooth(rig):
    """Old rigs: the parameters in ``p2p_raw`` (float64 arrays), metadata in ``p2p_take``."""
    from pose2pose_mocap.retarget.blender.anim import (TAKE_DATA, raw_take_from_action,
                                                       resmooth_take, write_take_actions)

    take = make_take(random_params(9, seed=12, max_angle=0.3), source="/f/old.mp4")
    acts = write_take_actions(rig, take)
    action = acts.body
    uid = json.loads(action["p2p_take"])["uid"]
    del action[TAKE_DATA]
    action["p2p_take"] = json.dumps({    # what the format-1 add-on stored
        "uid": uid, "path": "", "source": take.source, "model": take.model,
        "person_id": 0, "fps": 30.0, "standin": True, "gender": "neutral",
        "image_size": [640, 480], "focal": [600.0, 600.0], "princpt": [330.0, 235.0],
        "notes": []})
    action["p2p_raw"] = {"frame_index": take.frame_index.astype(np.int32),
                         "valid": take.valid.astype(np.int32),
                         **{k: v.ravel() for k, v in take.params.items()}}
    old = raw_take_from_action(action)
    assert old.source == "/f/old.mp4" and old.focal.tolist() == [600.0, 600.0]
    for k, v in take.params.items():
        np.testing.assert_array_equal(old.params[k], v)
    before = quat_curves(action, rig.armature, "left_knee")
    resmooth_take(rig.armature, Smoothing(body_hz=2.0), action)
    assert not np.allclose(quat_curves(action, rig.armature, "left_knee"), before)


def test_resmooth_with_an_injected_smoother(rig):
    from pose2pose_mocap.retarget.blender.anim import resmooth_take, take_smoothing, \
        write_take_actions
    from pose2pose_mocap.retarget.errors import RetargetError

    take = make_take(random_params(6, seed=13, max_angle=0.3))
    acts = write_take_actions(rig, take)
    pelvis = 'pose.bones["pelvis"].location'
    x0 = keys(fcurves_of(acts.body, rig.armature).find(pelvis, index=0))[:, 1].copy()
    calls = []

    def shift(t, settings):
        calls.append((t.num_frames, settings))
        return t.with_params({"transl": t.params["transl"] + [0.5, 0.0, 0.0]})

    settings = Smoothing(method="gaussian", body_hz=2.0)
    assert resmooth_take(rig.armature, settings, acts.body, smoother=shift) == acts.body
    assert calls == [(6, settings)] and take_smoothing(acts.body) == settings
    x1 = keys(fcurves_of(acts.body, rig.armature).find(pelvis, index=0))[:, 1]
    np.testing.assert_allclose(x1 - x0, 0.5, atol=1e-5)   # Blender x = camera x

    def drops_a_row(t, settings):
        from dataclasses import replace
        return replace(t, frame_index=t.frame_index[1:], valid=t.valid[1:])

    with pytest.raises(RetargetError, match="other rows"):
        resmooth_take(rig.armature, settings, acts.body, smoother=drops_a_row)
    assert take_smoothing(acts.body) == settings        # nothing changed


def test_an_smpl_take_is_refused_before_anything_is_built(model):
    from pose2pose_mocap.retarget.blender.build import build_take_scene
    from pose2pose_mocap.retarget.errors import RetargetError
    from pose2pose_mocap.retarget.take import Take

    bpy.ops.wm.read_factory_settings(use_empty=True)
    T = 3
    take = Take(fps=30.0, frame_index=np.arange(T), valid=np.ones(T, bool),
                params={"global_orient": np.zeros((T, 3)), "body_pose": np.zeros((T, 69)),
                        "betas": np.zeros((T, 10)), "transl": np.tile([0, 0, 3.0], (T, 1))},
                body_model="smpl")
    # (an SMPL take with the SMPL-X model: the SMPL rig is tests/blender/test_smpl_rig.py)
    with pytest.raises(RetargetError,
                       match="take is for the SMPL body; the model file .* is SMPL-X"):
        build_take_scene(model, take)
    assert len(bpy.data.objects) == 0 and len(bpy.data.actions) == 0
