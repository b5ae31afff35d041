# SPDX-License-Identifier: GPL-3.0-or-later
"""The SMPL-X layer of the reference model, built with the ``smplx`` package.

Settings (fact sheet 5.1): neutral model, ``use_pca=False``,
``flat_hand_mean=False`` (predicted hand poses are offsets from the model's
mean hand), 10 betas, 10 expressions, ``use_face_contour=True`` (144 joints),
zero eye poses, no translation. The layer's buffers are made non-persistent:
the official checkpoint has no ``smplx_layer.*`` keys, and strict loading
must not expect any.
"""
from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import torch
from torch import nn

from . import constants as C
from ..errors import ModelFileError

log = logging.getLogger(__name__)


def resolve_smplx_npz(path) -> Path:
    """``SMPLX_NEUTRAL.npz`` from the file itself, its folder or the folder above.

    Raises ModelFileError naming what was looked for.
    """
    from ...weights.locations import find_smplx

    hit = find_smplx(flag=str(path), gender="neutral")
    if not hit.found:
        raise ModelFileError(hit.problem or f"no SMPL-X model found at {path}")
    return Path(hit.path)


def build_smplx_layer(path) -> nn.Module:
    """An ``smplx.SMPLX`` module configured like the reference, with no persistent state.

    ``smplx`` opens model files with ``np.load(allow_pickle=True)``, so it never
    sees the user's file: it reads a private copy holding only the verified plain
    arrays it needs (``common.smplx_file.verified_copy``), removed right after.
    """
    import smplx  # deferred: only needed when meshes are wanted

    from ...common.smplx_file import SmplxFileError, verified_copy

    npz = resolve_smplx_npz(path)
    # smplx prints a warning to stdout for files with < 300 shape components.
    with contextlib.redirect_stdout(io.StringIO()) as said:
        try:
            with verified_copy(npz) as private:
                layer = smplx.create(
                    str(private), model_type="smplx", gender="neutral", ext="npz",
                    use_pca=False, flat_hand_mean=False, use_face_contour=True,
                    num_betas=C.NUM_BETAS, num_expression_coeffs=C.NUM_EXPRESSION,
                    create_global_orient=False, create_body_pose=False,
                    create_left_hand_pose=False, create_right_hand_pose=False,
                    create_jaw_pose=False, create_leye_pose=False, create_reye_pose=False,
                    create_betas=False, create_expression=False, create_transl=False)
        except SmplxFileError as exc:
            raise ModelFileError(str(exc)) from None
        except (KeyError, AttributeError, TypeError, ValueError, OSError, AssertionError,
                IndexError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ModelFileError(f"{npz} is not a usable SMPL-X model file: {first}") from None
    if said.getvalue().strip():
        log.info("smplx: %s", said.getvalue().strip())
    for module in layer.modules():
        module._non_persistent_buffers_set.update(module._buffers.keys())
    if any(True for _ in layer.parameters()):  # pragma: no cover - guarded by create_*=False
        raise RuntimeError("the SMPL-X layer must not hold parameters")
    layer.eval()
    return layer


def smplx_forward(layer: nn.Module, root_pose, body_pose, lhand_pose, rhand_pose, jaw_pose,
                  shape, expr) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the layer on predicted parameters.

    root (B,3), body (B,63), hands (B,45) each, jaw (B,3) axis-angle; shape
    (B,10); expr (B,10). Returns vertices (B,10475,3) and the 144 joints
    (B,144,3), both in the model frame (no camera translation).
    """
    zero = torch.zeros_like(root_pose)  # eye poses
    out = layer(betas=shape, global_orient=root_pose, body_pose=body_pose,
                left_hand_pose=lhand_pose, right_hand_pose=rhand_pose, jaw_pose=jaw_pose,
                leye_pose=zero, reye_pose=zero, expression=expr)
    return out.vertices, out.joints
