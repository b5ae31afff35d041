"""The SMPL rig (takes with body_model = "smpl"): its structure, exactness against the SMPL body,
``p2p-mocap convert`` of an SMPL take, reopening and resmoothing it, and the refusals.

The reference is the ``smplx`` package's ``SMPL`` where torch is installed (Blender 5.0 venv)
and the numpy port (``retarget.smplx_model``, itself tested against smplx.SMPL in
tests/retarget/test_smpl_model.py) where it is not (Blender 4.2).
"""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget import posing, smplx_model as sm
from pose2pose_mocap.retarget.errors import RetargetError
from pose2pose_mocap.retarget.smoothing import NO_SMOOTHING, Smoothing

from tests.retarget.blender_eval import evaluated_world_vertices, posed_bone_heads, vertex_error
from tests.retarget.smpl_support import (make_smpl_take, smpl_params, smpl_reference,
                                         standin_smpl_path, standin_smpl_root)
from tests.retarget.synthetic import make_take, random_params, standin_smplx_path

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

T = 8
MEAN_TOL, MAX_TOL = 1e-4, 5e-4   # metres, as for SMPL-X (tests/blender/test_rig_exactness.py)
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def model():
    return sm.load_smpl_model(standin_smpl_path())


def reference(params, pose_correctives):
    try:
        import smplx  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        out = sm.forward(model(), params, pose_correctives=pose_correctives)
        return out.vertices, out.joints, "numpy SMPL"
    v, j = smpl_reference(params, pose_correctives)
    return v, j, "smplx.SMPL"


def test_smpl_rig_structure():
    from pose2pose_mocap.retarget.blender.rig import build_rig, rig_from_armature

    bpy.ops.wm.read_factory_settings(use_empty=True)
    rig = build_rig(model(), np.zeros(10), label="person 3")
    arm, mesh = rig.armature, rig.mesh
    assert arm.name == "SMPL person 3 (stand-in)" and mesh.name == "SMPL person 3 body (stand-in)"
    assert arm["p2p_body_model"] == "smpl" and arm["p2p_standin"] is True
    assert sorted(b.name for b in arm.data.bones) == sorted(sm.SMPL_JOINT_NAMES)
    for i, name in enumerate(sm.SMPL_JOINT_NAMES):
        b, p = arm.data.bones[name], SMPL_PARENTS[i]
        assert (b.parent.name if b.parent else None) == (sm.SMPL_JOINT_NAMES[p] if p >= 0 else None)
    # the wrists point at the hand joints (no fingers in SMPL)
    wrist, hand = arm.data.bones["left_wrist"], arm.data.bones["left_hand"]
    assert np.allclose(wrist.tail_local, hand.head_local, atol=1e-6)
    assert len(mesh.data.vertices) == 6890 and len(mesh.data.polygons) == 13776
    assert [g.name for g in mesh.vertex_groups] == list(sm.SMPL_JOINT_NAMES)
    keys = [k.name for k in mesh.data.shape_keys.key_blocks]
    assert keys == (["Basis"] + [f"Shape{k:03d}" for k in range(10)]
                    + [f"Pose{k:03d}" for k in range(207)])
    again = rig_from_armature(arm)
    assert again.rest.kind is sm.SMPL_KIND and again.rest.joint_expression.shape == (24, 3, 0)
    assert np.allclose(again.bone_heads, rig.bone_heads)


@pytest.mark.parametrize("pose_correctives", [True, False], ids=["correctives", "no-correctives"])
def test_evaluated_mesh_and_joints_equal_smpl(pose_correctives, record_property):
    from pose2pose_mocap.retarget.blender.build import build_take_scene

    bpy.ops.wm.read_factory_settings(use_empty=True)
    params = smpl_params(T, seed=7)
    take = make_smpl_take(params, frame_index=np.arange(T) * 3 + 5)
    built = build_take_scene(model(), take, smoothing=NO_SMOOTHING,
                             pose_correctives=pose_correctives)
    verts, joints, what = reference(params, pose_correctives)
    verts, joints = posing.camera_to_blender(verts), posing.camera_to_blender(joints)
    scene = bpy.context.scene
    worst, worst_joint = (0.0, 0.0), 0.0
    for t in range(T):
        scene.frame_set(1 + 3 * t)
        mean, mx = vertex_error(evaluated_world_vertices(built.rig.mesh), verts[t])
        assert mean < MEAN_TOL and mx < MAX_TOL, f"frame {t} vs {what}: {mean:.2e} {mx:.2e}"
        heads = posed_bone_heads(built.rig.armature, sm.SMPL_JOINT_NAMES)
        d = np.linalg.norm(heads - joints[t], axis=-1).max()
        assert d < MAX_TOL, f"frame {t}: joints off by {d:.2e}"
        worst, worst_joint = (max(worst[0], mean), max(worst[1], mx)), max(worst_joint, d)
    record_property("vertex_error_mean_max", tuple(map(float, worst)))
    print(f"\n{bpy.app.version_string} SMPL, pose correctives {pose_correctives}, reference "
          f"{what}: worst frame mean {worst[0]:.2e} m, max {worst[1]:.2e} m; joints max "
          f"{worst_joint:.2e} m")


