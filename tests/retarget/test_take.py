"""The p2p-take/1 file: atomic writer, reader, validator, foreign SMPL-X files."""
from __future__ import annotations

import os

import numpy as np
import pytest

from pose2pose_mocap.retarget.errors import OutputExistsError, RetargetError, TakeError
from pose2pose_mocap.retarget.take import (TAKE_FORMAT, TAKE_KEYS, read_take,
                                           validate_take_arrays, write_take)

from .synthetic import take_arrays


def test_round_trip(tmp_path):
    a = take_arrays(T=6)
    a["valid"][2] = False
    a["body_pose"][2] = np.nan  # junk in an invalid row is allowed
    path = write_take(tmp_path / "clip.take.npz", {k: v for k, v in a.items() if k != "format"})
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == set(TAKE_KEYS)
        assert str(z["format"]) == TAKE_FORMAT
    t = read_take(path)
    assert t.num_frames == 6 and t.stride == 2 and t.fps == 30.0 and t.person_id == 1
    assert t.valid.tolist() == [True, True, False, True, True, True]
    np.testing.assert_array_equal(t.frame_index, a["frame_index"])
    np.testing.assert_array_equal(t.params["betas"], a["betas"])
    assert t.params["body_pose"].dtype == np.float32
    assert t.image_size.tolist() == [640, 480] and t.gender == "neutral" and not t.standin
    assert t.source == "clip.mp4" and t.notes == []
    assert [p.name for p in tmp_path.iterdir()] == ["clip.take.npz"]  # no temporary left


def test_writer_refuses_to_overwrite_and_leaves_no_partial_file(tmp_path):
    a = take_arrays()
    path = write_take(tmp_path / "t.npz", a)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="exists"):
        write_take(path, a)
    bad = dict(a, body_pose=a["body_pose"][:, :10])
    with pytest.raises(TakeError, match=r"body_pose has shape \(6, 10\), expected \(6, 63\)"):
        write_take(path, bad, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["t.npz"]
    write_take(path, dict(a, fps=25), overwrite=True)
    assert read_take(path).fps == 25.0


@pytest.mark.parametrize("change, message", [
    (dict(format="p2p-take/2"), "format is 'p2p-take/2', expected 'p2p-take/1'"),
    (dict(fps=0.0), "fps must be a positive number"),
    (dict(frame_index=np.array([0, 1, 1, 2, 3, 4])), "frame_index must be strictly increasing"),
    (dict(frame_index=np.arange(6.0)), "frame_index must be a 1-D integer array"),
    (dict(valid=np.ones(6, np.int32)), "valid must be a bool array"),
    (dict(global_orient=np.zeros((6, 3), np.int64)), "global_orient has dtype int64"),
    (dict(jaw_pose=np.zeros((5, 3), np.float32)), r"jaw_pose has shape \(5, 3\)"),
    (dict(joints_2d=np.zeros((6, 65, 2), np.float32)), "joints_2d has shape"),
    (dict(gender="other"), "gender is 'other'"),
    (dict(focal=np.array([0.0, 10.0])), "focal must be positive"),
])
def test_validator_messages(change, message):
    a = take_arrays()
    a.update(change)
    problems = validate_take_arrays(a)
    assert problems and any(__import__("re").search(message, p) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_nan_in_valid_frame_is_refused(tmp_path):
    a = take_arrays()
    a["transl"][3, 1] = np.nan
    assert validate_take_arrays(a) == [
        "transl has NaN or infinite values in valid frames (first at row 3, frame 16)"]
    a["valid"][3] = False
    assert validate_take_arrays(a) == []


def test_missing_arrays_and_bad_files(tmp_path):
    a = take_arrays()
    del a["score"]
    np.savez(tmp_path / "m.npz", **a)
    with pytest.raises(TakeError, match="m.npz: missing arrays: score"):
        read_take(tmp_path / "m.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(TakeError, match="not a readable .npz"):
        read_take(tmp_path / "junk.npz")
    with pytest.raises(TakeError, match="no such file"):
        read_take(tmp_path / "none.npz")
    np.savez(tmp_path / "pickled.npz", format=np.array(TAKE_FORMAT),
             obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(TakeError, match="pickled Python objects"):
        read_take(tmp_path / "pickled.npz")
    assert issubclass(TakeError, RetargetError) and issubclass(TakeError, ValueError)


def test_reads_plain_smplx_parameter_file(tmp_path):
    a = take_arrays(T=4)
    keep = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "transl")
    np.savez(tmp_path / "p.npz", betas=a["betas"][0], **{k: a[k] for k in keep})
    t = read_take(tmp_path / "p.npz")
    assert t.fps == 30.0 and t.num_frames == 4 and t.valid.all() and t.focal is None
    assert t.params["betas"].shape == (4, 10)
    np.testing.assert_array_equal(t.params["jaw_pose"], 0)
    assert any("30 fps assumed" in n for n in t.notes)
    assert any("no jaw_pose: zeros used" in n for n in t.notes)
    assert any("not a p2p-take/1 file" in n for n in t.notes)


def test_reads_amass_style_file(tmp_path):
    rng = np.random.default_rng(0)
    T = 5
    np.savez(tmp_path / "amass.npz", poses=rng.normal(size=(T, 165)) * 0.2,
             trans=rng.normal(size=(T, 3)), betas=rng.normal(size=16),
             gender=np.array("female"), mocap_frame_rate=np.array(120.0),
             surface_model_type=np.array("smplx"))
    t = read_take(tmp_path / "amass.npz")
    assert t.fps == 120.0 and t.gender == "female" and t.params["betas"].shape == (T, 10)
    assert t.params["right_hand_pose"].shape == (T, 45)
    assert any("AMASS" in n for n in t.notes) and any("16 components" in n for n in t.notes)
    np.savez(tmp_path / "smplh.npz", poses=np.zeros((T, 156)))
    with pytest.raises(TakeError, match="156 would be SMPL-H"):
        read_take(tmp_path / "smplh.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(TakeError, match="neither a p2p-take/1 file nor SMPL-X parameters"):
        read_take(tmp_path / "other.npz")
