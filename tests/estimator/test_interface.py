"""The estimator interface (issue #12 item 2): registry, protocol, Pose2Pose behind it,
``--estimator`` on the CLI and the worker, the estimators in ``doctor``."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pose2pose_mocap.estimator.base import CropSpec, LoadOptions, PersonResult, PoseEstimator
from pose2pose_mocap.estimator.crop import PinholeCamera, crop_person
from pose2pose_mocap.estimator.errors import EstimatorError
from pose2pose_mocap.estimator.registry import DEFAULT_ESTIMATOR, ESTIMATORS, get_estimator
from pose2pose_mocap.estimator.take_rows import ROW_SHAPES, static_camera

from .media import write_images


# --------------------------------------------------------------------------- the registry

def test_registry_lists_pose2pose():
    assert DEFAULT_ESTIMATOR == "pose2pose" and "pose2pose" in ESTIMATORS
    entry = ESTIMATORS["pose2pose"]
    assert entry.name == "pose2pose" and entry.model == "smplx"
    assert entry.label and entry.description and callable(entry.load) and callable(entry.check)
    assert get_estimator(None) is entry and get_estimator("") is entry
    with pytest.raises(EstimatorError, match=r"--estimator 'nope': unknown estimator "
                                             r"\(choose from pose2pose, i2l-meshnet\)"):
        get_estimator("nope")


def test_registry_is_cheap_to_import():
    """The add-on (inside Blender) and option parsing read the registry: no torch, no cv2."""
    code = ("import sys, pose2pose_mocap.estimator.registry as r; "
            "r.ESTIMATORS['pose2pose'].check(smplx='/nowhere', checkpoint='/nowhere'); "
            "print(sorted(m for m in ('torch', 'cv2', 'bpy', 'smplx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_crop_spec():
    spec = CropSpec((256, 256))
    assert spec.aspect == 1.0 and spec.box_scale == 1.25
    image = np.zeros((480, 640, 3), np.uint8)
    pc = spec.cut(image, (100, 50, 80, 200))
    assert pc.crop.shape == (256, 256, 3)
    assert pc.bbox[2] == pytest.approx(pc.bbox[3]) == pytest.approx(199 * 1.25)  # sanitized
    assert np.allclose(spec.process_box((100, 50, 80, 200), (640, 480)), pc.bbox)
    assert spec.cut(image, (-500, -500, 10, 10)) is not None  # clamped to the corner (reference)
    with pytest.raises(ValueError):
        CropSpec((0, 256))


def test_person_result_row():
    r = PersonResult(model="smpl", params={"transl": np.ones(3, np.float32)},
                     joints_2d=np.arange(12, dtype=np.float32).reshape(4, 3), confidence=0.25,
                     box=np.array([1, 2, 3, 4], np.float32))
    row = r.take_row()
    assert set(row) == {"transl", "bbox_xywh", "joints_2d", "score"}
    assert row["score"].dtype == np.float32 and row["score"] == np.float32(0.25)
    assert r.tracking_points().tolist() == [[0, 1], [3, 4], [6, 7], [9, 10]]
    with pytest.raises(ValueError, match="model"):
        PersonResult("smplh", {}, np.zeros((1, 3)), 0.0, np.zeros(4))


# --------------------------------------------------------------------------- Pose2Pose behind it

@pytest.fixture(scope="module")
def p2p(standin_net):
    from pose2pose_mocap.estimator.pose2pose.estimator import Pose2PoseEstimator

    return Pose2PoseEstimator(standin_net, model_name="standin.pth.tar sha256:test",
                              standin=True, device="cpu")


def test_pose2pose_satisfies_the_protocol(p2p):
    assert isinstance(p2p, PoseEstimator)
    assert p2p.name == "pose2pose" and p2p.model == "smplx" and p2p.standin
    assert p2p.device == "cpu" and p2p.model_name == "standin.pth.tar sha256:test"
    # the reference crop: what crop_person did before the interface (its defaults)
    assert p2p.crop_spec == CropSpec((512, 384), box_scale=1.25, box_aspect=0.75)
    image = np.random.default_rng(5).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    a, b = p2p.crop_spec.cut(image, (250.0, 60.0, 160.0, 380.0)), \
        crop_person(image, (250.0, 60.0, 160.0, 380.0))
    assert np.array_equal(a.crop, b.crop) and np.array_equal(a.bbox, b.bbox)
    assert np.array_equal(a.crop2img, b.crop2img)


def test_registry_load_wraps_a_loaded_network(standin_net):
    est = ESTIMATORS["pose2pose"].load(LoadOptions(device="cpu", network=standin_net,
                                                   network_name="x sha256:y",
                                                   network_standin=True))
    assert isinstance(est, PoseEstimator) and est.network is standin_net
    assert est.model_name == "x sha256:y" and est.standin and est.device == "cpu"


@pytest.mark.slow
def test_infer_equals_the_old_path_exactly(p2p, standin_net):
    """``infer`` == run_batch + crop_confidence + rows_from_outputs (what EstimateJob did)."""
    from pose2pose_mocap.estimator.pose2pose.inference import (crops_to_tensor,
                                                                run_batch)
    from pose2pose_mocap.estimator.pose2pose.outputs import crop_confidence
    from pose2pose_mocap.estimator.pose2pose.take_convert import PelvisModel, rows_from_outputs

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    crops = [crop_person(image, b) for b in ((250.0, 60.0, 160.0, 380.0),
                                             (10.0, 20.0, 300.0, 200.0),
                                             (500.0, 300.0, 200.0, 260.0))]
    camera = PinholeCamera(*static_camera((640, 480), 70.0))
    results = p2p.infer(crops, camera)

    # (the estimator's module: on the CPU inference.cpu_runner's BN-folded twin of the network)
    out = run_batch(p2p._runner(), crops_to_tensor([c.crop for c in crops]), p2p.options)
    out = {k: v.numpy() for k, v in out.items()}
    conf = np.array([crop_confidence(out["joint_img"][i], out["smplx_joint_proj"][i])
                     for i in range(3)])
    layer = standin_net.smplx_layer
    rows = rows_from_outputs(out, np.stack([c.bbox for c in crops]).astype(np.float64),
                             np.stack([c.crop2img for c in crops]).astype(np.float64),
                             PelvisModel.from_layer(layer),
                             (layer.left_hand_mean.numpy().reshape(45),
                              layer.right_hand_mean.numpy().reshape(45)),
                             camera.focal, camera.princpt, conf)
    assert len(results) == 3
    for i, r in enumerate(results):
        assert isinstance(r, PersonResult) and r.model == "smplx"
        assert r.confidence == conf[i]
        row = r.take_row()
        assert set(row) == set(ROW_SHAPES)
        for k in ROW_SHAPES:
            got = np.asarray(row[k])
            assert got.dtype == np.float32 and got.shape == ROW_SHAPES[k], k
            assert np.array_equal(got, rows[k][i]), k
        assert set(r.raw) == {"cam_trans", "lhand_bbox", "rhand_bbox", "face_bbox"}
        assert np.array_equal(r.tracking_points(), rows["joints_2d"][i, :25, :2])
    assert p2p.infer([], camera) == []


# --------------------------------------------------------------------------- the job uses only it

class SquareEstimator:
    """A fake SMPL-X estimator with its own crop (256x256, aspect 1): the job must work
    through the interface alone."""

    name = "square"
    model = "smplx"
    standin = True
    crop_spec = CropSpec((256, 256), box_scale=1.25)
    model_name = "square sha256:0"
    device = "cpu"

    def __init__(self):
        self.calls = []

    def infer(self, crops, camera):
        self.calls.append([c.crop.shape for c in crops])
        out = []
        for c in crops:
            x, y, w, h = (float(v) for v in c.bbox)
            # joints spanning the middle of the crop box, so the tracker keeps the person
            js = np.stack([np.linspace(x + 0.3 * w, x + 0.7 * w, 65),
                           np.linspace(y + 0.15 * h, y + 0.85 * h, 65), np.ones(65)], 1)
            params = {k: np.full(s, 0.01, np.float32) for k, s in ROW_SHAPES.items()
                      if k in ("global_orient", "body_pose", "left_hand_pose",
                               "right_hand_pose", "jaw_pose", "leye_pose", "reye_pose",
                               "betas", "expression")}
            params["transl"] = np.array([0, 0, 5], np.float32)
            out.append(PersonResult("smplx", params, js.astype(np.float32), 0.9,
                                    np.asarray(c.bbox, np.float32)))
        return out


def test_job_runs_any_pose_estimator(tmp_path):
    from pose2pose_mocap.estimator.pipeline import EstimateJob
    from pose2pose_mocap.retarget.take import read_take

    images = write_images(tmp_path / "frames", 3)
    est = SquareEstimator()
    res = EstimateJob(images, tmp_path / "out.take.npz", estimator=est, detector="none",
                      device="cpu", batch=2).run()
    assert res.outputs == [tmp_path / "out.take.npz"] and res.estimator == "square"
    assert [s for call in est.calls for s in call] == [(256, 256, 3)] * 3
    take = read_take(res.outputs[0])
    assert take.valid.all() and take.standin and take.model == "square sha256:0"
    assert take.estimator == "square" and take.body_model == "smplx"
    # raw outputs it does not make are not in the take; its own rows are stored as given
    with np.load(res.outputs[0]) as z:
        assert "raw_cam_trans" not in z.files and "raw_face_bbox" not in z.files
        assert np.allclose(z["raw_score"], 0.9) and np.allclose(z["transl"], [0, 0, 5])


def test_job_refuses_an_unknown_estimator(tmp_path):
    from pose2pose_mocap.estimator.pipeline import EstimateError, EstimateJob

    (img,) = write_images(tmp_path, 1)
    with pytest.raises(EstimateError, match="unknown estimator"):
        EstimateJob(img, estimator="nope")
    assert not list(tmp_path.glob("*.npz"))


# --------------------------------------------------------------------------- CLI, worker, doctor

def test_cli_estimator_option(monkeypatch, tmp_path):
    from pose2pose_mocap.cli import build_parser
    from pose2pose_mocap.estimator import cli_estimate, pipeline

    args = build_parser().parse_args(["estimate", "clip.mp4"])
    assert args.estimator == "pose2pose"
    args = build_parser().parse_args(["estimate", "clip.mp4", "--estimator", "pose2pose"])
    assert args.estimator == "pose2pose"
    seen = {}

    class Job:
        def __init__(self, *a, **kw):
            seen.update(kw)
            raise pipeline.EstimateError("stop here")

    monkeypatch.setattr(pipeline, "EstimateJob", Job)
    args.output = str(tmp_path / "x.take.npz")
    assert cli_estimate.run_estimate(args) == 1
    assert seen["estimator"] == "pose2pose"


def test_cli_unknown_estimator_is_one_line_exit_2(tmp_path):
    from ..faults.conftest import assert_one_line_error, run_cli

    (img,) = write_images(tmp_path, 1)
    res = run_cli(["estimate", img, "--estimator", "nope"], cwd=tmp_path)
    line = assert_one_line_error(res, "--estimator", "invalid choice", "pose2pose")
    assert res.rc == 2, line
    assert not list(tmp_path.glob("*.npz"))


def test_worker_request_estimator():
    from pose2pose_mocap.worker.server import RequestError, estimate_arguments

    # absent: EstimateJob's default (pose2pose)
    assert estimate_arguments({"inputs": "a.mp4"}).get("estimator", DEFAULT_ESTIMATOR) == \
        "pose2pose"
    assert estimate_arguments({"inputs": "a.mp4", "estimator": "pose2pose"})["estimator"] == \
        "pose2pose"
    for bad in ("nope", 3, ["pose2pose"]):
        with pytest.raises(RequestError, match="estimator"):
            estimate_arguments({"inputs": "a.mp4", "estimator": bad})


def test_doctor_lists_the_estimators(tmp_path, standin_root):
    from pose2pose_mocap.doctor import format_report, run_checks

    missing = run_checks(smplx=tmp_path / "none", checkpoint=tmp_path / "none", runtime=False)
    text = format_report(missing)
    sec = next(s for s in missing.sections if s.title.startswith("Estimators"))
    assert [ln.label for ln in sec.lines] == ["pose2pose (default)", "i2l-meshnet"]
    assert "not ready" in sec.lines[0].value and "pose2pose (default): not ready" in text
    ready = run_checks(smplx=standin_root, checkpoint=standin_root, runtime=False)
    line = next(s for s in ready.sections if s.title.startswith("Estimators")).lines[0]
    assert "ready with STAND-IN" in line.value and ready.ready
    # the quick check agrees with the doctor's content checks
    r = ESTIMATORS["pose2pose"].check(smplx=standin_root, checkpoint=standin_root)
    assert r.ready and r.standin


def test_batch_passes_the_estimator_on():
    """``batch --estimator``: another estimator reaches EstimateJob (and the per-process
    network cache); the default is not recorded, so earlier manifests' hashes stay valid."""
    import argparse

    from pose2pose_mocap.batch.jobs import settings_from_args

    default = settings_from_args(argparse.Namespace(estimator="pose2pose"))
    assert "estimator" not in default.estimate
    assert default.hashes == settings_from_args(argparse.Namespace()).hashes
    other = settings_from_args(argparse.Namespace(estimator="other"))
    assert other.estimate["estimator"] == "other" and other.hashes != default.hashes
