# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the bench scripts (``python -m bench.NAME``)."""
from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path


def smplx_model(path, prefix: str = "p2p_bench_"):
    """(SmplxModel, TemporaryDirectory or None): the SMPL-X model file at ``path``, or,
    when ``path`` is empty, the neutral stand-in written to a temporary folder (the
    caller cleans it up)."""
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model

    if path:
        return load_smplx_model(path), None
    from pose2pose_mocap.weights.standins import smplx_standin_arrays, write_npz

    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    f = Path(tmp.name) / "SMPLX_NEUTRAL.npz"
    write_npz(f, smplx_standin_arrays("neutral"))
    return load_smplx_model(f), tmp


def command_line(module: str, argv) -> str:
    """``command: <python> -m <module> <argv>``, the line every bench prints."""
    return "command: " + " ".join(shlex.quote(a) for a in [sys.executable, "-m", module]
                                  + list(argv))


def standin_pose2pose(smplx_dir=None, options=None):
    """The Pose2Pose every network bench measures: the stand-in weights (seed 1, the official
    keys and shapes; same layers, so the same speed as the real checkpoint), SMPL-X from
    ``smplx_dir`` (None: no SMPL-X layer), prepared with ``options`` (default: CPU,
    channels_last off)."""
    import torch

    from pose2pose_mocap.estimator import InferenceOptions, Pose2Pose, prepare_model
    from pose2pose_mocap.weights.standin_rule import make_state_dict, official_keys_and_shapes

    model = Pose2Pose(smplx_dir)
    sd = make_state_dict(official_keys_and_shapes(), 1)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    return prepare_model(model, options or InferenceOptions(channels_last=False))
