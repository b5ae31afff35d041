"""Checkpoint loading, refusals, conversion to safetensors, and identification."""
from __future__ import annotations

import hashlib
import logging
import shutil

import numpy as np
import pytest
import torch

from pose2pose_mocap.estimator import (CheckpointError, convert_checkpoint, identify_checkpoint,
                                       load_checkpoint, run_batch)

from ._p2p_support import (RunsCode, images, save_official_container, standin_outputs_b2,
                           standin_tensors, write_code_running_pickle)

pytestmark = pytest.mark.torch


@pytest.fixture
def tmp(tmp_path):
    """A temp folder whose (300 MB) files are removed right after the test."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    """Stand-in seed 1 in the official container (module. prefix, epoch, optimizer)."""
    folder = tmp_path_factory.mktemp("ckpt")
    yield save_official_container(folder / "snapshot_6.pth.tar", standin_tensors(1))
    shutil.rmtree(folder, ignore_errors=True)


def _same_weights(model, state):
    sd = model.state_dict()
    assert list(sd) == list(state)
    for k, v in state.items():
        assert torch.equal(sd[k], v), k


def test_official_container_loads_strictly(official_file):
    model = load_checkpoint(official_file)
    assert not model.training and not model.has_smplx
    assert model.load_notes == []
    _same_weights(model, standin_tensors(1))


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_bare_state_dicts_load(tmp, prefix):
    path = tmp / "bare.pth"
    torch.save({prefix + k: v for k, v in standin_tensors(1).items()}, path)
    _same_weights(load_checkpoint(path), standin_tensors(1))


def test_legacy_torch_format_loads(tmp):
    path = tmp / "legacy.pth"
    torch.save(dict(standin_tensors(1)), path, _use_new_zipfile_serialization=False)
    _same_weights(load_checkpoint(path), standin_tensors(1))


def test_gender_head_is_dropped_with_a_note(tmp, caplog):
    extra = {"module.body_rotation_net.gender_out.0.weight": torch.zeros(2, 2048),
             "module.body_rotation_net.gender_out.0.bias": torch.zeros(2)}
    path = save_official_container(tmp / "old.pth.tar", standin_tensors(1), extra=extra)
    with caplog.at_level(logging.INFO, logger="pose2pose_mocap.estimator"):
        model = load_checkpoint(path)
    assert len(model.load_notes) == 1 and "gender" in model.load_notes[0]
    assert "body_rotation_net.gender_out.0.weight" in model.load_notes[0]
    assert any("gender" in r.getMessage() for r in caplog.records)
    _same_weights(model, standin_tensors(1))


def test_wrong_keys_are_refused_and_named(tmp):
    state = dict(standin_tensors(1))
    for k in ("face_regressor.expr_out.0.weight", "face_regressor.expr_out.0.bias",
              "box_net.bbox_center.0.bias"):
        del state[k]
    state["head.extra.weight"] = torch.zeros(3)
    state["head.extra.bias"] = torch.zeros(3)
    path = save_official_container(tmp / "bad.pth.tar", state)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert "does not match" in msg and "nothing was loaded" in msg
    assert "3 keys missing" in msg and "face_regressor.expr_out.0.weight" in msg
    assert "2 keys unexpected" in msg and "head.extra.weight" in msg


def test_wrong_shapes_are_refused_and_named(tmp):
    state = dict(standin_tensors(1))
    state["face_regressor.expr_out.0.weight"] = torch.zeros(20, 512)
    path = save_official_container(tmp / "shape.pth.tar", state)
    want = (r"1 key with the wrong shape "
            r"\(face_regressor\.expr_out\.0\.weight \(20, 512\) != \(10, 512\)\)")
    with pytest.raises(CheckpointError, match=want):
        load_checkpoint(path)


def test_part_only_checkpoint_gets_a_hint(tmp):
    path = tmp / "hand.pth.tar"
    torch.save({"network": {"module.hand_backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}}, path)
    with pytest.raises(CheckpointError, match="part-only Pose2Pose checkpoint"):
        load_checkpoint(path)


def test_truncated_file_is_refused(tmp, official_file):
    path = tmp / "cut.pth.tar"
    with open(official_file, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(5_000_000))
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        load_checkpoint(path)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_code_running_pickle_is_refused_and_not_run(tmp, writer):
    marker = tmp / "MARKER_code_ran"
    path = tmp / "evil.pth.tar"
    write_code_running_pickle(
        path, {"epoch": 6, "network": {"module.backbone.conv1.weight": RunsCode(marker)}}, writer)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "Refusing to load" in str(err.value) and "run arbitrary code" in str(err.value)
    assert "posix.system" in str(err.value) or "nt.system" in str(err.value)
    info = identify_checkpoint(path)
    assert info.kind == "unknown" and "Refusing" in info.description
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"hello, I am a text file\n" * 10, "is not a checkpoint"),
    (b"\x80\x02}q\x00X\x01\x00", "is truncated or damaged"),
    (b"\x80\x02K\x05.", "is not a readable PyTorch checkpoint"),
])
def test_not_a_checkpoint(tmp, content, message):
    path = tmp / "file.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_other_files_are_refused(tmp):
    npz = tmp / "model.npz"
    np.savez(npz, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="zip archive but not a PyTorch checkpoint"):
        load_checkpoint(npz)
    meta = tmp / "meta.pth"
    torch.save({"epoch": 3, "note": "no weights"}, meta)
    with pytest.raises(CheckpointError, match="holds no network weights"):
        load_checkpoint(meta)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp / "missing.pth.tar")


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_safetensors_round_trip(tmp, official_file):
    dst = convert_checkpoint(official_file, tmp / "snapshot_6.safetensors")
    assert dst.is_file() and [p.name for p in tmp.iterdir()] == ["snapshot_6.safetensors"]
    model = load_checkpoint(dst)
    _same_weights(model, standin_tensors(1))
    out = run_batch(model, images(2, 1))
    for key, value in standin_outputs_b2().items():
        assert torch.equal(out[key], value), key
    info = identify_checkpoint(dst)
    assert info.kind == "stand-in" and info.standin_seed == 1
    assert "converted from snapshot_6.pth.tar" in info.description


def test_convert_refuses_to_overwrite(tmp, official_file):
    dst = tmp / "out.safetensors"
    dst.write_bytes(b"precious")
    with pytest.raises(CheckpointError, match="already exists"):
        convert_checkpoint(official_file, dst)
    assert dst.read_bytes() == b"precious"
    convert_checkpoint(official_file, dst, overwrite=True)
    _same_weights(load_checkpoint(dst), standin_tensors(1))


def test_convert_refuses_a_bad_source_and_leaves_nothing(tmp):
    bad = tmp / "bad.pth"
    torch.save({"a": torch.zeros(3)}, bad)
    with pytest.raises(CheckpointError):
        convert_checkpoint(bad, tmp / "out.safetensors")
    assert sorted(p.name for p in tmp.iterdir()) == ["bad.pth"]


def test_identify_standin(official_file):
    info = identify_checkpoint(official_file)
    assert info.kind == "stand-in" and info.standin_seed == 1
    assert info.num_keys == 834
    assert info.sha256 == hashlib.sha256(official_file.read_bytes()).hexdigest()
    assert "stand-in" in info.description and "\n" not in info.description


def test_identify_official_layout(tmp):
    """Official layout but not the stand-in rule (the pinned size biases changed)."""
    state = dict(standin_tensors(2))
    for part in ("lhand", "rhand", "face"):
        state[f"box_net.{part}_size.2.bias"] = torch.tensor([1.25, 0.95])
    extra = {"module.body_rotation_net.gender_out.0.weight": torch.zeros(2, 2048),
             "module.body_rotation_net.gender_out.0.bias": torch.zeros(2)}
    path = save_official_container(tmp / "snapshot_6.pth.tar", state, extra=extra)
    info = identify_checkpoint(path)
    assert info.kind == "official", info.description
    assert info.num_keys == 836 and info.standin_seed is None
    assert "official layout" in info.description and "no checksum" in info.description
    assert any("gender" in n for n in info.notes)
    model = load_checkpoint(path)  # and it loads
    assert torch.equal(model.state_dict()["box_net.face_size.2.bias"], torch.tensor([1.25, 0.95]))


def test_identify_unknown(tmp):
    small = tmp / "other.pth"
    torch.save({"layer.weight": torch.zeros(4, 4)}, small)
    info = identify_checkpoint(small)
    assert info.kind == "unknown" and info.num_keys == 1
    assert "not the Pose2Pose whole-body layout" in info.description
    assert "834 keys missing" in info.description
    junk = tmp / "junk.bin"
    junk.write_bytes(b"nothing to see")
    info = identify_checkpoint(junk)
    assert info.kind == "unknown" and "not a checkpoint" in info.description
    assert info.sha256 == hashlib.sha256(b"nothing to see").hexdigest()
