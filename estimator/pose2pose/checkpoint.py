# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading, checking, converting and identifying Pose2Pose checkpoints.

Accepted files:

* the official container ``{"network": {"module.*": tensor}, "epoch", "optimizer"}``
  (``snapshot_6.pth.tar``), or a bare state dict, with or without ``module.``;
* the legacy (pre-1.6) and zip PyTorch formats;
* ``.safetensors`` (as written by ``convert_checkpoint``).

Safety: PyTorch files are read with ``torch.load(weights_only=True)`` only,
so a pickle that would import and call arbitrary Python is refused, never run.
Strictness: the weights must match the network key for key and shape for
shape; otherwise nothing is loaded and the message says what differs. The two
``body_rotation_net.gender_out.*`` keys of older code (fact sheet 1.3) are
the only tolerated extra and are dropped with a note.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from .. import checkpoint_io as io
from ..checkpoint_io import CheckpointInfo, file_sha256  # noqa: F401 - public here too
from ..errors import CheckpointError

log = logging.getLogger(__name__)

# sha256 (hex) -> description, for checkpoints whose authors publish a hash.
# The Hand4Whole release publishes none (files are on Google Drive without
# checksums), so a real snapshot_6.pth.tar can only be recognised by layout.
KNOWN_SHA256: dict[str, str] = {}

GENDER_HEAD_PREFIX = "body_rotation_net.gender_out."


@functools.lru_cache(maxsize=1)
def expected_shapes() -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of ``Pose2Pose().state_dict()``, in order (built on the meta device)."""
    from .network import Pose2Pose

    with torch.device("meta"):
        net = Pose2Pose()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _hint(keys) -> str:
    # Top-level module names of the body-/hand-/face-only branch (fact sheet, appendix A).
    if any(k.startswith(("hand_backbone.", "position_net.", "rotation_net.", "regressor."))
           for k in keys):
        return (" It looks like a part-only Pose2Pose checkpoint (body, hand or face branch), "
                "not the whole-body Hand4Whole snapshot_6.pth.tar.")
    return ""


def mismatch_report(sd: dict) -> str | None:
    """A one-paragraph description of how sd differs from the network, or None."""
    return io.mismatch_report(sd, expected_shapes(), _hint(sd))


def _normalise(net: dict) -> tuple[dict, list[str]]:
    """Strip ``module.``, drop the old gender head; returns (state dict, notes)."""
    sd = io.strip_module(net)
    notes = []
    gender = [k for k in sd if k.startswith(GENDER_HEAD_PREFIX)]
    if gender:
        for k in gender:
            del sd[k]
        notes.append(f"dropped {len(gender)} keys of the gender head that the official code "
                     f"removed in 2022 ({', '.join(gender)}); the network does not use them")
    return sd, notes


def read_state_dict(path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Validated ``{key: tensor}`` (keys without ``module.``) and notes about the file.

    Raises CheckpointError on any problem; never returns a partial dict.
    """
    path = Path(path)
    obj, _fmt, _meta = io.read_raw(path)
    sd, notes = _normalise(io.network_dict(obj, path))
    report = mismatch_report(sd)
    if report:
        raise CheckpointError(
            f"{path} does not match the Pose2Pose (Hand4Whole) whole-body network, so nothing "
            f"was loaded: {report}")
    return sd, notes


# --------------------------------------------------------------------------- public API

def load_checkpoint(path, smplx_model_path=None, device="cpu"):
    """Pose2Pose in eval mode with the weights of ``path`` (strict), on ``device``.

    smplx_model_path: as ``Pose2Pose``; None gives a model without meshes.
    device: a torch device or "auto" (CUDA when available).
    Notes about the file (e.g. dropped gender-head keys) are logged and kept
    in ``model.load_notes``. Raises CheckpointError (a ValueError) with a
    message fit for users when the file is unsafe, damaged or does not fit.
    """
    from .network import Pose2Pose

    sd, notes = read_state_dict(path)
    sd, device = io.tensors_for_device(sd, device)
    with torch.device("meta"):
        model = Pose2Pose()
    model.load_state_dict(sd, strict=True, assign=True)
    if smplx_model_path is not None:
        model.attach_smplx(smplx_model_path)
    model.to(device).eval()
    model.load_notes = notes
    for note in notes:
        log.info("%s: %s", Path(path).name, note)
    return model


def convert_checkpoint(src, dst, *, overwrite: bool = False) -> Path:
    """Write a validated ``.safetensors`` copy of ``src`` to ``dst``, atomically.

    The copy loads without any pickle and fast; keys are stored without
    ``module.``. The file appears complete or not at all (a hidden temporary
    file and a no-replace commit, ``common.files.atomic_write``): refuses to
    replace an existing ``dst`` unless ``overwrite``, even one that appears
    while converting. A failed write (disk full, read-only folder) raises
    ``OutputWriteError`` naming the file and the cause; nothing is left behind.
    """
    src, dst = Path(src), Path(dst)
    io.check_convert_target(src, dst, overwrite)
    sd, notes = read_state_dict(src)
    return io.write_safetensors(sd, src, dst, {"notes": "; ".join(notes)} if notes else {},
                                overwrite=overwrite)


def identify_checkpoint(path) -> CheckpointInfo:
    """Say what a file is: the official layout, a project stand-in, or unknown (and why).

    Never raises for a bad file: an unreadable or unsafe one is "unknown"
    with the reason. Reading is lazy (mmap), so a 300 MB file takes about
    as long as hashing it.
    """
    from ...weights.standin_rule import standin_seed_of

    def official(sd, _raw, fmt, sha):
        if sha in KNOWN_SHA256:
            return KNOWN_SHA256[sha]
        return (f"Pose2Pose/Hand4Whole whole-body weights with the official layout "
                f"({len(sd)} tensors, {fmt}); authenticity cannot be verified because the "
                "authors publish no checksum")

    return io.identify(path, normalise=_normalise, report_of=mismatch_report,
                       seed_of=standin_seed_of, standin_name="stand-in weights",
                       layout_name="Pose2Pose whole-body", official=official)
