# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading, checking, converting and identifying I2L-MeshNet checkpoints.

Accepted files (read exactly as Pose2Pose's, ``pose2pose.checkpoint``): the
official container ``{"epoch", "network": {"module.*": tensor}, "optimizer"}``
(``snapshot_8.pth.tar``), or a bare state dict, with or without ``module.``;
legacy and zip PyTorch formats (``torch.load(weights_only=True)`` only: a
pickle that refers to anything but tensors is refused, never run); and
``.safetensors`` copies (``convert_checkpoint``).

Strict: every one of the 723 network keys must be there with its shape and
nothing else, or nothing is loaded and the message names the missing,
unexpected and mis-shaped keys.

The SMPL buffers. The official training saved the model's SMPL layer with the
weights: 7 keys ``human_model_layer.th_{betas,shapedirs,posedirs,v_template,
J_regressor,weights,faces}`` (fact sheet 1.3), a float32 copy of the neutral
SMPL model (under the SMPL licence). They are accepted when their shapes are
the SMPL ones and dropped before loading; they are never written into any file
we make (``convert_checkpoint`` leaves them out). Which SMPL data is used:
the user's SMPL model file, for both the 29-joint regressor and the mesh
(``mesh_coord_cam``); the official demo takes the regressor from its local
file too, but its SMPL layer from these buffers, so with the authors' neutral
model (``basicModel_neutral_lbs_10_207_0_v1.0.0``) both are the same numbers.
Only when no SMPL file is given does the checkpoint's ``th_J_regressor``
provide the regressor (so ``pose_param``/``shape_param`` come out; no mesh).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from .. import checkpoint_io as io
from ..checkpoint_io import CheckpointInfo, file_sha256  # noqa: F401 - public here too
from ..errors import CheckpointError
from . import constants as C

log = logging.getLogger(__name__)

KNOWN_SHA256: dict[str, str] = {}  # the authors publish no checksums (Google Drive files)
SMPL_BUFFER_PREFIX = "human_model_layer."
SMPL_BUFFERS = {
    "human_model_layer.th_betas": (1, C.NUM_BETAS),
    "human_model_layer.th_shapedirs": (C.NUM_VERTICES, 3, C.NUM_BETAS),
    "human_model_layer.th_posedirs": (C.NUM_VERTICES, 3, (C.NUM_SMPL_JOINTS - 1) * 9),
    "human_model_layer.th_v_template": (1, C.NUM_VERTICES, 3),
    "human_model_layer.th_J_regressor": (C.NUM_SMPL_JOINTS, C.NUM_VERTICES),
    "human_model_layer.th_weights": (C.NUM_VERTICES, C.NUM_SMPL_JOINTS),
    "human_model_layer.th_faces": (13776, 3),
}


@functools.lru_cache(maxsize=1)
def expected_shapes() -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of ``I2LMeshNet().state_dict()`` (723 keys, built on the meta device)."""
    from .network import I2LMeshNet

    with torch.device("meta"):
        net = I2LMeshNet()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _hint(keys) -> str:
    if any(k.startswith(("backbone.", "body_position_net.", "hand_roi_net.")) for k in keys):
        return " It looks like a Pose2Pose (Hand4Whole) checkpoint; use --estimator pose2pose."
    w = keys.get("mesh_net.conv_x.0.weight") if isinstance(keys, dict) else None
    if w is not None and tuple(w.shape)[:1] == (778,):
        return " It looks like the FreiHAND (MANO hand) model, which is not supported."
    return ""


def split_smpl_buffers(sd: dict) -> tuple[dict, dict, list[str]]:
    """(network weights, the official SMPL buffers, notes); keys without ``module.``.

    Only the 7 known ``human_model_layer.th_*`` names with their SMPL shapes are
    taken out; anything else under that prefix stays and is reported as unexpected.
    """
    net, smpl = {}, {}
    for k, v in sd.items():
        if k in SMPL_BUFFERS and tuple(v.shape) == SMPL_BUFFERS[k]:
            smpl[k] = v
        else:
            net[k] = v
    notes = []
    if smpl:
        notes.append(f"the file embeds {len(smpl)} SMPL model buffers (human_model_layer.th_*, "
                     "saved by the official training); they are not network weights and are "
                     "not loaded into the network")
    return net, smpl, notes


def mismatch_report(sd: dict) -> str | None:
    """How the network weights sd differ from the network (one paragraph), or None."""
    return io.mismatch_report(sd, expected_shapes(), _hint(sd))


def _normalise(raw: dict) -> tuple[dict, list[str]]:
    """(network weights without ``module.`` and the SMPL buffers, notes)."""
    sd, _smpl, notes = split_smpl_buffers(io.strip_module(raw))
    return sd, notes


def read_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """(network weights, embedded SMPL buffers, notes) of a checkpoint, validated.

    Raises CheckpointError (one paragraph) on any problem; never returns a partial dict.
    """
    path = Path(path)
    obj, _fmt, _meta = io.read_raw(path)
    sd, smpl, notes = split_smpl_buffers(io.strip_module(io.network_dict(obj, path)))
    report = mismatch_report(sd)
    if report:
        raise CheckpointError(f"{path} does not match the I2L-MeshNet network (SMPL body, stage "
                              f"param), so nothing was loaded: {report}")
    return sd, smpl, notes


def read_state_dict(path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Validated network weights (723 keys, without ``module.``) and notes."""
    sd, _smpl, notes = read_checkpoint(path)
    return sd, notes


def load_checkpoint(path, smpl_model_path=None, device="cpu"):
    """I2LMeshNet in eval mode with the weights of ``path`` (strict), on ``device``.

    smpl_model_path: an SMPL neutral model (see ``I2LMeshNet``); None: no mesh,
    and the joint regressor comes from the checkpoint's embedded SMPL data when
    it has some (module docstring). Raises CheckpointError / ModelFileError.
    """
    from .network import I2LMeshNet

    sd, smpl, notes = read_checkpoint(path)
    sd, device = io.tensors_for_device(sd, device)
    with torch.device("meta"):
        model = I2LMeshNet()
    model.load_state_dict(sd, strict=True, assign=True)
    model.to(device)
    if smpl_model_path is not None:
        model.attach_smpl(smpl_model_path)
    elif "human_model_layer.th_J_regressor" in smpl:
        model.set_joint_regressor(smpl["human_model_layer.th_J_regressor"])
        notes.append("no SMPL model file given: the joint regressor comes from the checkpoint's "
                     "embedded SMPL data (no mesh_coord_cam)")
    model.eval()
    model.load_notes = notes
    for note in notes:
        log.info("%s: %s", Path(path).name, note)
    return model


def convert_checkpoint(src, dst, *, overwrite: bool = False) -> Path:
    """Write a validated ``.safetensors`` copy (723 network keys, no ``module.``, never the
    embedded SMPL buffers) of ``src`` to ``dst``, atomically; refuses to replace ``dst``
    unless ``overwrite``."""
    src, dst = Path(src), Path(dst)
    io.check_convert_target(src, dst, overwrite)
    sd, notes = read_state_dict(src)
    meta = {"network": "i2l-meshnet"}
    if notes:
        meta["notes"] = "; ".join(notes) + " (left out of this copy)"
    return io.write_safetensors(sd, src, dst, meta, overwrite=overwrite)


def looks_like_i2l(sd_keys) -> bool:
    """Whether a state dict's keys (with or without ``module.``) are I2L-MeshNet's
    (for ``p2p-mocap weights check`` to pick the right network)."""
    keys = {k[len("module."):] if k.startswith("module.") else k for k in sd_keys}
    return "mesh_net.conv_z_2.0.weight" in keys or "pose2feat.conv.0.weight" in keys


def identify_checkpoint(path) -> CheckpointInfo:
    """Say what a file is: the official I2L-MeshNet layout, a stand-in, or unknown (and why).

    Never raises for a bad file: an unreadable or unsafe one is "unknown" with the reason.
    """
    from ...weights.i2l_standins import standin_seed_of

    def official(sd, raw, fmt, sha):
        return KNOWN_SHA256.get(sha) or (
            f"I2L-MeshNet weights (SMPL body, stage param) with the official layout ({len(sd)} "
            f"tensors{', plus the embedded SMPL buffers' if len(raw) > len(sd) else ''}, {fmt}); "
            "authenticity cannot be verified because the authors publish no checksum")

    return io.identify(path, normalise=_normalise, report_of=mismatch_report,
                       seed_of=standin_seed_of, standin_name="I2L-MeshNet stand-in weights",
                       layout_name="I2L-MeshNet", official=official)
