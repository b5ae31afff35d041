"""Issue 14 in Blender: the clean-up as live settings of a take (re-solved from the raw take
stored on its action, never estimating again), QA flags as a list and as timeline markers
(only ours replaced), jump / fix / ignore, and the worker's ``clean`` request."""
from __future__ import annotations

import hashlib
import json
import os
from importlib import import_module
from types import SimpleNamespace

import numpy as np
import pytest

from tests.blender.test_addon_ui import MODULE, _Layout, disable_dev_addon, enable_dev_addon

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender
# the runtime interpreter as given when the tests start (the fixtures below hide it)
_WORKER_PYTHON = os.environ.get("P2P_MOCAP_WORKER_PYTHON")


@pytest.fixture(scope="module")
def walk_take(smplx_root, tmp_path_factory):
    """A noisy 3 s walk (bench.motion_truth) with an injected dropout at rows 75..79."""
    from bench.motion_truth import add_noise, make_truth
    from pose2pose_mocap.retarget.smplx_model import load_body_model
    from pose2pose_mocap.retarget.take import write_take

    model = load_body_model(smplx_root / "smplx" / "SMPLX_NEUTRAL.npz")
    noisy = add_noise(make_truth("walk", model, seconds=3.0), seed=1)
    assert ("dropout", 75, 80) in noisy.faults
    return write_take(tmp_path_factory.mktemp("takes") / "walk.take.npz", noisy.take)


@pytest.fixture
def clean_props(addon, smplx_root, monkeypatch):
    """The panel with the clean-up on, the stand-in model, and no worker to reach (the
    local re-solve must not need one)."""
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.smplx_path = str(smplx_root)
    monkeypatch.setenv("P2P_MOCAP_WORKER_PYTHON", "/nonexistent/python")
    props = bpy.context.scene.p2p_mocap
    props.live_smoothing = False
    props.pose_correctives = False
    props.smooth_method = 'butterworth'
    props.clean_fix_flags = ""
    props.clean_foot_lock = True
    props.clean_enabled = True
    props.live_smoothing = True
    yield props
    props.live_smoothing = False
    for name in ("clean_enabled", "clean_fix_flags", "clean_foot_lock", "smooth_method"):
        props.property_unset(name)
    prefs.smplx_path = ""


def test_sidebar_clean_defaults_are_convert_defaults(addon):
    """One definition: the panel's clean-up defaults map to ``ConvertOptions().clean``."""
    from pose2pose_mocap.retarget.options import ConvertOptions

    cleaning = import_module(MODULE + ".addon.cleaning")
    rna = bpy.context.scene.p2p_mocap.bl_rna.properties
    defaults = SimpleNamespace(**{p.identifier: p.default for p in rna
                                  if p.identifier.startswith("clean_")})
    assert defaults.clean_enabled == (ConvertOptions().clean is not None)
    got = cleaning.clean_options_from_props(defaults)
    assert (got.to_dict() if got else None) == \
        (ConvertOptions().clean.to_dict() if ConvertOptions().clean else None)


def _curve_values(action, arm, bone, path="rotation_quaternion"):
    from pose2pose_mocap.retarget.blender.fcurves import action_channelbag

    bag = action_channelbag(action, arm)
    fcs = [fc for fc in bag.fcurves if fc.data_path == f'pose.bones["{bone}"].{path}']
    assert fcs, (bone, path)
    n = len(fcs[0].keyframe_points)
    co = np.empty((len(fcs), 2 * n), np.float32)
    for i, fc in enumerate(sorted(fcs, key=lambda f: f.array_index)):
        fc.keyframe_points.foreach_get("co", co[i])
    return co[0, 0::2].copy(), co[:, 1::2].T.copy()       # frames (n,), values (n, C)


def _our_markers(scene):
    return sorted((m.name, m.frame) for m in scene.timeline_markers if m.name.startswith("QA "))


def _import(path):
    assert bpy.ops.p2p.import_take(filepath=str(path)) == {'FINISHED'}
    arm = bpy.context.view_layer.objects.active
    from pose2pose_mocap.retarget.blender.anim import top_take_action

    return arm, top_take_action(arm)


