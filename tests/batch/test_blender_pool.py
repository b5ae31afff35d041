"""The batch's persistent bpy processes (``batch.blender_pool``): tasks run one after another
in one process give the same Blender state as each in a fresh process (nothing leaks: data-blocks,
scene settings, handlers); a process is replaced after N tasks; a task whose process dies runs once
more in a fresh one, and fails after a second death."""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from pose2pose_mocap.batch.blender_pool import BlenderPool

from ..retarget.synthetic import make_take, random_params, standin_smplx_root

CTX = mp.get_context("spawn")


def _run_all(pool: BlenderPool, calls, timeout: float = 600) -> list[dict]:
    """Run ``calls`` [(fn, spec)] one after another (the pool's slots in turn); the results."""
    out = []
    for fn, spec in calls:
        task = pool.submit(fn, spec)
        deadline = time.monotonic() + timeout
        got = []
        while not got:
            assert time.monotonic() < deadline, "a pool task did not finish"
            got = pool.wait([task], 1.0)
        out.append(got[0][1])
    return out


# -- task functions (run in the pool's processes; module-level so spawn can pickle them) -------
def _pid(spec: dict) -> dict:
    return {"ok": True, "pid": os.getpid()}


def _die(spec: dict) -> dict:
    """Die the first time (a marker file says it happened), or always with ``always``."""
    marker = Path(spec["marker"])
    if spec.get("always") or not marker.exists():
        marker.write_text("died once")
        os._exit(3)
    return {"ok": True, "pid": os.getpid()}


