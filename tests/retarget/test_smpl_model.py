"""The SMPL body: the stand-in, the numpy port against smplx.SMPL, the rig maths, smoothing,
which model file a take picks and where SMPL files are looked for."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.common.smpl_file import check_smpl_file, read_smpl_arrays
from pose2pose_mocap.retarget import posing, smplx_model as sm
from pose2pose_mocap.retarget.errors import ModelFileError, RetargetError

from .smpl_support import (make_smpl_take, smpl_params, smpl_reference, standin_smpl_path,
                           standin_smpl_root)

REAL_SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                     20, 21]


@pytest.fixture(scope="module")
def model():
    return sm.load_smpl_model(standin_smpl_path())


def test_model_arrays_and_kind(model):
    assert model.kind is sm.SMPL_KIND and model.standin and model.gender == "neutral"
    assert model.v_template.shape == (6890, 3) and model.faces.shape == (13776, 3)
    assert model.shapedirs.shape == (6890, 3, 10) and model.exprdirs.shape == (6890, 3, 0)
    assert model.posedirs.shape == (6890, 3, 207)
    assert model.J_regressor.shape == (24, 6890) and model.lbs_weights.shape == (6890, 24)
    assert model.parents.tolist() == REAL_SMPL_PARENTS
    assert sm.load_body_model(standin_smpl_path(), "smpl").kind is sm.SMPL_KIND


def test_joint_names_are_the_smpl_joints():
    joint_names = pytest.importorskip("smplx.joint_names")
    # SMPL's joints are SMPL-X's first 22 (the body), then the two hand joints.
    assert sm.SMPL_JOINT_NAMES[:22] == tuple(joint_names.JOINT_NAMES[:22])
    assert sm.SMPL_JOINT_NAMES[22:] == ("left_hand", "right_hand")
    assert sm.SMPL_KIND.num_pose_features == 207 and sm.SMPL_KIND.num_expression == 0


def test_standin_is_one_closed_surface_with_the_real_counts():
    a = read_smpl_arrays(standin_smpl_path(), ["v_template", "f", "kintree_table", "J"])
    f = a["f"].astype(np.int64)
    assert a["f"].dtype == np.uint32 and len(np.unique(f)) == 6890  # every vertex used
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, count = np.unique(edges, axis=0, return_counts=True)
    assert (count == 2).all()                                # closed, manifold
    assert 6890 - len(count) + len(f) == 2                   # Euler: one genus-0 surface
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # consistently oriented
    assert a["kintree_table"][0, 0] == 4294967295
    assert a["kintree_table"][0, 1:].tolist() == REAL_SMPL_PARENTS[1:]
    assert check_smpl_file(standin_smpl_path()) == []


def test_standin_regressor_weights_and_body(model):
    J = model.J_regressor
    assert J.min() >= 0 and np.allclose(J.sum(1), 1)
    assert np.allclose(model.lbs_weights.sum(1), 1) and model.lbs_weights.min() >= 0
    joints = J @ model.v_template
    n = {name: joints[i] for i, name in enumerate(sm.SMPL_JOINT_NAMES)}
    assert n["head"][1] > n["neck"][1] > n["pelvis"][1] > n["left_knee"][1] > n["left_ankle"][1]
    assert n["left_hand"][0] > n["left_wrist"][0] > n["left_elbow"][0] > 0   # left is +x
    assert n["right_hand"][0] < n["right_wrist"][0] < 0
    # every joint drives a part of the body
    assert (model.lbs_weights.max(axis=0) > 0.4).all()


def test_standins_are_deterministic_and_genders_differ():
    from pose2pose_mocap.weights.standins import smpl_standin_arrays

    a, b = smpl_standin_arrays("neutral"), smpl_standin_arrays("neutral")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    m = smpl_standin_arrays("male")
    assert np.array_equal(a["f"], m["f"]) and not np.allclose(a["v_template"], m["v_template"])


@pytest.mark.torch
@pytest.mark.parametrize("pose_correctives", [True, False])
def test_forward_matches_smplx_smpl(model, pose_correctives):
    pytest.importorskip("torch")
    p = smpl_params(6, seed=3)
    p["betas"] = np.random.default_rng(4).normal(size=(6, 10))
    verts, joints = smpl_reference(p, pose_correctives)
    out = sm.forward(model, p, pose_correctives=pose_correctives)
    assert np.abs(out.vertices - verts).max() < 1e-6
    assert np.abs(out.joints - joints).max() < 1e-6


def test_rig_channels_reproduce_smpl(model):
    """Blender's pose evaluation (in numpy) with the keyed channels IS the SMPL forward."""
    p = smpl_params(5, seed=9)
    rest = posing.rig_rest(model, p["betas"][0])
    assert rest.kind is sm.SMPL_KIND and rest.joint_expression.shape == (24, 3, 0)
    tails = rest.tails
    wrist, hand = (sm.SMPL_JOINT_NAMES.index(n) for n in ("left_wrist", "left_hand"))
    assert np.allclose(tails[wrist], rest.joints[hand])  # the wrist points at its hand joint
    B = np.stack([np.eye(3)] * 24)  # any orthonormal rest frames work
    ch = posing.pose_channels(p, rest, B)
    assert ch.quaternions.shape == (5, 24, 4) and ch.pose_features.shape == (5, 207)
    assert ch.expression.shape == (5, 0) and ch.located.tolist() == [True] + [False] * 23
    D = posing.evaluate_armature(B, rest.joints, rest.parents, ch.quaternions, ch.locations)
    out = sm.forward(model, p)
    v_posed = rest.vertices + posing.smplx_to_armature(
        sm.pose_offsets(model, ch.pose_features))
    skinned = sm.linear_blend_skinning(v_posed, D, model.lbs_weights)
    assert np.abs(skinned - posing.camera_to_blender(out.vertices)).max() < 1e-9


