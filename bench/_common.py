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
