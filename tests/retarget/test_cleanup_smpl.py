"""The motion clean-up on SMPL takes (I2L-MeshNet): kinematics, contacts, foot locking, QA
and the ``clean`` command, with the SMPL stand-in (issue 14 follow-up)."""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest

from bench.motion_truth import add_noise, make_truth
from pose2pose_mocap.common.errors import P2PError
from pose2pose_mocap.retarget.cleanup.clean import CleanOptions, clean_take
from pose2pose_mocap.retarget.cleanup.kinematics import FOOT_POINTS, foot_vertex_ids, take_motion
from pose2pose_mocap.retarget.errors import RetargetError
from pose2pose_mocap.retarget.smoothing import Smoothing, smooth_take
from pose2pose_mocap.retarget.smplx_model import (SMPL_KIND, forward, load_body_model,
                                                   load_smplx_model)
from pose2pose_mocap.retarget.take import read_take, write_take

from .smpl_support import standin_smpl_path, standin_smpl_root
from .synthetic import standin_smplx_path


@pytest.fixture(scope="module")
def smpl():
    return load_body_model(standin_smpl_path(), "smpl")


def as_smpl(take):
    """An SMPL-X take as an SMPL take: the same body joints (SMPL's first 22), the hand
    joints at rest, no fingers, face or expression."""
    p = take.params
    T = take.num_frames
    params = {"global_orient": p["global_orient"], "transl": p["transl"], "betas": p["betas"],
              "body_pose": np.concatenate([p["body_pose"], np.zeros((T, 6))], axis=1)}
    return replace(take, params=params, body_model="smpl", estimator="i2l-meshnet", raw={})


@pytest.fixture(scope="module")
def walk():
    smplx = load_smplx_model(standin_smplx_path())
    truth = make_truth("walk", smplx, seconds=4.0)
    return truth, as_smpl(add_noise(truth, seed=5, faults=False).take)


def _skate(contact, motion, rows):
    """Mean foot-point travel (m/frame) over rows where ``contact (T, 2)`` holds twice."""
    out = []
    for s, side in enumerate(("left", "right")):
        both = contact[1:, s] & contact[:-1, s] & rows[1:] & rows[:-1]
        for part in ("heel", "toes"):
            d = np.linalg.norm(np.diff(motion.foot_points[f"{side}_{part}"], axis=0), axis=1)
            out.append(d[both])
    return np.concatenate(out).mean()


def test_smpl_motion_is_the_smpl_body_and_its_soles(smpl, walk):
    _, take = walk
    m = take_motion(take, smpl)
    T = take.num_frames
    assert smpl.kind is SMPL_KIND
    assert m.joints.shape == (T, 22, 3) and m.rotations.shape == (T, 22, 3, 3)
    assert set(m.foot_points) == set(FOOT_POINTS)
    # the SMPL body model's own forward pass (one body shape, no correctives)
    p = {k: v.copy() for k, v in take.params.items()}
    p["betas"][:] = np.median(p["betas"], axis=0)
    out = forward(smpl, p, pose_correctives=False)
    np.testing.assert_allclose(m.joints, out.joints[:, :22], atol=1e-9)
    for name, ids in foot_vertex_ids(smpl).items():
        np.testing.assert_allclose(m.foot_points[name], out.vertices[:, ids].mean(1), atol=1e-9)
    # heels behind toes along each foot, soles below the ankles (camera y points down)
    for side, ankle in (("left", 7), ("right", 8)):
        fwd = m.rotations[:, ankle, :, 2]
        d = ((m.foot_points[f"{side}_toes"] - m.foot_points[f"{side}_heel"]) * fwd).sum(-1)
        assert np.median(d) > 0.08
        assert np.median(m.foot_points[f"{side}_heel"][:, 1] - m.joints[:, ankle, 1]) > 0.03


