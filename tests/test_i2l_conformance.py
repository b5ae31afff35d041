"""I2L-MeshNet computes what the official code computes.

Reference: ``data/i2l_seed1_b2.npz``, the official test-mode outputs (and the
parameter regressor's input and outputs) for stand-in weights of seed 1 and
the input ``make_images(2, 1)``; ``data/i2l_preprocess_seed1.npz``, the demo's
boxes, affines and crops (rules and tolerances: shared/reference/README.md and
conformance/i2l_weights.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pose2pose_mocap.estimator.i2l_meshnet import I2LMeshNet
from pose2pose_mocap.estimator.i2l_meshnet.network import gaussian_heatmaps, soft_argmax_1d
from pose2pose_mocap.estimator.i2l_meshnet.outputs import crop_person, process_bbox
from pose2pose_mocap.estimator.i2l_meshnet.smpl_layer import SMPLLayer, batch_rodrigues
from pose2pose_mocap.estimator.pose2pose.geometry import rot6d_to_axis_angle
from pose2pose_mocap.weights import i2l_standins

from ._i2l_support import (PREPROCESS_NPZ, official_keys_and_shapes, reference,
                           standin_outputs_b2)
from ._p2p_support import independent_standin_rule

pytestmark = pytest.mark.torch

# Tolerances a faithful fp32 model meets (shared/reference/README.md).
TOL = {"joint_coord_img": 1e-4, "mesh_coord_img": 1e-4, "joint_img_from_mesh": 1e-4,
       "pose_param": 1e-5, "shape_param": 1e-5}
SHAPES = {"joint_coord_img": (29, 3), "mesh_coord_img": (6890, 3),
          "joint_img_from_mesh": (29, 3), "pose_param": (72,), "shape_param": (10,)}


def _independent_rule(names_shapes, seed, wanted):
    """The weight rule re-written from i2l_weights.py's docstring (not the product copy)."""
    out = independent_standin_rule(names_shapes, seed, wanted, lambda n: ".deconv." in n)
    for name, v in out.items():
        factor = {"conv_x": 20, "conv_y": 20, "conv_z_2": 3, "fc_shape": 0.1}.get(
            name.split(".")[1])
        if factor is not None and name.endswith(".weight"):
            out[name] = (v * np.float32(factor)).astype(np.float32)
    return out


def test_state_dict_is_exactly_the_official_layout():
    with torch.device("meta"):
        ours = I2LMeshNet().state_dict()
    official = [(k.removeprefix("module."), s) for k, s in official_keys_and_shapes()]
    assert len(official) == 730
    network = [(k, s) for k, s in official if not k.startswith("human_model_layer.")]
    assert len(ours) == 723 == len(network)
    assert list(ours) == [k for k, _ in network]  # same keys, same order
    assert [tuple(v.shape) for v in ours.values()] == [s for _, s in network]
    # The 7 left out are the SMPL buffers, at the end of the official list.
    assert [k for k, _ in official[723:]] == [
        f"human_model_layer.th_{n}" for n in ("betas", "shapedirs", "posedirs", "v_template",
                                              "J_regressor", "weights", "faces")]


def test_product_weight_rule_matches_the_reference_rule():
    keys = list(official_keys_and_shapes())
    wanted = {"pose_backbone.conv1.weight", "pose_backbone.bn1.weight",
              "pose_backbone.bn1.running_var", "pose_backbone.bn1.num_batches_tracked",
              "pose_net.deconv.0.weight", "pose_net.conv_x.0.weight", "pose_net.conv_x.0.bias",
              "mesh_net.conv_z_2.0.weight", "mesh_net.conv_z_1.1.running_mean",
              "pose2feat.conv.1.bias", "param_regressor.fc.1.weight",
              "param_regressor.fc_shape.0.weight", "param_regressor.fc_shape.0.bias"}
    mine = _independent_rule(keys, 1, wanted)
    product = i2l_standins.make_state_dict(keys, 1)
    assert set(mine) == wanted and len(product) == 723
    assert not any(k.startswith("human_model_layer.") for k in product)
    for name, value in mine.items():
        assert product[name].dtype == value.dtype, name
        np.testing.assert_array_equal(product[name], value, err_msg=name)
    assert i2l_standins.standin_seed_of(product) == 1
    other = dict(product, **{"param_regressor.fc_shape.0.bias": np.zeros(10, np.float32)})
    assert i2l_standins.standin_seed_of(other) is None


