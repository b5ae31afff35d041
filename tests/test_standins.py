"""Stand-in model files: SMPL-X format, a sane rigged humanoid, the official checkpoint
container. One set of files is written per session (``standin_root`` in conftest)."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pose2pose_mocap.weights import standin_rule, standins
from pose2pose_mocap.weights.locations import find_smplx, smplx_file_is_standin
from pose2pose_mocap.common.smplx_file import check_smplx_file

GENDERS = ("neutral", "male", "female")
V, F, NJ = 10475, 20908, 55
# The real SMPL-X kinematic tree (parents of the 55 joints).
REAL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15,
                15, 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38, 21, 40, 41, 21,
                43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53]
# name -> (shape, dtype) as written; None = any length
EXPECTED = {
    "v_template": ((V, 3), np.float64),
    "f": ((F, 3), np.uint32),
    "shapedirs": ((V, 3, 400), np.float64),
    "posedirs": ((V, 3, 486), np.float64),
    "J_regressor": ((NJ, V), np.float64),
    "kintree_table": ((2, NJ), np.int64),
    "weights": ((V, NJ), np.float64),
    "hands_componentsl": ((45, 45), np.float64),
    "hands_componentsr": ((45, 45), np.float64),
    "hands_meanl": ((45,), np.float64),
    "hands_meanr": ((45,), np.float64),
    "hands_coeffsl": ((None, 45), np.float64),
    "hands_coeffsr": ((None, 45), np.float64),
    "lmk_faces_idx": ((51,), np.int64),
    "lmk_bary_coords": ((51, 3), np.float64),
    "dynamic_lmk_faces_idx": ((79, 17), np.int64),
    "dynamic_lmk_bary_coords": ((79, 17, 3), np.float64),
    "vt": ((11313, 2), np.float64),
    "ft": ((F, 3), np.uint32),
    "standin": ((), np.str_),
}
MIRROR = np.tile([1.0, -1.0, -1.0], 15)


def _npz(root: Path, gender: str) -> Path:
    return root / "smplx" / f"SMPLX_{gender.upper()}.npz"


@pytest.fixture(scope="module")
def arrays(standin_root):
    out = {}
    for g in GENDERS:
        with np.load(_npz(standin_root, g), allow_pickle=False) as z:
            out[g] = {k: z[k] for k in z.files}
    return out


@pytest.fixture(scope="module")
def neutral(arrays):
    return arrays["neutral"]


@pytest.fixture(scope="module")
def components(neutral):
    """Connected component label of each vertex (via the faces)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = neutral["f"].astype(np.int64)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    g = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(V, V))
    n, labels = connected_components(g, directed=False)
    return n, labels


def _smplx_model(root, gender="neutral", **kw):
    smplx = pytest.importorskip("smplx")
    return smplx.create(str(root), model_type="smplx", gender=gender, ext="npz", **kw)


