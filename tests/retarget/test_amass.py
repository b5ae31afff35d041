"""AMASS / SMPL-X add-on interchange (issue #13 item 6): the ``amass`` export preset and
reading AMASS files back in our frame. numpy only (no Blender)."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget import amass as am
from pose2pose_mocap.retarget import smplx_model as sm
from pose2pose_mocap.retarget.rotations import axis_angle_to_matrix
from pose2pose_mocap.retarget.take import POSE_PARAMS, read_take, write_take

from .synthetic import make_take, random_params, standin_smplx_path, standin_smplx_root

# What the SMPL-X Blender add-on's "Add Animation" operator checks before loading an
# .npz (see docs/amass.md), plus the keys AMASS itself carries.
ADDON_REQUIRED = ("trans", "gender", "mocap_frame_rate", "betas", "poses")


@pytest.fixture(scope="module")
def model():
    return sm.load_smplx_model(standin_smplx_path())


def _take(T=5, seed=3, expression=True):
    p = random_params(T, seed, max_angle=1.0)
    if not expression:
        p["expression"] = np.zeros_like(p["expression"])
    return make_take(p, fps=25.0)


def _assert_same_motion(a, b, tol=1e-6):
    for k in POSE_PARAMS:
        if k == "global_orient":
            np.testing.assert_allclose(axis_angle_to_matrix(a.params[k]),
                                       axis_angle_to_matrix(b.params[k]), atol=tol)
        else:
            np.testing.assert_allclose(a.params[k], b.params[k], atol=tol)
    np.testing.assert_allclose(a.params["transl"], b.params["transl"], atol=tol)
    np.testing.assert_allclose(a.params["betas"], b.params["betas"], atol=tol)


def test_file_has_the_addon_and_amass_keys_and_dtypes(tmp_path):
    take = _take()
    path, notes = am.write_amass(take, tmp_path / "clip.amass.npz")
    with np.load(path, allow_pickle=False) as f:       # no pickled objects anywhere
        data = {k: f[k] for k in f.files}
    assert set(data) == set(am.AMASS_KEYS)
    assert set(ADDON_REQUIRED) <= set(data)
    T = take.num_frames
    assert data["poses"].shape == (T, 165) and data["poses"].dtype == np.float64
    assert data["trans"].shape == (T, 3) and data["trans"].dtype == np.float64
    assert data["betas"].shape == (10,) and data["betas"].dtype == np.float64
    assert data["gender"].shape == () and data["gender"].dtype.kind == "U"
    assert str(data["gender"]) == "neutral"                 # the add-on does str(...)
    assert data["mocap_frame_rate"].shape == () and data["mocap_frame_rate"].dtype.kind == "f"
    assert int(data["mocap_frame_rate"]) == 25               # the add-on does int(...)
    assert str(data["surface_model_type"]) == "smplx"
    for k, s in am.SPLIT_KEYS.items():
        np.testing.assert_array_equal(data[k], data["poses"][:, s])
    assert data["pose_hand"].shape == (T, 90) and data["pose_eye"].shape == (T, 6)
    # body, hands, jaw and eyes are copied as they are (only the root changes frame)
    np.testing.assert_array_equal(data["pose_body"], take.params["body_pose"])
    np.testing.assert_array_equal(data["pose_hand"][:, 45:], take.params["right_hand_pose"])
    np.testing.assert_array_equal(data["pose_eye"][:, :3], take.params["leye_pose"])
    assert any("expression is not written" in n for n in notes)


def test_round_trip_without_model(tmp_path):
    take = _take(expression=False)
    path, _ = am.write_amass(take, tmp_path / "clip.amass.npz")
    back = read_take(path)
    _assert_same_motion(back, take)
    assert back.fps == 25.0 and back.gender == "neutral"


def test_round_trip_with_model(tmp_path, model):
    take = _take(expression=False)
    path, notes = am.write_amass(take, tmp_path / "clip.amass.npz", model=model)
    assert not any("no SMPL-X model" in n for n in notes)
    _assert_same_motion(am.with_model_pelvis(read_take(path), model), take)


def test_amass_body_is_the_take_body_turned_z_up(tmp_path, model):
    """The pelvis offset: the AMASS parameters posed by SMPL-X give exactly the take's
    joints turned into the Z-up world (rotating the root about the origin would not)."""
    take = _take(expression=False)
    arrays, _ = am.take_to_amass(take, model)
    ours = sm.forward(model, take.params, pose_correctives=False).joints
    params = {k: arrays["poses"][:, s.start * 3:s.stop * 3]
              for k, s in sm.POSE_SLICES.items()}
    params.update(betas=arrays["betas"], transl=arrays["trans"])
    theirs = sm.forward(model, params, pose_correctives=False).joints
    np.testing.assert_allclose(theirs, ours @ am.AMASS_FROM_CAMERA.T, atol=1e-9)
    naive = dict(params, transl=take.params["transl"] @ am.AMASS_FROM_CAMERA.T)
    off = sm.forward(model, naive, pose_correctives=False).joints - theirs
    assert np.abs(off).max() > 0.1       # rotating the root about the origin is wrong


def test_amass_file_as_shipped_reads_standing(tmp_path, model):
    """A file built the way AMASS ships (Z-up: a standing body has root_orient +90 deg
    about X) reads as a person standing in our frame (pelvis above the feet, up = -y
    of the camera = Blender +Z), not lying on its back."""
    T = 3
    poses = np.zeros((T, 165))
    poses[:, 0] = np.pi / 2                       # SMPL-X's Y-up template -> Z-up
    trans = np.tile([0.2, 1.5, 0.9], (T, 1))
    path = tmp_path / "walk_stageii.npz"
    np.savez(path, poses=poses, trans=trans, betas=np.zeros(16), gender=np.array("neutral"),
             mocap_frame_rate=np.array(120.0), surface_model_type=np.array("smplx"),
             root_orient=poses[:, :3], pose_body=poses[:, 3:66], pose_hand=poses[:, 75:],
             pose_jaw=poses[:, 66:69], pose_eye=poses[:, 69:75])
    take = read_take(path)
    assert take.fps == 120.0
    joints = sm.forward(model, take.params, pose_correctives=False).joints   # camera frame
    blender = joints @ am.AMASS_FROM_CAMERA.T                                 # Z up
    pelvis = blender[:, sm.JOINT_NAMES.index("pelvis")]
    feet = blender[:, [sm.JOINT_NAMES.index(n) for n in ("left_ankle", "right_ankle")]]
    head = blender[:, sm.JOINT_NAMES.index("head")]
    assert (pelvis[:, 2] > feet[:, :, 2].max(axis=1) + 0.3).all()
    assert (head[:, 2] > pelvis[:, 2] + 0.3).all()
    # the same place as in AMASS's world, within the template-pelvis approximation
    amass_params = {k: poses[:, s.start * 3:s.stop * 3] for k, s in sm.POSE_SLICES.items()}
    amass_params.update(transl=trans)
    amass_joints = sm.forward(model, amass_params, pose_correctives=False).joints
    exact = am.with_model_pelvis(read_take(path), model)
    joints_exact = sm.forward(model, exact.params, pose_correctives=False).joints
    np.testing.assert_allclose(joints_exact @ am.AMASS_FROM_CAMERA.T, amass_joints, atol=1e-9)


def test_invalid_rows_hold_the_nearest_valid_pose(tmp_path):
    take = _take(T=5)
    take.valid[:] = [False, True, False, True, True]
    take.params["body_pose"][0] = np.nan
    arrays, notes = am.take_to_amass(take)
    assert np.isfinite(arrays["poses"]).all()
    np.testing.assert_array_equal(arrays["pose_body"][0], take.params["body_pose"][1])
    np.testing.assert_array_equal(arrays["pose_body"][2], take.params["body_pose"][1])
    assert any("invalid frames" in n for n in notes)


def test_cli_export_amass_no_blender_and_no_overwrite(tmp_path, capsys):
    from pose2pose_mocap.cli import main

    take_path = write_take(tmp_path / "clip.take.npz", _take(expression=False))
    rc = main(["export", str(take_path), "--preset", "amass",
               "--smplx", str(standin_smplx_root())])
    out = capsys.readouterr()
    target = tmp_path / "clip.amass.npz"
    assert rc == 0 and target.is_file() and "wrote" in out.out
    _assert_same_motion(am.with_model_pelvis(read_take(target), sm.load_smplx_model(standin_smplx_path())),
                        read_take(take_path))
    before = target.read_bytes()
    # a second export gets the next numbered name (docs/outputs.md); the first is untouched
    rc = main(["export", str(take_path), "--preset", "amass",
               "--smplx", str(standin_smplx_root())])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip-2.amass.npz", "clip.amass.npz",
                                                         "clip.take.npz"]
