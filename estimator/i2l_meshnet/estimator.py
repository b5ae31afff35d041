# SPDX-License-Identifier: GPL-3.0-or-later
"""I2L-MeshNet behind the generic interface: ``I2LMeshNetEstimator`` (a ``base.PoseEstimator``).

Finding and loading the checkpoint and the SMPL model, running batches, the
per-crop confidence (``outputs``) and the conversion to SMPL take rows
(``take_convert``). Importing this module does not import torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..base import LoadOptions, PersonResult, Readiness
from ..errors import CheckpointError, EstimatorError, ModelFileError
from . import constants as C
from .outputs import CROP_SPEC

NAME = "i2l-meshnet"
PARAM_KEYS = ("global_orient", "body_pose", "betas", "transl")
OUTPUT_KEYS_USED = ("joint_coord_img", "mesh_coord_img", "joint_img_from_mesh", "pose_param",
                    "shape_param", "mesh_coord_cam", "smpl_root")


class I2LMeshNetEstimator:
    """A loaded ``I2LMeshNet`` with its SMPL layer as a ``base.PoseEstimator``.

    network: an ``I2LMeshNet`` built with an SMPL model (``load_checkpoint(...,
    smpl_model_path=...)``); moved to ``device`` and set to eval mode.
    model_name: the take's ``model`` text; standin: stand-in weights or SMPL file.
    precision: "fp32" (the reference numerics); "bf16"/"fp16" run the two
    ResNet trunks under CUDA autocast (the lixel heads and SMPL stay fp32).
    """

    name = NAME
    model = "smpl"
    crop_spec = CROP_SPEC

    def __init__(self, network, *, model_name: str = "", standin: bool = False,
                 device: str | None = None, precision: str = "fp32"):
        import torch

        if getattr(network, "smpl_layer", None) is None:
            raise EstimatorError("the I2L-MeshNet network needs its SMPL layer (load it with "
                                 "smpl_model_path)")
        if precision not in ("fp32", "bf16", "fp16"):
            raise EstimatorError(f"precision must be fp32, bf16 or fp16, not {precision!r}")
        if device is None:
            device = _parameter_device(network) or "cpu"
        self.network = network
        self.model_name = str(model_name)
        self.standin = bool(standin)
        self.device = str(device)
        self.precision = precision
        self._torch_device = torch.device(self.device)
        network.to(self._torch_device).eval()

    @classmethod
    def load(cls, options: LoadOptions) -> "I2LMeshNetEstimator":
        """Load the checkpoint and the SMPL model by the search order (or the flags);
        with ``options.network``, wrap that network instead (no files read)."""
        if options.network is not None:
            net = options.network
            net.eval()
            return cls(net, model_name=options.network_name, standin=options.network_standin,
                       device=_parameter_device(net) or options.device,
                       precision=options.precision)
        from ...weights.locations import find_i2l_checkpoint
        from ..checkpoint_io import checkpoint_identity
        from .checkpoint import identify_checkpoint, load_checkpoint

        ck = find_i2l_checkpoint(options.checkpoint)
        if not ck.found:
            raise CheckpointError(ck.problem or "no I2L-MeshNet checkpoint found; put "
                                  f"snapshot_8.pth.tar at {ck.install_to} (from {ck.source}; "
                                  "run p2p-mocap doctor)")
        smpl_path, smpl_standin = find_smpl_model(options.smplx)
        net = load_checkpoint(ck.path, smpl_model_path=smpl_path, device=options.device)
        name, standin = checkpoint_identity(ck.path, ck.standin, identify_checkpoint)
        standin = bool(standin or smpl_standin)
        return cls(net, model_name=name, standin=standin, device=options.device,
                   precision=options.precision)

    def _forward(self, images):
        import torch

        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        dev = self._torch_device
        x = images.to(device=dev, dtype=torch.float32)
        with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=dtype,
                                                    enabled=dtype is not None):
            out = self.network(x)
        return {k: out[k].float().cpu().numpy() for k in OUTPUT_KEYS_USED}

    def infer(self, crops: Sequence, camera) -> list[PersonResult]:
        """One batched forward pass over ``crops`` (``crop.PersonCrop``, 256x256)."""
        import torch

        from .outputs import crop_confidence, joint_confidence
        from .take_convert import rows_from_outputs

        crops = list(crops)
        if not crops:
            return []
        arr = np.stack([np.asarray(c.crop, np.float32) for c in crops])
        if arr.shape[1:] != (*C.INPUT_IMG_SHAPE, 3):
            raise EstimatorError(f"I2L-MeshNet takes 256x256 crops, not {arr.shape[1:3]}")
        images = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous() / 255.0
        out = self._forward(images)
        jconf = joint_confidence(out["joint_coord_img"], out["joint_img_from_mesh"])
        conf = crop_confidence(out["joint_coord_img"], jconf)
        bbox = np.stack([np.asarray(c.bbox, np.float64) for c in crops])
        crop2img = np.stack([c.crop2img for c in crops]).astype(np.float64)
        rows = rows_from_outputs(out, bbox, crop2img, camera.focal, camera.princpt, conf, jconf)
        return [PersonResult(model="smpl", params={k: rows[k][i] for k in PARAM_KEYS},
                             joints_2d=rows["joints_2d"][i], confidence=float(conf[i]),
                             box=rows["bbox_xywh"][i],
                             track_points=rows["joints_2d"][i, :, :2])
                for i in range(len(crops))]


def _parameter_device(network) -> str | None:
    try:
        return str(next(network.parameters()).device)
    except (StopIteration, AttributeError, TypeError):
        return None


def find_smpl_model(flag=None) -> tuple[Path, bool]:
    """(SMPL neutral model path, is a stand-in) by the search order; ModelFileError if none.

    ``flag``: the run's body-model path (``--smplx``): used when it holds an SMPL
    file (``SMPL_NEUTRAL.npz`` or ``smpl/SMPL_NEUTRAL.npz``, e.g. a models folder
    with both ``smplx/`` and ``smpl/``); otherwise the SMPL search order is used.
    """
    from ...common.smpl_file import check_smpl_file, model_file_in
    from ...weights.locations import find_smpl

    if flag and model_file_in(flag, "neutral") is None:
        flag = None
    hit = find_smpl(flag, "neutral")
    if not hit.found:
        raise ModelFileError(hit.problem or "no SMPL model (SMPL_NEUTRAL.npz) found; put it "
                             f"at {hit.install_to} (from {hit.source}; run p2p-mocap doctor)")
    bad = check_smpl_file(hit.path)
    if bad:
        raise ModelFileError(bad[0])
    return Path(hit.path), bool(hit.standin)


def check(smplx=None, checkpoint=None, *, known=None) -> Readiness:
    """Whether I2L-MeshNet can run here: an SMPL neutral model and its checkpoint found.

    Quick (no torch; the SMPL file's headers are checked). ``smplx``: the body
    model flag (used when it holds an SMPL file); ``known`` is about Pose2Pose's
    files and not used; ``checkpoint``: the --checkpoint flag, used when it names
    an I2L-MeshNet file (by folder or file name).
    """
    from ...weights.locations import find_i2l_checkpoint

    problems, standin = [], False
    try:
        _path, smpl_standin = find_smpl_model(smplx)
        standin = smpl_standin
    except ModelFileError as exc:
        problems.append(str(exc))
    ck = find_i2l_checkpoint(checkpoint if _is_i2l_flag(checkpoint) else None)
    if not ck.found:
        problems.append(ck.problem or "no I2L-MeshNet checkpoint (i2l_meshnet/"
                        f"snapshot_8.pth.tar) found; from {ck.source}")
    else:
        standin = standin or ck.standin
    if problems:
        return Readiness(False, standin, "not ready: " + "; ".join(problems))
    if standin:
        return Readiness(True, True, "ready with STAND-IN files (results are meaningless)")
    return Readiness(True, False, "ready (SMPL model and I2L-MeshNet checkpoint found)")


def _is_i2l_flag(checkpoint) -> bool:
    """Whether a --checkpoint flag is meant for I2L-MeshNet (``doctor`` gives every
    estimator the same flag): a folder that holds an I2L-MeshNet checkpoint, or a file
    named like one (in an ``i2l`` folder, or the official snapshot names)."""
    if not checkpoint:
        return False
    from ...weights.locations import I2L_CHECKPOINT_NAMES, find_i2l_checkpoint

    p = Path(checkpoint).expanduser()
    if p.is_dir():
        return find_i2l_checkpoint(p).found
    return "i2l" in str(p).lower() or p.name in I2L_CHECKPOINT_NAMES