# ----------------------------------------------------------------------------- files
def test_files_written_and_reported_as_standins(standin_root):
    for g in GENDERS:
        p = _npz(standin_root, g)
        assert p.is_file()
        assert smplx_file_is_standin(p)
        assert check_smplx_file(p) == []
        hit = find_smplx(standin_root, gender=g)
        assert hit.found and hit.standin and hit.path == p
    assert (standin_root / "pose2pose" / "standin.pth.tar").is_file()
    leftovers = [p for p in standin_root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_npz_layout_is_numpy_savez_with_fixed_times(standin_root):
    with zipfile.ZipFile(_npz(standin_root, "neutral")) as z:
        infos = z.infolist()
    assert sorted(i.filename for i in infos) == sorted(k + ".npy" for k in EXPECTED)
    for i in infos:
        assert i.compress_type == zipfile.ZIP_STORED
        assert i.date_time == (1980, 1, 1, 0, 0, 0)


@pytest.mark.parametrize("gender", GENDERS)
def test_array_names_shapes_dtypes(arrays, gender):
    a = arrays[gender]
    assert set(a) == set(EXPECTED)
    for name, (shape, dtype) in EXPECTED.items():
        arr = a[name]
        assert arr.dtype.type == dtype, name
        assert arr.ndim == len(shape), name
        for got, want in zip(arr.shape, shape):
            assert want is None or got == want, (name, arr.shape)
        if arr.dtype.kind == "f":
            assert np.isfinite(arr).all(), name
    assert "stand-in" in str(a["standin"])
    assert a["hands_coeffsl"].shape[0] >= 1


# ----------------------------------------------------------------------------- topology
def test_counts_and_faces(neutral):
    f = neutral["f"].astype(np.int64)
    assert f.shape == (F, 3) and len(neutral["v_template"]) == V
    assert f.min() >= 0 and f.max() < V
    assert len(np.unique(f)) == V                      # every vertex is used
    assert (f[:, 0] != f[:, 1]).all() and (f[:, 1] != f[:, 2]).all() and (f[:, 0] != f[:, 2]).all()
    assert len({tuple(sorted(t)) for t in f.tolist()}) == F   # no duplicate triangles


def test_every_limb_is_closed_and_the_mouth_is_the_only_hole(neutral, components):
    f = neutral["f"].astype(np.int64)
    n, labels = components
    assert n == 8          # torso, head, 2 eyes, 2 arms (with hands), 2 legs (with feet)
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    keys = directed[:, 0] * V + directed[:, 1]
    assert len(np.unique(keys)) == len(keys)           # consistently oriented, manifold
    rev = directed[:, 1] * V + directed[:, 0]
    boundary = directed[~np.isin(keys, rev)]
    head = labels[standins.EXTRA_VERTEX_IDS["nose"]]
    assert len(boundary) == 12
    assert (labels[boundary[:, 0]] == head).all()
    # the 12 boundary edges form one loop (the mouth rim), around the mouth
    nxt = dict(boundary.tolist())
    start = boundary[0, 0]
    cur, steps = nxt[start], 1
    while cur != start:
        cur, steps = nxt[cur], steps + 1
    assert steps == 12
    rim = neutral["v_template"][boundary[:, 0]]
    assert np.abs(rim[:, 0]).max() < 0.04 and (rim[:, 2] > 0.08).all()
    assert np.abs(rim[:, 1] - 0.245).max() < 0.015
    # Euler: 7 closed spheres and one sphere with one hole
    for c in range(n):
        vc = int((labels == c).sum())
        fc = int((labels[f[:, 0]] == c).sum())
        bc = int((labels[boundary[:, 0]] == c).sum())
        edges = (3 * fc + bc) // 2
        chi = vc - edges + fc
        assert chi == (1 if c == head else 2), (c, chi)
    # outward normals: every component encloses a positive volume
    tri = neutral["v_template"][f]
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    for c in range(n):
        assert vol[labels[f[:, 0]] == c].sum() > 0


# ----------------------------------------------------------------------------- skeleton
def test_kinematic_tree_and_names(neutral):
    kt = neutral["kintree_table"]
    assert kt[0, 0] == 4294967295
    assert kt[0, 1:].tolist() == REAL_PARENTS[1:]
    assert kt[1].tolist() == list(range(NJ))
    assert list(standins.PARENTS) == REAL_PARENTS
    joint_names = pytest.importorskip("smplx.joint_names")
    assert list(standins.JOINT_NAMES) == joint_names.JOINT_NAMES[:NJ]


@pytest.mark.parametrize("gender", GENDERS)
def test_j_regressor_reproduces_the_designed_joints(arrays, gender):
    a = arrays[gender]
    R = a["J_regressor"]
    assert R.min() >= 0.0
    np.testing.assert_allclose(R.sum(axis=1), 1.0, atol=1e-12)
    joints = R @ a["v_template"]
    designed = standins._build_body(standins.PROPORTIONS[gender]).joints
    np.testing.assert_allclose(joints, designed, atol=1e-6, rtol=0)


def test_joints_are_where_a_body_has_them(neutral):
    j = neutral["J_regressor"] @ neutral["v_template"]
    n = {name: j[i] for i, name in enumerate(standins.JOINT_NAMES)}
    assert abs(n["pelvis"][1] + 0.35) < 0.03 and abs(n["pelvis"][0]) < 1e-9
    # up the spine
    ys = [n[k][1] for k in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
    assert ys == sorted(ys)
    for side, sgn in (("left", 1), ("right", -1)):
        # left at +X; arms straight out; legs down
        chain = [n[f"{side}_{k}"][0] * sgn for k in ("collar", "shoulder", "elbow", "wrist")]
        assert chain == sorted(chain) and chain[0] > 0
        legs = [n[f"{side}_{k}"][1] for k in ("hip", "knee", "ankle", "foot")]
        assert legs == sorted(legs, reverse=True)
        assert n[f"{side}_foot"][2] > n[f"{side}_ankle"][2]          # feet point +Z
        for finger in ("index", "middle", "ring", "pinky"):
            xs = [n[f"{side}_{finger}{i}"][0] * sgn for i in (1, 2, 3)]
            assert xs == sorted(xs) and xs[0] > n[f"{side}_wrist"][0] * sgn
        assert n[f"{side}_thumb3"][2] > n[f"{side}_thumb1"][2] > n[f"{side}_wrist"][2]
        zs = [n[f"{side}_{k}1"][2] for k in ("index", "middle", "ring", "pinky")]
        assert zs == sorted(zs, reverse=True)                      # thumb side is +Z
        assert n[f"{side}_eye_smplhf"][0] * sgn > 0
    v = neutral["v_template"]
    assert 1.6 < v[:, 1].max() - v[:, 1].min() < 1.8
    assert abs(v[:, 1].min() + 1.30) < 0.01 and abs(v[:, 1].max() - 0.405) < 0.01
    assert n["left_wrist"][0] > 0.6 and n["right_wrist"][0] < -0.6


@pytest.mark.parametrize("gender", GENDERS)
def test_skinning_weights(arrays, gender):
    w = arrays[gender]["weights"]
    assert w.min() >= 0.0
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    nz = (w > 0).sum(axis=1)
    assert nz.min() >= 1 and nz.max() <= 3
    assert (w.sum(axis=0) > 0).all()                               # every joint drives something
    assert (nz > 1).mean() > 0.3                                   # blended, not rigid parts


def test_weights_follow_the_limbs(neutral):
    v, w = neutral["v_template"], neutral["weights"]
    J = {n: i for i, n in enumerate(standins.JOINT_NAMES)}
    main = w.argmax(axis=1)
    for vid, joint in (("lindex", "left_index3"), ("rthumb", "right_thumb3"),
                       ("LHeel", "left_ankle"), ("RBigToe", "right_foot"), ("nose", "head")):
        assert main[standins.EXTRA_VERTEX_IDS[vid]] == J[joint], vid
    forearm = (v[:, 0] > 0.5) & (v[:, 0] < 0.62) & (np.abs(v[:, 1] - 0.12) < 0.06)
    assert (main[forearm] == J["left_elbow"]).all()
    thigh = (np.abs(v[:, 1] + 0.65) < 0.03) & (v[:, 0] < -0.03)
    assert (main[thigh] == J["right_hip"]).all()


# ----------------------------------------------------------------------------- extra joint vertices
def test_named_vertices_sit_where_smplx_expects_them(neutral):
    v = neutral["v_template"]
    ids = standins.EXTRA_VERTEX_IDS
    j = neutral["J_regressor"] @ v
    J = {n: j[i] for i, n in enumerate(standins.JOINT_NAMES)}
    names = list(standins.JOINT_NAMES)
    main = neutral["weights"].argmax(axis=1)
    head = v[:, 1] > 0.19
    hv = np.flatnonzero(head)
    assert hv[np.argmax(v[hv, 2])] == ids["nose"]                   # nose tip is front-most
    assert abs(v[ids["nose"], 0]) < 1e-9 and 0.25 < v[ids["nose"], 1] < 0.30
    assert hv[np.argmax(v[hv, 0])] == ids["lear"]
    assert hv[np.argmin(v[hv, 0])] == ids["rear"]
    for key, eye, sgn in (("leye", "left_eye_smplhf", 1), ("reye", "right_eye_smplhf", -1)):
        p = v[ids[key]]
        assert p[0] * sgn > 0.02 and p[2] > J[eye][2] and abs(p[1] - J[eye][1]) < 1e-6
        assert p[2] < v[ids["nose"], 2]
    for s, sgn in (("L", 1), ("R", -1)):
        big, small, heel = v[ids[s + "BigToe"]], v[ids[s + "SmallToe"]], v[ids[s + "Heel"]]
        ankle = J[("left" if s == "L" else "right") + "_ankle"]
        for p in (big, small, heel):
            assert p[1] < -1.2 and p[0] * sgn > 0
        assert heel[2] < ankle[2] < small[2] < big[2]              # heel behind, toes ahead
        assert abs(big[0]) < abs(small[0])                         # big toe is medial
    for h, side, sgn in (("l", "left", 1), ("r", "right", -1)):
        wrist = J[f"{side}_wrist"]
        tips = {k: v[ids[h + k]] for k in ("thumb", "index", "middle", "ring", "pinky")}
        for k, p in tips.items():
            assert p[0] * sgn > wrist[0] * sgn + 0.08, k           # right hand: x < wrist x
            d3 = np.linalg.norm(p - J[f"{side}_{k}3"])
            assert 0.015 < d3 < 0.04, k
            # the tip ends its finger: the farthest of that segment's vertices along the finger
            j2, j3 = J[f"{side}_{k}2"], J[f"{side}_{k}3"]
            seg = np.flatnonzero(main == names.index(f"{side}_{k}3"))
            along = (v[seg] - j3) @ ((j3 - j2) / np.linalg.norm(j3 - j2))
            assert seg[np.argmax(along)] == ids[h + k], k
        zs = [tips[k][2] for k in ("thumb", "index", "middle", "ring", "pinky")]
        assert zs == sorted(zs, reverse=True)


def test_face_landmarks_are_on_the_face(neutral, components):
    v, f = neutral["v_template"], neutral["f"].astype(np.int64)
    _, labels = components
    head = labels[standins.EXTRA_VERTEX_IDS["nose"]]
    for fi, bc in ((neutral["lmk_faces_idx"], neutral["lmk_bary_coords"]),
                   (neutral["dynamic_lmk_faces_idx"], neutral["dynamic_lmk_bary_coords"])):
        assert fi.min() >= 0 and fi.max() < F
        assert (labels[f[fi.ravel(), 0]] == head).all()
        assert bc.min() >= 0.0
        np.testing.assert_allclose(bc.sum(-1), 1.0, atol=1e-12)
    p = np.einsum("lk,lkc->lc", neutral["lmk_bary_coords"], v[f[neutral["lmk_faces_idx"]]])
    assert (p[:, 2] > 0.06).all() and (np.abs(p[:, 0]) < 0.06).all()
    assert (p[:, 1] > 0.23).all() and (p[:, 1] < 0.33).all()
    brows, nose, mouth = p[0:10], p[10:19], p[31:51]
    assert brows[:, 1].min() > nose[:, 1].max() - 0.03 > mouth[:, 1].max() - 0.03
    assert (brows[:5, 0] < 0).all() and (brows[5:, 0] > 0).all()   # 17-21 = subject's right
    contour = np.einsum("rlk,rlkc->rlc", neutral["dynamic_lmk_bary_coords"],
                        v[f[neutral["dynamic_lmk_faces_idx"]]])
    row0 = contour[0]
    assert row0[0, 0] < 0 < row0[16, 0] and row0[8, 1] < row0[0, 1]  # ear to chin to ear


# ----------------------------------------------------------------------------- blend shapes
def test_hand_pca_and_mean(neutral):
    for side in "lr":
        c = neutral["hands_components" + side]
        np.testing.assert_allclose(c @ c.T, np.eye(45), atol=1e-10)
    np.testing.assert_array_equal(neutral["hands_componentsr"],
                                  neutral["hands_componentsl"] * MIRROR[None, :])
    np.testing.assert_array_equal(neutral["hands_meanr"], neutral["hands_meanl"] * MIRROR)
    mean = neutral["hands_meanl"].reshape(15, 3)
    flex = mean[:12, 2]                 # index/middle/pinky/ring: flexion about -Z (left hand)
    assert (flex < -0.1).all() and (flex > -0.6).all()
    assert 0.05 < np.linalg.norm(mean[12:], axis=1).min()


def test_shape_and_expression_directions(neutral, components):
    v, sd = neutral["v_template"], neutral["shapedirs"]
    _, labels = components
    height = lambda x: x[:, 1].max() - x[:, 1].min()  # noqa: E731
    assert 0.04 < height(v + sd[:, :, 0]) - height(v) < 0.1        # beta 0: taller
    torso = np.abs(v[:, 1] + 0.1) < 0.02
    width = lambda x: np.ptp(x[torso, 0])  # noqa: E731
    assert width(v + sd[:, :, 1]) > width(v) + 0.02                # beta 1: heavier
    assert np.abs(sd[:, :, 10:300]).max() < 0.005                  # the rest are small
    head = labels == labels[standins.EXTRA_VERTEX_IDS["nose"]]
    expr = sd[:, :, 300:]
    assert np.abs(expr[~head]).max() == 0.0                        # expressions: face only
    assert (np.abs(expr[:, :, :10]).max(axis=(0, 1)) > 0.002).all()
    jaw_open = expr[:, 1, 0]
    chin = head & (v[:, 1] < 0.235) & (v[:, 2] > 0.06)
    assert jaw_open[chin].min() < -0.005 and jaw_open.max() <= 0.0
    pd = neutral["posedirs"]
    assert np.abs(pd).max() <= 0.01 and np.abs(pd).max() > 0.001


def test_uv_layout(neutral):
    vt, ft = neutral["vt"], neutral["ft"].astype(np.int64)
    assert vt.min() >= 0.0 and vt.max() <= 1.0
    assert ft.min() >= 0 and ft.max() < len(vt)
    assert len(np.unique(ft)) == len(vt)


def test_genders_share_topology_and_differ_in_shape(arrays):
    n, m, w = arrays["neutral"], arrays["male"], arrays["female"]
    for key in ("f", "ft", "kintree_table", "lmk_faces_idx", "dynamic_lmk_faces_idx"):
        np.testing.assert_array_equal(n[key], m[key])
        np.testing.assert_array_equal(n[key], w[key])
    h = {g: np.ptp(a["v_template"][:, 1]) for g, a in arrays.items()}
    assert h["female"] < h["neutral"] < h["male"]


# ----------------------------------------------------------------------------- smplx
@pytest.mark.torch
@pytest.mark.parametrize("gender", GENDERS)
@pytest.mark.parametrize("kw", [
    dict(use_pca=False),
    dict(use_pca=False, use_face_contour=True, num_betas=10, num_expression_coeffs=10,
         flat_hand_mean=False),
    dict(use_pca=True),
], ids=["plain", "pose2pose", "pca"])
def test_loads_with_smplx(standin_root, gender, kw):
    model = _smplx_model(standin_root, gender, **kw)
    out = model()
    assert tuple(out.vertices.shape) == (1, V, 3)
    n_joints = 144 if kw.get("use_face_contour") else 127
    assert tuple(out.joints.shape) == (1, n_joints, 3)
    assert bool(out.vertices.isfinite().all())
    assert model.faces.shape == (F, 3)


@pytest.mark.torch
def test_smplx_rest_pose_is_the_template_and_extra_joints_are_the_named_vertices(standin_root,
                                                                                  neutral):
    model = _smplx_model(standin_root, use_pca=False, flat_hand_mean=True, use_face_contour=True)
    out = model()
    v = out.vertices[0].detach().numpy()
    np.testing.assert_allclose(v, neutral["v_template"], atol=1e-5)
    joints = out.joints[0].detach().numpy()
    np.testing.assert_allclose(joints[:NJ], neutral["J_regressor"] @ neutral["v_template"],
                               atol=1e-5)
    order = ["nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
             "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb",
             "rindex", "rmiddle", "rring", "rpinky"]
    ids = [standins.EXTRA_VERTEX_IDS[k] for k in order]
    np.testing.assert_allclose(joints[NJ:NJ + 21], v[ids], atol=1e-6)


@pytest.mark.torch
def test_elbow_bend_stays_sane(standin_root, neutral):
    import torch

    model = _smplx_model(standin_root, use_pca=False, flat_hand_mean=True)
    rest = model().vertices[0].detach().numpy()
    pose = torch.zeros(1, 63)
    pose[0, (18 - 1) * 3 + 1] = -np.pi / 2          # left elbow: forearm swings to +Z
    out = model(body_pose=pose)
    v = out.vertices[0].detach().numpy()
    d = np.linalg.norm(v - rest, axis=1)
    j = neutral["J_regressor"] @ neutral["v_template"]
    arm_len = np.linalg.norm(j[18] - j[16]) + np.linalg.norm(j[20] - j[18]) + 0.2
    assert d.max() < arm_len
    assert d[rest[:, 0] < 0.2].max() < 0.01          # the rest of the body stays put
    tip = standins.EXTRA_VERTEX_IDS["lmiddle"]
    assert v[tip, 2] > rest[tip, 2] + 0.3 and abs(v[tip, 0] - j[18, 0]) < 0.1
    faces = model.faces.astype(np.int64)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    stretch = np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1) / np.maximum(
        np.linalg.norm(rest[e[:, 0]] - rest[e[:, 1]], axis=1), 1e-9)
    assert stretch.max() < 4.0


# ----------------------------------------------------------------------------- checkpoint
@pytest.mark.torch
def test_checkpoint_container_keys_and_rule(standin_root, data_dir):
    import torch

    ckpt = torch.load(standin_root / "pose2pose" / "standin.pth.tar", weights_only=True)
    assert set(ckpt) == {"epoch", "network", "optimizer"}
    assert ckpt["epoch"] == 6
    assert ckpt["optimizer"] == {"state": {}, "param_groups": []}
    official = json.loads((data_dir / "pose2pose_state_dict.json").read_text())
    net = ckpt["network"]
    assert len(official) == 834
    assert [k for k, _ in official] == list(net)
    for k, shape in official:
        assert k.startswith("module.")
        assert list(net[k].shape) == shape, k
        want = torch.int64 if k.endswith("num_batches_tracked") else torch.float32
        assert net[k].dtype == want, k
    assert standin_rule.standin_seed_of(net) == 1
    ref = standin_rule.make_state_dict(official, 1)
    for k in ("module.backbone.conv1.weight", "module.face_regressor.expr_out.0.bias"):
        np.testing.assert_array_equal(net[k].numpy(), ref[k[len("module."):]])


# ----------------------------------------------------------------------------- determinism
def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.slow
def test_writing_again_gives_identical_bytes(standin_root, arrays, tmp_path):
    # one file again on disk (bytes), the other two again in memory (arrays)
    p = standins.write_npz(tmp_path / "smplx" / "SMPLX_NEUTRAL.npz",
                           standins.smplx_standin_arrays("neutral"))
    assert _sha(p) == _sha(standin_root / "smplx" / p.name)
    for g in ("male", "female"):
        again = standins.smplx_standin_arrays(g)
        assert list(again) == list(arrays[g])
        for k, arr in again.items():
            np.testing.assert_array_equal(arr, arrays[g][k], err_msg=k)
    # overwriting in place is atomic and leaves nothing behind
    standins.write_npz(p, {"x": np.arange(3)})
    with np.load(p, allow_pickle=False) as z:
        assert z.files == ["x"]
    assert [q.name for q in (tmp_path / "smplx").iterdir()] == [p.name]


@pytest.mark.torch
def test_checkpoint_is_reproducible(standin_root, tmp_path):
    p = standins.write_checkpoint_standin(tmp_path)
    assert p == tmp_path / "pose2pose" / "standin.pth.tar"
    assert _sha(p) == _sha(standin_root / "pose2pose" / "standin.pth.tar")