def test_clean_up_live_flags_markers_jump_fix_ignore(clean_props, walk_take):
    cleaning = import_module(MODULE + ".addon.cleaning")
    scene, props = bpy.context.scene, clean_props
    file_hash = hashlib.sha256(walk_take.read_bytes()).hexdigest()
    # the user's markers: one of another name, one named like ours at another frame
    mine = scene.timeline_markers.new("my marker", frame=10)
    lookalike = scene.timeline_markers.new("QA dropout", frame=3)

    arm, action = _import(walk_take)
    raw_bytes = bytes(action["p2p_take_data"])
    assert json.loads(action[cleaning.CLEAN_PROP])["foot_lock"] is True
    flags = action.p2p_qa_flags
    kinds = [(f.kind, f.frame, f.end_frame) for f in flags]
    assert ("dropout", 76, 81) in kinds, kinds      # rows 75..79 = frames 76..80
    assert ("QA dropout", 76) in _our_markers(scene)
    assert len(_our_markers(scene)) == len(flags) + 1       # + the user's look-alike
    i = next(k for k, f in enumerate(flags) if f.kind == "dropout")
    frames, _ = _curve_values(action, arm, "pelvis", "location")
    assert not np.isin(np.arange(76, 81), frames).any()     # a dropout has no keys

    # jump: the operator and selecting the row both go to the flag's first frame
    scene.frame_set(1)
    assert bpy.ops.p2p.qa_jump(index=i) == {'FINISHED'} and scene.frame_current == 76
    scene.frame_set(1)
    action.p2p_qa_index = i
    assert scene.frame_current == 76

    # live settings: foot locking off/on re-solves the legs from the raw take (and leaves
    # the current frame where it is)
    _, knee_locked = _curve_values(action, arm, "left_knee")
    scene.frame_set(33)
    props.clean_foot_lock = False
    assert scene.frame_current == 33
    assert "cleaned" in props.smoothing_message, props.smoothing_message
    _, knee_free = _curve_values(action, arm, "left_knee")
    assert np.abs(knee_free - knee_locked).max() > 1e-3
    props.clean_foot_lock = True
    _, knee_again = _curve_values(action, arm, "left_knee")
    np.testing.assert_allclose(knee_again, knee_locked, atol=1e-6)

    # ignore: hidden from the timeline and the list, and stays ignored through a re-solve
    assert bpy.ops.p2p.qa_ignore(index=i) == {'FINISHED'}
    assert flags[i].ignored and ("QA dropout", 76) not in _our_markers(scene)
    ul = SimpleNamespace(show_ignored=False, bitflag_filter_item=1 << 30)  # (UILST_FLT_ITEM)
    shown, _ = bpy.types.P2P_UL_qa_flags.filter_items(ul, bpy.context, action, "p2p_qa_flags")
    assert shown[i] == 0 and sum(1 for s in shown if s) == len(flags) - 1
    props.clean_contact_height = 0.06
    i = next(k for k, f in enumerate(action.p2p_qa_flags) if f.kind == "dropout")
    assert action.p2p_qa_flags[i].ignored and ("QA dropout", 76) not in _our_markers(scene)
    assert bpy.ops.p2p.qa_ignore(index=i) == {'FINISHED'}       # shown again
    assert ("QA dropout", 76) in _our_markers(scene)

    # fix: the kind's fix goes into the settings, the take is re-solved, the flag is gone
    assert bpy.ops.p2p.qa_fix(index=i) == {'FINISHED'}
    assert "dropout=interpolate" in props.clean_fix_flags
    assert "dropout" not in [f.kind for f in action.p2p_qa_flags]
    assert ("QA dropout", 76) not in _our_markers(scene)
    frames, _ = _curve_values(action, arm, "pelvis", "location")
    assert np.isin(np.arange(76, 81), frames).all()         # keyed again, interpolated

    # off: plain smoothing from the raw take; our markers and flags go, the user's stay
    props.clean_enabled = False
    assert cleaning.CLEAN_PROP not in action and len(action.p2p_qa_flags) == 0
    assert _our_markers(scene) == [("QA dropout", 3)]
    assert mine.name == "my marker" and lookalike.frame == 3
    _, knee_plain = _curve_values(action, arm, "left_knee")
    assert np.abs(knee_plain - knee_locked).max() > 1e-3

    # the raw take as a muted track on top: keys only, equal to the take re-solved raw
    n_tracks = len(arm.animation_data.nla_tracks)
    assert bpy.ops.p2p.raw_track() == {'FINISHED'}
    tracks = arm.animation_data.nla_tracks
    assert len(tracks) == n_tracks + 1 and tracks[-1].mute
    raw_action = tracks[-1].strips[0].action
    assert raw_action.get("p2p_role") == "raw" and "p2p_take" not in raw_action
    from pose2pose_mocap.retarget.blender.anim import top_take_action

    assert top_take_action(arm) == action                   # still the take to clean
    props.smooth_method = 'none'
    raw_frames, raw_pelvis = _curve_values(raw_action, arm, "pelvis", "location")
    frames, pelvis = _curve_values(action, arm, "pelvis", "location")
    np.testing.assert_array_equal(raw_frames, frames)
    np.testing.assert_allclose(raw_pelvis, pelvis, atol=1e-6)

    # the raw take on the action and the take file were never changed
    assert bytes(action["p2p_take_data"]) == raw_bytes
    assert hashlib.sha256(walk_take.read_bytes()).hexdigest() == file_hash
    for m in (mine, lookalike):
        scene.timeline_markers.remove(m)


