# SPDX-License-Identifier: GPL-3.0-or-later
"""The network as an ONNX graph, and running it with ONNX Runtime or OpenVINO.

``export_onnx(network, path)`` writes the test-mode network **without the SMPL-X
layer**: input ``img`` (N, 3, 512, 384) float32 RGB in [0, 1] (N dynamic), outputs
``GRAPH_KEYS`` (``network.OUTPUT_KEYS`` minus ``smplx_joint_proj`` and
``smplx_mesh_cam``), fp32. SMPL-X stays outside the graph on purpose: the file
then holds only the network's weights (no licensed SMPL-X model data in it), and
the mesh is computed afterwards by the same PyTorch layer the eager path uses
(``EngineRunner`` adds ``smplx_joint_proj`` / ``smplx_mesh_cam``), so every output
key of ``run_batch`` is there. ``roi_align`` (torchvision) becomes ONNX
``RoiAlign`` (adaptive sampling, ``output_half_pixel``, as the reference).

``EngineRunner(path, network, engine)`` runs the file with ONNX Runtime
(``pip install pose2pose-mocap[onnx]``) or OpenVINO (``[openvino]``; fp32 or
bf16 inference precision). Both are optional extras; docs/speed.md says what
each measured and whether it stays within the conformance tolerances.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from ..errors import EstimatorError
from .network import MESH_KEYS, OUTPUT_KEYS

GRAPH_KEYS = tuple(k for k in OUTPUT_KEYS if k not in MESH_KEYS)
ENGINES = ("onnxruntime", "openvino")
DEFAULT_OPSET = 18


class EngineError(EstimatorError):
    """An inference engine is missing or cannot run the exported graph; one line."""


class _GraphModule(torch.nn.Module):
    """The network without its SMPL-X layer, returning GRAPH_KEYS as a tuple."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        twin = copy.copy(network)
        twin._modules = dict(network._modules)
        twin.smplx_layer = None
        self.net = twin.eval()

    def forward(self, img: torch.Tensor):
        out = self.net(img)
        return tuple(out[k] for k in GRAPH_KEYS)


def export_onnx(network: torch.nn.Module, path, *, opset: int = DEFAULT_OPSET,
                replace: bool = False) -> Path:
    """Write ``network`` (a ``Pose2Pose``, fp32, CPU) as ONNX to ``path`` atomically.

    Refuses an existing ``path`` unless ``replace``. Takes ~30-60 s on 2 cores.
    """
    from ...common.files import atomic_write

    module = _GraphModule(network.cpu().float().eval()).eval()  # (no training-mode warning)
    example = torch.zeros(1, 3, 512, 384)

    def write(tmp: Path) -> None:
        try:
            program = torch.onnx.export(
                module, (example,), None, dynamo=True, opset_version=opset,
                input_names=["img"], output_names=list(GRAPH_KEYS),
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
                verbose=False)
        except ImportError as exc:  # onnx / onnxscript missing
            raise EngineError(f"exporting to ONNX needs the onnx extra "
                              f"(pip install pose2pose-mocap[onnx]): {exc}") from None
        program.save(str(tmp))

    return atomic_write(Path(path), write, replace=replace)


class EngineRunner:
    """Runs an exported graph like ``inference.run_batch`` runs the network.

    path: the ``export_onnx`` file; network: the ``Pose2Pose`` it was exported
    from (its SMPL-X layer makes the mesh outputs; may be None: no mesh keys).
    engine: "onnxruntime" or "openvino"; precision: "fp32" or "bf16" (OpenVINO's
    inference precision hint; ONNX Runtime runs fp32 only); threads: None = all usable.
    """

    def __init__(self, path, network, engine: str = "openvino", precision: str = "fp32",
                 threads: int | None = None):
        from ..cpu_features import usable_cores

        if engine not in ENGINES:
            raise EngineError(f"engine must be {' or '.join(ENGINES)}, not {engine!r}")
        self.engine, self.precision, self.network = engine, precision, network
        threads = int(threads or usable_cores())
        path = str(path)
        if engine == "onnxruntime":
            if precision != "fp32":
                raise EngineError("ONNX Runtime runs the graph in fp32 only here")
            try:
                import onnxruntime as ort
            except ImportError:
                raise EngineError("ONNX Runtime is not installed "
                                  "(pip install pose2pose-mocap[onnx])") from None
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            names = [o.name for o in self._session.get_outputs()]
            self._run = lambda x: dict(zip(names, self._session.run(None, {"img": x})))
        else:
            try:
                import openvino as ov
            except ImportError:
                raise EngineError("OpenVINO is not installed "
                                  "(pip install pose2pose-mocap[openvino])") from None
            hint = {"fp32": "f32", "bf16": "bf16"}.get(precision)
            if hint is None:
                raise EngineError(f"OpenVINO precision must be fp32 or bf16, not {precision!r}")
            compiled = ov.Core().compile_model(path, "CPU", {
                "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY"})
            request = compiled.create_infer_request()
            names = [o.get_any_name() for o in compiled.outputs]

            def run(x):
                res = request.infer({0: x})
                return {n: np.asarray(res[o]) for n, o in zip(names, compiled.outputs)}

            self._run = run

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images (N,3,512,384) float in [0,1] -> float32 CPU tensors, keys as ``run_batch``."""
        x = np.ascontiguousarray(images.detach().cpu().float().numpy())
        out = {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=False))
               for k, v in self._run(x).items()}
        missing = [k for k in GRAPH_KEYS if k not in out]
        if missing:
            raise EngineError(f"the ONNX file lacks the output {missing[0]} "
                              "(export it again with p2p-mocap weights export-onnx)")
        if self.network is not None and getattr(self.network, "smplx_layer", None) is not None:
            out.update(mesh_outputs(self.network.smplx_layer, out))
        return {k: out[k] for k in OUTPUT_KEYS if k in out}


def mesh_outputs(layer, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``smplx_joint_proj`` (N,137,2) and ``smplx_mesh_cam`` (N,10475,3) from the graph's
    parameters, as ``Pose2Pose.forward`` computes them (fp32, under inference_mode)."""
    from . import geometry as G
    from .joints import SMPLX_JOINT_IDX_137
    from .smplx_layer import smplx_forward

    with torch.inference_mode():
        verts, joints = smplx_forward(layer, out["smplx_root_pose"], out["smplx_body_pose"],
                                      out["smplx_lhand_pose"], out["smplx_rhand_pose"],
                                      out["smplx_jaw_pose"], out["smplx_shape"],
                                      out["smplx_expr"])
        idx = torch.as_tensor(SMPLX_JOINT_IDX_137, device=joints.device)
        cam = out["cam_trans"]
        return {"smplx_joint_proj": G.project_to_body_hm(joints[:, idx], cam),
                "smplx_mesh_cam": verts + cam[:, None, :]}
