# SPDX-License-Identifier: GPL-3.0-or-later
"""Retargeting onto other skeletons (numpy only): rig targets as data, auto-mapping, the solve.

* :mod:`.rig_target`: ``TargetBone``, ``TargetSkeleton``, ``RigTarget`` (JSON presets).
* :mod:`.builtin`: the built-in targets (``TARGETS``) and ``reference_skeleton(name)``.
* :mod:`.automap`: ``automap(skeleton)`` for an armature we do not know.
* :mod:`.solve`: ``retarget(...)`` -> ``RetargetedMotion`` (pose-bone rotations and locations).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import RetargetError
from .automap import automap
from .builtin import BUILTIN, builtin_target, reference_skeleton
from .rig_target import (REQUIRED_JOINTS, RigTarget, TargetBone, TargetSkeleton, bone_matrix,
                         check_target, missing_required, roll_from_matrix)
from .solve import RetargetedMotion, SourceMotion, retarget, source_motion

TARGETS = BUILTIN  # the names ``get_target`` knows, in the order the UI lists them


def get_target(name_or_path) -> RigTarget:
    """A built-in target by name (``rigify``, ``mixamo``, ``ue5``, ``ue4``, ``unity``,
    ``godot``, ``vrm``) or a saved JSON preset by path."""
    text = str(name_or_path)
    if text.lower() in TARGETS:
        return builtin_target(text.lower())
    path = Path(text)
    if path.suffix.lower() == ".json":
        return RigTarget.load(path)
    raise RetargetError(f"unknown rig target {text!r}: use one of {', '.join(TARGETS)} "
                        "or a preset .json")


__all__ = ["TARGETS", "get_target", "reference_skeleton", "RigTarget", "TargetBone",
           "TargetSkeleton", "missing_required", "check_target", "bone_matrix",
           "roll_from_matrix", "REQUIRED_JOINTS", "automap", "retarget", "RetargetedMotion",
           "SourceMotion", "source_motion"]
