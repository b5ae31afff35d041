# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration constants of the official I2L-MeshNet (SMPL body, stage ``param``).

Values are those the released checkpoints were trained with (fact sheet
``i2l_meshnet.md`` section 3); changing any of them changes what the network
computes. Pure Python: importing this module costs nothing.
"""
from __future__ import annotations

INPUT_IMG_SHAPE = (256, 256)  # (H, W) crop fed to the network
OUTPUT_HM_SHAPE = (64, 64, 64)  # (D, H, W) lixel bins per axis
SIGMA = 2.5  # std-dev, in lixels, of the Gaussian 3D joint heatmaps fed to pose2feat
BBOX_3D_SIZE = 2.0  # metres: the root-relative depth range the 64 z bins span

# Person box: squared (aspect W/H = 1), then enlarged (process_bbox).
BOX_ASPECT = INPUT_IMG_SHAPE[1] / INPUT_IMG_SHAPE[0]  # 1.0
BOX_SCALE = 1.25

NUM_VERTICES = 6890  # SMPL mesh
NUM_SMPL_JOINTS = 24  # SMPL kinematic joints (pose_param order)
NUM_JOINTS = 29  # positional joints: 24 J_regressor rows + 5 face vertices
NUM_BETAS = 10
# The 5 one-hot rows of the 29-joint regressor: nose, left eye, right eye, left ear, right ear.
FACE_VERTEX_IDS = (331, 2802, 6262, 3489, 3990)
ROOT_JOINT = 0  # pelvis (J_regressor row 0)

# The demo's camera for absolute placement: focal 1500 px with the principal
# point at the image centre; RootNet predicts the root depth for that focal.
DEMO_FOCAL = (1500.0, 1500.0)
DEMO_ROOT_DEPTH_M = 11.2505732421875  # the demo's hard-coded RootNet depth (mm / 1000)

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand", "nose", "left_eye", "right_eye",
    "left_ear", "right_ear",
)
# SMPL kinematic tree (kintree_table[0]); pose_param joint order.
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
