"""Acceptance: the keyed rig in Blender IS the SMPL-X body, frame by frame.

Random poses of every joint (angles up to pi), random betas, expressions and
translations, no smoothing. The reference is the ``smplx`` package where torch
is installed (Blender 5.0 venv) and the numpy port (``retarget.smplx_model``,
itself tested against smplx in tests/retarget) where it is not (Blender 4.2).
"""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget import posing, smplx_model as sm
from pose2pose_mocap.retarget.smoothing import NO_SMOOTHING

from tests.retarget.blender_eval import evaluated_world_vertices, posed_bone_heads, vertex_error
from tests.retarget.synthetic import (make_take, random_params, smplx_reference,
                                      standin_smplx_path, standin_smplx_root)

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

T = 8
MEAN_TOL, MAX_TOL = 1e-4, 5e-4


def reference(params, pose_correctives):
    try:
        import smplx  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        model = sm.load_smplx_model(standin_smplx_path())
        out = sm.forward(model, params, pose_correctives=pose_correctives)
        return out.vertices, out.joints, "numpy SMPL-X"
    v, j = smplx_reference(standin_smplx_root(), params, pose_correctives)
    return v, j, "smplx package"


@pytest.mark.parametrize("pose_correctives", [True, False], ids=["correctives", "no-correctives"])
def test_evaluated_mesh_and_joints_equal_smplx(pose_correctives, record_property):
    from pose2pose_mocap.retarget.blender.build import build_take_scene

    bpy.ops.wm.read_factory_settings(use_empty=True)
    model = sm.load_smplx_model(standin_smplx_path())
    params = random_params(T, seed=7)
    take = make_take(params, frame_index=np.arange(T) * 3 + 5)  # stride 3: frames 1, 4, 7, ...
    built = build_take_scene(model, take, smoothing=NO_SMOOTHING,
                             pose_correctives=pose_correctives)
    verts, joints, what = reference(params, pose_correctives)
    verts, joints = posing.camera_to_blender(verts), posing.camera_to_blender(joints)
    jaw_shift = np.abs(built.rig.rest.joint_expression).max() * np.abs(params["expression"]).sum(1)
    located = posing.located_bones(built.rig.rest)
    scene = bpy.context.scene
    worst = (0.0, 0.0)
    worst_joint = 0.0
    for t in range(T):
        scene.frame_set(1 + 3 * t)
        v = evaluated_world_vertices(built.rig.mesh)
        mean, mx = vertex_error(v, verts[t])
        assert mean < MEAN_TOL and mx < MAX_TOL, \
            f"frame {t} vs {what}: mean {mean:.2e} max {mx:.2e}"
        worst = (max(worst[0], mean), max(worst[1], mx))
        heads = posed_bone_heads(built.rig.armature, sm.JOINT_NAMES)
        d = np.linalg.norm(heads - joints[t], axis=-1)
        assert d[~located].max() < MAX_TOL, f"frame {t}: joints off by {d[~located].max():.2e}"
        # Joints the face expression moves (the jaw) keep the rig's rest head:
        # their head is off by at most that expression shift; the mesh is exact.
        assert (d[located] <= jaw_shift[t] * np.sqrt(3) + MAX_TOL).all()
        worst_joint = max(worst_joint, d[~located].max())
    record_property("vertex_error_mean_max", tuple(map(float, worst)))
    record_property("joint_error_max", float(worst_joint))
    print(f"\n{bpy.app.version_string}, pose correctives {pose_correctives}, reference {what}: "
          f"worst frame mean {worst[0]:.2e} m, max {worst[1]:.2e} m; "
          f"joints max {worst_joint:.2e} m")
