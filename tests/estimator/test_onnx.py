"""p2p-mocap weights export-onnx and the ONNX Runtime / OpenVINO engines (optional extras)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from .._p2p_support import REFERENCE_NPZ, images
from ..test_network_conformance import FREE_RUNNING_HAND_POSE_TOL, TOL

pytestmark = pytest.mark.torch


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pose2pose_mocap.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_export_onnx_refuses_bad_names_and_existing_files(tmp_path, standin_checkpoint):
    r = _cli("weights", "export-onnx", tmp_path / "net.txt", "--checkpoint", standin_checkpoint)
    assert r.returncode != 0 and "must end in .onnx" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "net.txt").exists()
    existing = tmp_path / "net.onnx"
    existing.write_bytes(b"mine")
    r = _cli("weights", "export-onnx", existing, "--checkpoint", standin_checkpoint)
    assert r.returncode != 0 and "exists" in r.stderr and existing.read_bytes() == b"mine"


@pytest.fixture(scope="module")
def exported(tmp_path_factory, standin_checkpoint):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    out = tmp_path_factory.mktemp("onnx") / "pose2pose.onnx"
    r = _cli("weights", "export-onnx", out, "--checkpoint", standin_checkpoint)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file() and f"wrote {out}" in r.stdout
    return out


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_the_exported_graph_matches_the_official_network(exported, engine, standin_net):
    """fp32 in either engine: within the conformance tolerances; SMPL-X outputs added."""
    pytest.importorskip(engine)
    from pose2pose_mocap.estimator import OUTPUT_KEYS
    from pose2pose_mocap.estimator.pose2pose.onnx_export import GRAPH_KEYS, EngineRunner

    import onnx

    graph = onnx.load(str(exported), load_external_data=False).graph
    assert [o.name for o in graph.output] == list(GRAPH_KEYS)
    assert not any("smplx" in i.name and "layer" in i.name for i in graph.initializer)
    reference = dict(np.load(REFERENCE_NPZ))
    out = EngineRunner(exported, standin_net, engine, "fp32", threads=2)(images(2, 1))
    assert tuple(out) == OUTPUT_KEYS and out["smplx_mesh_cam"].shape == (2, 10475, 3)
    for key, tol in TOL.items():
        if key in ("smplx_lhand_pose", "smplx_rhand_pose"):
            tol = FREE_RUNNING_HAND_POSE_TOL
        diff = np.abs(out[key].numpy() - reference[key]).max()
        assert diff <= tol, f"{engine} {key}: max difference {diff:.3g} > {tol}"
    single = EngineRunner(exported, None, engine, "fp32", threads=2)(images(2, 1)[:1])
    assert "smplx_mesh_cam" not in single  # dynamic batch; no mesh without a layer
    np.testing.assert_allclose(single["smplx_body_pose"].numpy(), reference["smplx_body_pose"][:1],
                               atol=TOL["smplx_body_pose"], rtol=0)
