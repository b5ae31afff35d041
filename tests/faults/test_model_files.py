"""Fault matrix, model files: hostile SMPL-X files, the .pkl variant, checkpoints that do
not fit or run code, ``weights check`` (issue #11 items 1 and 15, issue #18).

A hostile ``SMPLX_NEUTRAL.npz`` is the stand-in plus one object array whose pickle
would create ``pwn_marker``. It is tried through every way a model file is read: the
CLI (``estimate``, ``doctor``, ``weights check``), the estimator worker the add-on
starts, the add-on's setup check and zip installer, the retarget loader.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO, assert_one_line_error, run_cli, snapshot

pytestmark = pytest.mark.torch

CLIP = REPO / "samples" / "wave.mp4"
WORKER = REPO / "estimator" / "worker.py"
PICKLED = "holds pickled python objects"
# Progress that ``estimate`` prints before the network is loaded (not an error line).
class Pwn:
    """Unpickling this creates the file ``path`` (stands for any code a pickle can run)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _pickled(marker) -> np.ndarray:
    return np.array([Pwn(marker)], dtype=object)


def rebuild_npz(src: Path, dst: Path, *, drop=(), add=None) -> Path:
    """``src`` without the arrays ``drop``, plus ``add`` ({name: array}, pickles allowed)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED,
                                                       allowZip64=True) as zout:
        for info in zin.infolist():
            if info.filename[:-4] in drop:
                continue
            with zin.open(info) as fin, zout.open(info.filename, "w", force_zip64=True) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        for name, arr in (add or {}).items():
            with zout.open(name + ".npy", "w", force_zip64=True) as fout:
                np.lib.format.write_array(fout, arr, allow_pickle=True)
    return dst


def one_error_line(res, *must_contain) -> str:
    """``assert_one_line_error``: a failing estimate prints no progress line before it."""
    return assert_one_line_error(res, *must_contain)


@pytest.fixture(scope="module")
def neutral(standin_root) -> Path:
    return standin_root / "smplx" / "SMPLX_NEUTRAL.npz"


@pytest.fixture(scope="module")
def checkpoint(standin_root) -> Path:
    return standin_root / "pose2pose" / "standin.pth.tar"


@pytest.fixture
def hostile(tmp_path, neutral, pwn_marker):
    """``<tmp>/models/smplx/SMPLX_NEUTRAL.npz``: the stand-in plus a pickled array 'extra'."""
    path = rebuild_npz(neutral, tmp_path / "models" / "smplx" / "SMPLX_NEUTRAL.npz",
                       add={"extra": _pickled(pwn_marker)})
    yield path
    shutil.rmtree(tmp_path / "models", ignore_errors=True)


@pytest.fixture
def joint2num(tmp_path, neutral, pwn_marker):
    """The stand-in with a pickled 'joint2num' (as the real release has) that would pwn."""
    path = rebuild_npz(neutral, tmp_path / "j2n" / "smplx" / "SMPLX_NEUTRAL.npz",
                       add={"joint2num": _pickled(pwn_marker),
                            "part2num": np.array([{"head": 1}], dtype=object),
                            "allow_pickle": np.array(True)})
    yield path
    shutil.rmtree(tmp_path / "j2n", ignore_errors=True)


# ---------------------------------------------------------------- item 1: hostile SMPL-X
def test_hostile_smplx_estimate_cli_runs_nothing(tmp_path, hostile, checkpoint, pwn_marker):
    out = tmp_path / "out"
    out.mkdir()
    res = run_cli(["estimate", CLIP, "--smplx", hostile.parent.parent, "--checkpoint", checkpoint,
                   "--detector", "none", "--frames", "0:2", "--device", "cpu", "-o", f"{out}/"],
                  cwd=tmp_path)
    one_error_line(res, PICKLED, "'extra'")
    assert not pwn_marker.exists(), "the pickle in the SMPL-X file ran"
    assert snapshot(out) == {}


def test_hostile_smplx_weights_check_and_doctor(tmp_path, hostile, checkpoint, pwn_marker):
    res = run_cli(["weights", "check", hostile], cwd=tmp_path)
    assert_one_line_error(res, PICKLED, "SMPLX_NEUTRAL.npz")
    # issue #18: the sha256 is printed for SMPL-X files too
    assert f"sha256: {hashlib.sha256(hostile.read_bytes()).hexdigest()}" in res.stdout
    res = run_cli(["doctor", "--smplx", hostile.parent.parent, "--checkpoint", checkpoint],
                  cwd=tmp_path)
    assert res.rc == 1 and "Traceback" not in res.stdout + res.stderr
    assert "[FAIL] SMPLX_NEUTRAL.npz" in res.stdout and PICKLED in res.stdout.lower()
    assert not pwn_marker.exists()


def test_hostile_smplx_add_on_setup_check_and_loaders(hostile, checkpoint, pwn_marker):
    """The add-on's *Check setup* (doctor without torch), the retarget loader and the
    network's SMPL-X layer all refuse it by content."""
    from pose2pose_mocap.doctor import run_checks
    from pose2pose_mocap.estimator.errors import ModelFileError as LayerError
    from pose2pose_mocap.estimator.pose2pose.smplx_layer import build_smplx_layer
    from pose2pose_mocap.retarget.errors import ModelFileError
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model

    report = run_checks(smplx=hostile, checkpoint=checkpoint, runtime=False)
    assert not report.ready
    assert any(PICKLED in h.lower() for p in report.problems for h in p.hint)
    with pytest.raises(ModelFileError, match="holds pickled Python objects"):
        load_smplx_model(hostile)
    with pytest.raises(LayerError, match="holds pickled Python objects"):
        build_smplx_layer(hostile)
    assert not pwn_marker.exists()