def test_qa_panel_draws(clean_props, walk_take):
    qa_ui = import_module(MODULE + ".addon.qa_ui")
    _import(walk_take)

    class _L(_Layout):
        def template_list(self, listtype, list_id, data, prop, active_data, active_prop, **kw):
            assert hasattr(bpy.types, listtype) and prop in data.bl_rna.properties
            self.calls.append(("list", prop))

    calls = []
    fake = SimpleNamespace(layout=_L(calls))
    qa_ui.P2P_PT_qa.draw(fake, bpy.context)
    qa_ui.P2P_PT_qa.draw_header(fake, bpy.context)
    assert ("list", "p2p_qa_flags") in calls and ("prop", "clean_enabled") in calls
    assert {("operator", f"p2p.qa_{n}") for n in ("jump", "fix", "ignore")} <= set(calls)
    assert ("operator", "p2p.raw_track") in calls


def test_bad_fix_flags_are_a_message_not_a_traceback(clean_props, walk_take):
    _arm, action = _import(walk_take)
    assert len(action.p2p_qa_flags)
    clean_props.clean_fix_flags = "dropout=melt"
    assert "failed" in clean_props.smoothing_message and "melt" in clean_props.smoothing_message
    with pytest.raises(RuntimeError, match="melt"):      # the operator reports an error
        bpy.ops.p2p.qa_fix(index=0)
    assert clean_props.clean_fix_flags == "dropout=melt"


def test_one_euro_clean_up_runs_without_scipy(clean_props, walk_take, monkeypatch):
    """Blender's own Python has no scipy: with One Euro or Butterworth smoothing, with or
    without foot locking, the clean-up still runs here (numpy only, ``retarget.iir``); a
    filter that needs scipy (savgol) goes to the worker (unreachable here: a message, not
    a traceback)."""
    import sys

    cleaning = import_module(MODULE + ".addon.cleaning")
    arm, action = _import(walk_take)
    for name in [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "scipy", None)     # import scipy fails from here on
    monkeypatch.setattr(cleaning, "have_scipy", lambda: False)
    _, before = _curve_values(action, arm, "left_knee")
    clean_props.live_smoothing = False
    clean_props.clean_foot_lock = False
    clean_props.live_smoothing = True
    clean_props.smooth_method = 'one_euro'
    assert "cleaned" in clean_props.smoothing_message, clean_props.smoothing_message
    assert json.loads(action["p2p_smoothing"])["method"] == "one_euro"
    _, after = _curve_values(action, arm, "left_knee")
    assert np.abs(after - before).max() > 1e-4
    clean_props.clean_foot_lock = True
    assert "cleaned" in clean_props.smoothing_message, clean_props.smoothing_message
    clean_props.smooth_method = 'butterworth'
    assert "cleaned" in clean_props.smoothing_message, clean_props.smoothing_message
    assert json.loads(action["p2p_smoothing"])["method"] == "butterworth"
    clean_props.smooth_method = 'savgol'
    assert "failed" in clean_props.smoothing_message, clean_props.smoothing_message
    clean_props.live_smoothing = False
    clean_props.smooth_method = 'butterworth'


def test_foot_lock_re_solve_runs_here_without_scipy(clean_props, walk_take, monkeypatch):
    """Foot locking on (the default) and Butterworth smoothing, scipy blocked: the re-solve
    runs in this process (no worker: it would fail here) and gives the keys and flags that
    the re-solve with scipy importable gave."""
    import sys

    cleaning = import_module(MODULE + ".addon.cleaning")
    qa_ui = import_module(MODULE + ".addon.qa_ui")
    arm, action = _import(walk_take)           # cleaned on import: foot lock, Butterworth
    assert json.loads(action[cleaning.CLEAN_PROP])["foot_lock"] is True
    assert json.loads(action["p2p_smoothing"])["method"] == "butterworth"
    _, with_scipy = _curve_values(action, arm, "left_ankle")
    flags = [(f.kind, f.frame, f.end_frame) for f in action.p2p_qa_flags]
    for name in [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "scipy", None)     # import scipy fails from here on
    monkeypatch.setattr(cleaning, "have_scipy", lambda: False)
    monkeypatch.setattr(cleaning, "worker_solver", None)    # calling it would raise
    msg = qa_ui.resolve_selected(bpy.context, clean_props)
    assert msg.startswith("cleaned"), msg
    _, without = _curve_values(action, arm, "left_ankle")
    np.testing.assert_allclose(without, with_scipy, atol=1e-6)
    assert [(f.kind, f.frame, f.end_frame) for f in action.p2p_qa_flags] == flags
    clean_props.live_smoothing = False
    clean_props.clean_foot_lock = False
    assert qa_ui.resolve_selected(bpy.context, clean_props).startswith("cleaned")
    _, unlocked = _curve_values(action, arm, "left_ankle")
    assert np.abs(unlocked - without).max() > 1e-4          # foot locking did something


