"""convert_take / run_convert end to end, the camera, the footage, bad input."""
from __future__ import annotations

import argparse
import io
import os

import numpy as np
import pytest

from pose2pose_mocap.retarget import posing, smplx_model as sm
from pose2pose_mocap.retarget.errors import (ModelFileError, OutputExistsError, RetargetError,
                                             TakeError)
from pose2pose_mocap.retarget.take import write_take

from tests.retarget.synthetic import (make_take, random_params, standin_smplx_path,
                                      standin_smplx_root, take_arrays)

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender


@pytest.fixture
def take_file(tmp_path):
    a = take_arrays(T=6)
    a["valid"][3] = False
    a["source"] = str(tmp_path / "missing.mp4")
    return write_take(tmp_path / "clip.take.npz", a)


def test_convert_writes_a_blend_atomically(take_file, tmp_path):
    from pose2pose_mocap.retarget.convert import convert_take

    notes = []
    out = convert_take(take_file, standin_smplx_root(), pose_correctives=False, notes=notes)
    assert out == tmp_path / "clip.blend" and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.blend", "clip.take.npz"]
    assert any("no footage" in n for n in notes) and any("STAND-IN" in n for n in notes)
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    arm = bpy.data.objects["SMPL-X person 1 (stand-in)"]
    assert arm["p2p_standin"] and arm.type == 'ARMATURE'
    assert [t.name for t in arm.animation_data.nla_tracks] == ["missing p1"]
    assert scene.camera and scene.camera.data.lens > 0
    assert (scene.render.fps, scene.frame_start, scene.frame_end) == (30, 1, 11)  # stride 2
    assert (scene.render.resolution_x, scene.render.resolution_y) == (640, 480)
    bpy.ops.wm.read_factory_settings(use_empty=True)


def test_existing_blend_is_refused_unless_forced(take_file, tmp_path):
    from pose2pose_mocap.retarget.convert import convert_take

    out = tmp_path / "mine.blend"
    out.write_bytes(b"the user's own file")
    with pytest.raises(OutputExistsError, match="exists; not overwriting it"):
        convert_take(take_file, standin_smplx_root(), out, pose_correctives=False)
    assert out.read_bytes() == b"the user's own file"
    convert_take(take_file, standin_smplx_root(), out, pose_correctives=False, overwrite=True)
    assert out.read_bytes()[:7] != b"the use"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_input_gives_one_line_and_no_file(tmp_path, take_file):
    from pose2pose_mocap.retarget.convert import convert_take

    bad = tmp_path / "bad.npz"
    np.savez(bad, **dict(take_arrays(), fps=np.array(-1.0)))
    with pytest.raises(TakeError, match=r"^bad.npz: .*fps must be a positive number"):
        convert_take(bad, standin_smplx_root())
    with pytest.raises(RetargetError, match="not a take file \\(.npz\\); footage is estimated first"):
        convert_take(tmp_path / "clip.mp4", standin_smplx_root())
    with pytest.raises(ModelFileError, match="does not hold SMPLX_NEUTRAL.npz"):
        convert_take(take_file, tmp_path / "no_models_here")
    with pytest.raises(RetargetError, match="must be a .blend"):
        convert_take(take_file, standin_smplx_root(), tmp_path / "x.fbx")
    assert not list(tmp_path.glob("*.blend")) and not list(tmp_path.glob(".*"))
    for exc in (TakeError, ModelFileError, OutputExistsError):
        assert "\n" not in str(exc("x"))