def test_clean_take_locks_the_feet_of_an_smpl_take(smpl, walk):
    truth, take = walk
    params0 = {k: v.copy() for k, v in take.params.items()}
    res = clean_take(take, smpl, Smoothing(), CleanOptions())
    assert res.contacts is not None and res.contacts.contact.any(), res.notes
    assert res.take.body_model == "smpl"
    assert {k: v.shape for k, v in res.take.params.items()} == {
        k: v.shape for k, v in take.params.items()}
    rows = np.asarray(take.valid, bool)
    smoothed = take_motion(smooth_take(take, Smoothing()), smpl)
    cleaned = take_motion(res.take, smpl)
    # the truth's contacts were made for the SMPL-X skeleton: judge on the found ones
    found = np.stack([res.contacts.foot("left"), res.contacts.foot("right")], axis=1)
    assert _skate(found, cleaned, rows) < 0.3 * _skate(found, smoothed, rows)
    # the hand joints (22, 23) are left as they were
    np.testing.assert_allclose(res.take.params["body_pose"][:, 63:],
                               smooth_take(take, Smoothing()).params["body_pose"][:, 63:],
                               atol=1e-9)
    for k, v in params0.items():
        np.testing.assert_array_equal(take.params[k], v)


def test_an_smpl_take_needs_the_smpl_model(smpl, walk):
    _, take = walk
    smplx = load_smplx_model(standin_smplx_path())
    with pytest.raises(RetargetError, match="SMPL") as e:
        clean_take(take, smplx, Smoothing(), CleanOptions())
    assert "\n" not in str(e.value)
    with pytest.raises(RetargetError, match="SMPL"):
        take_motion(replace(take, body_model="smplx"), smpl)


def test_qa_flags_of_an_smpl_take_are_those_of_its_body(smpl):
    """QA reads the first 22 joints, which SMPL and SMPL-X share: the same flags."""
    from pose2pose_mocap.retarget.cleanup.qa import find_flags

    smplx = load_smplx_model(standin_smplx_path())
    noisy = add_noise(make_truth("wave", smplx, seconds=4.0), seed=2)
    assert noisy.faults
    rotation_kinds = ("dropout", "wrist_flip", "lr_swap", "joint_limit")
    want = [f for f in find_flags(noisy.take, take_motion(noisy.take, smplx))
            if f.kind in rotation_kinds]
    take = as_smpl(noisy.take)
    got = [f for f in find_flags(take, take_motion(take, smpl)) if f.kind in rotation_kinds]
    assert got == want and any(f.kind in ("wrist_flip", "lr_swap") for f in got)


def test_clean_command_on_an_smpl_take(smpl, walk, tmp_path, capsys):
    from pose2pose_mocap.retarget.clean_cli import add_clean_arguments, run_clean

    _, take = walk
    src = write_take(tmp_path / "i2l.take.npz", take.to_arrays())
    before = src.read_bytes()
    ap = add_clean_arguments(argparse.ArgumentParser())
    out = tmp_path / "i2l.clean.take.npz"
    args = ap.parse_args([str(src), "-o", str(out), "--smpl", str(standin_smpl_root())])
    assert run_clean(args) == 0
    cleaned = read_take(out)
    assert cleaned.body_model == "smpl" and "feet locked" in capsys.readouterr().out
    assert src.read_bytes() == before
    # without an SMPL model: one line, nothing written
    args = ap.parse_args([str(src), "-o", str(tmp_path / "x.take.npz"),
                          "--smplx", str(standin_smplx_path())])
    with pytest.raises(P2PError, match="SMPL") as e:
        run_clean(args)
    assert "\n" not in str(e.value) and not (tmp_path / "x.take.npz").exists()


def test_batch_quality_report_of_an_smpl_take(walk, tmp_path):
    """batch's per-take report measures an SMPL take with the SMPL model (no longer a note)."""
    import json

    from pose2pose_mocap.batch.worker import _qa_report
    from pose2pose_mocap.retarget.convert import BodyModelFiles
    from pose2pose_mocap.retarget.options import ConvertOptions

    _, take = walk
    path = write_take(tmp_path / "i2l.take.npz", take.to_arrays())
    notes: list = []
    models = BodyModelFiles(standin_smplx_path(), standin_smpl_root())
    written = _qa_report(path, models, ConvertOptions(), set(), notes)
    assert notes == [] and len(written) == 2
    rep = json.loads((tmp_path / "i2l.qa.json").read_text())
    assert rep["contact_frames"]["left"] > 0 and rep["foot_skate_mm_per_contact_frame"] < 5
