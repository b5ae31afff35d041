"""I2L-MeshNet behind the estimator interface: the demo's crops, outputs back in the image,
the take's static camera, confidences, SMPL take rows, and ``--estimator i2l-meshnet``
through estimate, convert (a .blend with the SMPL rig) and ``weights check``."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.estimator.base import PoseEstimator
from pose2pose_mocap.estimator.crop import PinholeCamera, crop_affine
from pose2pose_mocap.estimator.i2l_meshnet import outputs as O
from pose2pose_mocap.estimator.i2l_meshnet.take_convert import (fit_translation,
                                                                rows_from_outputs)
from pose2pose_mocap.estimator.registry import get_estimator


# --------------------------------------------------------------------------- numpy parts

def test_crop_spec_cuts_like_the_demo():
    """Square box x1.25 in float64, warped from the float image: a uint8 frame gives the
    crop of its float32 copy (not a warped-then-rounded uint8 crop)."""
    spec = O.CROP_SPEC
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = (30.3, 20.7, 40.1, 70.9)
    pc = spec.cut(image, box)
    want = O.crop_person(image.astype(np.float32), box)
    assert pc.crop.dtype == np.float32 and pc.crop.shape == (256, 256, 3)
    np.testing.assert_array_equal(pc.crop, want.crop)
    assert pc.bbox.dtype == np.float64
    assert pc.bbox[2] == pc.bbox[3] == pytest.approx(69.9 * 1.25)
    np.testing.assert_array_equal(spec.process_box(box, (160, 120)), pc.bbox)
    assert not np.array_equal(pc.crop, np.round(pc.crop))  # sub-pixel values kept
    assert spec.cut(image, (-500, -500, 10, 10)) is not None  # clamped to the corner (reference)
    assert spec.cut(image, (500, 500, 10, 10)) is None  # wholly right of / below the image
    assert spec.cut(image, (10, 10, 0, 30)) is None


def test_lixels_back_to_the_image():
    box = np.array([100.0, 50.0, 300.0, 300.0])
    _, crop2img = crop_affine(box, (256, 256))
    pts = np.array([[[0.0, 0.0, 32.0], [64.0, 64.0, 0.0], [32.0, 16.0, 64.0]]])
    got = O.lixel_to_image(pts, crop2img[None])
    np.testing.assert_allclose(got[0], [[100, 50], [400, 350], [250, 125]], atol=1e-4)
    assert O.lixel_depth_m([32.0, 0.0, 64.0]).tolist() == [0.0, -1.0, 1.0]


def test_confidences():
    rng = np.random.default_rng(1)
    spread = rng.uniform(8, 56, (1, 29, 3))  # joints over most of the crop
    jc = O.joint_confidence(spread, spread + [1.0, 0.0, 7.0])
    assert jc.shape == (1, 29) and np.allclose(jc, np.exp(-0.25))  # z is not compared
    assert O.crop_confidence(spread, jc)[0] == pytest.approx(np.exp(-0.25))
    huddled = np.full((1, 29, 3), 31.5) + rng.normal(0, 0.5, (1, 29, 3))  # flat heat maps
    assert O.crop_confidence(huddled, np.ones((1, 29)))[0] == 0.0
    assert O.crop_confidence(np.full((1, 29, 3), np.nan), np.ones((1, 29)))[0] == 0.0
    assert O.joint_confidence(np.full((1, 29, 3), np.nan), spread)[0].max() == 0.0


def test_fit_translation_recovers_the_camera_placement():
    """The SMPL mesh placed at t and projected is what the lixel mesh saw: t comes back."""
    rng = np.random.default_rng(2)
    mesh = rng.normal(0, [0.25, 0.6, 0.1], (2, 6890, 3))
    t = np.array([[0.4, -0.2, 4.5], [-1.0, 0.3, 9.0]])
    cam = PinholeCamera(np.array([1100.0, 1100.0]), np.array([639.5, 359.5]))
    seen = cam.project(mesh + t[:, None])
    np.testing.assert_allclose(fit_translation(mesh, seen, cam.focal, cam.princpt), t,
                               atol=1e-9)
    # A twice longer focal puts the same image twice as far away.
    far = fit_translation(mesh, seen, cam.focal * 2, cam.princpt)
    assert far[:, 2] == pytest.approx(2 * t[:, 2], rel=0.02)


def test_rows_are_smpl_take_rows():
    rng = np.random.default_rng(3)
    n = 2
    box = np.array([[100.0, 50.0, 300.0, 300.0]] * n)
    crop2img = np.stack([crop_affine(b, (256, 256))[1] for b in box])
    mesh_cam = rng.normal(0, 0.3, (n, 6890, 3))
    root = rng.normal(0, 0.2, (n, 3))
    cam = PinholeCamera(np.array([900.0, 900.0]), np.array([319.5, 239.5]))
    t = np.array([[0.1, 0.2, 5.0], [0.0, -0.1, 6.0]])
    img = cam.project(mesh_cam + t[:, None])  # image pixels -> lixels through the box
    lix = (img - box[:, None, :2]) / box[:, None, 2:] * 64
    out = {"joint_coord_img": rng.uniform(0, 64, (n, 29, 3)),
           "mesh_coord_img": np.concatenate([lix, np.full((n, 6890, 1), 32.0)], axis=2),
           "pose_param": rng.normal(0, 0.3, (n, 72)), "shape_param": rng.normal(0, 1, (n, 10)),
           "mesh_coord_cam": mesh_cam, "smpl_root": root}
    rows = rows_from_outputs(out, box, crop2img, cam.focal, cam.princpt, [0.5, 0.7],
                             np.full((n, 29), 0.9))
    assert rows["global_orient"].shape == (n, 3) and rows["body_pose"].shape == (n, 69)
    assert rows["betas"].shape == (n, 10) and rows["joints_2d"].shape == (n, 29, 3)
    assert all(v.dtype == np.float32 for v in rows.values())
    # SMPL vertices (mesh_coord_cam + root) + transl = the body in the static camera
    np.testing.assert_allclose(rows["transl"], t - root, atol=1e-4)
    np.testing.assert_allclose(rows["body_pose"], out["pose_param"][:, 3:], atol=1e-6)
    assert np.allclose(rows["joints_2d"][..., 2], 0.9)


# --------------------------------------------------------------------------- the estimator

@pytest.fixture(scope="module")
def i2l(standin_root):
    from pose2pose_mocap.estimator.base import LoadOptions

    return get_estimator("i2l-meshnet").load(LoadOptions(
        device="cpu", smplx=str(standin_root), checkpoint=str(standin_root)))


@pytest.mark.slow
def test_loads_by_the_search_order_and_infers(i2l):
    assert isinstance(i2l, PoseEstimator)
    assert i2l.name == "i2l-meshnet" and i2l.model == "smpl" and i2l.standin
    assert i2l.model_name.startswith("standin.pth.tar sha256:")
    assert i2l.crop_spec.input_size == (256, 256)
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    crops = [i2l.crop_spec.cut(image, b) for b in ((200, 40, 120, 300), (10, 10, 100, 100))]
    cam = PinholeCamera(np.array([554.3, 554.3]), np.array([319.5, 179.5]))
    results = i2l.infer(crops, cam)
    assert len(results) == 2
    for r, c in zip(results, crops):
        assert r.model == "smpl" and set(r.params) == {"global_orient", "body_pose", "betas",
                                                       "transl"}
        assert r.params["body_pose"].shape == (69,) and r.params["betas"].shape == (10,)
        assert r.joints_2d.shape == (29, 3) and 0.0 <= r.confidence <= 1.0
        assert ((r.joints_2d[:, 2] >= 0) & (r.joints_2d[:, 2] <= 1)).all()
        assert np.array_equal(r.box, c.bbox) and r.tracking_points().shape == (29, 2)
        # the 2D joints lie in (or near) the crop box in the image
        x, y, w, h = c.bbox
        assert (r.joints_2d[:, 0] > x - w).all() and (r.joints_2d[:, 0] < x + 2 * w).all()
        assert np.isfinite(r.params["transl"]).all() and r.params["transl"][2] > 0
    assert i2l.infer([], cam) == []


def test_load_errors_are_one_line(tmp_path, standin_root):
    from pose2pose_mocap.estimator.base import LoadOptions
    from pose2pose_mocap.estimator.errors import EstimatorError

    entry = get_estimator("i2l-meshnet")
    with pytest.raises(EstimatorError) as err:
        entry.load(LoadOptions(smplx=str(standin_root), checkpoint=str(tmp_path / "none.pth")))
    assert "I2L-MeshNet checkpoint" in str(err.value) and "\n" not in str(err.value)
    ready = entry.check(smplx=str(standin_root), checkpoint=str(standin_root))
    assert ready.ready and ready.standin, ready.detail
    # nothing in the (test session's empty) data directory
    missing = entry.check(smplx=str(tmp_path), checkpoint=str(tmp_path))
    assert not missing.ready and "SMPL model" in missing.detail
    assert "I2L-MeshNet checkpoint" in missing.detail
