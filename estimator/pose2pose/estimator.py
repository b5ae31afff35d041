# SPDX-License-Identifier: GPL-3.0-or-later
"""Pose2Pose behind the generic interface: ``Pose2PoseEstimator`` (a ``base.PoseEstimator``).

Everything the estimation job used to do with the network itself is here:
finding and loading the checkpoint and the SMPL-X layer, running batches
(``inference``), the per-crop confidence (``outputs.crop_confidence``) and the
conversion of the outputs to take rows (``take_convert``: the flat-hand
convention and the take's static camera). Importing this module does not
import torch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..base import CropSpec, LoadOptions, PersonResult, Readiness
from ..errors import CheckpointError, EstimatorError, ModelFileError
from . import constants as C

NAME = "pose2pose"
# The reference crop: 512x384, the person box grown to aspect 0.75, then x1.25.
CROP_SPEC = CropSpec(input_size=C.INPUT_IMG_SHAPE, box_scale=C.BODY_BOX_SCALE,
                     box_aspect=C.BODY_ASPECT)
# The network outputs the take is made from (test-mode keys).
OUTPUT_KEYS_USED = ("joint_img", "smplx_joint_proj", "smplx_root_pose", "smplx_body_pose",
                    "smplx_lhand_pose", "smplx_rhand_pose", "smplx_jaw_pose", "smplx_shape",
                    "smplx_expr", "cam_trans", "lhand_bbox", "rhand_bbox", "face_bbox")
PARAM_KEYS = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose",
              "leye_pose", "reye_pose", "betas", "expression", "transl")
RAW_KEYS = ("cam_trans", "lhand_bbox", "rhand_bbox", "face_bbox")
NUM_TRACK_JOINTS = 25  # the body joints of joint_img (joints.BODY_POSITIONAL_JOINTS)


class Pose2PoseEstimator:
    """A loaded Pose2Pose network (with its SMPL-X layer) as a ``base.PoseEstimator``.

    network: a ``Pose2Pose`` built with its SMPL-X layer (``load_checkpoint(...,
    smplx_model_path=...)``); it is moved to ``device`` and set to eval mode.
    model_name: the take's ``model`` text; standin: stand-in weights or SMPL-X file.
    device: None = where the network's parameters are.
    """

    name = NAME
    model = "smplx"
    crop_spec = CROP_SPEC

    def __init__(self, network, *, model_name: str = "", standin: bool = False,
                 device: str | None = None, precision: str = "fp32", engine: str = "torch"):
        from .engines import resolve_engine
        from .inference import InferenceOptions, prepare_model
        from .take_convert import PelvisModel

        layer = getattr(network, "smplx_layer", None)
        if layer is None:
            raise EstimatorError("the network needs its SMPL-X layer (load it with "
                                 "smplx_model_path)")
        if device is None:
            device = _parameter_device(network) or "cpu"
        self.network = network
        self.model_name = str(model_name)
        self.standin = bool(standin)
        self.device = str(device)
        self.options = InferenceOptions(device=self.device, precision=precision)
        # engines.resolve_engine: "auto" -> the fastest installed one (torch on CUDA)
        self.engine = resolve_engine(engine, str(self.options.torch_device()),
                                     self.options.precision)
        self.notes: list[str] = []
        prepare_model(network, self.options)
        if self.engine != "torch":  # export (first time) and compile now, not mid-clip
            self._engine_runner()
        self.pelvis = PelvisModel.from_layer(layer)
        self.hands_mean = (layer.left_hand_mean.detach().cpu().numpy().reshape(45),
                           layer.right_hand_mean.detach().cpu().numpy().reshape(45))

    @classmethod
    def load(cls, options: LoadOptions) -> "Pose2PoseEstimator":
        """Load the checkpoint and the SMPL-X model by the search order (or the flags);
        with ``options.network``, wrap that network instead (no files read)."""
        if options.network is not None:
            net = options.network
            net.eval()
            return cls(net, model_name=options.network_name, standin=options.network_standin,
                       device=_parameter_device(net) or options.device,
                       precision=options.precision, engine=options.engine)
        from ...weights.locations import find_checkpoint, find_smplx
        from ..checkpoint_io import checkpoint_identity
        from .checkpoint import identify_checkpoint, load_checkpoint

        ck = find_checkpoint(options.checkpoint)
        if not ck.found:
            raise CheckpointError(ck.problem or "no Pose2Pose checkpoint found; "
                                  f"put it at {ck.install_to} (run p2p-mocap doctor)")
        sm = find_smplx(options.smplx, "neutral")
        if not sm.found:
            raise ModelFileError(sm.problem or "no SMPL-X model found; put SMPLX_NEUTRAL.npz "
                                 f"at {sm.install_to} (run p2p-mocap doctor)")
        # The SMPL-X headers take milliseconds; check them before the 300 MB checkpoint.
        from ...common.smplx_file import check_smplx_file

        problems = check_smplx_file(sm.path)
        if problems:
            raise ModelFileError(f"{sm.path} is not a usable SMPL-X model file: {problems[0]}")
        net = load_checkpoint(ck.path, smplx_model_path=sm.path, device=options.device)
        name, standin = checkpoint_identity(ck.path, bool(ck.standin or sm.standin),
                                            identify_checkpoint)
        return cls(net, model_name=name, standin=standin, device=options.device,
                   precision=options.precision, engine=options.engine)

    def infer(self, crops: Sequence, camera) -> list[PersonResult]:
        """One batched forward pass over ``crops`` (``crop.PersonCrop``, 512x384)."""
        from .inference import crops_to_tensor

        crops = list(crops)
        if not crops:
            return []
        return self.infer_tensor(crops_to_tensor([c.crop for c in crops]),
                                 np.stack([c.bbox for c in crops]),
                                 np.stack([c.crop2img for c in crops]), camera)

    def infer_tensor(self, images, bbox, crop2img, camera) -> list[PersonResult]:
        """``infer`` for crops already made into the network's input, on any device (the
        batched pipeline cuts them there: ``fastpath.crops``): images (N, 3, 512, 384)
        float in [0, 1]; bbox (N, 4) their processed boxes; crop2img (N, 2, 3)."""
        from .inference import run_batch
        from .outputs import crop_confidence
        from .take_convert import rows_from_outputs

        if self.engine == "torch":
            out = run_batch(self._runner(), images, self.options, to_cpu=False)
        else:  # the exported graph in ONNX Runtime / OpenVINO, SMPL-X in PyTorch after it
            out = self._engine_runner()(images)
        out = {k: out[k].cpu().numpy() for k in OUTPUT_KEYS_USED}  # only what the take uses
        n = len(images)
        conf = np.array([crop_confidence(out["joint_img"][i], out["smplx_joint_proj"][i])
                         for i in range(n)])
        bbox = np.asarray(bbox).astype(np.float64)
        crop2img = np.asarray(crop2img).astype(np.float64)
        rows = rows_from_outputs(out, bbox, crop2img, self.pelvis, self.hands_mean,
                                 camera.focal, camera.princpt, conf)
        return [PersonResult(model="smplx", params={k: rows[k][i] for k in PARAM_KEYS},
                             joints_2d=rows["joints_2d"][i], confidence=float(conf[i]),
                             box=rows["bbox_xywh"][i], raw={k: rows[k][i] for k in RAW_KEYS},
                             track_points=rows["joints_2d"][i, :NUM_TRACK_JOINTS, :2])
                for i in range(n)]


    def _runner(self):
        """What runs: on the CPU ``inference.cpu_runner`` (BN-folded trunks, bf16 ones for
        bf16; built once per options, the network untouched), elsewhere the network."""
        from .inference import cpu_runner

        if getattr(self, "_runner_options", None) != self.options:
            self._runner_module, self._runner_options = (cpu_runner(self.network, self.options),
                                                         self.options)
        return self._runner_module

    def _engine_runner(self):
        """``onnx_export.EngineRunner`` on the cached graph (``engines.cached_graph``; the
        first use per checkpoint exports it, ~1 min), built once."""
        if getattr(self, "_engine", None) is None:
            from .engines import cached_graph
            from .onnx_export import EngineRunner

            path = cached_graph(self.network, notes=self.notes)
            self._engine = EngineRunner(path, self.network, self.engine,
                                        self.options.precision, threads=self.options.threads)
        return self._engine


def _parameter_device(network) -> str | None:
    try:
        return str(next(network.parameters()).device)
    except (StopIteration, AttributeError, TypeError):
        return None


def check(smplx=None, checkpoint=None, *, known=None) -> Readiness:
    """Whether Pose2Pose can run here: an SMPL-X model (neutral) and a checkpoint found.

    Quick (no torch): the files are located by the search order (or the flags) and
    the SMPL-X file's headers checked. ``known``: what a caller already checked by
    content (``p2p-mocap doctor``), ``{"smplx": (ok, standin), "checkpoint": (ok,
    standin)}``; those replace the quick look-ups.
    """
    known = dict(known or {})
    problems, standin = [], False
    for what in ("smplx", "checkpoint"):
        if what in known:
            ok, is_standin = known[what]
            if not ok:
                problems.append("no usable SMPL-X model" if what == "smplx" else
                                "no usable Pose2Pose checkpoint")
            standin = standin or bool(ok and is_standin)
            continue
        ok, is_standin, problem = (_quick_smplx(smplx) if what == "smplx" else
                                   _quick_checkpoint(checkpoint))
        if not ok:
            problems.append(problem)
        standin = standin or bool(ok and is_standin)
    if problems:
        return Readiness(False, standin, "not ready: " + "; ".join(problems))
    if standin:
        return Readiness(True, True, "ready with STAND-IN files (results are meaningless)")
    return Readiness(True, False, "ready (SMPL-X model and checkpoint found)")


def _quick_smplx(flag) -> tuple[bool, bool, str]:
    from ...weights.locations import find_smplx
    from ...common.smplx_file import check_smplx_file

    found = find_smplx(flag, "neutral")
    if found.path is None:
        return False, False, found.problem or "no SMPL-X model (SMPLX_NEUTRAL.npz) found"
    bad = check_smplx_file(found.path)
    if bad:
        return False, False, bad[0]
    return True, bool(found.standin), ""


def _quick_checkpoint(flag) -> tuple[bool, bool, str]:
    from ...weights.locations import find_checkpoint

    found = find_checkpoint(flag)
    if found.path is None:
        return False, False, found.problem or "no Pose2Pose checkpoint found"
    return True, bool(found.standin), ""
