"""``convert --blender PATH``: the .blend is built in that Blender, so that Blender opens it.

Blender 4.2 LTS is a bpy 4.2 venv here (no Blender executable): the runner accepts a
Python with Blender's bpy as "a Blender". The test converts a take through the CLI with
``--blender`` pointing at that Python and opens the file in bpy 4.2 in a fresh process
(``wm.open_mainfile``); the 5.0 file written without ``--blender`` is refused by 4.2,
which is why the option exists. Set ``P2P_MOCAP_B42_PYTHON`` to another bpy-4.2 Python.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

B42 = Path(os.environ.get("P2P_MOCAP_B42_PYTHON", "/work/venv-b42/bin/python"))
CLI = [sys.executable, "-m", "pose2pose_mocap.cli"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not B42.is_file(), reason=f"no bpy 4.2 Python at {B42} (set P2P_MOCAP_B42_PYTHON)")]
# Runs with the main venv (the CLI and the stand-ins need torch); .ci/run points it at its
# bpy 4.2 venv. In the 4.2 venv itself there is nothing to compare with.
pytest.importorskip("torch")

OPEN = r"""
import sys, bpy
try:
    bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)
except RuntimeError as exc:
    print("REFUSED", str(exc).strip().splitlines()[-1]); sys.exit(3)
arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
keyed = sum(len(a.fcurves) for a in bpy.data.actions)   # (4.2: legacy fcurves)
print("OPENED", bpy.app.version_string, len(arms), len(arms[0].data.bones) if arms else 0,
      keyed > 0, bpy.context.scene.frame_end)
"""


def _take(path: Path, frames: int = 5) -> Path:
    from pose2pose_mocap.retarget.take import write_take

    from ..retarget.synthetic import take_arrays

    return write_take(path, take_arrays(T=frames))


def _open_in_42(blend: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(B42), "-c", OPEN, str(blend)], capture_output=True, text=True,
                          timeout=300)


def test_convert_with_blender_42_opens_in_42(standin_root, tmp_path):
    take = _take(tmp_path / "clip.take.npz")
    r = subprocess.run(CLI + ["convert", str(take), "-o", f"{tmp_path}/out/", "--smplx",
                              str(standin_root), "--blender", str(B42)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    blend = tmp_path / "out" / "clip.blend"
    assert blend.is_file() and "(Blender 4.2 format)" in r.stdout, r.stdout
    # Our lines only: no Blender chatter, no temporary names.
    assert ".part" not in r.stdout + r.stderr and "Info:" not in r.stdout + r.stderr
    opened = _open_in_42(blend)
    assert opened.returncode == 0 and "OPENED 4.2" in opened.stdout, opened.stdout + opened.stderr
    fields = opened.stdout.split("OPENED", 1)[1].split()
    assert fields[2] == "1" and int(fields[3]) >= 55 and fields[4] == "True"
    assert int(fields[5]) >= 5


@pytest.mark.skipif(sys.version_info < (3, 11) or __import__("bpy").app.version < (4, 4, 0),
                    reason="run with a bpy that writes a newer format than 4.2's")
def test_default_convert_writes_a_file_42_refuses(standin_root, tmp_path):
    """Why --blender exists: the bpy 5.0 module's .blend is not readable by 4.2."""
    take = _take(tmp_path / "clip.take.npz", frames=2)
    r = subprocess.run(CLI + ["convert", str(take), "--smplx", str(standin_root)],
                       capture_output=True, text=True, timeout=600, env={
                           k: v for k, v in os.environ.items() if k != "P2P_MOCAP_BLENDER"})
    assert r.returncode == 0, r.stderr
    opened = _open_in_42(tmp_path / "clip.blend")
    assert opened.returncode == 3 and "REFUSED" in opened.stdout, opened.stdout + opened.stderr


def test_blender_option_refuses_what_is_not_an_executable(standin_root, tmp_path):
    take = _take(tmp_path / "clip.take.npz", frames=2)
    r = subprocess.run(CLI + ["convert", str(take), "--smplx", str(standin_root), "--blender",
                              str(tmp_path / "no-blender")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and "not an executable file" in r.stderr
    assert "Traceback" not in r.stderr and sorted(p.name for p in tmp_path.iterdir()) == [
        "clip.take.npz"]
