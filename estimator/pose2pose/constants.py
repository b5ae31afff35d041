# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration constants of the official whole-body Pose2Pose (Hand4Whole) model.

All shapes are (H, W) or (D, H, W). Values are those the released checkpoint
was trained with (fact sheet section 3); changing any of them changes what the
network computes. Pure Python: importing this module costs nothing.
"""
from __future__ import annotations

import math

INPUT_IMG_SHAPE = (512, 384)  # crop fed to the model; hand/face crops come from it
INPUT_BODY_SHAPE = (256, 192)  # body-backbone input, nearest-downsampled from the crop
OUTPUT_HM_SHAPE = (8, 8, 6)  # body 3D heatmap (D, H, W)
INPUT_HAND_SHAPE = (256, 256)
OUTPUT_HAND_HM_SHAPE = (8, 8, 8)
INPUT_FACE_SHAPE = (192, 192)

FOCAL = (5000.0, 5000.0)  # virtual focal length in 192x256 body-input pixels
PRINCPT = (96.0, 128.0)  # (W/2, H/2) of INPUT_BODY_SHAPE
CAMERA_3D_SIZE = 2.5
BODY_3D_SIZE = 2.0  # metres; pelvis-relative depth range of the body heatmap
HAND_3D_SIZE = 0.3  # metres; wrist-relative depth range of the hand heatmap

# Person box: aspect of the crop (W/H) and the enlargement of process_bbox.
BODY_ASPECT = INPUT_IMG_SHAPE[1] / INPUT_IMG_SHAPE[0]  # 0.75
BODY_BOX_SCALE = 1.25
# Part boxes: squared (aspect 1), then enlarged.
HAND_BOX_EXTENSION = 2.0
FACE_BOX_EXTENSION = 1.5

# Depth range factor of the camera translation. The reference builds it in a
# float32 tensor, so the product is taken with the float32 value 56.381863.
CAMERA_DEPTH_K = math.sqrt(FOCAL[0] * FOCAL[1] * CAMERA_3D_SIZE ** 2
                           / (INPUT_BODY_SHAPE[0] * INPUT_BODY_SHAPE[1]))
# The reference projection adds this to the depth (avoids division by zero).
PROJECTION_DEPTH_EPS = 1e-4

NUM_BODY_POS_JOINTS = 25
NUM_HAND_POS_JOINTS = 20
NUM_BODY_ROT_JOINTS = 21  # smplx_body_pose joints (root excluded)
NUM_HAND_ROT_JOINTS = 15
NUM_BETAS = 10
NUM_EXPRESSION = 10
FEATURE_DIM = 512  # channels of the sampled joint features (before appending x, y, z)
