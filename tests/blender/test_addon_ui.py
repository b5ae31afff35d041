"""The add-on's UI, headless: registration, sidebar settings, import, live smoothing,
export, installers and Install Runtime driven through their step objects."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.blender
ADDON_ID = "pose2pose_mocap"
DEV_REPO = "p2p_dev"
MODULE = f"bl_ext.{DEV_REPO}.{ADDON_ID}"
OUR_TYPES = ("P2P_PT_mocap", "P2P_PT_source", "P2P_PT_estimate", "P2P_PT_smoothing",
             "P2P_PT_export", "P2P_PT_setup", "P2P_MT_export", "P2P_OT_estimate",
             "P2P_OT_check_setup", "P2P_OT_import_take", "P2P_OT_export",
             "P2P_OT_install_smplx", "P2P_OT_install_runtime")


def enable_dev_addon(repo_root: Path, tmp_root: Path):
    """Enable the checkout as extension ``bl_ext.p2p_dev.pose2pose_mocap`` (a repo whose
    folder holds a link named pose2pose_mocap -> the checkout)."""
    import addon_utils
    import bpy

    parent = tmp_root / "dev_repo"
    parent.mkdir(exist_ok=True)
    link = parent / ADDON_ID
    if not link.exists():
        link.symlink_to(repo_root, target_is_directory=True)
    repos = bpy.context.preferences.extensions.repos
    if not any(r.module == DEV_REPO for r in repos):
        repos.new(name="dev", module=DEV_REPO, custom_directory=str(parent), source='USER')
    mod = addon_utils.enable(MODULE, default_set=True, handle_error=_raise)
    assert mod is not None
    return mod


def disable_dev_addon():
    import addon_utils

    addon_utils.disable(MODULE, default_set=True, handle_error=_raise)


def _raise(exc):
    raise exc


def _registered(bpy):
    return [n for n in OUR_TYPES if hasattr(bpy.types, n)]


def _handlers(bpy):
    return [h for h in bpy.app.handlers.load_pre if "p2p" in getattr(h, "__module__", "") or
            ADDON_ID in getattr(h, "__module__", "")]


def test_enable_disable_leaves_nothing_behind(repo, tmp_path):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    before_handlers = len(bpy.app.handlers.load_pre)
    for _ in range(2):
        mod = enable_dev_addon(repo, tmp_path)
        assert _registered(bpy) == list(OUR_TYPES)
        assert hasattr(bpy.types.Scene, "p2p_mocap")
        assert len(_handlers(bpy)) == 1
        prefs = bpy.context.preferences.addons[MODULE].preferences
        assert prefs.device == "auto" and prefs.runtime_python == ""
        # Every property has a tooltip.
        for cls in (mod.addon.props.P2P_MocapSettings, type(prefs)):
            for p in cls.bl_rna.properties:
                if p.identifier not in ("rna_type", "name", "bl_idname"):
                    assert p.description, f"{cls.__name__}.{p.identifier} has no tooltip"
        classes = mod.addon._CLASSES
        disable_dev_addon()
        assert _registered(bpy) == []
        assert not any(c.is_registered for c in classes)
        assert not hasattr(bpy.types.Scene, "p2p_mocap")
        assert not hasattr(bpy.types.WindowManager, "p2p_progress")
        assert len(bpy.app.handlers.load_pre) == before_handlers


def test_addon_never_imports_torch(repo):
    for path in (repo / "addon").glob("*.py"):
        text = path.read_text()
        assert "import torch" not in text and "from torch" not in text, path
        assert "sys.path" not in text, path


def test_nothing_written_into_the_addon_folder(addon, repo):
    from importlib import import_module

    paths = import_module(MODULE + ".addon.paths")
    d = paths.data_dir()
    assert d.is_dir()
    assert repo.resolve() not in d.resolve().parents
    log = paths.new_log_path("x")
    assert log.parent.parent == d


def test_estimate_request_from_the_sidebar(addon, tmp_path):
    import bpy
    from importlib import import_module

    ops = import_module(MODULE + ".addon.operators")
    props = bpy.context.scene.p2p_mocap
    props.source_type = 'MOVIE'
    props.movie_path = "/footage/clip.mp4"
    props.frame_start, props.frame_end, props.frame_step = 10, 50, 2
    props.person_mode = 'NUMBER'
    props.person_number = 2
    props.use_fov = True
    props.fov = np.radians(90.0)
    props.output_dir = str(tmp_path)
    req = ops.estimate_request(bpy.context, props)
    assert req["inputs"] == "/footage/clip.mp4"
    assert req["frames"] == "10:50:2" and req["person"] == "2" and req["device"] == "auto"
    assert abs(req["fov"] - 90.0) < 1e-4
    assert req["output"].startswith(str(tmp_path))
    props.source_type = 'FILES'
    with pytest.raises(ValueError, match="image files"):
        ops.estimate_request(bpy.context, props)
    props.image_files.add().path = "/a/1.png"
    props.image_files.add().path = "/a/2.png"
    assert ops.estimate_request(bpy.context, props)["inputs"] == ["/a/1.png", "/a/2.png"]
    props.source_type = 'CLIP'
    with pytest.raises(ValueError, match="Movie Clip"):
        ops.estimate_request(bpy.context, props)
    props.source_type = 'MOVIE'
    props.frame_end = 0
    props.person_mode = 'AUTO'
    props.use_fov = False
    req = ops.estimate_request(bpy.context, props)
    assert req["frames"] == "10::2" and req["person"] == "auto" and req["fov"] is None


def test_estimator_choice_from_the_registry(addon, tmp_path):
    """The Estimate panel offers the registered estimators; the request names the choice."""
    import bpy
    from importlib import import_module

    registry = import_module(MODULE + ".estimator.registry")
    ops = import_module(MODULE + ".addon.operators")
    props = bpy.context.scene.p2p_mocap
    items = props.bl_rna.properties["estimator"].enum_items
    assert [i.identifier for i in items] == list(registry.ESTIMATORS)
    assert props.estimator == registry.DEFAULT_ESTIMATOR == "pose2pose"
    props.source_type = 'MOVIE'
    props.movie_path = "/footage/clip.mp4"
    props.output_dir = str(tmp_path)
    assert ops.estimate_request(bpy.context, props)["estimator"] == "pose2pose"
    # The checkpoint preference is the Hand4Whole file: I2L-MeshNet uses its search order.
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.checkpoint_path = str(tmp_path / "snapshot_6.pth.tar")
    try:
        assert ops.estimate_request(bpy.context, props)["checkpoint"] == prefs.checkpoint_path
        props.estimator = "i2l-meshnet"
        req = ops.estimate_request(bpy.context, props)
        assert req["estimator"] == "i2l-meshnet" and req["checkpoint"] is None
        # ... or the add-on's data folder when it holds i2l_meshnet/
        folder = import_module(MODULE + ".addon.paths").data_dir() / "i2l_meshnet"
        folder.mkdir(parents=True)
        try:
            assert ops.estimate_request(bpy.context, props)["checkpoint"] == str(folder.parent)
        finally:
            folder.rmdir()
    finally:
        prefs.checkpoint_path = ""
        props.estimator = registry.DEFAULT_ESTIMATOR


def test_estimate_without_runtime_says_so(addon, monkeypatch):
    import bpy

    monkeypatch.delenv("P2P_MOCAP_WORKER_PYTHON", raising=False)
    props = bpy.context.scene.p2p_mocap
    props.source_type = 'MOVIE'
    props.movie_path = "/footage/clip.mp4"
    with pytest.raises(RuntimeError, match="runtime interpreter"):
        bpy.ops.p2p.estimate()


def _make_take(path: Path, frames=30):
    from pose2pose_mocap.retarget.take import write_take

    rng = np.random.default_rng(0)
    T = frames
    arrays = {
        "fps": 30.0, "frame_index": np.arange(T), "valid": np.ones(T, bool),
        "person_id": 1, "image_size": np.array([640, 480]), "source": "synthetic",
        "model": "test", "standin": True, "gender": "neutral",
        "global_orient": np.tile([np.pi, 0, 0], (T, 1)) + 0.05 * rng.standard_normal((T, 3)),
        "body_pose": 0.1 * rng.standard_normal((T, 63)),
        "left_hand_pose": 0.1 * rng.standard_normal((T, 45)),
        "right_hand_pose": 0.1 * rng.standard_normal((T, 45)),
        "jaw_pose": np.zeros((T, 3)), "leye_pose": np.zeros((T, 3)),
        "reye_pose": np.zeros((T, 3)), "betas": np.zeros((T, 10)),
        "expression": 0.1 * rng.standard_normal((T, 10)),
        "transl": np.tile([0, 0, 3.0], (T, 1)) + 0.02 * rng.standard_normal((T, 3)),
        "focal": np.array([500.0, 500.0]), "princpt": np.array([320.0, 240.0]),
        "cam_trans": np.zeros((T, 3)), "bbox_xywh": np.tile([100.0, 50, 200, 300], (T, 1)),
        "lhand_bbox": np.zeros((T, 4)), "rhand_bbox": np.zeros((T, 4)),
        "face_bbox": np.zeros((T, 4)), "joints_2d": np.zeros((T, 65, 3)),
        "score": np.ones(T),
    }
    return write_take(path, arrays)


def test_import_take_smooth_live_and_export(addon, smplx_root, tmp_path):
    import bpy

    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.smplx_path = str(smplx_root)
    take = _make_take(tmp_path / "clip.take.npz")
    props = bpy.context.scene.p2p_mocap
    props.pose_correctives = False
    props.clean_enabled = False     # smoothing alone (the clean-up: test_qa_ui.py)
    props.live_smoothing = True
    assert bpy.ops.p2p.import_take(filepath=str(take)) == {'FINISHED'}
    arm = bpy.context.view_layer.objects.active
    assert arm.type == 'ARMATURE' and "p2p_rig" in arm and arm.get("p2p_standin")
    action = arm.animation_data.nla_tracks[-1].strips[0].action
    fc = _pelvis_curve(action, arm)
    smoothed = [k.co[1] for k in fc.keyframe_points]
    method = props.smooth_method            # the default (One Euro)
    # Live: changing a value re-smooths the selected take (no re-estimation).
    props.smooth_method = 'none'
    assert "smoothed" in props.smoothing_message, props.smoothing_message
    raw = [k.co[1] for k in _pelvis_curve(action, arm).keyframe_points]
    assert np.abs(np.array(raw) - np.array(smoothed)).max() > 1e-4
    props.smooth_method = method
    again = [k.co[1] for k in _pelvis_curve(action, arm).keyframe_points]
    assert np.allclose(again, smoothed, atol=1e-6)
    # Export with a preset (the scene is not changed).
    n_objects = len(bpy.data.objects)
    out = tmp_path / "clip_unity.fbx"
    assert bpy.ops.p2p.export(preset="unity", filepath=str(out)) == {'FINISHED'}
    assert out.is_file() and out.stat().st_size > 10_000
    assert len(bpy.data.objects) == n_objects
    prefs.smplx_path = ""


def _pelvis_curve(action, arm):
    from pose2pose_mocap.retarget.blender.fcurves import action_channelbag

    bag = action_channelbag(action, arm)
    for fc in bag.fcurves:
        if fc.data_path == 'pose.bones["pelvis"].location':
            return fc
    raise AssertionError("no pelvis location curve")


def test_install_smplx_zip_operator(addon, smplx_root, tmp_path):
    import bpy
    from importlib import import_module

    paths = import_module(MODULE + ".addon.paths")
    z = tmp_path / "models_smplx_v1_1.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(smplx_root / "smplx" / "SMPLX_NEUTRAL.npz", "models/smplx/SMPLX_NEUTRAL.npz")
    assert bpy.ops.p2p.install_smplx(filepath=str(z)) == {'FINISHED'}
    installed = paths.data_dir() / "smplx" / "SMPLX_NEUTRAL.npz"
    assert installed.is_file()
    assert paths.model_flags(bpy.context)["smplx"] == str(installed.parent)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../SMPLX_NEUTRAL.npz", b"x")
    with pytest.raises(RuntimeError, match="refusing"):
        bpy.ops.p2p.install_smplx(filepath=str(bad))
    installed.unlink()


def test_install_runtime_commands_and_a_fake_run(addon, tmp_path):
    from importlib import import_module

    runtime = import_module(MODULE + ".addon.runtime")
    jobs = import_module(MODULE + ".addon.jobs")
    cmds, labels = runtime.runtime_commands("/usr/bin/python3.11", tmp_path / "rt", "cpu")
    py = str(tmp_path / "rt" / "bin" / "python")
    assert cmds[0] == ["/usr/bin/python3.11", "-m", "venv", "--upgrade-deps",
                       str(tmp_path / "rt")]
    assert cmds[1][:4] == [py, "-m", "pip", "install"]
    assert "torch==2.14.1" in cmds[1] and "torchvision==0.29.1" in cmds[1]
    assert cmds[1][-2:] == ["--index-url", "https://download.pytorch.org/whl/cpu"]
    assert "smplx==0.1.28" in cmds[2] and len(labels) == 3
    assert "--index-url" not in runtime.runtime_commands("py", tmp_path / "rt", "auto")[0][1]
    # Driven as a step object with harmless commands.
    fake = [[sys.executable, "-c", "print('step one')"],
            [sys.executable, "-c", "print('step two')"]]
    steps = jobs.CommandSteps(fake, tmp_path / "rt.log", labels=["one", "two"]).run(0.01)
    assert steps.state == "finished" and steps.fraction == 1.0
    log = (tmp_path / "rt.log").read_text()
    assert "step one" in log and "step two" in log
    bad = jobs.CommandSteps([[sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]],
                            tmp_path / "bad.log", labels=["failing"]).run(0.01)
    assert bad.state == "error" and "exit code 3" in bad.error and "boom" in bad.error


class _Layout:
    """Records a panel's drawing; ``prop`` checks the property exists."""

    def __init__(self, calls):
        self.calls = calls
        self.use_property_split = self.use_property_decorate = False
        self.active = self.enabled = True

    def prop(self, data, name, **kw):
        assert name in data.bl_rna.properties, f"no property {name!r}"
        self.calls.append(("prop", name))

    def operator(self, idname, **kw):
        mod, name = idname.split(".")
        import bpy

        getattr(getattr(bpy.ops, mod), name).get_rna_type()     # exists
        self.calls.append(("operator", idname))

        class _Props:
            pass
        return _Props()

    def label(self, **kw):
        self.calls.append(("label", kw.get("text", "")))

    def progress(self, **kw):
        self.calls.append(("progress", kw))

    def menu(self, idname, **kw):
        import bpy

        assert hasattr(bpy.types, idname)
        self.calls.append(("menu", idname))

    def _sub(self, *a, **kw):
        return self

    row = column = box = split = _sub


def test_every_panel_draws(addon):
    import bpy
    from importlib import import_module

    panels = import_module(MODULE + ".addon.panels")
    props = bpy.context.scene.p2p_mocap
    for kind in ('MOVIE', 'FOLDER', 'FILES', 'CLIP', 'IMAGE_EDITOR'):
        props.source_type = kind
        for cls in panels.CLASSES:
            calls = []
            fake = type("P", (), {"layout": _Layout(calls)})()
            cls.draw(fake, bpy.context)
            if hasattr(cls, "draw_header"):
                cls.draw_header(fake, bpy.context)
            assert calls, cls.__name__
    calls = []
    prefs = bpy.context.preferences.addons[MODULE].preferences
    class _Prefs:
        layout = _Layout(calls)

        def __getattr__(self, name):
            return getattr(prefs, name)
    type(prefs).draw(_Prefs(), bpy.context)
    ops = {c[1] for c in calls if c[0] == "operator"}
    assert {"p2p.check_setup", "p2p.install_smplx", "p2p.install_checkpoint",
            "p2p.install_runtime", "p2p.download_detector"} <= ops
    assert any(c[0] == "label" and "Licences" in c[1] for c in calls)
    props.source_type = 'MOVIE'
