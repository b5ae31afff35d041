"""The take file (p2p-take/2, p2p-take/1 still read): atomic writer, reader, validator,
one serializer (arrays, bytes), foreign SMPL-X files."""
from __future__ import annotations

import os

import numpy as np
import pytest

from pose2pose_mocap.retarget.errors import OutputExistsError, RetargetError, TakeError
from pose2pose_mocap.retarget.take import (RAW_PREFIX, RAW_SHAPES, TAKE_FORMAT, TAKE_FORMAT_1,
                                           TAKE_KEYS, Take, read_take, take_from_bytes,
                                           take_to_bytes, validate_take_arrays, write_take)

from .synthetic import take_arrays, take_arrays_v1

POSE2POSE_RAW = {RAW_PREFIX + k for k in RAW_SHAPES}


def test_round_trip(tmp_path):
    a = take_arrays(T=6)
    a["valid"][2] = False
    a["body_pose"][2] = np.nan  # junk in an invalid row is allowed
    path = write_take(tmp_path / "clip.take.npz", {k: v for k, v in a.items() if k != "format"})
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == set(TAKE_KEYS) | POSE2POSE_RAW
        assert str(z["format"]) == TAKE_FORMAT == "p2p-take/2"
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
    (dict(format="p2p-take/9"), "format is 'p2p-take/9', expected 'p2p-take/2'"),
    (dict(body_model="smplh"), "body_model is 'smplh', expected one of smplx, smpl"),
    (dict(fps=0.0), "fps must be a positive number"),
    (dict(frame_index=np.array([0, 1, 1, 2, 3, 4])), "frame_index must be strictly increasing"),
    (dict(frame_index=np.arange(6.0)), "frame_index must be a 1-D integer array"),
    (dict(valid=np.ones(6, np.int32)), "valid must be a bool array"),
    (dict(global_orient=np.zeros((6, 3), np.int64)), "global_orient has dtype int64"),
    (dict(jaw_pose=np.zeros((5, 3), np.float32)), r"jaw_pose has shape \(5, 3\)"),
    (dict(raw_joints_2d=np.zeros((5, 65, 3), np.float32)), "raw_joints_2d has shape"),
    (dict(raw_score=np.zeros(6, np.complex64)), "raw_score has dtype complex64"),
    (dict(estimator=np.zeros(2)), "estimator must be a string"),
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
    del a["expression"], a["estimator"]
    np.savez(tmp_path / "m.npz", **a)
    with pytest.raises(TakeError, match="m.npz: missing arrays: estimator, expression"):
        read_take(tmp_path / "m.npz")
    a = take_arrays_v1()  # format 1: the raw outputs were required
    del a["score"]
    np.savez(tmp_path / "m1.npz", **a)
    with pytest.raises(TakeError, match="m1.npz: missing arrays: score"):
        read_take(tmp_path / "m1.npz")
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
    assert any("not a take file (p2p-take)" in n for n in t.notes)


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
    with pytest.raises(TakeError,
                       match=r"neither a take file \(p2p-take\) nor SMPL-X parameters"):
        read_take(tmp_path / "other.npz")


# --------------------------------------------------------------------------- format 2, one serializer

def _assert_same_take(a: Take, b: Take, raw: bool = True):
    for k in ("fps", "person_id", "source", "model", "standin", "gender", "estimator",
              "body_model"):
        assert getattr(a, k) == getattr(b, k), k
    for k in ("frame_index", "valid", "image_size", "focal", "princpt"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None and y is None) or (x.dtype == y.dtype and np.array_equal(x, y)), k
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        assert a.params[k].dtype == b.params[k].dtype
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert set(b.raw) == (set(a.raw) if raw else set())
    for k in b.raw:
        assert a.raw[k].dtype == b.raw[k].dtype and a.raw[k].shape == b.raw[k].shape, k
        np.testing.assert_array_equal(a.raw[k], b.raw[k])


