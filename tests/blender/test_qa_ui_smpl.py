"""The add-on's clean-up on an SMPL take (I2L-MeshNet): imported with the clean-up on, it is
cleaned with the SMPL model (found like Import Take finds it), locally and by the worker."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from importlib import import_module

import numpy as np
import pytest

from tests.blender.test_addon_ui import MODULE

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender
_WORKER_PYTHON = os.environ.get("P2P_MOCAP_WORKER_PYTHON")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One folder with the SMPL-X and SMPL stand-ins (serves both bodies)."""
    from pose2pose_mocap.weights.standins import write_smpl_standins, write_smplx_standins

    root = tmp_path_factory.mktemp("models")
    write_smplx_standins(root)
    write_smpl_standins(root)
    return root


@pytest.fixture(scope="module")
def smpl_walk(models, tmp_path_factory):
    """A noisy 3 s walk as an SMPL take (the SMPL-X body's first 21 joints + two hands)."""
    from bench.motion_truth import add_noise, make_truth
    from pose2pose_mocap.retarget.smplx_model import load_body_model
    from pose2pose_mocap.retarget.take import write_take

    smplx = load_body_model(models / "smplx" / "SMPLX_NEUTRAL.npz")
    take = add_noise(make_truth("walk", smplx, seconds=3.0), seed=2, faults=False).take
    p = take.params
    body = np.concatenate([p["body_pose"], np.zeros((take.num_frames, 6))], axis=1)
    params = {"global_orient": p["global_orient"], "body_pose": body, "betas": p["betas"],
              "transl": p["transl"]}
    smpl = replace(take, params=params, body_model="smpl", estimator="i2l-meshnet", raw={})
    return write_take(tmp_path_factory.mktemp("takes") / "smpl_walk.take.npz", smpl)


@pytest.fixture
def props(addon, models, monkeypatch):
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.smplx_path = str(models)
    monkeypatch.setenv("P2P_MOCAP_WORKER_PYTHON", "/nonexistent/python")
    props = bpy.context.scene.p2p_mocap
    props.live_smoothing = False
    props.pose_correctives = False
    props.clean_enabled = True
    props.clean_foot_lock = True
    yield props
    props.live_smoothing = False
    for name in ("clean_enabled", "clean_foot_lock", "smooth_method", "pose_correctives"):
        props.property_unset(name)
    prefs.smplx_path = ""


def _import(path):
    from pose2pose_mocap.retarget.blender.anim import top_take_action

    assert bpy.ops.p2p.import_take(filepath=str(path)) == {'FINISHED'}
    arm = bpy.context.view_layer.objects.active
    return arm, top_take_action(arm)


def _keys(action, arm, bone):
    from tests.blender.test_qa_ui import _curve_values

    return _curve_values(action, arm, bone)[1]


def test_smpl_take_is_cleaned_locally_and_by_the_worker(props, smpl_walk, monkeypatch):
    cleaning = import_module(MODULE + ".addon.cleaning")
    qa_ui = import_module(MODULE + ".addon.qa_ui")
    arm, action = _import(smpl_walk)
    assert arm.get("p2p_body_model", "smpl") == "smpl"
    assert json.loads(action[cleaning.CLEAN_PROP])["foot_lock"] is True
    locked = _keys(action, arm, "left_knee")

    props.clean_foot_lock = False                  # re-solved here, SMPL model
    assert qa_ui.resolve_selected(bpy.context, props).startswith("cleaned")
    unlocked = _keys(action, arm, "left_knee")
    assert np.abs(unlocked - locked).max() > 1e-4  # foot locking did something

    props.clean_foot_lock = True                   # the worker: same keys as here
    props.smooth_method = 'savgol'
    assert qa_ui.resolve_selected(bpy.context, props).startswith("cleaned")
    local = _keys(action, arm, "left_knee")
    monkeypatch.setenv("P2P_MOCAP_WORKER_PYTHON", _WORKER_PYTHON or sys.executable)
    monkeypatch.setattr(cleaning, "have_scipy", lambda: False)
    msg = qa_ui.resolve_selected(bpy.context, props)
    assert msg.startswith("cleaned"), msg
    np.testing.assert_allclose(_keys(action, arm, "left_knee"), local, atol=1e-5)
