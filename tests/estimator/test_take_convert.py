"""Network outputs -> take rows: flat-hand convention and the static camera."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pose2pose_mocap.estimator.crop import crop_person
from pose2pose_mocap.estimator.pose2pose.outputs import crop_confidence, full_image_camera
from pose2pose_mocap.estimator.pose2pose.take_convert import (
    PelvisModel, crop_camera, project, rows_from_outputs, static_camera, static_translation)


def test_static_camera_default_and_fov():
    f, pp = static_camera((1920, 1080))
    assert f[0] == f[1] == pytest.approx(960 / math.tan(math.radians(30)))
    assert pp.tolist() == [959.5, 539.5]
    f_portrait, _ = static_camera((1080, 1920))  # default: 60 degrees across the long side
    assert f_portrait[0] == pytest.approx(f[0])
    f90, _ = static_camera((1920, 1080), fov_deg=90)  # --fov is horizontal
    assert f90[0] == pytest.approx(960)
    with pytest.raises(ValueError, match="between 1 and 179"):
        static_camera((100, 100), fov_deg=0)


def test_crop_camera_matches_reference_helper():
    box = np.array([[12.5, -30.0, 300.0, 400.0]])
    f, pp = crop_camera(box)
    ref = full_image_camera(box[0])
    assert np.allclose(f[0], ref.focal) and np.allclose(pp[0], ref.princpt)


def test_static_translation_synthetic():
    """Pelvis lands on the same pixel; apparent size is the same (random crops and bodies)."""
    rng = np.random.default_rng(0)
    n = 50
    P = rng.normal([0, -0.35, 0.01], 0.05, (n, 3))
    t = np.c_[rng.normal(0, 0.3, (n, 2)), rng.uniform(8, 50, n)]
    wh = rng.uniform(100, 900, n)
    box = np.c_[rng.uniform(-200, 1500, (n, 2)), wh * 0.75, wh]
    focal, princpt = static_camera((1920, 1080), 65)
    transl = static_translation(P, t, box, focal, princpt)
    fc, ppc = crop_camera(box)
    u_crop = fc * (P[:, :2] + t[:, :2]) / (P[:, 2:] + t[:, 2:]) + ppc
    u_static = project(P + transl, focal, princpt)
    assert np.abs(u_static - u_crop).max() < 1e-6
    # a point 0.5 m above the pelvis: same pixel distance in both cameras (to 1 %)
    up = P + [0, -0.5, 0]
    d_crop = np.linalg.norm(fc * (up[:, :2] + t[:, :2]) / (up[:, 2:] + t[:, 2:]) + ppc - u_crop,
                            axis=1)
    d_static = np.linalg.norm(project(up + transl, focal, princpt) - u_static, axis=1)
    assert np.allclose(d_static, d_crop, rtol=0.01)


@pytest.fixture(scope="module")
def one_frame(standin_net):
    """A network output for one crop of a synthetic image, and its take row."""
    import torch

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    pc = crop_person(image, (250.0, 60.0, 160.0, 380.0))
    x = torch.from_numpy(pc.crop[None]).permute(0, 3, 1, 2) / 255.0
    with torch.inference_mode():
        out = {k: v.numpy() for k, v in standin_net(x).items()}
    layer = standin_net.smplx_layer
    pelvis = PelvisModel.from_layer(layer)
    hands = (layer.left_hand_mean.numpy(), layer.right_hand_mean.numpy())
    focal, princpt = static_camera((640, 480))
    conf = [crop_confidence(out["joint_img"][0], out["smplx_joint_proj"][0])]
    rows = rows_from_outputs(out, pc.bbox[None].astype(np.float64),
                             pc.crop2img[None].astype(np.float64), pelvis, hands, focal,
                             princpt, conf)
    return out, rows, pc, focal, princpt


@pytest.fixture(scope="module")
def smplx_flat(standin_root):
    import smplx

    return smplx.create(str(standin_root), model_type="smplx", gender="neutral", ext="npz",
                        use_pca=False, flat_hand_mean=True, num_betas=10,
                        num_expression_coeffs=10).eval()


def _take_forward(model, rows):
    import torch

    kw = {k: torch.from_numpy(np.asarray(rows[k], np.float32)) for k in (
        "global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose",
        "leye_pose", "reye_pose", "betas", "expression", "transl")}
    with torch.no_grad():
        o = model(**kw)
    return o.vertices.numpy().astype(np.float64), o.joints.numpy().astype(np.float64)


def test_flat_hand_mean_conversion(one_frame, smplx_flat, standin_net):
    """smplx(flat_hand_mean=True)(take) == network mesh - cam_trans + transl."""
    out, rows, *_ = one_frame
    hands_mean = standin_net.smplx_layer.left_hand_mean.numpy()
    assert np.abs(hands_mean).max() > 0.05  # the stand-in's mean hand is not flat
    verts, _ = _take_forward(smplx_flat, rows)
    expect = out["smplx_mesh_cam"][0] - out["cam_trans"][0] + rows["transl"][0]
    assert np.abs(verts[0] - expect).max() < 1e-4
    # without the hands_mean shift the hands would differ
    wrong = dict(rows, left_hand_pose=out["smplx_lhand_pose"],
                 right_hand_pose=out["smplx_rhand_pose"])
    verts_wrong, _ = _take_forward(smplx_flat, wrong)
    assert np.abs(verts_wrong[0] - expect).max() > 1e-3


def test_static_camera_pelvis_projection(one_frame, smplx_flat):
    """The pelvis of smplx(take)+transl, through (focal, princpt), lands where the
    reference's per-crop camera puts the network's mesh pelvis: within 0.5 px."""
    out, rows, pc, focal, princpt = one_frame
    _, joints = _take_forward(smplx_flat, rows)
    pelvis_static = project(joints[0, 0], focal, princpt)
    no_transl = dict(rows, transl=np.zeros((1, 3), np.float32))
    _, joints0 = _take_forward(smplx_flat, no_transl)
    pelvis_cam = joints0[0, 0] + out["cam_trans"][0]  # the network's camera frame
    pelvis_crop = full_image_camera(pc.bbox).project(pelvis_cam)
    assert np.abs(pelvis_static - pelvis_crop).max() < 0.5


def test_pelvis_model_matches_smplx(one_frame, smplx_flat, standin_net):
    out, rows, *_ = one_frame
    no_transl = dict(rows, transl=np.zeros((1, 3), np.float32))
    _, joints0 = _take_forward(smplx_flat, no_transl)
    p = PelvisModel.from_layer(standin_net.smplx_layer)(rows["betas"], rows["expression"])
    assert np.abs(p[0] - joints0[0, 0]).max() < 1e-5


def test_raw_outputs_mapped_to_image(one_frame):
    out, rows, pc, *_ = one_frame
    assert rows["bbox_xywh"][0] == pytest.approx(pc.bbox)
    # joint_img x 64 = crop pixels; then the crop's inverse affine
    j = out["joint_img"][0]
    crop_px = j[:, :2] * 64.0
    img_px = crop_px * (pc.bbox[2] / 384.0) + pc.bbox[:2]
    assert np.abs(rows["joints_2d"][0, :, :2] - img_px).max() < 1e-2
    assert np.allclose(rows["joints_2d"][0, :, 2], j[:, 2], atol=1e-6)
    fb = out["face_bbox"][0]
    assert np.abs(rows["face_bbox"][0][:2] - (fb[:2] * pc.bbox[2] / 384.0 + pc.bbox[:2])).max() < 1e-2
    assert rows["score"].shape == (1,)
