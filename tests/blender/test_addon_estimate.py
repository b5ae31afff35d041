"""The Estimate operator's step object with the worker process: the REAL estimator on
stand-ins, cancel with a partial take, and clean errors for a crashing, garbage-printing or
torch-less worker. The real-estimator tests need a Python with torch: the environment
variable P2P_MOCAP_WORKER_PYTHON, else this interpreter when it has torch."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

from .test_addon_ui import MODULE

# End to end through the worker process (estimation in a second Python): minutes on 2 cores.
pytestmark = [pytest.mark.blender, pytest.mark.slow]
CLIP = Path(__file__).resolve().parents[2] / "samples" / "wave.mp4"


def _torch_python() -> str | None:
    env = os.environ.get("P2P_MOCAP_WORKER_PYTHON")
    if env:
        return env
    return sys.executable if importlib.util.find_spec("torch") is not None else None


TORCH_PY = _torch_python()
needs_torch = pytest.mark.skipif(
    TORCH_PY is None, reason="no Python with torch for the worker: set P2P_MOCAP_WORKER_PYTHON "
                             "(e.g. to the main venv's bin/python)")


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """Stand-ins written by the torch interpreter (the 4.2 venv has no torch)."""
    root = tmp_path_factory.mktemp("standins_worker")
    r = subprocess.run([TORCH_PY, "-m", "pose2pose_mocap.cli", "make-standins", str(root)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return root


@pytest.fixture()
def configured(addon, standins, tmp_path):
    import bpy

    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.smplx_path = str(standins)
    prefs.checkpoint_path = str(standins / "pose2pose" / "standin.pth.tar")
    prefs.runtime_python = TORCH_PY
    prefs.device = 'cpu'
    props = bpy.context.scene.p2p_mocap
    props.source_type = 'MOVIE'
    props.movie_path = str(CLIP)
    props.output_dir = str(tmp_path)
    props.pose_correctives = False
    props.person_mode = 'AUTO'
    yield props
    prefs.smplx_path = prefs.checkpoint_path = prefs.runtime_python = ""


def _take_rigs(bpy):
    return [o for o in bpy.context.scene.objects if o.type == 'ARMATURE' and "p2p_rig" in o]


@needs_torch
def test_estimate_operator_runs_the_worker_and_imports(configured):
    import bpy

    configured.frame_start, configured.frame_end, configured.frame_step = 0, 4, 1
    before = len(_take_rigs(bpy))
    assert bpy.ops.p2p.estimate() == {'FINISHED'}
    rigs = _take_rigs(bpy)
    assert len(rigs) == before + 1
    wm = bpy.context.window_manager
    assert wm.p2p_last_error == "" and Path(wm.p2p_last_log).is_file()
    assert wm.p2p_last_standin is True          # the panel's stand-in warning shows
    takes = sorted(Path(configured.output_dir).glob("*.take.npz"))
    assert len(takes) == 1


@needs_torch
def test_step_object_cancel_keeps_and_imports_a_partial_take(configured):
    import bpy

    jobs = import_module(MODULE + ".addon.jobs")
    ops = import_module(MODULE + ".addon.operators")
    configured.frame_start, configured.frame_end, configured.frame_step = 0, 60, 1
    request = ops.estimate_request(bpy.context, configured)
    job = jobs.EstimateSteps(request, python=TORCH_PY,
                             on_takes=ops.importer_for(bpy.context, configured))
    fractions, texts = [], set()
    import time
    t0 = time.monotonic()
    while job.poll():
        fractions.append(job.fraction)
        texts.add(job.status_text)
        if job.stage == "estimating" and job.done > 0 and not job.cancel_requested:
            job.cancel()
        assert time.monotonic() - t0 < 240
        time.sleep(0.05)
    assert job.state == "cancelled", job.error_with_log
    assert 0 < job.done < 60 and len(job.takes) == 1
    assert any("frames/s" in t for t in texts)
    assert fractions == sorted(fractions) or max(fractions) <= 1.0
    arms, _notes = job.imported
    from pose2pose_mocap.retarget.take import read_take

    take = read_take(job.takes[0])
    assert take.num_frames == job.done
    action = arms[0].animation_data.nla_tracks[-1].strips[0].action
    lo, hi = action.frame_range
    assert int(round(hi - lo)) + 1 == job.done
    assert import_module(MODULE + ".addon.state").active_estimate() is None


@needs_torch
def test_worker_error_is_reported_with_the_log(configured):
    import bpy

    configured.movie_path = str(Path(configured.output_dir) / "missing.mp4")
    with pytest.raises(RuntimeError, match="missing.mp4.*log: "):
        bpy.ops.p2p.estimate()
    wm = bpy.context.window_manager
    assert "missing.mp4" in wm.p2p_last_error and Path(wm.p2p_last_log).is_file()


def _fake(addon, tmp_path, code: str):
    jobs = import_module(MODULE + ".addon.jobs")
    return jobs.EstimateSteps({"inputs": "x"}, command=[sys.executable, "-c", code],
                              log_path=tmp_path / "fake.log").run(timeout=60)


def test_garbage_from_the_worker_is_a_clean_error(addon, tmp_path):
    job = _fake(addon, tmp_path, "print('hello, I am not JSON', flush=True)\n"
                                 "import time; time.sleep(30)")
    assert job.state == "error"
    assert "not part of its protocol" in job.error and "hello" in job.error
    assert str(tmp_path / "fake.log") in job.error_with_log
    assert job.worker.proc.poll() is not None      # killed, not left running


def test_crashing_worker_is_a_clean_error(addon, tmp_path):
    code = ("import json, sys\n"
            "print(json.dumps({'event': 'ready'}), flush=True)\n"
            "print(json.dumps({'event': 'progress', 'stage': 'estimating', 'done': 2, "
            "'total': 9}), flush=True)\n"
            "sys.stderr.write('Traceback (most recent call last):\\n  File x\\n"
            "ZeroDivisionError: division by zero\\n')\n"
            "sys.exit(7)\n")
    job = _fake(addon, tmp_path, code)
    assert job.state == "error"
    assert "stopped unexpectedly (exit code 7)" in job.error
    assert "ZeroDivisionError: division by zero" in job.error


def test_worker_without_torch_says_what_to_do(addon, tmp_path):
    jobs = import_module(MODULE + ".addon.jobs")
    client = import_module(MODULE + ".worker.client")
    # -S: no site-packages, so no torch (whatever this interpreter has).
    job = jobs.EstimateSteps({"inputs": "x"}, command=[sys.executable, "-S",
                                                        str(client.WORKER_SCRIPT), "--log",
                                                        str(tmp_path / "w.log")],
                             log_path=tmp_path / "w.log").run(timeout=60)
    assert job.state == "error"
    assert "cannot import torch" in job.error and "runtime interpreter" in job.error


@needs_torch
def test_smoothing_in_the_worker_when_blender_has_no_scipy(configured, monkeypatch, tmp_path):
    """Blender's own Python has no scipy: import and live smoothing with a filter that needs
    it (savgol; Butterworth and One Euro are numpy only) go through the worker."""
    import bpy
    import numpy as np

    from .test_addon_ui import _make_take, _pelvis_curve

    importing = import_module(MODULE + ".addon.importing")
    monkeypatch.setattr(importing, "have_scipy", lambda: False)
    configured.clean_enabled = False    # (the clean-up, on by default, re-solves instead)
    configured.live_smoothing = True
    configured.smooth_method = 'savgol'
    take = _make_take(tmp_path / "noscipy.take.npz")
    assert bpy.ops.p2p.import_take(filepath=str(take)) == {'FINISHED'}
    arm = bpy.context.view_layer.objects.active
    action = arm.animation_data.nla_tracks[-1].strips[0].action
    assert json.loads(action["p2p_smoothing"])["method"] == "savgol"
    smoothed = np.array([k.co[1] for k in _pelvis_curve(action, arm).keyframe_points])
    configured.smooth_method = 'none'
    assert "smoothed" in configured.smoothing_message, configured.smoothing_message
    raw = np.array([k.co[1] for k in _pelvis_curve(action, arm).keyframe_points])
    configured.smooth_method = 'savgol'
    assert "in the worker" in configured.smoothing_message, configured.smoothing_message
    again = np.array([k.co[1] for k in _pelvis_curve(action, arm).keyframe_points])
    assert np.abs(raw - smoothed).max() > 1e-4
    assert np.allclose(again, smoothed, atol=1e-5)
    configured.live_smoothing = False                 # (no re-solve while resetting)
    for name in ("clean_enabled", "smooth_method", "live_smoothing"):
        configured.property_unset(name)


@needs_torch
def test_check_setup_runs_the_full_doctor_in_the_worker(configured):
    import bpy

    assert bpy.ops.p2p.check_setup() == {'FINISHED'}
    wm = bpy.context.window_manager
    assert wm.p2p_setup_report.startswith(f"Runtime interpreter: {TORCH_PY}")
    assert "torch" in wm.p2p_setup_report.lower()
    assert wm.p2p_setup_ready is True and wm.p2p_setup_standins is True


@needs_torch
def test_import_take_accepts_other_tools_results_through_the_worker(configured, tmp_path):
    """Import Take with a Meshcapade .smpl file: the worker's importer makes the take (as it
    would for GVHMR's .pt, which needs torch), kept in the take folder, then the rig."""
    import bpy

    from pose2pose_mocap.retarget.take import read_take

    from ..retarget.test_importers import smpl_file

    src = tmp_path / "src"
    src.mkdir()
    smpl_file(src / "dance.smpl")
    importing = import_module(MODULE + ".addon.importing")
    arms, notes = importing.import_take_files(bpy.context, [str(src / "dance.smpl")])
    assert len(arms) == 1 and arms[0].type == 'ARMATURE'
    assert any("imported dance.smpl (smplcodec)" in n for n in notes), notes
    takes = sorted(Path(configured.output_dir).glob("dance*.take.npz"))
    assert [t.name for t in takes] == ["dance.take.npz"]
    take = read_take(takes[0])
    assert take.estimator == "smplcodec" and take.num_frames == 4
    # A second import keeps the first take (numbered name, as estimate numbers takes).
    importing.import_take_files(bpy.context, [str(src / "dance.smpl")])
    assert sorted(t.name for t in Path(configured.output_dir).glob("dance*.npz")) == \
        ["dance-2.take.npz", "dance.take.npz"]
