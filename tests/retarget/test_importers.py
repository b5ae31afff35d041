# SPDX-License-Identifier: GPL-3.0-or-later
"""Importers (issue 13 item 8): test files of each tool's output structure (small T),
converted to takes; bad or unknown files refused with one line naming what was expected."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pose2pose_mocap.retarget import importers as I
from pose2pose_mocap.retarget.importers import BodyInfo, ImportFormatError, import_file
from pose2pose_mocap.retarget.rotations import axis_angle_to_matrix
from pose2pose_mocap.retarget.take import read_take

RNG = np.random.default_rng(13)
LMEAN, RMEAN = np.full(45, 0.1), np.full(45, -0.2)
PELVIS = np.array([0.01, -0.35, 0.02])
BODY = BodyInfo(hands_mean=(LMEAN, RMEAN),
                pelvis=lambda betas, expr: np.repeat(PELVIS[None], np.shape(betas)[0], 0))


def small(*shape, scale=0.2):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


# ------------------------------------------------------------------ GVHMR (.pt, torch)

def gvhmr_file(path, L=5, K_per_frame=True):
    torch = pytest.importorskip("torch")
    incam = {"global_orient": torch.tensor(small(L, 3)), "body_pose": torch.tensor(small(L, 63)),
             "betas": torch.tensor(small(L, 10)),
             "transl": torch.tensor(np.tile([0.1, 0.2, 4.0], (L, 1)).astype(np.float32))}
    glob = {k: v.clone() for k, v in incam.items()}
    glob["transl"] = torch.tensor(small(L, 3))
    K = torch.tensor([[1468.6, 0, 640.0], [0, 1468.6, 360.0], [0, 0, 1]])
    data = {"smpl_params_global": glob, "smpl_params_incam": incam,
            "K_fullimg": K.repeat(L, 1, 1) if K_per_frame else K,
            "net_outputs": {"pred_cam": torch.zeros(1, L, 3)}}
    torch.save(data, path)
    return data


def test_gvhmr_results_become_a_camera_frame_take(tmp_path):
    f = tmp_path / "hmr4d_results.pt"
    data = gvhmr_file(f)
    assert I.detect_format(f) == "gvhmr"
    take = import_file(f, body=BODY)
    inc = data["smpl_params_incam"]
    for k in ("global_orient", "body_pose", "betas", "transl"):
        np.testing.assert_allclose(take.params[k], inc[k].numpy(), atol=1e-6)
    np.testing.assert_allclose(take.params["left_hand_pose"], np.tile(LMEAN, (5, 1)))
    np.testing.assert_allclose(take.params["right_hand_pose"], np.tile(RMEAN, (5, 1)))
    assert not take.params["expression"].any() and not take.params["jaw_pose"].any()
    assert take.estimator == "gvhmr" and take.fps == 30.0
    np.testing.assert_allclose(take.focal, [1468.6, 1468.6], rtol=1e-6)
    assert list(take.image_size) == [1280, 720]
    np.testing.assert_allclose(take.raw["world_transl"], data["smpl_params_global"]["transl"])
    assert any("no hands" in n for n in take.notes)


def test_gvhmr_take_is_written_and_read_back(tmp_path):
    from pose2pose_mocap.retarget.take import write_take

    f = tmp_path / "hmr4d_results.pt"
    gvhmr_file(f, K_per_frame=False)
    take = import_file(f, "gvhmr")   # no model: flat hands, said in the notes
    assert not take.params["left_hand_pose"].any()
    assert any("flat hands" in n for n in take.notes)
    out = write_take(tmp_path / "x.take.npz", take)
    back = read_take(out)
    assert back.estimator == "gvhmr" and back.num_frames == 5
    np.testing.assert_allclose(back.params["transl"], take.params["transl"], atol=1e-6)


class _Pwn:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_gvhmr_pickle_with_code_is_refused_and_never_run(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    f = tmp_path / "hmr4d_results.pt"
    torch.save({"smpl_params_incam": _Pwn(marker)}, f)
    assert not marker.exists()
    with pytest.raises(ImportFormatError, match="weights_only"):
        import_file(f, "gvhmr")
    assert not marker.exists()


def test_gvhmr_wrong_structure_names_what_was_expected(tmp_path):
    torch = pytest.importorskip("torch")
    f = tmp_path / "r.pt"
    torch.save({"smpl_params_incam": {"global_orient": torch.zeros(4, 3),
                                      "body_pose": torch.zeros(4, 69)}}, f)
    with pytest.raises(ImportFormatError, match=r"body_pose.*\(4, 63\)"):
        import_file(f)
    torch.save({"something": torch.zeros(2)}, f)
    with pytest.raises(ImportFormatError, match="smpl_params_incam"):
        import_file(f)


# ------------------------------------------------------------------ SMPLer-X (folder)

def smplerx_folder(root, frames=(1, 2, 4), person=0):
    (root / "smplx").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = {}
    for fr in frames:
        bbox = [100.0 + fr, 50.0, 300.0, 400.0]
        d = {"global_orient": small(1, 3), "body_pose": small(21, 3),
             "left_hand_pose": small(15, 3), "right_hand_pose": small(15, 3),
             "jaw_pose": small(1, 3), "leye_pose": np.zeros((1, 3)),
             "reye_pose": np.zeros((1, 3)), "betas": small(1, 10), "expression": small(1, 10),
             "transl": np.array([[0.05, 0.1, 40.0 + fr]], np.float32)}
        np.savez(root / "smplx" / f"{fr:05}_{person}.npz", **d)
        meta = {"focal": [5000 / 192 * bbox[2], 5000 / 256 * bbox[3]],
                "princpt": [96 / 192 * bbox[2] + bbox[0], 128 / 256 * bbox[3] + bbox[1]],
                "bbox": bbox, "bbox_mmdet": [110.0, 60.0, 280.0, 380.0], "bbox_id": person,
                "img_path": f"{fr:06d}.jpg"}
        (root / "meta" / f"{fr:05}_{person}.json").write_text(json.dumps(meta))
        rows[fr] = (d, meta)
    return rows


def test_smplerx_folder_becomes_a_take_in_one_static_camera(tmp_path):
    out = tmp_path / "output"
    rows = smplerx_folder(out)
    assert I.detect_format(out) == "smplerx"
    assert I.detect_format(out / "smplx") == "smplerx"
    take = import_file(out, body=BODY)
    assert take.estimator == "smpler-x" and list(take.frame_index) == [1, 2, 4]
    for i, fr in enumerate((1, 2, 4)):
        d, meta = rows[fr]
        np.testing.assert_allclose(take.params["body_pose"][i], d["body_pose"].reshape(63),
                                   atol=1e-6)
        np.testing.assert_allclose(take.params["left_hand_pose"][i],
                                   d["left_hand_pose"].reshape(45) + LMEAN, atol=1e-6)
        # The pelvis lands on the same pixel, with the same apparent size.
        p_crop = PELVIS + d["transl"][0]
        uv_crop = np.array(meta["focal"]) * p_crop[:2] / p_crop[2] + meta["princpt"]
        p_new = PELVIS + take.params["transl"][i]
        uv_new = take.focal * p_new[:2] / p_new[2] + take.princpt
        np.testing.assert_allclose(uv_new, uv_crop, atol=1e-3)
        np.testing.assert_allclose(take.focal[0] / p_new[2], meta["focal"][0] / p_crop[2],
                                   rtol=1e-5)
    assert list(take.image_size) == [390, 440]
    np.testing.assert_allclose(take.raw["cam_trans"][:, 2], [41, 42, 44])


def test_smplerx_refusals(tmp_path):
    out = tmp_path / "output"
    smplerx_folder(out)
    with pytest.raises(ImportFormatError, match="SMPL-X model"):
        import_file(out)                       # hands need the model's mean hand
    with pytest.raises(ImportFormatError, match="person 3"):
        import_file(out, body=BODY, person=3)
    (out / "meta" / "00002_0.json").unlink()
    with pytest.raises(ImportFormatError, match="00002_0.json: missing"):
        import_file(out, body=BODY)
    np.savez(out / "smplx" / "00002_0.npz", global_orient=np.zeros((1, 3)))
    with pytest.raises(ImportFormatError, match="no 'body_pose'"):
        import_file(out, body=BODY)
    np.savez(out / "smplx" / "00002_0.npz", global_orient=np.array([object()], dtype=object))
    with pytest.raises(ImportFormatError, match="pickled"):
        import_file(out, body=BODY)


# ------------------------------------------------------------------ Meshcapade .smpl

def smpl_file(path, T=4, **extra):
    d = {"codecVersion": np.int32(2), "smplVersion": np.int32(2), "gender": np.int32(2),
         "shapeParameters": small(16), "frameCount": np.int32(T),
         "frameRate": np.float32(24.0), "bodyTranslation": small(T, 3),
         "bodyPose": small(T, 22, 3), "headPose": small(T, 3, 3),
         "leftHandPose": small(T, 15, 3), "rightHandPose": small(T, 15, 3)}
    d.update(extra)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **d)
    return d


def test_smpl_codec_file_is_turned_into_our_frame(tmp_path):
    f = tmp_path / "dance.smpl"
    d = smpl_file(f)
    assert I.detect_format(f) == "smplcodec"
    take = import_file(f, body=BODY)
    assert take.gender == "female" and take.fps == 24.0 and take.estimator == "smplcodec"
    R = np.diag([1.0, -1.0, -1.0])
    pose = d["bodyPose"].reshape(4, 66).astype(np.float64)
    np.testing.assert_allclose(axis_angle_to_matrix(take.params["global_orient"]),
                               R @ axis_angle_to_matrix(pose[:, :3]), atol=1e-5)
    np.testing.assert_allclose(take.params["body_pose"], pose[:, 3:], atol=1e-6)
    np.testing.assert_allclose(take.params["reye_pose"], d["headPose"][:, 2], atol=1e-6)
    np.testing.assert_allclose(take.params["betas"][0], d["shapeParameters"][:10], atol=1e-6)
    # The posed pelvis (J0 + t) turns with the world.
    np.testing.assert_allclose(PELVIS + take.params["transl"],
                               (PELVIS + d["bodyTranslation"]) @ R.T, atol=1e-6)


def test_smpl_codec_other_body_models_are_refused(tmp_path):
    f = tmp_path / "a.smpl"
    smpl_file(f, smplVersion=np.int32(1))
    with pytest.raises(ImportFormatError, match="SMPL-H file"):
        import_file(f)
    smpl_file(f, bodyPose=small(4, 24, 3))
    with pytest.raises(ImportFormatError, match="bodyPose"):
        import_file(f, "smplcodec")


# ------------------------------------------------------------------ AMASS and unknown files

def test_amass_file_is_imported_with_its_estimator_name(tmp_path):
    f = tmp_path / "walk_poses.npz"
    np.savez(f, poses=small(6, 165), trans=small(6, 3), betas=small(16),
             gender=np.array("male"), mocap_frame_rate=np.array(60.0))
    assert I.detect_format(f) == "amass"
    take = import_file(f)
    assert take.estimator == "amass" and take.fps == 60.0 and take.num_frames == 6


def test_unknown_files_name_what_was_expected(tmp_path):
    f = tmp_path / "x.npz"
    np.savez(f, hello=np.zeros(3))
    assert I.detect_format(f) is None
    with pytest.raises(ImportFormatError, match="expected amass: .*smplerx: .*gvhmr: .*smplcodec"):
        import_file(f)
    with pytest.raises(ImportFormatError, match="not an AMASS file"):
        import_file(f, "amass")
    with pytest.raises(ImportFormatError, match="unknown import format"):
        import_file(f, "wham")
    with pytest.raises(ImportFormatError, match="no such file"):
        import_file(tmp_path / "missing.pt")


# ------------------------------------------------------------------ the command

def test_import_command_writes_a_take_and_refuses_bad_files(tmp_path, capsys):
    from pose2pose_mocap.cli import main

    f = tmp_path / "dance.smpl"
    smpl_file(f)
    out = tmp_path / "dance.take.npz"
    assert main(["import", str(f), "-o", str(out), "--fps", "25"]) == 0
    take = read_take(out)
    assert take.estimator == "smplcodec" and take.fps == 25.0 and take.num_frames == 4
    assert "wrote" in capsys.readouterr().out
    before = out.read_bytes()
    assert main(["import", str(f), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "Traceback" not in err
    assert out.read_bytes() == before
    bad = tmp_path / "bad.npz"
    np.savez(bad, hello=np.zeros(3))
    assert main(["import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected amass" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "dance.smpl",
                                                         "dance.take.npz"]


def test_import_with_the_model_and_convert_accepts_results_directly(standin_root, tmp_path):
    """With an SMPL-X model file (stand-in): SMPLer-X gets its hand mean and pelvis from
    it; ``convert`` takes a .smpl file as it is (a take is kept beside the .blend)."""
    from tests.test_doctor import p2p

    out = tmp_path / "output"
    smplerx_folder(out)
    r = p2p("import", str(out), "--smplx", str(standin_root), "--fps", "24")
    assert r.returncode == 0, r.stdout + r.stderr
    take = read_take(tmp_path / "output.take.npz")
    assert take.estimator == "smpler-x" and take.fps == 24.0 and take.num_frames == 3
    f = tmp_path / "dance.smpl"
    smpl_file(f)
    r = p2p("convert", str(f), "--smplx", str(standin_root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "dance.take.npz").is_file() and (tmp_path / "dance.blend").is_file()
    assert read_take(tmp_path / "dance.take.npz").estimator == "smplcodec"


def test_smpl_codec_matches_the_amass_frame(tmp_path):
    """A .smpl file (Y up) and the same motion as an AMASS file (Z up: +90 degrees about
    x) give the same take."""
    from pose2pose_mocap.retarget.rotations import matrix_to_axis_angle

    f = tmp_path / "a.smpl"
    d = smpl_file(f, T=3)
    a = import_file(f)     # no model: the neutral template's pelvis, like read_take
    pose = d["bodyPose"].reshape(3, 66).astype(np.float64)
    Rz = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])   # Y up -> Z up
    J0 = np.array([0.0031232606, -0.3514074683, 0.0120365508])
    go = matrix_to_axis_angle(Rz @ axis_angle_to_matrix(pose[:, :3]))
    trans = (J0 + d["bodyTranslation"]) @ Rz.T - J0
    poses = np.concatenate([go, pose[:, 3:], d["headPose"].reshape(3, 9),
                            d["leftHandPose"].reshape(3, 45), d["rightHandPose"].reshape(3, 45)],
                           axis=1)
    g = tmp_path / "a_poses.npz"
    np.savez(g, poses=poses, trans=trans, betas=np.zeros(10), gender=np.array("female"),
             mocap_frame_rate=np.array(24.0))
    b = import_file(g)
    np.testing.assert_allclose(axis_angle_to_matrix(a.params["global_orient"]),
                               axis_angle_to_matrix(b.params["global_orient"]), atol=1e-5)
    # both sides turn about the neutral template's pelvis (no model given)
    np.testing.assert_allclose(a.params["transl"], b.params["transl"], atol=1e-5)


def test_import_command_refuses_hostile_and_corrupt_pt_with_one_line(tmp_path):
    torch = pytest.importorskip("torch")
    from tests.test_doctor import p2p

    marker = tmp_path / "pwned"
    f = tmp_path / "hmr4d_results.pt"
    torch.save({"smpl_params_incam": _Pwn(marker)}, f)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 not a torch file")
    for path in (f, junk):
        r = p2p("import", str(path))
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "expected a GVHMR" in r.stderr, r.stderr
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hmr4d_results.pt", "junk.pt"]
