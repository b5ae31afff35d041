"""``--estimator i2l-meshnet`` end to end on the sample clip (stand-ins): estimate -> an SMPL
take -> convert -> a .blend with the 24-bone SMPL rig -> every rig export preset (amass is
SMPL-X only); and ``p2p-mocap weights check`` / ``weights convert`` on an I2L-MeshNet checkpoint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pose2pose_mocap import cli
from pose2pose_mocap.retarget.take import read_take

pytest.importorskip("torch")  # estimates (the Blender 4.2 test venv has no torch)

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave.mp4"
FRAMES = 3


@pytest.fixture(scope="module")
def i2l_take(standin_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("i2l_e2e") / "wave.take.npz"
    rc = cli.main(["estimate", str(SAMPLE), "--estimator", "i2l-meshnet", "--frames",
                   f"0:{FRAMES}", "--detector", "none", "--smplx", str(standin_root),
                   "--checkpoint", str(standin_root), "--device", "cpu", "-o", str(out)])
    assert rc == 0 and out.is_file()
    return out


@pytest.mark.slow
def test_estimate_writes_an_smpl_take(i2l_take):
    take = read_take(i2l_take)
    assert take.estimator == "i2l-meshnet" and take.body_model == "smpl" and take.standin
    assert take.num_frames == FRAMES and take.valid.all()
    assert take.params["body_pose"].shape == (FRAMES, 69)
    assert take.params["betas"].shape == (FRAMES, 10)
    assert "left_hand_pose" not in take.params
    j2d = take.raw["joints_2d"]
    assert j2d.shape == (FRAMES, 29, 3) and ((j2d[..., 2] >= 0) & (j2d[..., 2] <= 1)).all()
    assert take.raw["bbox_xywh"].shape == (FRAMES, 4)
    assert np.isfinite(take.params["transl"]).all()
    assert take.model.startswith("standin.pth.tar sha256:")


@pytest.mark.slow
@pytest.mark.blender
def test_take_becomes_an_smpl_rig_and_exports_with_every_preset(i2l_take, standin_root,
                                                                tmp_path):
    bpy = pytest.importorskip("bpy")
    from pose2pose_mocap.retarget import smplx_model as sm
    from pose2pose_mocap.retarget.export_presets import PRESETS

    blend = tmp_path / "wave.blend"
    assert cli.main(["convert", str(i2l_take), "--smpl", str(standin_root),
                     "-o", str(blend)]) == 0
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == 1
    assert sorted(b.name for b in arms[0].data.bones) == sorted(sm.SMPL_JOINT_NAMES)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    before = set(tmp_path.iterdir())
    for preset in PRESETS:
        rc = cli.main(["export", str(blend), "--preset", preset, "--smpl", str(standin_root)])
        assert rc == 0, preset
        bpy.ops.wm.read_factory_settings(use_empty=True)
    made = sorted(p.name for p in set(tmp_path.iterdir()) - before)
    assert len(made) == len(PRESETS), made  # (amass: SMPL-X takes only)


def test_weights_check_and_convert_know_i2l_checkpoints(standin_root, tmp_path, capsys):
    ck = standin_root / "i2l_meshnet" / "standin.pth.tar"
    assert cli.main(["weights", "check", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "network: I2L-MeshNet" in out and "kind:   stand-in" in out and "keys:   723" in out
    dst = tmp_path / "i2l.safetensors"
    assert cli.main(["weights", "convert", str(ck), str(dst)]) == 0
    assert dst.is_file()
    assert cli.main(["weights", "check", str(dst)]) == 0
    assert "converted from standin.pth.tar" in capsys.readouterr().out
    dst.unlink()