def test_bodies_do_not_mix():
    """An SMPL take never lands on an SMPL-X rig (or the other way round)."""
    from pose2pose_mocap.retarget.blender.anim import write_take_actions
    from pose2pose_mocap.retarget.blender.rig import build_rig

    bpy.ops.wm.read_factory_settings(use_empty=True)
    smplx_rig = build_rig(sm.load_smplx_model(standin_smplx_path()), np.zeros(10))
    smpl_rig = build_rig(model(), np.zeros(10), label="person 1")
    with pytest.raises(RetargetError, match="take is for the SMPL body; rig .* is SMPL-X"):
        write_take_actions(smplx_rig, make_smpl_take(smpl_params(4)))
    with pytest.raises(RetargetError, match="take is for the SMPL-X body; rig .* is SMPL"):
        write_take_actions(smpl_rig, make_take(random_params(4)))
    assert not bpy.data.actions


def test_convert_cli_reopen_and_resmooth(tmp_path):
    """``p2p-mocap convert`` on an SMPL take picks the SMPL model (--smpl); the .blend reopens
    with its SMPL rig, and the take can be smoothed again there."""
    from pose2pose_mocap.cli import main
    from pose2pose_mocap.retarget.blender.anim import resmooth_take, take_actions, take_smoothing
    from pose2pose_mocap.retarget.take import write_take

    p = smpl_params(T, seed=5, max_angle=0.5)
    take = make_smpl_take(p, source="clip.mp4")
    path = write_take(tmp_path / "clip.take.npz", take)
    assert main(["convert", str(path), "--smpl", str(standin_smpl_root())]) == 0
    blend = tmp_path / "clip.blend"
    assert blend.is_file()
    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False)
    arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    assert [a.name for a in arms] == ["SMPL person 0 (stand-in)"]
    arm = arms[0]
    assert len(arm.data.bones) == 24
    (_track, action), = take_actions(arm)
    scene = bpy.context.scene
    scene.frame_set(4)
    before = posed_bone_heads(arm, sm.SMPL_JOINT_NAMES)
    resmooth_take(arm, Smoothing(method="gaussian", body_hz=1.0, root_hz=1.0))
    assert take_smoothing(action).body_hz == 1.0
    scene.frame_set(3)
    scene.frame_set(4)
    after = posed_bone_heads(arm, sm.SMPL_JOINT_NAMES)
    assert np.abs(after - before).max() > 1e-3  # the keys changed
    bpy.ops.wm.read_factory_settings(use_empty=True)


def test_addon_import_take_builds_the_smpl_rig(repo, tmp_path):
    """The add-on's Import Take: an SMPL take gets the SMPL rig, its model from the models
    folder set as the SMPL-X preference (one folder serves both bodies)."""
    import shutil
    from importlib import import_module

    from pose2pose_mocap.retarget.take import write_take

    from tests.blender.test_addon_ui import MODULE, disable_dev_addon, enable_dev_addon

    bpy.ops.wm.read_factory_settings(use_empty=True)
    models = tmp_path / "models"
    for src in (standin_smplx_path(), standin_smpl_path()):
        (models / src.parent.name).mkdir(parents=True)
        shutil.copy(src, models / src.parent.name / src.name)
    take = write_take(tmp_path / "clip.take.npz", make_smpl_take(smpl_params(4, max_angle=0.5),
                                                                 source="clip.mp4"))
    enable_dev_addon(repo, tmp_path)
    try:
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.smplx_path = str(models)
        importing = import_module(MODULE + ".addon.importing")
        arms, _notes = importing.import_take_files(bpy.context, [str(take)])
        assert [a.name for a in arms] == ["SMPL person 0 (stand-in)"]
        assert arms[0]["p2p_body_model"] == "smpl" and len(arms[0].data.bones) == 24
        prefs.smplx_path = ""
    finally:
        disable_dev_addon()
        bpy.ops.wm.read_factory_settings(use_empty=True)
