"""I2L-MeshNet checkpoints: strict loading of the official container (730 keys, the 7
embedded SMPL buffers accepted and never written), refusals that name the keys, the
safetensors copy, identification."""
from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from pose2pose_mocap.estimator.errors import CheckpointError
from pose2pose_mocap.estimator.i2l_meshnet import (convert_checkpoint, identify_checkpoint,
                                                   load_checkpoint, read_state_dict)
from pose2pose_mocap.estimator.i2l_meshnet.checkpoint import SMPL_BUFFERS, read_checkpoint

from ._i2l_support import (images, official_keys_and_shapes, save_official_container,
                           smpl_buffers, standin_tensors)
from ._p2p_support import RunsCode, write_code_running_pickle

pytestmark = pytest.mark.torch


@pytest.fixture
def tmp(tmp_path):
    """A temp folder whose (570 MB) files are removed right after the test."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    """Stand-in seed 1 in the official container: 730 keys with ``module.``, the 7 SMPL
    buffers last, epoch and optimizer entries."""
    folder = tmp_path_factory.mktemp("i2l_ckpt")
    yield save_official_container(folder / "snapshot_8.pth.tar", standin_tensors(1))
    shutil.rmtree(folder, ignore_errors=True)


def _light(**changes):
    """Every network key as a zero tensor that takes no memory (stride 0), for refusals
    (they are decided before any weight is used)."""
    out = {}
    for k, shape in official_keys_and_shapes():
        name = k[len("module."):]
        if name.startswith("human_model_layer."):
            continue
        dtype = torch.int64 if name.endswith("num_batches_tracked") else torch.float32
        out[name] = torch.zeros((), dtype=dtype).expand(shape)
    out.update(changes)
    return out


def _same_weights(model, state):
    sd = model.state_dict()
    assert list(sd) == list(state)
    for k, v in state.items():
        assert torch.equal(sd[k], v), k


@pytest.mark.slow
def test_official_container_loads_strictly(official_file):
    raw = torch.load(official_file, weights_only=True)["network"]
    assert len(raw) == 730 and all(k.startswith("module.") for k in raw)
    model = load_checkpoint(official_file)
    assert not model.training and not model.has_smpl
    _same_weights(model, standin_tensors(1))
    assert any("7 SMPL model buffers" in n for n in model.load_notes)
    # No SMPL file: the regressor comes from the embedded th_J_regressor (24 rows + 5
    # one-hot face rows), so the parameters still come out (no mesh).
    emb = smpl_buffers()["module.human_model_layer.th_J_regressor"]
    assert torch.equal(model.joint_regressor[:24], emb)
    assert model.joint_regressor[24:].sum().item() == 5.0
    with torch.inference_mode():
        out = model(images(1, 1))
    assert out["pose_param"].shape == (1, 72) and out["shape_param"].shape == (1, 10)
    assert "mesh_coord_cam" not in out


def test_bare_state_dicts_with_or_without_module_prefix(tmp):
    for prefix in ("module.", ""):
        path = tmp / f"bare{prefix or '_'}pth"
        torch.save({prefix + k: v for k, v in _light().items()}, path)
        sd, notes = read_state_dict(path)
        assert len(sd) == 723 and notes == [] and "pose_net.conv_x.0.weight" in sd


def test_smpl_buffers_are_taken_out_never_loaded(tmp):
    path = save_official_container(tmp / "c.pth.tar", _light())
    sd, smpl, notes = read_checkpoint(path)
    assert len(sd) == 723 and set(smpl) == {k[len("module."):] for k in smpl_buffers()}
    assert set(smpl) == set(SMPL_BUFFERS)
    assert not any(k.startswith("human_model_layer.") for k in sd)
    assert len(notes) == 1


def test_wrong_keys_are_refused_and_named(tmp):
    state = _light()
    for k in ("mesh_net.conv_x.0.weight", "mesh_net.conv_x.0.bias", "pose2feat.conv.0.bias"):
        del state[k]
    state["head.extra.weight"] = torch.zeros(3)
    path = save_official_container(tmp / "bad.pth.tar", state, extra={
        "module.head.extra.weight": torch.zeros(3),
        # a SMPL buffer of the wrong shape is not SMPL data: unexpected
        "module.human_model_layer.th_betas": torch.zeros(1, 300)})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert "does not match the I2L-MeshNet network" in msg and "nothing was loaded" in msg
    assert "3 keys missing" in msg and "mesh_net.conv_x.0.weight" in msg
    assert "2 keys unexpected" in msg and "head.extra.weight" in msg
    assert "human_model_layer.th_betas" in msg
    assert "\n" not in msg


def test_wrong_shapes_are_refused_and_named(tmp):
    state = _light(**{"param_regressor.fc_pose.0.weight": torch.zeros(()).expand(96, 512)})
    path = save_official_container(tmp / "shape.pth.tar", state)
    want = (r"1 key with the wrong shape "
            r"\(param_regressor\.fc_pose\.0\.weight \(96, 512\) != \(144, 512\)\)")
    with pytest.raises(CheckpointError, match=want):
        load_checkpoint(path)


def test_pose2pose_checkpoint_gets_a_hint(tmp):
    path = tmp / "snapshot_6.pth.tar"
    torch.save({"network": {"module.backbone.conv1.weight": torch.zeros(64, 3, 7, 7),
                            "module.body_position_net.conv.0.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="Pose2Pose .*--estimator pose2pose"):
        load_checkpoint(path)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_code_running_pickle_is_refused_and_not_run(tmp, writer):
    marker = tmp / "MARKER_code_ran"
    path = tmp / "evil.pth.tar"
    write_code_running_pickle(
        path, {"epoch": 8, "network": {"module.pose_backbone.conv1.weight": RunsCode(marker)}}, writer)
    with pytest.raises(CheckpointError, match="Refusing to load .*run arbitrary code"):
        load_checkpoint(path)
    info = identify_checkpoint(path)
    assert info.kind == "unknown" and "Refusing" in info.description
    assert not marker.exists()


@pytest.mark.slow
def test_safetensors_copy_has_no_smpl_data_and_loads(tmp, official_file):
    from safetensors import safe_open

    dst = convert_checkpoint(official_file, tmp / "snapshot_8.safetensors")
    assert [p.name for p in tmp.iterdir()] == ["snapshot_8.safetensors"]
    with safe_open(str(dst), framework="pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert len(keys) == 723 and not any("human_model_layer" in k for k in keys)
    assert "SMPL model buffers" in meta["notes"] and "left out" in meta["notes"]
    model = load_checkpoint(dst)
    _same_weights(model, standin_tensors(1))
    assert model.joint_regressor is None and model.load_notes == []
    info = identify_checkpoint(dst)
    assert info.kind == "stand-in" and info.standin_seed == 1
    assert "converted from snapshot_8.pth.tar" in info.description
    with pytest.raises(CheckpointError, match="already exists"):
        convert_checkpoint(official_file, dst)


def test_identify(tmp):
    probe = "param_regressor.fc_shape.0.bias"  # the tensor a stand-in is recognised by
    standin = save_official_container(tmp / "standin.pth.tar",
                                      _light(**{probe: standin_tensors(1)[probe]}))
    info = identify_checkpoint(standin)
    assert info.kind == "stand-in" and info.standin_seed == 1 and info.num_keys == 730
    assert info.sha256 == hashlib.sha256(standin.read_bytes()).hexdigest()
    real = save_official_container(tmp / "snapshot_8.pth.tar", _light())
    info = identify_checkpoint(real)
    assert info.kind == "official" and info.loadable, info.description
    assert "embedded SMPL buffers" in info.description and "no checksum" in info.description
    small = tmp / "other.pth"
    torch.save({"layer.weight": torch.zeros(4, 4)}, small)
    info = identify_checkpoint(small)
    assert info.kind == "unknown" and "723 keys missing" in info.description
