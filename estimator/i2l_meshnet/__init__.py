# SPDX-License-Identifier: GPL-3.0-or-later
"""The I2L-MeshNet estimator: the SMPL body from 256x256 person crops (Moon & Lee, ECCV 2020).

A per-vertex *lixel* (line + pixel) network: 1-D heatmaps per axis give every
SMPL mesh vertex and 29 joints in the crop, then SMPL pose and shape are
regressed from the mesh. Everything specific to it lives here: its
configuration (``constants``), the network (``network``, ``smpl_layer``),
checkpoints (``checkpoint``), the outputs' maps back to the image and to take
rows (``take_convert``) and ``estimator.I2LMeshNetEstimator`` (the generic
``estimator.base.PoseEstimator`` interface). Never imports bpy; importing this
package does not import torch (``I2LMeshNet`` is loaded on first use).
"""
from __future__ import annotations

from ...common.lazy_exports import lazy_exports

_EXPORTS = {
    "I2LMeshNet": "network",
    "OUTPUT_KEYS": "network",
    "load_checkpoint": "checkpoint",
    "read_state_dict": "checkpoint",
    "identify_checkpoint": "checkpoint",
    "convert_checkpoint": "checkpoint",
    "I2LMeshNetEstimator": "estimator",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
