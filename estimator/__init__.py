# SPDX-License-Identifier: GPL-3.0-or-later
"""Estimation: footage in, takes out, through a pose estimator chosen by name.

* generic: sources, detection and tracking, crops (``crop``), the estimator
  interface (``base``: ``PoseEstimator``, ``CropSpec``, ``PersonResult``), the
  registry ``--estimator`` chooses from (``registry.ESTIMATORS``), the take's
  camera and rows (``take_rows``) and the job (``pipeline.EstimateJob``);
* ``pose2pose/``: the Pose2Pose (Hand4Whole) whole-body estimator (network,
  checkpoints, its outputs and their take conversion, ``Pose2PoseEstimator``).
* ``i2l_meshnet/``: the I2L-MeshNet SMPL-body estimator (network, checkpoints,
  crops, take conversion, ``I2LMeshNetEstimator``; ``docs/estimators.md``).

Never imports bpy. Names are loaded on first use, so ``import
pose2pose_mocap.estimator`` is cheap and does not pull in torch; e.g.
``from pose2pose_mocap.estimator import Pose2Pose`` then imports torch.
"""
from __future__ import annotations

from ..common.lazy_exports import lazy_exports

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
    # the estimator interface and registry (numpy only)
    "PoseEstimator": "base",
    "CropSpec": "base",
    "PersonResult": "base",
    "LoadOptions": "base",
    "Readiness": "base",
    "ESTIMATORS": "registry",
    "EstimatorEntry": "registry",
    "DEFAULT_ESTIMATOR": "registry",
    "get_estimator": "registry",
    "Pose2PoseEstimator": "pose2pose.estimator",
    # crops and the maps back to the image (numpy / cv2 only)
    "sanitize_bbox": "crop",
    "process_bbox": "crop",
    "crop_affine": "crop",
    "crop_person": "crop",
    "PersonCrop": "crop",
    "apply_affine": "crop",
    "crop_boxes_to_image": "crop",
    "PinholeCamera": "crop",
    "body_hm_to_crop": "pose2pose.outputs",
    "body_hm_to_image": "pose2pose.outputs",
    "full_image_camera": "pose2pose.outputs",
    # running
    "InferenceOptions": "pose2pose.inference",
    "prepare_model": "pose2pose.inference",
    "crops_to_tensor": "pose2pose.inference",
    "run_batch": "pose2pose.inference",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