def _pollute(spec: dict) -> dict:
    """Leave things behind: objects, an action, a text, scene settings, a persistent handler."""
    import bpy

    mesh = bpy.data.meshes.new("leak_mesh")
    obj = bpy.data.objects.new("leak_object", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.animation_data_create().action = bpy.data.actions.new("leak_action")
    bpy.data.texts.new("leak_text")
    bpy.context.scene.render.fps = 7
    bpy.context.scene.frame_end = 999
    bpy.context.scene.unit_settings.scale_length = 0.5

    @bpy.app.handlers.persistent
    def leak_handler(*_):
        pass

    bpy.app.handlers.frame_change_pre.append(leak_handler)
    bpy.app.handlers.load_post.append(leak_handler)
    return {"ok": True, "pid": os.getpid()}


def _action_fcurves(action) -> list:
    if hasattr(action, "layers") and len(action.layers):
        return [fc for layer in action.layers for strip in layer.strips
                for bag in getattr(strip, "channelbags", ()) for fc in bag.fcurves]
    return list(getattr(action, "fcurves", ()))


def _state() -> dict:
    """What a leak would change: every data-block's name, scene settings, handler counts,
    pose bones, and every action's key values."""
    import bpy

    data = {}
    for name in ("objects", "meshes", "armatures", "actions", "materials", "collections",
                 "scenes", "texts", "images", "node_groups", "worlds", "cameras", "lights",
                 "shape_keys", "libraries"):
        data[name] = sorted(b.name for b in getattr(bpy.data, name))
    scene = bpy.context.scene
    data["scene"] = [scene.name, scene.render.fps, scene.render.fps_base, scene.frame_start,
                     scene.frame_end, scene.unit_settings.scale_length,
                     scene.unit_settings.system]
    h = bpy.app.handlers
    data["handlers"] = {n: len(getattr(h, n)) for n in dir(h)
                        if not n.startswith("_") and isinstance(getattr(h, n), list)}
    data["bones"] = {o.name: [b.name for b in o.pose.bones]
                     for o in bpy.data.objects if o.type == "ARMATURE"}
    keys = {}
    for act in bpy.data.actions:
        for fc in _action_fcurves(act):
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            keys[f"{act.name}:{fc.data_path}[{fc.array_index}]"] = co.tobytes().hex()
    data["keys"] = keys
    return data


def _convert(spec: dict) -> dict:
    """The batch's own task, then the Blender state it left."""
    from pose2pose_mocap.batch.worker import retarget_clip

    res = retarget_clip(spec)
    assert res["ok"], res
    return dict(res, state=_state())


# -- tests -------------------------------------------------------------------------------------
def _spec(folder: Path, seed: int, name: str) -> dict:
    from pose2pose_mocap.retarget.options import ConvertOptions
    from pose2pose_mocap.retarget.take import write_take

    folder.mkdir(parents=True, exist_ok=True)
    take = write_take(folder / f"{name}.take.npz", make_take(random_params(6, seed=seed,
                                                                              max_angle=0.8)))
    return {"clip": name, "takes": [str(take)], "smplx": str(standin_smplx_root()),
            "convert": ConvertOptions().to_dict(),
            "export": {"preset": "unity", "root": "grounded", "rest_frame": False},
            "stages": ["convert", "export"], "replace": []}


@pytest.mark.slow    # four conversions + exports (~40 s on 2 busy cores)
@pytest.mark.blender
def test_two_tasks_in_one_process_equal_two_fresh_processes(tmp_path):
    pytest.importorskip("PIL", reason="the batch's QA plot needs Pillow (the main venv)")
    reused = BlenderPool(CTX, 1, tasks_per_process=8)
    fresh = BlenderPool(CTX, 2, tasks_per_process=1)
    try:
        a1, b1 = _spec(tmp_path / "reused", 1, "clip"), _spec(tmp_path / "reused", 2, "other")
        a2, b2 = _spec(tmp_path / "fresh", 1, "clip"), _spec(tmp_path / "fresh", 2, "other")
        # the fresh processes start while the reused one works (2 cores)
        fa, fb = fresh.submit(_convert, a2), fresh.submit(_convert, b2)
        dirty, ra, rb = _run_all(reused, [(_pollute, {}), (_convert, a1), (_convert, b1)])
        done = {}
        while len(done) < 2:
            done.update(dict(fresh.wait([t for t in (fa, fb) if t not in done], 1.0)))
    finally:
        reused.close()
        fresh.close()
    for res in (dirty, ra, rb, *done.values()):
        assert res["ok"], res.get("error")
    assert dirty["pid"] == ra["pid"] == rb["pid"], "the tasks did not share one process"
    assert (ra["blender_task"], rb["blender_task"]) == (2, 3)
    assert done[fa]["pid"] != done[fb]["pid"] and done[fa]["blender_task"] == 1
    for mine, theirs in ((ra, done[fa]), (rb, done[fb])):
        assert mine["state"]["keys"], "no animation was read back"
        assert "leak_object" not in mine["state"]["objects"]
        for key, value in theirs["state"].items():   # one item at a time: a readable diff
            if isinstance(value, dict):
                assert {k: v for k, v in mine["state"][key].items() if value.get(k) != v} \
                    == {}, key
            assert mine["state"][key] == value, key
        assert [Path(p).name for p in mine["exports"]] == [Path(p).name for p in theirs["exports"]]


def test_a_process_is_replaced_after_its_tasks():
    pool = BlenderPool(CTX, 1, tasks_per_process=2)
    try:
        r = _run_all(pool, [(_pid, {})] * 3)
    finally:
        pool.close()
    assert r[0]["pid"] == r[1]["pid"] != r[2]["pid"]
    assert [x["blender_task"] for x in r] == [1, 2, 1]


def test_a_task_whose_process_dies_runs_once_more_in_a_fresh_one(tmp_path):
    pool = BlenderPool(CTX, 1, tasks_per_process=8)
    try:
        first, once, twice, after = _run_all(pool, [
            (_pid, {}), (_die, {"marker": str(tmp_path / "once")}),
            (_die, {"marker": str(tmp_path / "twice"), "always": True}), (_pid, {})])
    finally:
        pool.close()
    assert once["ok"] and once["pid"] != first["pid"] and once["blender_task"] == 1
    assert any("fresh Blender process" in n for n in once["notes"])
    assert not twice["ok"]
    assert "died" in twice["error"] and "again" in twice["error"]
    assert after["ok"] and after["pid"] not in (first["pid"], once["pid"])



def _bpy_version(spec: dict) -> dict:
    import bpy

    return {"ok": True, "version": tuple(bpy.app.version)}


@pytest.mark.blender
def test_a_parent_that_imported_bpy_still_gets_bpy_in_its_slots():
    """bpy puts Blender's script folders (with its own ``bpy`` package) at the front of
    sys.path; spawn copies sys.path into the slot's process, whose ``import bpy`` must still
    find the module."""
    import sys

    pytest.importorskip("bpy")
    assert any("scripts" in p for p in sys.path[:2])      # what importing bpy did here
    pool = BlenderPool(CTX, 1, tasks_per_process=2)
    try:
        res, = _run_all(pool, [(_bpy_version, {})], timeout=300)
    finally:
        pool.close()
    assert res["ok"], res.get("error")