def test_run_convert_with_cli_arguments(take_file, tmp_path):
    from pose2pose_mocap.retarget.convert_cli import add_convert_arguments, run_convert

    parser = add_convert_arguments(argparse.ArgumentParser(prog="p2p-mocap convert"))
    args = parser.parse_args([str(take_file), "-o", str(tmp_path / "o.blend"), "--smplx",
                              str(standin_smplx_root()), "--smooth", "savgol",
                              "--smooth-hands", "0", "--pose-correctives", "off"])
    assert args.smooth == "savgol" and args.smooth_hands == 0 and args.pose_correctives is False
    out = io.StringIO()
    assert run_convert(args, out=out) == 0
    assert f"wrote {tmp_path / 'o.blend'}" in out.getvalue()
    defaults = parser.parse_args(["x.npz"])
    # One Euro and the clean-up by default; a cutoff not given is the method's (None here)
    assert (defaults.smooth, defaults.smooth_body, defaults.force) == ("one_euro", None, False)
    assert defaults.foot_lock is None
    with pytest.raises(SystemExit):
        parser.parse_args(["x.npz", "--smooth-body", "-3"])
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.mark.parametrize("size, focal, princpt", [
    ((640, 480), (600.0, 600.0), (319.5, 239.5)),
    ((640, 480), (800.0, 800.0), (300.0, 260.0)),
    ((480, 854), (700.0, 700.0), (250.0, 420.0)),   # portrait footage
    ((640, 480), (600.0, 660.0), (319.5, 239.5)),   # non-square pixels
])
def test_camera_reproduces_the_takes_projection(size, focal, princpt):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    from pose2pose_mocap.retarget.blender.scene import create_camera

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    p = random_params(1, seed=9, max_angle=0.3)
    take = make_take(p)
    take.image_size, take.focal, take.princpt = np.array(size), np.array(focal), np.array(princpt)
    cam, notes = create_camera(scene, take)
    bpy.context.view_layer.update()
    model = sm.load_smplx_model(standin_smplx_path())
    joints = sm.forward(model, p).joints[0]                       # camera space
    uv = joints[:, :2] / joints[:, 2:] * np.array(focal) + np.array(princpt)
    W, H = size
    for j, pw in zip(joints, posing.camera_to_blender(joints)):
        ndc = world_to_camera_view(scene, cam, Vector(pw))
        u, v = ndc.x * W - 0.5, (1.0 - ndc.y) * H - 0.5      # OpenCV pixel centres
        want = j[:2] / j[2] * np.array(focal) + np.array(princpt)
        assert np.allclose([u, v], want, atol=1e-3), (u, v, want)
        assert ndc.z == pytest.approx(j[2], rel=1e-5)
    assert uv.shape == (55, 2)


def test_footage_image_sequence_and_missing_source(tmp_path):
    from pose2pose_mocap.retarget.blender.scene import create_camera

    bpy.ops.wm.read_factory_settings(use_empty=True)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(1, 7):
        img = bpy.data.images.new(f"f{i}", 8, 6)
        img.filepath_raw = str(frames / f"frame_{i:04d}.png")
        img.file_format = 'PNG'
        img.save()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    take = make_take(random_params(3, seed=1), frame_index=np.array([2, 3, 4]), source=str(frames))
    cam, notes = create_camera(scene, take)
    assert notes[-1] == "footage: image sequence from frame_0001.png"
    bg = cam.data.background_images[0]
    assert bg.source == 'IMAGE' and bg.image.source == 'SEQUENCE'
    assert cam.data.show_background_images
    # Blender frame 1 is footage frame 2 (the third file, number 0003).
    assert bg.image_user.frame_start == 1 and bg.image_user.frame_offset == 2
    take.source = str(tmp_path / "gone.mp4")
    cam2, notes2 = create_camera(scene, take, name="cam2")
    assert notes2[-1].startswith("no footage:") and len(cam2.data.background_images) == 0


def test_footage_movie_clip(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from pose2pose_mocap.retarget.blender.scene import create_camera

    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(10):
        w.write(np.full((48, 64, 3), i * 20, np.uint8))
    w.release()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    take = make_take(random_params(3, seed=1), frame_index=np.array([4, 5, 6]), source=str(path))
    cam, notes = create_camera(bpy.context.scene, take)
    assert notes[-1] == "footage: movie clip clip.avi"
    bg = cam.data.background_images[0]
    assert bg.source == 'MOVIE_CLIP' and bg.clip.frame_offset == 4 and bg.clip.frame_start == 1
    assert bg.clip.frame_duration == 10


def test_convert_reads_core_only_format_1_and_refuses_smpl_takes(tmp_path):
    """``p2p-mocap convert`` (the real CLI): a take without any raw_ array and a format-1
    file each make a .blend; an SMPL take is one line and nothing is written."""
    from tests.faults.conftest import assert_one_line_error, run_cli
    from tests.retarget.synthetic import take_arrays_v1

    core = {k: v for k, v in take_arrays().items() if not k.startswith("raw_")}
    write_take(tmp_path / "core.take.npz", core)
    np.savez_compressed(tmp_path / "old.take.npz",
                        **{k: np.asarray(v) for k, v in take_arrays_v1().items()})
    smpl = {k: v for k, v in core.items() if k not in (
        "left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose", "reye_pose",
        "expression")}
    smpl.update(body_model="smpl", body_pose=np.zeros((6, 69), np.float32))
    write_take(tmp_path / "smpl.take.npz", smpl)
    for stem in ("core", "old"):
        res = run_cli(["convert", tmp_path / f"{stem}.take.npz", "--smplx",
                       standin_smplx_root(), "--pose-correctives", "off"], cwd=tmp_path)
        assert res.rc == 0, res.stderr
        assert (tmp_path / f"{stem}.blend").is_file()
    res = run_cli(["convert", tmp_path / "smpl.take.npz", "--smplx", standin_smplx_root()],
                  cwd=tmp_path)
    # an SMPL take needs the SMPL model (not found here: none given, none in the search order)
    assert_one_line_error(res, "no SMPL model file SMPL_NEUTRAL.npz", "--smpl")
    assert not (tmp_path / "smpl.blend").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
