# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the importers (numpy only)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import TakeError
from ..take import (DEFAULT_FPS, MAX_FRAME_SPAN, PARAM_COLUMNS, Take, validate_take_arrays)


class ImportFormatError(TakeError):
    """A file that is not (or not a readable) result of a known estimator; one line."""


@dataclass(frozen=True)
class BodyInfo:
    """What some formats need from the SMPL-X model file their estimator used.

    ``hands_mean``: (left (45,), right (45,)) mean hand poses (``hands_meanl/r``):
    estimators whose layer uses ``flat_hand_mean=False`` store hand poses relative to
    them, a take stores them relative to the flat hand. ``pelvis(betas (T,10),
    expression (T,10)) -> (T,3)``: the rest-pose pelvis (joint 0) without translation.
    """

    hands_mean: tuple
    pelvis: Callable[[np.ndarray, np.ndarray], np.ndarray]

DEFAULT_FOV_DEG = 60.0   # the take's camera when a tool has none: as our estimator's default


def static_camera(image_size) -> tuple[np.ndarray, np.ndarray]:
    """(focal (2,), princpt (2,)) of a 60-degree camera (across the longer side) for (W, H)."""
    W, H = float(image_size[0]), float(image_size[1])
    f = max(W, H) / 2 / math.tan(math.radians(DEFAULT_FOV_DEG) / 2)
    return np.array([f, f]), np.array([(W - 1) / 2, (H - 1) / 2])


def finish_take(path: Path, params: dict, *, frame_index=None, fps: float | None = None,
                estimator: str, notes: list, source: str = "", model: str = "",
                camera=None, raw=None, gender: str = "neutral") -> Take:
    """A validated take from parameter arrays (T, n); rows with NaN are invalid."""
    T = int(np.asarray(params["global_orient"]).shape[0])
    if T == 0:
        raise ImportFormatError(f"{path.name}: the file has no frames")
    if T > MAX_FRAME_SPAN:
        raise ImportFormatError(f"{path.name}: {T:,} frames; at most {MAX_FRAME_SPAN:,} "
                                "(Blender's last frame) are supported")
    out = {}
    for k, cols in PARAM_COLUMNS.items():
        v = params.get(k)
        out[k] = np.zeros((T, cols)) if v is None else \
            np.asarray(v, np.float64).reshape(T, cols)
    valid = np.ones(T, bool)
    for v in out.values():
        valid &= np.isfinite(v).all(axis=1)
    if not valid.all():
        notes.append(f"{int((~valid).sum())} frames with NaN values are treated as invalid")
    if fps is None:
        fps = DEFAULT_FPS
        notes.append(f"no frame rate in the file: {DEFAULT_FPS:g} fps assumed (--fps sets it)")
    fi = np.arange(T, dtype=np.int64) if frame_index is None else \
        np.asarray(frame_index, np.int64)
    image_size = focal = princpt = None
    if camera is not None:
        image_size, focal, princpt = camera
    take = Take(fps=float(fps), frame_index=fi, valid=valid, params=out,
                image_size=image_size, focal=focal, princpt=princpt,
                source=source or path.name, model=model, gender=gender,
                raw=dict(raw or {}), path=path, notes=notes, estimator=estimator)
    problems = validate_take_arrays(take.to_arrays(), require_all=False)
    if problems:
        raise ImportFormatError(f"{path.name}: {problems[0]}")
    return take
