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
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..pose2pose.checkpoint import _network_dict, _read_raw, file_sha256
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
_SHOW = 5


@dataclass
class CheckpointInfo:
    """What ``identify_checkpoint`` found out about a file."""

    path: Path
    kind: str  # "official", "stand-in" or "unknown"
    sha256: str
    num_keys: int
    description: str
    standin_seed: int | None = None
    notes: list[str] = field(default_factory=list)
    loadable: bool = False


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
    want = expected_shapes()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    bad_shape = [f"{k} {tuple(sd[k].shape)} != {want[k]}" for k in want
                 if k in sd and tuple(sd[k].shape) != want[k]]
    bad_type = [k for k in want if k in sd and not k.endswith("num_batches_tracked")
                and not sd[k].is_floating_point()]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("with the wrong shape", bad_shape), ("not floating point", bad_type)):
        if items:
            more = ", ..." if len(items) > _SHOW else ""
            parts.append(f"{len(items)} {'key' if len(items) == 1 else 'keys'} {label} "
                         f"({', '.join(items[:_SHOW])}{more})")
    if not parts:
        return None
    return "; ".join(parts) + "." + _hint(sd)


def _strip(net: dict) -> dict:
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in net.items()}


def read_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """(network weights, embedded SMPL buffers, notes) of a checkpoint, validated.

    Raises CheckpointError (one paragraph) on any problem; never returns a partial dict.
    """
    path = Path(path)
    obj, _fmt, _meta = _read_raw(path)
    sd, smpl, notes = split_smpl_buffers(_strip(_network_dict(obj, path)))
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
    if device == "auto":
        from ..device import resolve_device

        device = resolve_device("auto")
    device = torch.device(device)
    sd = {k: (v.to(device=device, dtype=torch.float32, copy=True) if v.is_floating_point()
              else v.to(device=device, copy=True)) for k, v in sd.items()}
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
    from safetensors.torch import save_file

    from ...common.files import atomic_write, os_error_in_text, remove_stale_temps

    src, dst = Path(src), Path(dst)
    if dst.exists() and not overwrite:
        raise CheckpointError(
            f"{dst} already exists; not overwriting it (use overwrite=True to replace it).")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise CheckpointError(f"Source and destination are the same file ({src}).")
    sd, notes = read_state_dict(src)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
    meta = {"format": "pt", "producer": "pose2pose_mocap", "network": "i2l-meshnet",
            "source_name": src.name, "source_sha256": file_sha256(src)}
    if notes:
        meta["notes"] = "; ".join(notes) + " (left out of this copy)"
    dst.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dst.parent)

    def write(tmp: Path) -> None:
        try:
            save_file(tensors, str(tmp), metadata=meta)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - safetensors' SafetensorError (Rust I/O)
            cause = os_error_in_text(str(exc))
            if cause is not None:
                raise cause from None
            raise CheckpointError(f"could not write {dst}: {' '.join(str(exc).split())}") \
                from None

    return atomic_write(dst, write, replace=overwrite)


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

    path = Path(path)
    try:
        sha = file_sha256(path)
    except OSError as exc:
        return CheckpointInfo(path, "unknown", "", 0,
                              f"cannot read the file: {exc.strerror or exc}")
    try:
        obj, fmt, meta = _read_raw(path, mmap=True)
        raw = _network_dict(obj, path)
    except CheckpointError as exc:
        return CheckpointInfo(path, "unknown", sha, 0, str(exc))
    sd, _smpl, notes = split_smpl_buffers(_strip(raw))
    report = mismatch_report(sd)
    seed = standin_seed_of(sd)
    origin = ""
    if meta.get("source_sha256"):
        origin = (f" (converted from {meta.get('source_name', '?')}, "
                  f"sha256 {meta['source_sha256'][:12]}...)")
    if seed is not None:
        desc = (f"I2L-MeshNet stand-in weights, seed {seed}: deterministic placeholders made by "
                "the project's rule for tests; not a trained model, poses will be meaningless")
        if report:
            desc += f"; layout differs from the network, so it cannot be loaded: {report}"
        return CheckpointInfo(path, "stand-in", sha, len(raw), desc + origin, seed, notes,
                              loadable=report is None)
    if report:
        return CheckpointInfo(path, "unknown", sha, len(raw),
                              f"not the I2L-MeshNet layout: {report}", None, notes)
    desc = KNOWN_SHA256.get(sha) or (
        f"I2L-MeshNet weights (SMPL body, stage param) with the official layout ({len(sd)} "
        f"tensors{', plus the embedded SMPL buffers' if _smpl else ''}, {fmt}); authenticity "
        "cannot be verified because the authors publish no checksum")
    return CheckpointInfo(path, "official", sha, len(raw), desc + origin, None, notes,
                          loadable=True)