@pytest.mark.slow
def test_outputs_match_the_official_network():
    ref, out = reference(), standin_outputs_b2()
    for key, tol in TOL.items():
        got = out[key]
        assert got.dtype == np.float32 and got.shape == (2, *SHAPES[key]), key
        err = float(np.abs(got - ref[key]).max())
        assert err <= tol, f"{key}: max |ours - official| = {err:.3g} > {tol:g}"
    # The outputs are not trivially flat: the heat maps peak somewhere per joint.
    assert np.ptp(out["mesh_coord_img"][..., :2]) > 5


@pytest.mark.slow
def test_batch_items_are_independent():
    """Item 1 of the batch of two equals the network run on that image alone."""
    from ._i2l_support import images, standin_model

    with torch.inference_mode():
        alone = standin_model()(images(2, 1)[1:])
    both = standin_outputs_b2()
    for key in TOL:
        np.testing.assert_allclose(alone[key].numpy()[0], both[key][1], atol=TOL[key], rtol=0)


# -------------------------------------------------------------------- numeric test vectors

def test_soft_argmax_vectors():
    flat = torch.zeros(1, 1, 64)
    peak = torch.full((1, 1, 64), -1e4)
    peak[0, 0, 10] = 0
    three = torch.zeros(1, 1, 64)
    three[0, 0, 10] = float(np.log(3.0))
    got = [soft_argmax_1d(x).item() for x in (flat, peak, three)]
    assert got == pytest.approx([31.5, 10.0, 30.848484], abs=2e-6)


def test_gaussian_heatmap_channels():
    """One joint at (x, y, z) = (5, 7, 9): the peak of channel z sits at row y, column x."""
    hm = gaussian_heatmaps(torch.tensor([[[5.0, 7.0, 9.0]]]))
    assert hm.shape == (1, 1, 64, 64, 64)
    assert hm[0, 0, 9, 7, 5] == 1.0
    assert hm[0, 0, 9, 7, 6] == pytest.approx(np.exp(-0.5 / 2.5 ** 2))


def test_rotation_vectors():
    eye = rot6d_to_axis_angle(torch.tensor([[1.0, 0, 0, 1, 0, 0]]))
    assert eye.abs().max() < 1e-7
    aa = rot6d_to_axis_angle(torch.tensor([[0.3, -0.2, 0.5, 0.9, -0.7, 0.1]]))
    assert aa[0].tolist() == pytest.approx([0.191374, 1.079889, 0.604296], abs=2e-6)
    r = batch_rodrigues(torch.tensor([[0.3, -0.2, 0.5]]))[0]
    np.testing.assert_allclose(r.numpy(), [[0.859534, -0.497992, -0.114917],
                                           [0.439868, 0.835316, -0.329794],
                                           [0.260227, 0.232921, 0.937033]], atol=2e-6, rtol=0)


@pytest.mark.parametrize("box, size, want", [
    ([10.0, 20.0, 50.0, 100.0], (640, 480), [-27.375, 7.625, 123.75, 123.75]),
    ([600.0, 400.0, 100.0, 100.0], (640, 480), [570.125, 390.125, 98.75, 98.75]),
    ([139.41, 102.25, 222.39, 241.57], (640, 392), [99.74875, 72.17875, 300.7125, 300.7125]),
])
def test_process_bbox_vectors(box, size, want):
    got = process_bbox(box, *size)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, atol=1e-9, rtol=0)


