# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the network: device, precision and memory-format choices.

Defaults are the reference's: fp32, contiguous tensors, on the CPU unless a
device is given. Reduced precision (CUDA autocast, bf16 or fp16) applies to
the ResNet trunks only (the bulk of the work); the heads, the geometry and
SMPL-X stay fp32, see ``Pose2Pose``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from . import constants as C

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class InferenceOptions:
    """How to run the network.

    device: "cpu", "cuda", "cuda:1", ... ("auto" picks CUDA when available).
    precision: "fp32" (default, reference numerics), "bf16" or "fp16"
    (autocast; meant for CUDA, bf16 also works on recent CPUs).
    channels_last: NHWC memory format for the convolutions (faster on
    tensor-core GPUs; results equal up to float rounding).
    """

    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False
    # CUDA only: let fp32 convolutions/matmuls use TF32 (faster on Ampere and
    # later, ~1e-3 relative error). Off by default to keep reference numerics.
    tf32: bool = False

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {sorted(PRECISIONS)}, not {self.precision!r}")

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            from ..device import resolve_device

            return torch.device(resolve_device("auto"))
        return torch.device(self.device)


def prepare_model(model: torch.nn.Module, options: InferenceOptions = InferenceOptions()):
    """Move the model to the options' device / memory format and set eval mode (in place)."""
    model.to(options.torch_device())
    if options.channels_last:
        # Only 4-D weights change layout; SMPL-X buffers and linear layers are unaffected.
        model.to(memory_format=torch.channels_last)
    return model.eval()


def crops_to_tensor(crops) -> torch.Tensor:
    """Crops (N, 512, 384, 3) or a list of (512, 384, 3), RGB 0..255 -> (N, 3, 512, 384) / 255."""
    if isinstance(crops, (list, tuple)):
        arr = np.stack([np.asarray(c, dtype=np.float32) for c in crops])
    else:
        arr = np.asarray(crops, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[1:] != (*C.INPUT_IMG_SHAPE, 3):
        h, w = C.INPUT_IMG_SHAPE
        raise ValueError(f"expected crops of shape (N, {h}, {w}, 3), got {arr.shape}")
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous() / 255.0


def run_batch(model: torch.nn.Module, images: torch.Tensor,
              options: InferenceOptions = InferenceOptions(), *, to_cpu: bool = True,
              boxes: dict | None = None) -> dict[str, torch.Tensor]:
    """One forward pass under ``torch.inference_mode``.

    images: (N, 3, 512, 384) float in [0, 1] (see ``crops_to_tensor``). The
    model must already be on the options' device (``prepare_model``).
    Returns float32 tensors, moved to the CPU unless ``to_cpu=False``.
    """
    device = options.torch_device()
    x = images.to(device=device, dtype=torch.float32, non_blocking=True)
    if options.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = PRECISIONS[options.precision]
    with torch.inference_mode(), _tf32(device, options.tf32), \
            torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None):
        out = model(x, boxes=boxes)
    out = {k: v.float() for k, v in out.items()}
    if to_cpu:
        out = {k: v.cpu() for k, v in out.items()}
    return out


@contextlib.contextmanager
def _tf32(device: torch.device, allow: bool):
    """Set PyTorch's global TF32 switches for one call and restore them after.

    cuDNN convolutions default to TF32 in PyTorch, which would put ~1e-3
    relative noise into a run the user asked to be fp32.
    """
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