def test_format_2_round_trips_exactly_through_file_arrays_and_bytes(tmp_path):
    a = take_arrays(T=5)
    a["valid"][1] = False
    a["transl"][1] = np.nan  # junk in an invalid row stays as it was
    # raw arrays: any name, any numeric or bool dtype, any shape after T
    a.update(raw_mask=np.array([1, 0, 1, 1, 0], bool), raw_ids=np.arange(5, dtype=np.int16),
             raw_keypoints=np.ones((5, 17, 3), np.float64))
    take = Take.from_arrays(a, name="x")
    assert take.estimator == "pose2pose" and take.body_model == "smplx"
    assert set(take.raw) == set(RAW_SHAPES) | {"mask", "ids", "keypoints"}
    path = write_take(tmp_path / "t.take.npz", take)
    _assert_same_take(take, read_take(path))
    _assert_same_take(take, Take.from_arrays(take.to_arrays()))
    blob = take_to_bytes(take)
    assert blob == path.read_bytes()  # the file is exactly the serialized take
    _assert_same_take(take, take_from_bytes(blob, "copy"))
    core = take_from_bytes(take_to_bytes(take, raw=False))
    _assert_same_take(take, core, raw=False)
    with np.load(path, allow_pickle=False) as z:
        assert z["raw_ids"].dtype == np.int16 and str(z["estimator"]) == "pose2pose"


def test_raw_arrays_are_optional(tmp_path):
    a = {k: v for k, v in take_arrays().items() if not k.startswith(RAW_PREFIX)}
    path = write_take(tmp_path / "core.take.npz", a)
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == set(TAKE_KEYS)
    t = read_take(path)
    assert t.raw == {} and t.num_frames == 6


def test_format_1_files_still_read(tmp_path):
    """A file as the format-1 writer made it: np.savez_compressed of every array."""
    old = take_arrays_v1(T=4)
    path = tmp_path / "old.take.npz"
    np.savez_compressed(path, **{k: np.asarray(v) for k, v in old.items()})
    t = read_take(path)
    assert t.estimator == "pose2pose" and t.body_model == "smplx" and t.notes == []
    assert set(t.raw) == set(RAW_SHAPES)
    np.testing.assert_array_equal(t.raw["cam_trans"], old["cam_trans"])
    np.testing.assert_array_equal(t.params["body_pose"], old["body_pose"])
    # written again: format 2, the raw outputs under raw_ names
    again = write_take(tmp_path / "new.take.npz", t)
    with np.load(again, allow_pickle=False) as z:
        assert str(z["format"]) == TAKE_FORMAT and "cam_trans" not in z.files
        np.testing.assert_array_equal(z["raw_cam_trans"], old["cam_trans"])
    _assert_same_take(t, read_take(again))
    # format-1 arrays handed to the writer (with or without format) are written as format 2
    no_format = {k: v for k, v in old.items() if k != "format"}
    for i, given in enumerate((old, no_format)):
        p = write_take(tmp_path / f"w{i}.take.npz", given)
        with np.load(p, allow_pickle=False) as z:
            assert str(z["format"]) == TAKE_FORMAT and "raw_score" in z.files


def test_the_sample_ground_truth_is_a_format_2_take():
    from pathlib import Path

    truth = read_take(Path(__file__).resolve().parents[2] / "samples" / "wave.truth.npz",
                      strict=True)
    assert truth.num_frames == 90 and truth.estimator == "" and truth.body_model == "smplx"
    assert truth.raw["joints_2d"].shape == (90, 65, 3) and truth.raw["score"].min() == 1.0


def test_smpl_takes_validate(tmp_path):
    a = take_arrays(T=3)
    for k in ("left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose", "reye_pose",
              "expression"):
        del a[k]
    a["body_model"] = "smpl"
    a["body_pose"] = np.zeros((3, 69), np.float32)
    t = read_take(write_take(tmp_path / "smpl.take.npz", a))
    assert t.body_model == "smpl" and sorted(t.params) == ["betas", "body_pose",
                                                           "global_orient", "transl"]
    assert validate_take_arrays(dict(a, body_pose=np.zeros((3, 63)))) == [
        "body_pose has shape (3, 63), expected (3, 69)"]
    assert validate_take_arrays(dict(a, body_model="smplx"))[0].startswith(
        "missing arrays: left_hand_pose")


def test_camera_is_all_or_nothing(tmp_path):
    a = {k: v for k, v in take_arrays().items() if k not in ("image_size", "focal", "princpt")}
    t = read_take(write_take(tmp_path / "nocam.take.npz", a))
    assert t.focal is None and t.princpt is None and t.image_size is None
    assert validate_take_arrays(dict(a, focal=np.array([600.0, 600.0]))) == [
        "missing arrays: image_size, princpt"]


