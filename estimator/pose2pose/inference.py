# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the network: device, precision, memory format and threads.

Defaults are the reference's numerics: fp32 on the CPU unless a device is
given. Reduced precision applies to the convolution stacks only (the bulk of
the work); the heads, the geometry and SMPL-X stay fp32, see ``Pose2Pose``.

On the CPU ``cpu_runner`` builds, once per loaded network, the module that
``run_batch`` runs: the three ResNet trunks (and the box net's deconvolutions)
with their BatchNorms folded into the convolutions, their weights stored in the
chosen precision (bf16: converted once, not cast on every call as autocast
does) and NHWC (``channels_last``) where that is faster; the heads are shared
with the original network, which is left untouched. See docs/speed.md for what
each choice measured.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import constants as C
from ..cpu_features import resolve_precision, usable_cores

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class InferenceOptions:
    """How to run the network.

    device: "cpu", "cuda", "cuda:1", ... ("auto" picks CUDA when available).
    precision: "fp32" (default, reference numerics), "bf16" or "fp16", or
    "auto" (``cpu_features.auto_precision``: resolved here, on construction).
    On CUDA (and fp16 on the CPU) reduced precision is autocast; on the CPU
    bf16 runs trunks converted to bf16 (``cpu_runner``), fast where the CPU has
    native bf16 (AMX / AVX-512 BF16).
    channels_last: NHWC memory format for the convolutions; None = where it
    was measured faster (CPU bf16), else off. Results equal up to float rounding.
    threads: PyTorch's CPU threads (``torch.set_num_threads``, set by
    ``cpu_runner``); None = the cores this process may use.
    """

    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool | None = None
    # CUDA only: let fp32 convolutions/matmuls use TF32 (faster on Ampere and
    # later, ~1e-3 relative error). Off by default to keep reference numerics.
    tf32: bool = False
    threads: int | None = None

    def __post_init__(self):
        if self.precision in (None, "", "auto"):
            device = self.device
            if device == "auto":
                from ..device import resolve_device

                device = resolve_device("auto")
            object.__setattr__(self, "precision", resolve_precision("auto", device))
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of auto, {', '.join(PRECISIONS)}, "
                f"not {self.precision!r}")
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be a whole number of at least 1, not "
                             f"{self.threads!r}")

    @property
    def nhwc(self) -> bool:
        """Whether convolutions run channels_last (``channels_last`` None: CPU bf16 only)."""
        if self.channels_last is None:
            return self.precision == "bf16" and self.torch_device().type == "cpu"
        return bool(self.channels_last)

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            from ..device import resolve_device

            return torch.device(resolve_device("auto"))
        return torch.device(self.device)


def prepare_model(model: torch.nn.Module, options: InferenceOptions = InferenceOptions()):
    """Move the model to the options' device / memory format and set eval mode (in place)."""
    model.to(options.torch_device())
    if options.nhwc:
        # Only 4-D weights change layout; SMPL-X buffers and linear layers are unaffected.
        model.to(memory_format=torch.channels_last)
    return model.eval()


class _InPrecision(nn.Module):
    """A convolution stack whose weights are stored in ``dtype``: casts its input to
    ``dtype`` (and ``memory_format``) and its output back to fp32, so the heads
    after it see what they see in fp32."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype, memory_format: torch.memory_format):
        super().__init__()
        self.inner = inner.to(dtype=dtype, memory_format=memory_format)
        self.dtype, self.memory_format = dtype, memory_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        return self.inner(x).float()


def _fold(conv: nn.Module, bn: nn.BatchNorm2d, transpose: bool = False) -> nn.Module:
    """conv then eval-mode BN -> one conv (y = conv(x) * s + t folded into its weights)."""
    return fuse_conv_bn_eval(conv, bn, transpose=transpose)


def fold_resnet_trunk(trunk: nn.Module) -> nn.Module:
    """A copy of a torchvision-style ResNet trunk with every BatchNorm folded into the
    convolution before it (BN layers become Identity). Same outputs up to fp32 rounding
    (measured <= 1e-5 rad on the poses); one memory pass less per convolution."""
    t = copy.deepcopy(trunk).eval()
    t.conv1, t.bn1 = _fold(t.conv1, t.bn1), nn.Identity()
    for layer in (t.layer1, t.layer2, t.layer3, t.layer4):
        for block in layer:
            for i in (1, 2, 3):
                if hasattr(block, f"conv{i}"):
                    setattr(block, f"conv{i}", _fold(getattr(block, f"conv{i}"),
                                                     getattr(block, f"bn{i}")))
                    setattr(block, f"bn{i}", nn.Identity())
            if block.downsample is not None:
                block.downsample = _fold(block.downsample[0], block.downsample[1])
    return t


def fold_deconv_stack(stack: nn.Sequential) -> nn.Sequential:
    """[ConvTranspose2d, BN, ReLU]* -> [ConvTranspose2d (BN folded), ReLU]* (a copy)."""
    mods = list(stack)
    out = []
    for i in range(0, len(mods), 3):
        deconv, bn, relu = mods[i:i + 3]
        out += [_fold(copy.deepcopy(deconv).eval(), bn, transpose=True), copy.deepcopy(relu)]
    return nn.Sequential(*out)


def _shallow(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that shares its parameters but not its list of children."""
    twin = copy.copy(module)
    twin._modules = dict(module._modules)
    return twin


def cpu_runner(model: nn.Module, options: "InferenceOptions") -> nn.Module:
    """The module ``run_batch`` should run for ``model`` on the CPU (built once per load).

    Sets PyTorch's threads (``options.threads`` or the usable cores). For a
    ``Pose2Pose`` on the CPU in fp32 or bf16: a shallow twin of ``model`` (heads and
    SMPL-X shared, ``model`` untouched) whose trunks and box-net deconvolutions are
    BN-folded copies, stored in bf16 for bf16 and in NHWC where ``options.nhwc``.
    Anything else (CUDA, fp16, other networks) is returned as is (autocast path).
    """
    device = options.torch_device()
    if device.type != "cpu":
        return model
    torch.set_num_threads(int(options.threads or usable_cores()))
    needed = ("backbone", "hand_roi_net", "face_roi_net", "box_net")
    if options.precision not in ("fp32", "bf16") or not all(hasattr(model, n) for n in needed):
        return model
    dtype = torch.bfloat16 if options.precision == "bf16" else torch.float32
    fmt = torch.channels_last if options.nhwc else torch.contiguous_format
    twin = _shallow(model).eval()
    twin.backbone = _InPrecision(fold_resnet_trunk(model.backbone), dtype, fmt)
    for name in ("hand_roi_net", "face_roi_net"):
        roi = _shallow(getattr(model, name))
        roi.backbone = _InPrecision(fold_resnet_trunk(roi.backbone), dtype, fmt)
        setattr(twin, name, roi)
    box = _shallow(model.box_net)
    box.deconv = _InPrecision(fold_deconv_stack(model.box_net.deconv), dtype, fmt)
    twin.box_net = box
    twin.p2p_runner = options.precision
    return twin


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
    if options.nhwc:
        x = x.contiguous(memory_format=torch.channels_last)
    # A cpu_runner holds its trunks in their precision already: no autocast around it.
    dtype = None if getattr(model, "p2p_runner", None) else PRECISIONS[options.precision]
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