def test_smoothing_an_smpl_take_filters_body_and_root_only():
    from pose2pose_mocap.retarget.smoothing import Smoothing, smooth_take

    p = smpl_params(40, seed=2, max_angle=0.3)
    take = make_smpl_take(p)
    out = smooth_take(take, Smoothing())
    assert set(out.params) == {"global_orient", "body_pose", "betas", "transl"}
    assert not np.allclose(out.params["body_pose"], take.params["body_pose"])
    assert not np.allclose(out.params["transl"], take.params["transl"])
    assert np.array_equal(out.params["betas"], take.params["betas"])


def test_each_take_picks_its_body_models_file(tmp_path):
    from pose2pose_mocap.retarget.convert import BodyModelFiles, model_file

    root = standin_smpl_root()
    files = BodyModelFiles(smplx=tmp_path / "nowhere", smpl=root)
    assert model_file(files, "neutral", "smpl") == standin_smpl_path()
    assert model_file(files, "male", "smpl").name == "SMPL_MALE.npz"
    with pytest.raises(ModelFileError, match="SMPL-X model"):
        model_file(files, "neutral", "smplx")
    # a plain folder serves both bodies; a plain SMPL-X file cannot serve an SMPL take
    assert model_file(root, "neutral", "smpl") == standin_smpl_path()
    with pytest.raises(ModelFileError, match="--smpl"):
        model_file(standin_smpl_path(), "neutral", "smpl")
    with pytest.raises(ModelFileError, match="SMPL_NEUTRAL.npz"):
        model_file(BodyModelFiles(smpl=tmp_path), "neutral", "smpl")
    with pytest.raises(RetargetError, match="unknown body model"):
        sm.body_kind("mano")


def test_search_order_for_smpl_files(tmp_path, monkeypatch):
    from pose2pose_mocap.weights import locations as loc

    monkeypatch.setenv(loc.ENV_DATA_DIR, str(tmp_path / "data"))
    monkeypatch.setenv(loc.ENV_IGNORE_CHECKOUT, "1")
    monkeypatch.delenv(loc.ENV_SMPL, raising=False)
    miss = loc.find_smpl()
    assert miss.path is None and miss.install_to == tmp_path / "data" / "smpl" / "SMPL_NEUTRAL.npz"
    with pytest.raises(loc.ModelNotFoundError, match="--smpl"):
        loc.smpl_model_file(None, "neutral")
    # the user data directory, then the environment variable, then the flag
    data = tmp_path / "data" / "smpl"
    data.mkdir(parents=True)
    (data / "SMPL_NEUTRAL.npz").write_bytes(standin_smpl_path().read_bytes())
    hit = loc.find_smpl()
    assert hit.path == data / "SMPL_NEUTRAL.npz" and hit.standin
    monkeypatch.setenv(loc.ENV_SMPL, str(standin_smpl_root()))
    assert loc.find_smpl().path == standin_smpl_path()
    assert loc.smpl_lookup(str(data / "SMPL_NEUTRAL.npz"))("neutral") == data / "SMPL_NEUTRAL.npz"
    # an explicit place without the file is an error, and a .pkl there is named, not opened
    empty = tmp_path / "official"
    (empty / "smpl").mkdir(parents=True)
    (empty / "smpl" / "SMPL_NEUTRAL.pkl").write_bytes(b"not opened")
    with pytest.raises(loc.ModelNotFoundError, match=r"SMPL_NEUTRAL\.pkl is a pickle"):
        loc.smpl_model_file(str(empty), "neutral")



def test_pkl_conversion_tool_gives_a_file_the_loader_takes(tmp_path):
    """tools/smpl_pkl_to_npz.py on an official-style pickle (plain arrays, a SciPy sparse
    J_regressor, the release's extra entries; chumpy is not installed here)."""
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    scipy_sparse = pytest.importorskip("scipy.sparse")
    from pose2pose_mocap.weights.standins import smpl_standin_arrays

    a = smpl_standin_arrays("female")
    official = {k: v for k, v in a.items() if k != "standin"}
    official["J_regressor"] = scipy_sparse.csc_matrix(a["J_regressor"])
    official.update(bs_style="lbs", bs_type="lrotmin", pose_training_info={"x": 1},
                    vert_sym_idxs=np.arange(6890))
    src = tmp_path / "basicmodel_f_lbs_10_207_0_v1.1.0.pkl"
    src.write_bytes(pickle.dumps(official, protocol=2))
    dst = tmp_path / "smpl" / "SMPL_FEMALE.npz"
    dst.parent.mkdir()
    tool = Path(__file__).resolve().parents[2] / "tools" / "smpl_pkl_to_npz.py"
    run = subprocess.run([sys.executable, str(tool), str(src), str(dst)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    m = sm.load_smpl_model(dst)
    assert not m.standin and m.gender == "female"
    np.testing.assert_array_equal(m.J_regressor, a["J_regressor"])
    np.testing.assert_array_equal(m.v_template, a["v_template"])
    again = subprocess.run([sys.executable, str(tool), str(src), str(dst)], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 1 and "not replacing" in again.stderr