def test_raw_array_limits():
    from pose2pose_mocap.retarget.take import MAX_RAW_ARRAYS

    a = take_arrays()
    assert validate_take_arrays(dict(a, raw_x=np.zeros((6, 1, 1, 1, 1)))) == [
        "raw_x has shape (6, 1, 1, 1, 1), expected 6 rows (one per frame) and at most 4 "
        "dimensions"]
    assert validate_take_arrays(dict(a, raw_x=np.zeros(())))[0].startswith("raw_x has shape ()")
    assert "is not raw_ and" in validate_take_arrays({**a, "raw_a-b": np.zeros(6)})[0]
    many = {f"raw_n{i}": np.zeros(6) for i in range(MAX_RAW_ARRAYS)}
    assert validate_take_arrays({**a, **many})[0].startswith("too many raw arrays: 71;")
    assert validate_take_arrays(dict(a, raw_x=np.full(6, np.nan))) == []  # values unchecked


def test_bytes_are_read_as_carefully_as_files(tmp_path):
    import io

    pwn_marker = tmp_path / "pwned"

    class Pwn:
        def __reduce__(self):
            return (__import__("pathlib").Path(pwn_marker).touch, ())

    obj = np.empty(1, dtype=object)
    obj[0] = Pwn()
    buf = io.BytesIO()
    np.savez(buf, **take_arrays(), raw_evil=obj)
    with pytest.raises(TakeError, match="copy: array 'raw_evil' holds pickled Python objects"):
        take_from_bytes(buf.getvalue(), "copy")
    assert not pwn_marker.exists()
    with pytest.raises(TakeError, match="copy: not a readable .npz"):
        take_from_bytes(b"junk", "copy")
    buf = io.BytesIO()
    np.savez(buf, **dict(take_arrays(), fps=np.float64(np.inf)))
    with pytest.raises(TakeError, match="copy: fps must be a positive number"):
        take_from_bytes(buf.getvalue(), "copy")


def test_unknown_arrays_are_ignored_or_refused_when_strict(tmp_path):
    path = tmp_path / "x.take.npz"
    np.savez(path, **take_arrays(), notes=np.zeros(3))
    assert read_take(path).num_frames == 6
    with pytest.raises(TakeError, match="x.take.npz: unexpected array 'notes'"):
        read_take(path, strict=True)
    np.savez(tmp_path / "a.npz", poses=np.zeros((2, 165)))
    with pytest.raises(TakeError, match="not a take file"):
        read_take(tmp_path / "a.npz", strict=True)
    with pytest.raises(TakeError, match="unknown take array 'notes'"):
        write_take(tmp_path / "y.take.npz", dict(take_arrays(), notes=np.zeros(3)))


def test_unknown_format_is_one_line(tmp_path):
    path = tmp_path / "f.take.npz"
    np.savez(path, **dict(take_arrays(), format=np.array("p2p-take/3")))
    with pytest.raises(TakeError) as err:
        read_take(path)
    assert str(err.value) == ("f.take.npz: format is 'p2p-take/3', expected 'p2p-take/2' "
                              "(or 'p2p-take/1')")


def test_assembled_takes_are_format_2_for_either_body_model(tmp_path):
    """The estimator's row assembly (estimator.take_rows): parameters of the result's
    body model, every other row value as raw_<name>, estimator and body_model stored."""
    from pose2pose_mocap.estimator.take_rows import assemble_take

    def row(n_pose):
        return {"global_orient": np.zeros(3), "body_pose": np.full(n_pose, 0.1),
                "betas": np.zeros(10), "transl": np.array([0.0, 0.0, 4.0]),
                "bbox_xywh": np.ones(4), "joints_2d": np.ones((24, 3)), "score": 0.5,
                "track_ok": np.array(True)}

    meta = dict(fps=25.0, person_id=1, image_size=(640, 480), source="c.mp4", model="m",
                standin=False, focal=(600.0, 600.0), princpt=(319.5, 239.5))
    smpl = assemble_take({0: row(69), 2: row(69)}, [0, 1, 2], estimator="i2l",
                         body_model="smpl", **meta)
    t = read_take(write_take(tmp_path / "smpl.take.npz", smpl))
    assert (t.estimator, t.body_model) == ("i2l", "smpl")
    assert t.valid.tolist() == [True, False, True] and t.params["body_pose"].shape == (3, 69)
    assert t.raw["joints_2d"].shape == (3, 24, 3) and t.raw["track_ok"].dtype == bool
    assert t.raw["score"].tolist() == [0.5, 0.0, 0.5]
    full = {**row(63), "left_hand_pose": np.zeros(45), "right_hand_pose": np.zeros(45),
            **{k: np.zeros(3) for k in ("jaw_pose", "leye_pose", "reye_pose")},
            "expression": np.zeros(10)}
    smplx = assemble_take({0: full}, [7], estimator="pose2pose", **meta)
    assert validate_take_arrays(smplx) == [] and str(smplx["body_model"]) == "smplx"
