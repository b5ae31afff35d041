"""Issue #12 in Blender: the add-on's estimate request is EstimateOptions (precision
included) and reaches the worker's mapping; the sidebar's smoothing defaults are
Smoothing's; the export bake reads pose channels in bulk and gets what a per-bone,
per-shape-key loop reads."""
from __future__ import annotations

import json
from importlib import import_module

import numpy as np
import pytest

from tests.blender.test_addon_ui import MODULE

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender


def test_sidebar_precision_reaches_the_worker(addon, tmp_path):
    from pose2pose_mocap.estimator.options import PRECISIONS, EstimateOptions
    from pose2pose_mocap.worker.server import estimate_arguments

    ops = import_module(MODULE + ".addon.operators")
    props = bpy.context.scene.p2p_mocap
    items = [i.identifier for i in props.bl_rna.properties["precision"].enum_items]
    assert items == list(PRECISIONS) and props.precision == "fp32"
    props.source_type = 'MOVIE'
    props.movie_path = "/footage/clip.mp4"
    props.output_dir = str(tmp_path)
    try:
        for precision in PRECISIONS:
            props.precision = precision
            req = ops.estimate_request(bpy.context, props)
            # the request is the footage, the take folder and EstimateOptions.to_dict()
            opts = EstimateOptions.from_dict({k: v for k, v in req.items()
                                              if k not in ("inputs", "output")})
            assert opts.precision == precision and opts.to_dict() == {
                k: v for k, v in req.items() if k not in ("inputs", "output")}
            # ... and the worker turns it into EstimateJob's arguments with the precision
            args = estimate_arguments(dict(json.loads(json.dumps(req)), cmd="estimate"))
            assert args["precision"] == precision and args["inputs"] == "/footage/clip.mp4"
    finally:
        props.precision = "fp32"


def test_sidebar_smoothing_defaults_are_smoothing_defaults(addon):
    from pose2pose_mocap.retarget.smoothing import Smoothing

    d = Smoothing()
    rna = bpy.context.scene.p2p_mocap.bl_rna.properties
    assert rna["smooth_method"].default == d.method
    for region in ("root", "body", "hands", "face"):
        assert rna[f"smooth_{region}"].default == pytest.approx(getattr(d, f"{region}_hz"))


def test_sidebar_import_uses_the_one_convert_options(addon):
    """The add-on's import takes the same ConvertOptions as convert and batch."""
    from importlib import import_module

    import bpy

    importing = import_module(MODULE + ".addon.importing")
    options_mod = import_module(MODULE + ".retarget.options")
    props = bpy.context.scene.p2p_mocap
    props.pose_correctives = False
    props.smooth_body = 3.0
    opts = importing.convert_options_from_props(props)
    assert isinstance(opts, options_mod.ConvertOptions)
    assert opts.pose_correctives is False and opts.smoothing.body_hz == 3.0


def _bake_by_loops(scene, arm, mesh_obj, bones, frames):
    """What _bake read before: one RNA access per frame x bone and frame x shape key."""
    key = mesh_obj.data.shape_keys
    names = [kb.name for kb in key.key_blocks][1:]
    pose = np.empty((len(frames), len(bones), 4, 4))
    values = np.empty((len(frames), len(names)))
    for t, f in enumerate(frames):
        scene.frame_set(int(f))
        ev = arm.evaluated_get(bpy.context.evaluated_depsgraph_get())
        for j, n in enumerate(bones):
            pose[t, j] = np.array(ev.pose.bones[n].matrix, dtype=np.float64)
        for k, n in enumerate(names):
            values[t, k] = key.key_blocks[n].value
    return pose, names, values


def test_bake_reads_channels_in_bulk_exactly(tmp_path, monkeypatch):
    from pose2pose_mocap.retarget.blender import export as ex
    from pose2pose_mocap.retarget.convert import build_take
    from pose2pose_mocap.retarget.options import ConvertOptions
    from pose2pose_mocap.retarget.take import write_take
    from tests.retarget.synthetic import standin_smplx_root, take_arrays

    take = write_take(tmp_path / "b.take.npz", take_arrays(T=5))
    build_take(take, standin_smplx_root(), ConvertOptions(pose_correctives=False))
    scene = bpy.context.scene
    arm = ex.find_armature(scene)
    mesh_obj = ex._body_mesh(arm)
    bones = ex._deform_bones(arm)[::-1]       # any order of bones
    frames = [scene.frame_start, scene.frame_start + 3, scene.frame_end]
    got_pose = []
    monkeypatch.setattr(ex, "_basis_from_pose", lambda a, b, pose: got_pose.append(pose) or pose)
    _, heads, names, values, _, mw0 = ex._bake(scene, arm, mesh_obj, bones, frames)
    want_pose, want_names, want_values = _bake_by_loops(scene, arm, mesh_obj, bones, frames)
    assert names == want_names and len(names) > 0
    assert np.array_equal(got_pose[0], want_pose)
    assert np.array_equal(values, want_values) and np.abs(values).max() > 0
    assert np.allclose(heads, want_pose[:, :, :3, 3] @ mw0[:3, :3].T + mw0[:3, 3])
    bpy.ops.wm.read_factory_settings(use_empty=True)

