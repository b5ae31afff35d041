# SPDX-License-Identifier: GPL-3.0-or-later
"""The estimators ``--estimator NAME`` chooses from: ``ESTIMATORS``.

Each entry says what it is and how to load and check it; loading imports the
estimator's package only then. Cheap to import (no torch), so ``doctor``, the
CLI's option parsing and the Blender add-on (its estimator choice) read it.

To add an estimator: a package ``estimator/NAME/`` with a class implementing
``base.PoseEstimator`` and an entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .base import LoadOptions, PoseEstimator, Readiness
from .errors import EstimatorError

DEFAULT_ESTIMATOR = "pose2pose"


@dataclass(frozen=True)
class EstimatorEntry:
    """One registered estimator.

    name: what ``--estimator`` takes; label: a short title (the add-on's menu);
    description: one line; model: "smplx" or "smpl", the body model of its takes.
    load(options: LoadOptions) -> PoseEstimator: the loaded estimator (raises an
        ``EstimatorError`` with one line for missing or unusable files).
    check(smplx=None, checkpoint=None, *, known=None) -> Readiness: whether it
        can run here (quick; no torch). ``known``: results the caller already has
        by content, keyed by file kind (``doctor``).
    """

    name: str
    label: str
    description: str
    model: str
    load: Callable[[LoadOptions], PoseEstimator]
    check: Callable[..., Readiness]


def _load_pose2pose(options: LoadOptions) -> PoseEstimator:
    from .pose2pose.estimator import Pose2PoseEstimator

    return Pose2PoseEstimator.load(options)


def _check_pose2pose(smplx=None, checkpoint=None, *, known=None) -> Readiness:
    from .pose2pose.estimator import check

    return check(smplx, checkpoint, known=known)


def _load_i2l(options: LoadOptions) -> PoseEstimator:
    from .i2l_meshnet.estimator import I2LMeshNetEstimator

    return I2LMeshNetEstimator.load(options)


def _check_i2l(smplx=None, checkpoint=None, *, known=None) -> Readiness:
    from .i2l_meshnet.estimator import check

    return check(smplx, checkpoint, known=known)


ESTIMATORS: dict[str, EstimatorEntry] = {
    "pose2pose": EstimatorEntry(
        name="pose2pose", label="Pose2Pose (SMPL-X)",
        description="Pose2Pose (Hand4Whole): SMPL-X whole body with hands and face, from "
                    "512x384 person crops",
        model="smplx", load=_load_pose2pose, check=_check_pose2pose),
    "i2l-meshnet": EstimatorEntry(
        name="i2l-meshnet", label="I2L-MeshNet (SMPL body)",
        description="I2L-MeshNet: the SMPL body (no hands or face) from a per-vertex lixel "
                    "mesh, 256x256 person crops",
        model="smpl", load=_load_i2l, check=_check_i2l),
}


def estimator_names() -> tuple[str, ...]:
    return tuple(ESTIMATORS)


def get_estimator(name) -> EstimatorEntry:
    """The entry of ``name`` (None or "" = the default); one-line EstimatorError otherwise."""
    if name is None or (isinstance(name, str) and not name.strip()):
        name = DEFAULT_ESTIMATOR
    entry = ESTIMATORS.get(name) if isinstance(name, str) else None
    if entry is None:
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise EstimatorError(f"--estimator {shown}: unknown estimator (choose from "
                             f"{', '.join(ESTIMATORS)})")
    return entry
