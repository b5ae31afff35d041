"""The rig's structure: bones, mesh, skinning, shape keys, stand-in label."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget import posing, smplx_model as sm

from tests.retarget.synthetic import standin_smplx_path

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def model():
    return sm.load_smplx_model(standin_smplx_path())


@pytest.fixture
def empty():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def test_rig_structure(model, empty):
    from pose2pose_mocap.retarget.blender.rig import build_rig

    betas = np.linspace(-1.0, 1.0, 10)
    rig = build_rig(model, betas, label="person 1")
    arm, mesh = rig.armature, rig.mesh
    assert arm.name == "SMPL-X person 1 (stand-in)" and arm["p2p_standin"] is True
    assert mesh.name == "SMPL-X person 1 body (stand-in)" and mesh["p2p_standin"] is True
    # (Blender keeps bones in hierarchy order; look them up by name.)
    assert sorted(b.name for b in arm.data.bones) == sorted(sm.JOINT_NAMES)
    bones = [arm.data.bones[n] for n in sm.JOINT_NAMES]
    for i, b in enumerate(bones):
        p = sm.PARENTS[i]
        assert (b.parent.name if b.parent else None) == (sm.JOINT_NAMES[p] if p >= 0 else None)
        assert not b.use_connect and b.use_deform
    rest = posing.rig_rest(model, betas)
    heads = np.array([b.head_local for b in bones])
    tails = np.array([b.tail_local for b in bones])
    np.testing.assert_allclose(heads, rest.joints, atol=1e-6)
    np.testing.assert_allclose(tails, rest.tails, atol=1e-6)
    # Roll rule: local Z towards the front (-Y), or up for bones along Y.
    z = np.array([np.array(b.matrix_local)[:3, 2] for b in bones])
    assert (np.einsum("ji,ji->j", z, rest.roll_z) > 0.3).all()
    assert all(pb.rotation_mode == 'QUATERNION' for pb in arm.pose.bones)
    assert np.allclose(np.array(arm.matrix_world), np.eye(4))

    me = mesh.data
    assert (len(me.vertices), len(me.polygons)) == (10475, 20908)
    assert all(len(p.vertices) == 3 for p in list(me.polygons)[:50])
    co = np.empty(3 * len(me.vertices), np.float32)
    me.vertices.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 3), rest.vertices, atol=1e-6)
    assert mesh.parent == arm
    assert [(m.type, m.object) for m in mesh.modifiers] == [('ARMATURE', arm)]
    mod = mesh.modifiers[0]
    assert mod.use_vertex_groups and not mod.use_bone_envelopes
    assert not mod.use_deform_preserve_volume
    assert [g.name for g in mesh.vertex_groups] == list(sm.JOINT_NAMES)
    # Skinning weights: a sample of vertices, every group.
    for v in list(me.vertices)[::997]:
        w = np.zeros(55)
        for g in v.groups:
            w[g.group] = g.weight
        np.testing.assert_allclose(w, model.lbs_weights[v.index], atol=1e-6)

    keys = me.shape_keys.key_blocks
    names = [k.name for k in keys]
    assert names[:11] == ["Basis"] + [f"Exp{k:03d}" for k in range(10)]
    assert names[11:21] == [f"Shape{k:03d}" for k in range(10)]
    assert names[21:] == [f"Pose{k:03d}" for k in range(486)]
    assert all(k.slider_min == -10 and k.slider_max == 10 for k in keys[1:])
    assert me.shape_keys.use_relative
    exp3 = np.empty(3 * len(me.vertices), np.float32)
    keys["Exp003"].points.foreach_get("co", exp3)
    np.testing.assert_allclose(exp3.reshape(-1, 3) - rest.vertices,
                               posing.smplx_to_armature(model.exprdirs[:, :, 3]), atol=1e-6)


def test_light_rig_and_one_armature_per_person(model, empty):
    from pose2pose_mocap.retarget.blender.rig import build_rig

    a = build_rig(model, np.zeros(10), label="person 1", shape_keys=False, pose_correctives=False)
    b = build_rig(model, np.zeros(10), label="person 2")
    names = [k.name for k in a.mesh.data.shape_keys.key_blocks]
    assert names == ["Basis"] + [f"Exp{k:03d}" for k in range(10)]
    assert a.armature["p2p_pose_correctives"] is False
    assert b.armature.name == "SMPL-X person 2 (stand-in)"
    assert len([o for o in bpy.data.objects if o.type == 'ARMATURE']) == 2


def test_real_model_has_no_standin_label(model, empty, tmp_path):
    from pose2pose_mocap.retarget.blender.rig import build_rig

    real = sm.SmplxModel(**{**model.__dict__, "standin": False})
    rig = build_rig(real, np.zeros(10), pose_correctives=False)
    assert rig.armature.name == "SMPL-X person 0" and rig.armature["p2p_standin"] is False
    assert "stand-in" not in rig.mesh.name