def _worker_events(requests, tmp_path, until: int, timeout=240):
    proc = subprocess.Popen([sys.executable, str(WORKER), "--log", str(tmp_path / "w.log")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
    try:
        for req in requests:
            proc.stdin.write(json.dumps(req) + "\n")
        proc.stdin.flush()
        events, answers, t0 = [], 0, time.monotonic()
        for line in proc.stdout:
            ev = json.loads(line)
            events.append(ev)
            if ev["event"] in ("done", "error", "doctor"):
                answers += 1
                if answers == until:
                    break
            assert time.monotonic() - t0 < timeout
        proc.stdin.close()
        assert proc.wait(60) == 0
        return events
    finally:
        if proc.poll() is None:
            proc.kill()


def test_hostile_smplx_worker_doctor_and_estimate(tmp_path, hostile, checkpoint, pwn_marker):
    """The worker the add-on starts: its full setup check and an estimate request."""
    flags = {"smplx": str(hostile.parent.parent), "checkpoint": str(checkpoint)}
    (tmp_path / "out").mkdir()
    events = _worker_events([
        {"cmd": "doctor", **flags, "detector": None},
        {"cmd": "estimate", "inputs": str(CLIP), "output": str(tmp_path / "out") + "/",
         "frames": "0:2", "detector": "none", "device": "cpu", "batch": 2, **flags},
    ], tmp_path, until=2)
    doctor = next(e for e in events if e["event"] == "doctor")
    assert doctor["ready"] is False and PICKLED in doctor["report"].lower()
    error = events[-1]
    assert error["event"] == "error" and PICKLED in error["message"].lower(), events
    assert "\n" not in error["message"]
    assert not pwn_marker.exists()
    assert snapshot(tmp_path / "out") == {}


@pytest.mark.blender
def test_hostile_smplx_zip_refused_by_the_add_on_installer(tmp_path, hostile, pwn_marker):
    """The add-on's *Install SMPL-X Zip* button (the real operator, headless)."""
    import bpy
    from importlib import import_module

    from ..blender.test_addon_ui import MODULE, disable_dev_addon, enable_dev_addon

    bpy.ops.wm.read_factory_settings(use_empty=True)
    enable_dev_addon(REPO, tmp_path)
    try:
        paths = import_module(MODULE + ".addon.paths")
        before = snapshot(paths.data_dir())
        z = tmp_path / "models_smplx_v1_1.zip"
        with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.write(hostile, "models/smplx/SMPLX_NEUTRAL.npz")
        with pytest.raises(RuntimeError, match="holds pickled Python objects"):
            bpy.ops.p2p.install_smplx(filepath=str(z))
        assert snapshot(paths.data_dir()) == before
        assert not pwn_marker.exists()
        z.unlink()
    finally:
        disable_dev_addon()


def test_pickled_joint2num_is_tolerated_and_never_read(tmp_path, joint2num, pwn_marker):
    """The real v1.1 release pickles 'part2num'/'joint2num': accepted, never unpickled,
    left out of the private copy smplx reads."""
    from pose2pose_mocap.estimator.pose2pose.smplx_layer import build_smplx_layer
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model
    from pose2pose_mocap.common.smplx_file import check_smplx_file

    assert check_smplx_file(joint2num) == []
    assert load_smplx_model(joint2num).standin
    layer = build_smplx_layer(joint2num)
    assert tuple(layer.v_template.shape) == (10475, 3)
    assert not pwn_marker.exists(), "a tolerated pickle was read"
    res = run_cli(["weights", "check", joint2num], cwd=tmp_path)
    assert res.rc == 0 and res.stderr == "", res.stderr
    assert "stand-in" in res.stdout
    assert not pwn_marker.exists()


@pytest.mark.parametrize("name, array, message", [
    ("vt", "pickle", "array 'vt' holds pickled Python objects"),   # a known name, pickled
    ("J", "pickle", "array 'J' holds pickled Python objects"),     # an unknown name, pickled
    ("evil_extra", "plain", "unexpected array 'evil_extra'"),      # unknown, plain
], ids=["pickled-known-name", "pickled-unknown-name", "unknown-plain"])
def test_other_pickled_or_unknown_arrays_are_refused(tmp_path, neutral, pwn_marker, name,
                                                     array, message):
    arr = _pickled(pwn_marker) if array == "pickle" else np.zeros(3)
    path = rebuild_npz(neutral, tmp_path / "x" / "SMPLX_NEUTRAL.npz", drop=(name,),
                       add={name: arr})
    try:
        res = run_cli(["weights", "check", path], cwd=tmp_path)
        assert_one_line_error(res, message)
        from pose2pose_mocap.retarget.smplx_model import load_smplx_model
        from pose2pose_mocap.retarget.errors import ModelFileError

        with pytest.raises(ModelFileError, match=message.split(" holds")[0]):
            load_smplx_model(path)
        assert not pwn_marker.exists()
    finally:
        path.unlink()


def test_pkl_variant_is_never_unpickled(tmp_path, checkpoint, pwn_marker):
    folder = tmp_path / "smplx"
    folder.mkdir()
    pkl = folder / "SMPLX_NEUTRAL.pkl"
    pkl.write_bytes(pickle.dumps({"v_template": Pwn(pwn_marker)}))
    disguised = folder / "SMPLX_NEUTRAL.npz"   # a pickle under the .npz name
    disguised.write_bytes(pkl.read_bytes())
    res = run_cli(["weights", "check", pkl], cwd=tmp_path)
    assert_one_line_error(res, ".pkl variant")
    res = run_cli(["weights", "check", disguised], cwd=tmp_path)
    assert_one_line_error(res, "not a readable .npz")
    from pose2pose_mocap.estimator.errors import ModelFileError
    from pose2pose_mocap.estimator.pose2pose.smplx_layer import build_smplx_layer
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model

    for path in (pkl, disguised):
        with pytest.raises(ModelFileError):
            build_smplx_layer(path)
        with pytest.raises(ValueError):
            load_smplx_model(path)
    (tmp_path / "out").mkdir()
    res = run_cli(["estimate", CLIP, "--smplx", pkl, "--checkpoint", checkpoint,
                   "--detector", "none", "--frames", "0:1", "--device", "cpu",
                   "-o", f"{tmp_path / 'out'}/"], cwd=tmp_path)
    one_error_line(res, ".pkl variant")
    assert not pwn_marker.exists()


def test_private_copy_is_private_and_removed(neutral):
    """smplx only ever opens a fresh 0700 folder's plain-array copy, gone afterwards."""
    import os
    import stat

    from pose2pose_mocap.common.smplx_file import LAYER_ARRAYS, verified_copy

    with verified_copy(neutral) as copy:
        folder = copy.parent
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert copy.name == "SMPLX_NEUTRAL.npz" and os.listdir(folder) == [copy.name]
        with np.load(copy, allow_pickle=False) as z:
            assert sorted(z.files) == sorted(LAYER_ARRAYS)
        with zipfile.ZipFile(copy) as z:
            assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    assert not folder.exists()
    with pytest.raises(RuntimeError):
        with verified_copy(neutral) as copy:
            folder = copy.parent
            raise RuntimeError("smplx failed")
    assert not folder.exists()


# ---------------------------------------------------------------- checkpoints at the CLI
def _small_checkpoint(path: Path, network: dict) -> Path:
    import torch

    torch.save({"epoch": 6, "network": network}, path)
    return path


def test_code_running_checkpoint_refused_at_the_cli(tmp_path, standin_root, pwn_marker):
    """(test_checkpoint.py covers the loader; this is the user's view: one line, no run.)"""
    import torch

    evil = tmp_path / "snapshot_6.pth.tar"
    torch.save({"epoch": 6, "network": {"module.backbone.conv1.weight": Pwn(pwn_marker)}}, evil)
    res = run_cli(["weights", "check", evil], cwd=tmp_path)
    assert_one_line_error(res, "cannot be loaded", "arbitrary code")
    assert "kind:   unknown" in res.stdout
    (tmp_path / "out").mkdir()
    res = run_cli(["estimate", CLIP, "--smplx", standin_root, "--checkpoint", evil,
                   "--detector", "none", "--frames", "0:1", "--device", "cpu",
                   "-o", f"{tmp_path / 'out'}/"], cwd=tmp_path)
    one_error_line(res, "refusing to load", "arbitrary code")
    assert not pwn_marker.exists()
    assert snapshot(tmp_path / "out") == {}


@pytest.mark.slow
def test_wrong_checkpoint_keys_refused_at_the_cli(tmp_path, standin_root):
    import torch

    wrong = _small_checkpoint(tmp_path / "wrong.pth.tar",
                              {"module.backbone.conv1.weight": torch.zeros(64, 3, 7, 7),
                               "module.not_a_layer.weight": torch.zeros(3)})
    res = run_cli(["weights", "check", wrong], cwd=tmp_path)
    assert_one_line_error(res, "cannot be loaded", "missing", "unexpected")
    (tmp_path / "out").mkdir()
    res = run_cli(["estimate", CLIP, "--smplx", standin_root, "--checkpoint", wrong,
                   "--detector", "none", "--frames", "0:1", "--device", "cpu",
                   "-o", f"{tmp_path / 'out'}/"], cwd=tmp_path)
    one_error_line(res, "does not match", "not_a_layer")


def test_weights_check_fails_for_a_standin_the_network_cannot_load(tmp_path):
    """Item 15: a file recognised as a stand-in but with the wrong layout exited 0."""
    import torch

    from pose2pose_mocap.weights import standin_rule

    keys = standin_rule.official_keys_and_shapes()
    full = standin_rule.make_state_dict(keys, 1)
    keep = ("box_net.face_size.2.bias", "body_rotation_net.cam_out.0.bias")
    path = _small_checkpoint(tmp_path / "standin_part.pth.tar",
                             {"module." + k: torch.from_numpy(full[k]) for k in keep})
    res = run_cli(["weights", "check", path], cwd=tmp_path)
    assert "kind:   stand-in" in res.stdout
    assert_one_line_error(res, "cannot be loaded", "missing")
    from pose2pose_mocap.doctor import run_checks

    report = run_checks(smplx=None, checkpoint=path)
    assert not report.ready
    assert any("cannot load" in p.value for p in report.problems)


def test_weights_check_smplx_prints_its_sha256(tmp_path, neutral):
    """Issue #18: ``weights check SMPLX_NEUTRAL.npz`` prints the sha256 like for checkpoints."""
    res = run_cli(["weights", "check", neutral], cwd=tmp_path)
    assert res.rc == 0, res.stderr
    h = hashlib.sha256()
    with open(neutral, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    assert f"sha256: {h.hexdigest()}" in res.stdout and "kind:   stand-in" in res.stdout
