"""The SMPL-X part of the outputs: mesh, projected joints, and the full-image camera.

Uses the project's SMPL-X stand-in model files (``weights/standins.py``), which
have the real array names and shapes, so the ``smplx`` package runs them as it
would run the licensed files.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from pose2pose_mocap.estimator import (ModelFileError, Pose2Pose, body_hm_to_image, crop_person,
                                       crops_to_tensor, full_image_camera, load_checkpoint,
                                       run_batch)
from pose2pose_mocap.estimator.pose2pose.joints import SMPLX_JOINT_IDX_137

from ._p2p_support import (PREPROCESS_NPZ, images, save_official_container, standin_model,
                           standin_outputs_b2, standin_tensors)

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def smplx_root(tmp_path_factory):
    """A folder holding smplx/SMPLX_{NEUTRAL,MALE,FEMALE}.npz stand-ins."""
    from pose2pose_mocap.weights.standins import write_smplx_standins

    root = tmp_path_factory.mktemp("smplx_standins")
    write_smplx_standins(root)
    assert (root / "smplx" / "SMPLX_NEUTRAL.npz").is_file()
    return root


@pytest.fixture(scope="module")
def mesh_model(smplx_root):
    model = Pose2Pose(smplx_root)
    model.load_state_dict(standin_model(1).state_dict(), strict=True)
    return model.eval()


def reference_smplx(root):
    """The smplx package configured as the reference (fact sheet 5.1), built independently."""
    import smplx

    return smplx.create(str(root), model_type="smplx", gender="neutral", use_pca=False,
                        flat_hand_mean=False, use_face_contour=True, num_betas=10,
                        num_expression_coeffs=10, ext="npz").eval()


def reference_joints_and_vertices(root, out):
    n = out["smplx_root_pose"].shape[0]
    with torch.no_grad():
        res = reference_smplx(root)(
            betas=out["smplx_shape"], global_orient=out["smplx_root_pose"],
            body_pose=out["smplx_body_pose"], left_hand_pose=out["smplx_lhand_pose"],
            right_hand_pose=out["smplx_rhand_pose"], jaw_pose=out["smplx_jaw_pose"],
            leye_pose=torch.zeros(n, 3), reye_pose=torch.zeros(n, 3),
            expression=out["smplx_expr"])
    assert res.joints.shape[1] == 144
    return res.joints, res.vertices


def test_smplx_layer_stays_out_of_the_state_dict(smplx_root, mesh_model):
    sd = Pose2Pose(smplx_root).state_dict()
    assert len(sd) == 834 and not any("smplx" in k for k in sd)
    assert mesh_model.has_smplx


@pytest.mark.parametrize("where", ["root", "folder", "file"])
def test_smplx_model_path_forms(smplx_root, where):
    path = {"root": smplx_root, "folder": smplx_root / "smplx",
            "file": smplx_root / "smplx" / "SMPLX_NEUTRAL.npz"}[where]
    from pose2pose_mocap.estimator.pose2pose.smplx_layer import resolve_smplx_npz

    assert resolve_smplx_npz(path) == smplx_root / "smplx" / "SMPLX_NEUTRAL.npz"


def test_missing_smplx_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match="SMPLX_NEUTRAL.npz"):
        Pose2Pose(tmp_path / "nowhere")


def test_broken_smplx_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(bad, v_template=np.zeros((10475, 3)))
    with pytest.raises(ModelFileError, match="array 'shapedirs' is missing"):
        Pose2Pose(bad)


def test_mesh_is_the_smplx_package_output_plus_cam_trans(smplx_root, mesh_model):
    out = run_batch(mesh_model, images(2, 1))
    assert out["smplx_mesh_cam"].shape == (2, 10475, 3)
    assert out["smplx_joint_proj"].shape == (2, 137, 2)
    joints, verts = reference_joints_and_vertices(smplx_root, out)
    cam = out["cam_trans"][:, None, :]
    torch.testing.assert_close(out["smplx_mesh_cam"], verts + cam, rtol=0, atol=1e-5)
    # Projection as the reference: focal 5000, principal point (96, 128), +1e-4 depth.
    p = joints[:, list(SMPLX_JOINT_IDX_137)] + cam
    x = p[..., 0] / (p[..., 2] + 1e-4) * 5000 + 96
    y = p[..., 1] / (p[..., 2] + 1e-4) * 5000 + 128
    want = torch.stack((x * 6 / 192, y * 8 / 256), dim=2)
    torch.testing.assert_close(out["smplx_joint_proj"], want, rtol=0, atol=1e-4)
    # The other outputs do not depend on the SMPL-X layer.
    for key, value in standin_outputs_b2().items():
        torch.testing.assert_close(out[key], value, rtol=0, atol=0)


def test_mesh_projects_onto_the_original_image(smplx_root, mesh_model):
    with np.load(PREPROCESS_NPZ) as z:
        image, box = z["image"], z["bbox_xywh_0"]
    crop = crop_person(image, box)
    out = run_batch(mesh_model, crops_to_tensor([crop.crop]))
    joints, verts = reference_joints_and_vertices(smplx_root, out)
    cam_trans = out["cam_trans"][0].numpy()
    joints_cam = joints[0, list(SMPLX_JOINT_IDX_137)].numpy() + cam_trans
    assert (joints_cam[:, 2] > 0).all()
    camera = full_image_camera(crop.bbox)
    on_image = camera.project(joints_cam)
    from_crop = body_hm_to_image(out["smplx_joint_proj"][0], crop.crop2img)
    assert np.abs(on_image - from_crop).max() < 0.5
    # The mesh itself (it already includes cam_trans) goes through the same camera.
    mesh = out["smplx_mesh_cam"][0].numpy()
    np.testing.assert_allclose(mesh, verts[0].numpy() + cam_trans, atol=1e-5)
    assert np.isfinite(camera.project(mesh)).all()


def test_load_checkpoint_with_smplx(tmp_path, smplx_root):
    path = save_official_container(tmp_path / "snapshot_6.pth.tar", standin_tensors(1))
    try:
        model = load_checkpoint(path, smplx_model_path=smplx_root / "smplx" / "SMPLX_NEUTRAL.npz")
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert model.has_smplx and not model.training and len(model.state_dict()) == 834
    out = run_batch(model, images(1, 2))
    assert out["smplx_mesh_cam"].shape == (1, 10475, 3)