@pytest.mark.slow
def test_worker_clean_equals_the_local_one(clean_props, walk_take, monkeypatch):
    """Blender without scipy: the worker's ``clean`` request gives the same keys and flags."""
    import sys

    cleaning = import_module(MODULE + ".addon.cleaning")
    qa_ui = import_module(MODULE + ".addon.qa_ui")
    clean_props.smooth_method = 'savgol'       # needs scipy: the worker (Butterworth: here)
    arm, action = _import(walk_take)
    _, local = _curve_values(action, arm, "left_knee")
    local_flags = [(f.kind, f.frame, f.end_frame) for f in action.p2p_qa_flags]
    monkeypatch.setenv("P2P_MOCAP_WORKER_PYTHON", _WORKER_PYTHON or sys.executable)
    monkeypatch.setattr(cleaning, "have_scipy", lambda: False)
    msg = qa_ui.resolve_selected(bpy.context, clean_props)
    assert "cleaned" in msg
    _, remote = _curve_values(action, arm, "left_knee")
    np.testing.assert_allclose(remote, local, atol=1e-5)
    assert [(f.kind, f.frame, f.end_frame) for f in action.p2p_qa_flags] == local_flags



@pytest.mark.slow
def test_worker_clean_request_refuses_bad_input_in_one_line(walk_take, tmp_path):
    """The ``clean`` request: bad options or a file that is not a take give one error line
    and write nothing."""
    import sys

    from pose2pose_mocap.worker.client import run_worker_request

    python = _WORKER_PYTHON or sys.executable
    out = tmp_path / "out.take.npz"
    not_a_take = tmp_path / "junk.npz"
    not_a_take.write_bytes(b"PK\x03\x04 not a take")
    for req, why in (({"options": {"clean": {"fix_flags": {"dropout": "melt"}}}}, "melt"),
                     ({"options": {"clean": {}}, "take": str(not_a_take)}, "junk.npz")):
        full = {"cmd": "clean", "take": str(walk_take), "smplx": None, "out": str(out),
                **req}
        with pytest.raises(RuntimeError) as err:
            run_worker_request(python, full, "cleaned", timeout=120,
                               log_path=tmp_path / "worker.log")
        assert why in str(err.value) and "\n" not in str(err.value).strip(), str(err.value)
        assert not out.exists()


def test_disable_removes_the_qa_types(addon, repo, tmp_path):
    """Disabling the add-on unregisters the panel, list, operators and the Action's flag
    properties (and enabling registers them again); every property has a tooltip."""
    qa_ui = import_module(MODULE + ".addon.qa_ui")
    own = [(cls, name) for cls in qa_ui.CLASSES for base in cls.__mro__
           for name in getattr(base, "__annotations__", {})]
    assert len(own) >= 10
    for cls, name in own:
        rna = cls.bl_rna if not issubclass(cls, bpy.types.Operator) else \
            getattr(bpy.ops.p2p, cls.bl_idname.split(".")[1]).get_rna_type()
        assert rna.properties[name].description, f"{cls.__name__}.{name}: no tooltip"
    classes = qa_ui.CLASSES
    assert all(c.is_registered for c in classes) and hasattr(bpy.types, "P2P_PT_qa")
    disable_dev_addon()
    try:
        assert not any(c.is_registered for c in classes)
        assert not any(hasattr(bpy.types, c.__name__) for c in classes)
        assert not hasattr(bpy.types.Action, "p2p_qa_flags")
        assert not hasattr(bpy.types.Action, "p2p_qa_index")
    finally:
        enable_dev_addon(repo, tmp_path)
    again = import_module(MODULE + ".addon.qa_ui").CLASSES
    assert all(c.is_registered for c in again)
    assert hasattr(bpy.types.Action, "p2p_qa_flags")
