# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the network runs: ``resolve_device``, the one place ``"auto"`` is decided.

Used by the job (``pipeline.EstimateJob``), the network's loaders
(``pose2pose.checkpoint``, ``pose2pose.inference``) and the benchmarks. torch is
imported when a device is resolved, not with this module.
"""
from __future__ import annotations

from .errors import EstimatorError


def resolve_device(device: str | None) -> str:
    """``"auto"`` (or None) -> ``"cuda"`` when PyTorch sees a CUDA GPU, else ``"cpu"``;
    ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as given. The one place "auto" is decided.
    Raises EstimatorError (one line) for CUDA without a GPU and unknown devices."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise EstimatorError("--device cuda: no CUDA GPU is available to PyTorch here "
                             "(use --device cpu)")
    if str(device) not in ("cpu",) and not str(device).startswith("cuda"):
        raise EstimatorError(f"--device {device}: use cpu or cuda")
    return str(device)
