"""``p2p-mocap doctor`` and ``make-standins`` as a user runs them: exit codes and messages."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pose2pose_mocap.doctor import run_checks
from pose2pose_mocap.weights import locations

pytestmark = pytest.mark.torch
CLI = Path(sys.executable).with_name("p2p-mocap")


def p2p(*args, env_extra=None, data_dir=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["P2P_MOCAP_DATA_DIR"] = str(data_dir) if data_dir else env["P2P_MOCAP_DATA_DIR"]
    env.update(env_extra or {})
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=600)


def test_console_script_is_installed():
    assert CLI.is_file(), "pip install did not create the p2p-mocap command"


@pytest.mark.slow
def test_doctor_without_files_exits_1_and_says_where(tmp_path):
    r = p2p("doctor", data_dir=tmp_path / "empty")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    out = r.stdout
    assert "[FAIL] SMPLX_NEUTRAL.npz: not found" in out
    assert f"put SMPLX_NEUTRAL.npz at: {tmp_path / 'empty' / 'smplx' / 'SMPLX_NEUTRAL.npz'}" in out
    assert "smpl-x.is.tue.mpg.de" in out
    assert f"put snapshot_6.pth.tar at: {tmp_path / 'empty' / 'pose2pose' / 'snapshot_6.pth.tar'}" in out
    assert "Hand4Whole_RELEASE" in out
    assert "torch: 2.14.1" in out and "CUDA:" in out and "Blender (bpy): " in out
    assert "Result: NOT ready" in out


@pytest.mark.slow
def test_make_standins_then_doctor_is_ready_and_loud_about_standins(tmp_path):
    r = p2p("make-standins", str(tmp_path), data_dir=tmp_path / "unused")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "STAND-IN" in r.stdout
    assert (tmp_path / "smplx" / "SMPLX_NEUTRAL.npz").is_file()
    assert (tmp_path / "pose2pose" / "standin.pth.tar").is_file()
    # Found through the user data directory (3rd place of the search order).
    r = p2p("doctor", data_dir=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "STAND-IN (procedural, not the SMPL-X model)" in r.stdout
    assert "stand-in" in r.stdout.lower().split("pose2pose (hand4whole) checkpoint")[1]
    assert "WARNING: STAND-IN files in use" in r.stdout
    assert "Result: ready (with stand-ins)" in r.stdout
    # Through the environment variables (2nd place) and flags (1st place) too.
    env = {locations.ENV_SMPLX: str(tmp_path), locations.ENV_CHECKPOINT: str(tmp_path / "pose2pose")}
    assert p2p("doctor", env_extra=env, data_dir=tmp_path / "empty").returncode == 0
    r = p2p("doctor", "--smplx", str(tmp_path / "smplx" / "SMPLX_NEUTRAL.npz"),
            "--checkpoint", str(tmp_path / "pose2pose" / "standin.pth.tar"),
            data_dir=tmp_path / "empty")
    assert r.returncode == 0, r.stdout


def test_renamed_standin_checkpoint_is_still_a_standin(standin_root, tmp_path):
    # Content decides, not the name: a stand-in renamed to the official name is caught.
    (tmp_path / "pose2pose").mkdir()
    shutil.copy(standin_root / "pose2pose" / "standin.pth.tar",
                tmp_path / "pose2pose" / "snapshot_6.pth.tar")
    shutil.copytree(standin_root / "smplx", tmp_path / "smplx")
    report = run_checks(smplx=tmp_path, checkpoint=tmp_path)
    assert report.ready and report.standins


def test_explicit_flag_to_missing_file_is_an_error_not_a_fallback(standin_root, tmp_path):
    r = p2p("doctor", "--smplx", str(tmp_path / "nope"), data_dir=standin_root)
    assert r.returncode == 1
    assert f"the path given ({tmp_path / 'nope'}) does not hold" in r.stdout


def test_broken_smplx_file_is_reported(standin_root, tmp_path):
    bad = tmp_path / "smplx"
    bad.mkdir()
    with zipfile.ZipFile(standin_root / "smplx" / "SMPLX_NEUTRAL.npz") as z, \
            zipfile.ZipFile(bad / "SMPLX_NEUTRAL.npz", "w") as out:
        for name in z.namelist():
            if name != "posedirs.npy":
                out.writestr(name, z.read(name))
    report = run_checks(smplx=tmp_path, checkpoint=standin_root)
    assert not report.ready
    assert any("'posedirs' is missing" in h for p in report.problems for h in p.hint)
    (bad / "SMPLX_NEUTRAL.npz").write_bytes(b"not a zip")
    report = run_checks(smplx=tmp_path, checkpoint=standin_root)
    assert any("not a readable .npz" in h for p in report.problems for h in p.hint)


def test_make_standins_never_overwrites_a_real_model_file(tmp_path):
    (tmp_path / "smplx").mkdir()
    real = tmp_path / "smplx" / "SMPLX_NEUTRAL.npz"
    np.savez(real, v_template=np.zeros((3, 3)))  # no 'standin' marker: treated as real
    before = real.read_bytes()
    r = p2p("make-standins", str(tmp_path))
    assert r.returncode == 1
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    assert str(real) in lines[0] and "is a real model file; not overwriting" in lines[0]
    assert real.read_bytes() == before


def test_in_blender_mode_does_not_import_torch(standin_root):
    code = ("import sys; from pose2pose_mocap.doctor import run_checks; "
            f"r = run_checks(smplx={str(standin_root)!r}, checkpoint={str(standin_root)!r}, "
            "runtime=False); assert r.ready and r.standins, r; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
