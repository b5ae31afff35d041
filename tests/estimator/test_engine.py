"""``estimate --engine``: ONNX Runtime / OpenVINO takes equal torch's within the conformance
tolerances; the exported graph is cached per network and a damaged cache is rebuilt."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pose2pose_mocap.estimator import cli_estimate
from pose2pose_mocap.estimator.errors import EstimatorError
from pose2pose_mocap.retarget.take import read_take

from ..test_network_conformance import FREE_RUNNING_HAND_POSE_TOL, TOL
from .media import write_video

pytestmark = pytest.mark.torch

# The take's rows from the network outputs (take_convert): rotations keep their
# differences (radians), so the conformance tolerances of the poses apply; hands free-run.
TAKE_TOL = {"global_orient": TOL["smplx_root_pose"], "body_pose": TOL["smplx_body_pose"],
            "left_hand_pose": FREE_RUNNING_HAND_POSE_TOL,
            "right_hand_pose": FREE_RUNNING_HAND_POSE_TOL,
            "jaw_pose": TOL["smplx_jaw_pose"], "betas": TOL["smplx_shape"],
            "expression": TOL["smplx_expr"]}


def _estimate(clip, out, standin_root, capsys, *extra):
    argv = [clip, "-o", out, "--frames", "0:3", "--smplx", standin_root, "--checkpoint",
            standin_root, "--detector", "none", *extra]
    try:
        rc = cli_estimate.main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    o, e = capsys.readouterr()
    return rc, o, e


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("engine") / "clip.mp4", 4, "mp4v")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data folder of this module's own: the engine cache starts empty, and both engines'
    tests share one export (the same ONNX file serves both)."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("P2P_MOCAP_DATA_DIR", str(folder))
        yield folder


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_engine_takes_equal_torch_within_the_conformance_tolerances(
        engine, clip, tmp_path, standin_root, data_dir, capsys):
    pytest.importorskip(engine)
    pytest.importorskip("onnxscript")
    rc, _o, err = _estimate(clip, tmp_path / "torch.take.npz", standin_root, capsys,
                            "--engine", "torch")
    assert rc == 0, err
    cache = data_dir / "engine-cache"
    exported_before = cache.is_dir() and any(cache.glob("*.onnx"))
    rc, _o, err = _estimate(clip, tmp_path / "e.take.npz", standin_root, capsys,
                            "--engine", engine)
    assert rc == 0, err
    # exported by the first engine's run, reused (no second export) by the other's
    assert ("exported the network for the engine once" in err) != exported_before, err
    assert len(list(cache.glob("*.onnx"))) == 1
    ref, got = read_take(tmp_path / "torch.take.npz"), read_take(tmp_path / "e.take.npz")
    assert got.num_frames == ref.num_frames == 3 and got.valid.all()
    for key, tol in TAKE_TOL.items():
        diff = np.abs(got.params[key] - ref.params[key]).max()
        assert diff <= tol, f"{engine} {key}: {diff:.3g} > {tol}"
    # transl = cam_trans re-scaled to the video's focal length: its tolerance scales alike
    scale = max(1.0, float(np.abs(ref.params["transl"]).max()))
    diff = np.abs(got.params["transl"] - ref.params["transl"]).max()
    assert diff <= TOL["cam_trans"] * scale * 10, f"{engine} transl: {diff:.3g}"


@pytest.mark.slow
def test_the_graph_is_cached_reused_and_a_damaged_one_rebuilt(standin_net, tmp_path, data_dir):
    pytest.importorskip("onnxscript")
    from pose2pose_mocap.estimator.pose2pose import engines

    notes = []
    cached = sorted((data_dir / "engine-cache").glob("*.onnx"))
    if cached:  # the estimate tests' export (same stand-in checkpoint): copy, not export again
        for f in (cached[0], cached[0].with_suffix(".json")):
            (tmp_path / f.name).write_bytes(f.read_bytes())
        path = engines.cached_graph(standin_net, tmp_path, notes)
        assert path.name == cached[0].name and notes == []  # the same key: reused
    else:
        path = engines.cached_graph(standin_net, tmp_path, notes)
        assert len(notes) == 1
        notes.clear()
    assert path.parent == tmp_path and engines.check_cached(
        path, path.stem.split("-", 1)[1]) is None
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["onnx_bytes"] == path.stat().st_size
    mtime = path.stat().st_mtime_ns
    assert engines.cached_graph(standin_net, tmp_path, notes) == path and notes == []
    assert path.stat().st_mtime_ns == mtime  # reused, not exported again

    # damaged: one byte changed in the middle of the weights -> refused, exported again
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    key = path.stem.split("-", 1)[1]
    assert "sha256" in engines.check_cached(path, key)
    assert engines.cached_graph(standin_net, tmp_path, notes) == path and len(notes) == 1
    assert "does not match its sha256" in notes[0] and engines.check_cached(path, key) is None
    # a missing record is refused too (a crash between the graph and its record)
    path.with_suffix(".json").unlink()
    assert "record" in engines.check_cached(path, key)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_engine_choice_and_one_line_errors(monkeypatch):
    from pose2pose_mocap.estimator.pose2pose import engines

    assert engines.resolve_engine("auto", "cuda", "fp32") == "torch"
    assert engines.resolve_engine("torch", "cpu", "fp16") == "torch"
    assert engines.resolve_engine("auto", "cpu", "fp16") == "torch"
    with pytest.raises(EstimatorError, match="CPU only"):
        engines.resolve_engine("openvino", "cuda", "fp32")
    with pytest.raises(EstimatorError, match="runs fp32, not --precision bf16"):
        engines.resolve_engine("onnxruntime", "cpu", "bf16")
    # nothing installed: auto falls back to torch, an explicit engine names its extra
    monkeypatch.setattr(engines, "engine_installed", lambda e: e == "torch")
    assert engines.resolve_engine("auto", "cpu", "fp32") == "torch"
    with pytest.raises(EstimatorError, match=r"pip install 'pose2pose-mocap\[openvino\]'"):
        engines.resolve_engine("openvino", "cpu", "fp32")
    monkeypatch.setattr(engines, "engine_installed", lambda e: e in ("torch", "openvino"))
    assert engines.resolve_engine("auto", "cpu", "fp32") == "openvino"
    # both installed: ONNX Runtime (fastest quiet); bf16 never OpenVINO's (heads in bf16)
    monkeypatch.setattr(engines, "engine_installed", lambda e: True)
    assert engines.resolve_engine("auto", "cpu", "fp32") == "onnxruntime"
    assert engines.resolve_engine("auto", "cpu", "bf16") == "torch"
    assert engines.resolve_engine("openvino", "cpu", "bf16") == "openvino"  # asked for


def test_the_options_carry_the_engine():
    from pose2pose_mocap.estimator.options import NOT_IN_TAKE, EstimateOptions
    from pose2pose_mocap.common.options import OptionError

    assert EstimateOptions().engine == "torch" and "engine" in NOT_IN_TAKE
    opts = EstimateOptions.from_dict({"engine": "openvino"})
    assert opts.job_arguments()["engine"] == "openvino"
    with pytest.raises(OptionError, match="engine must be"):
        EstimateOptions.from_dict({"engine": "tensorrt"})
