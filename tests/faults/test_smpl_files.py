"""Fault matrix, SMPL model files: hostile and broken ``SMPL_NEUTRAL.npz``, the official
``.pkl`` variant (a pickle: never opened), through the loader and ``p2p-mocap convert`` of an
SMPL take: one line, a non-zero exit, nothing written, no code run."""
from __future__ import annotations

import pickle
import shutil
import zipfile

import numpy as np
import pytest

from tests.retarget.smpl_support import standin_smpl_path
from tests.retarget.synthetic import take_arrays

from .conftest import assert_one_line_error, run_cli, snapshot
from .test_model_files import Pwn, _pickled, rebuild_npz

PICKLED = "holds pickled python objects"


def _smpl_take(folder):
    from pose2pose_mocap.retarget.take import write_take

    core = {k: v for k, v in take_arrays().items() if not k.startswith("raw_") and k not in (
        "left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose", "reye_pose",
        "expression")}
    core.update(body_model="smpl", estimator="i2l-meshnet",
                body_pose=np.zeros((core["frame_index"].shape[0], 69), np.float32))
    return write_take(folder / "clip.take.npz", core)


def _broken(tmp_path, pwn_marker):
    src = standin_smpl_path()
    d = tmp_path / "models"
    with zipfile.ZipFile(src) as z:
        kt = np.lib.format.read_array(z.open("kintree_table.npy"))
    wrong_tree = kt.copy()
    wrong_tree[0, 23] = 20
    truncated = d / "truncated" / "SMPL_NEUTRAL.npz"
    truncated.parent.mkdir(parents=True)
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    return {
        # a pickled array under a name the body model reads: its pickle would run
        "pickled v_template": (rebuild_npz(src, d / "pickled" / "SMPL_NEUTRAL.npz",
                                           drop=("v_template",),
                                           add={"v_template": _pickled(pwn_marker)}), PICKLED),
        "unknown pickled array": (rebuild_npz(src, d / "extra" / "SMPL_NEUTRAL.npz",
                                              add={"payload": _pickled(pwn_marker)}), PICKLED),
        "SMPL-X counts": (rebuild_npz(src, d / "posedirs" / "SMPL_NEUTRAL.npz",
                                      drop=("posedirs",),
                                      add={"posedirs": np.zeros((6890, 3, 486))}),
                          "array 'posedirs' has shape (6890, 3, 486)"),
        "too few shape directions": (rebuild_npz(src, d / "shape" / "SMPL_NEUTRAL.npz",
                                                 drop=("shapedirs",),
                                                 add={"shapedirs": np.zeros((6890, 3, 4))}),
                                     "shapedirs has 4 components"),
        "another tree": (rebuild_npz(src, d / "tree" / "SMPL_NEUTRAL.npz",
                                     drop=("kintree_table",), add={"kintree_table": wrong_tree}),
                         "not the SMPL kinematic tree"),
        "truncated": (truncated, "SMPL_NEUTRAL.npz"),
    }


def test_loader_refuses_broken_and_hostile_files(tmp_path, pwn_marker):
    from pose2pose_mocap.common.smpl_file import check_smpl_file
    from pose2pose_mocap.retarget.errors import ModelFileError
    from pose2pose_mocap.retarget.smplx_model import load_smpl_model

    for what, (path, text) in _broken(tmp_path, pwn_marker).items():
        with pytest.raises(ModelFileError) as info:
            load_smpl_model(path)
        msg = str(info.value)
        assert text.lower() in msg.lower() and "\n" not in msg, (what, msg)
        if what != "another tree":  # (the header check cannot see the tree's values)
            assert check_smpl_file(path), what
    assert not pwn_marker.exists()


def test_the_unread_pickle_of_the_release_is_tolerated_never_run(tmp_path, pwn_marker):
    """``pose_training_info`` (a dict in the official file) may ride along in a converted
    file: it is never read, so its pickle never runs."""
    from pose2pose_mocap.retarget.smplx_model import load_smpl_model

    path = rebuild_npz(standin_smpl_path(), tmp_path / "smpl" / "SMPL_NEUTRAL.npz",
                       add={"pose_training_info": _pickled(pwn_marker)})
    assert load_smpl_model(path).num_verts == 6890
    assert not pwn_marker.exists()


def test_pkl_is_never_opened(tmp_path, pwn_marker):
    from pose2pose_mocap.retarget.errors import ModelFileError
    from pose2pose_mocap.retarget.smplx_model import load_smpl_model

    pkl = tmp_path / "SMPL_NEUTRAL.pkl"
    pkl.write_bytes(pickle.dumps({"v_template": Pwn(pwn_marker)}, protocol=2))
    with pytest.raises(ModelFileError, match=r"pickle \(\.pkl\), which is never opened"):
        load_smpl_model(pkl)
    assert not pwn_marker.exists()


@pytest.mark.blender
def test_convert_an_smpl_take_with_bad_models_one_line_nothing_written(tmp_path, pwn_marker):
    pytest.importorskip("bpy")
    work = tmp_path / "work"
    work.mkdir()
    take = _smpl_take(work)
    pkl = tmp_path / "official" / "smpl" / "SMPL_NEUTRAL.pkl"
    pkl.parent.mkdir(parents=True)
    pkl.write_bytes(pickle.dumps({"v_template": Pwn(pwn_marker)}, protocol=2))
    cases = {name: (path, text) for name, (path, text) in _broken(tmp_path, pwn_marker).items()
             if name in ("pickled v_template", "another tree")}
    cases["official .pkl given"] = (pkl, "never opened")
    cases["folder with only the .pkl"] = (pkl.parent.parent, "is a pickle and is never opened")
    before = snapshot(work)
    for what, (model, text) in cases.items():
        res = run_cli(["convert", take, "--smpl", model], cwd=work)
        assert_one_line_error(res, text)
        assert snapshot(work) == before, what
    # an SMPL take is never given the SMPL-X model in its place
    from tests.retarget.synthetic import standin_smplx_path

    res = run_cli(["convert", take, "--smpl", standin_smplx_path()], cwd=work)
    assert_one_line_error(res, "SMPLX_NEUTRAL.npz", "SMPL model file")
    assert snapshot(work) == before and not pwn_marker.exists()
    shutil.rmtree(tmp_path / "official")


@pytest.mark.slow
def test_weights_check_and_make_standins(tmp_path, pwn_marker):
    """``weights check`` tells an SMPL file by content and refuses a hostile one or a .pkl
    with one line; ``make-standins`` never replaces a real SMPL file."""
    bad, _ = _broken(tmp_path, pwn_marker)["unknown pickled array"]
    res = run_cli(["weights", "check", bad], cwd=tmp_path)
    assert_one_line_error(res, PICKLED)
    good = run_cli(["weights", "check", standin_smpl_path()], cwd=tmp_path)
    assert good.rc == 0 and "SMPL stand-in" in good.stdout, good.stderr
    pkl = tmp_path / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"
    pkl.write_bytes(pickle.dumps({"v_template": Pwn(pwn_marker)}, protocol=2))
    assert_one_line_error(run_cli(["weights", "check", pkl], cwd=tmp_path), "never opened")
    # a real (unmarked) SMPL file in the folder: make-standins refuses and writes nothing
    root = tmp_path / "models"
    real = rebuild_npz(standin_smpl_path(), root / "smpl" / "SMPL_NEUTRAL.npz", drop=("standin",))
    before = snapshot(root)
    res = run_cli(["make-standins", root], cwd=tmp_path)
    assert_one_line_error(res, "SMPL_NEUTRAL.npz is a real model file")
    assert snapshot(root) == before and real.is_file() and not pwn_marker.exists()
