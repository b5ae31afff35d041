# SPDX-License-Identifier: GPL-3.0-or-later
"""The Pose2Pose (Hand4Whole) whole-body estimator: network, checkpoints, crops.

Never imports bpy. Names are loaded on first use, so ``import
pose2pose_mocap.estimator`` is cheap and does not pull in torch; e.g.
``from pose2pose_mocap.estimator import Pose2Pose`` then imports torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    # network
    "Pose2Pose": "pose2pose.network",
    "OUTPUT_KEYS": "pose2pose.network",
    # checkpoints
    "load_checkpoint": "pose2pose.checkpoint",
    "convert_checkpoint": "pose2pose.checkpoint",
    "identify_checkpoint": "pose2pose.checkpoint",
    "read_state_dict": "pose2pose.checkpoint",
    "CheckpointInfo": "pose2pose.checkpoint",
    "KNOWN_SHA256": "pose2pose.checkpoint",
    # errors (no torch needed)
    "CheckpointError": "errors",
    "EstimatorError": "errors",
    "ModelFileError": "errors",
    # crops and the maps back to the image (numpy / cv2 only)
    "sanitize_bbox": "crop",
    "process_bbox": "crop",
    "crop_affine": "crop",
    "crop_person": "crop",
    "PersonCrop": "crop",
    "apply_affine": "crop",
    "crop_boxes_to_image": "crop",
    "body_hm_to_crop": "crop",
    "body_hm_to_image": "crop",
    "full_image_camera": "crop",
    "PinholeCamera": "crop",
    # running
    "InferenceOptions": "pose2pose.inference",
    "prepare_model": "pose2pose.inference",
    "crops_to_tensor": "pose2pose.inference",
    "run_batch": "pose2pose.inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