def test_demo_box_affine():
    from pose2pose_mocap.estimator.crop import crop_affine

    img2bb, _ = crop_affine(process_bbox([139.41, 102.25, 222.39, 241.57], 640, 392), (256, 256))
    np.testing.assert_allclose(img2bb, [[0.8513115, 0, -84.91726], [0, 0.85131156, -61.446625]],
                               atol=2e-6, rtol=0)


def test_preprocessing_matches_the_demo():
    with np.load(PREPROCESS_NPZ) as z:
        ref = {k: z[k] for k in z.files}
    image = ref["image"]
    for i in (0, 1):
        box = process_bbox(ref[f"bbox_xywh_{i}"], image.shape[1], image.shape[0])
        np.testing.assert_allclose(box, ref[f"processed_bbox_{i}"], atol=1e-6, rtol=0)
        crop = crop_person(image, ref[f"bbox_xywh_{i}"])
        np.testing.assert_allclose(crop.bbox, ref[f"processed_bbox_{i}"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(crop.img2crop, ref[f"img2bb_{i}"], atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(crop.crop2img, ref[f"bb2img_{i}"], atol=1e-5, rtol=1e-6)
        assert crop.crop.dtype == np.float32 and crop.crop.shape == (256, 256, 3)
        err = float(np.abs(crop.crop - ref[f"crop_{i}"]).max())
        assert err <= 1e-3, f"crop {i}: max difference {err}"


# -------------------------------------------------------------------- the SMPL layer

@pytest.fixture(scope="module")
def smpl_arrays(tmp_path_factory):
    from pose2pose_mocap.estimator.i2l_meshnet.smpl_layer import read_smpl_arrays
    from pose2pose_mocap.weights.standins import write_smpl_standins

    root = tmp_path_factory.mktemp("smpl")
    write_smpl_standins(root)
    return read_smpl_arrays(root)


def test_smpl_layer_matches_the_smplx_package(smpl_arrays):
    """Standard SMPL skinning: our layer against ``smplx.SMPL`` on the same arrays (the
    fact sheet's check: the official layer matched smplx 0.1.28 to 5.4e-7 m)."""
    import smplx
    from smplx.utils import Struct

    rng = np.random.default_rng(3)
    pose = torch.tensor(rng.normal(0, 0.6, (3, 72)), dtype=torch.float32)
    betas = torch.tensor(rng.normal(0, 1.5, (3, 10)), dtype=torch.float32)
    ref = smplx.SMPL(model_path="unused", data_struct=Struct(**smpl_arrays), num_betas=10,
                     create_global_orient=False, create_body_pose=False, create_betas=False,
                     create_transl=False)
    want = ref(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas).vertices
    got = SMPLLayer(smpl_arrays)(pose, betas)
    assert float((got - want).abs().max()) < 1e-5


@pytest.mark.slow
def test_mesh_coord_cam_is_pelvis_relative(smpl_arrays, tmp_path):
    """With an SMPL model the network adds ``mesh_coord_cam`` = SMPL(pose, shape) minus the
    J_regressor-row-0 pelvis of that mesh, and regresses its joints with the file's rows."""
    from pose2pose_mocap.weights.standins import write_smpl_standins

    from ._i2l_support import images, standin_tensors

    write_smpl_standins(tmp_path)
    net = I2LMeshNet(smpl_model_path=tmp_path)
    net.load_state_dict(standin_tensors(1), strict=True)
    assert len(net.state_dict()) == 723  # SMPL data never enters the state dict
    with torch.inference_mode():
        out = net.eval()(images(1, 1))
    cam = out["mesh_coord_cam"]
    assert cam.shape == (1, 6890, 3)
    jr = torch.as_tensor(smpl_arrays["J_regressor"], dtype=torch.float32)
    assert float((jr[0] @ cam[0]).abs().max()) < 1e-5
    layer = SMPLLayer(smpl_arrays)
    verts = layer(out["pose_param"], out["shape_param"])
    torch.testing.assert_close(cam + out["smpl_root"][:, None], verts, atol=1e-5, rtol=0)
