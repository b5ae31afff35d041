# SPDX-License-Identifier: GPL-3.0-or-later
"""Joint sets of the Pose2Pose outputs (fact sheet section 5).

Three different orders are in play and are easy to mix up:

* ``POSITIONAL_JOINTS`` (65): the order of ``joint_img``; hands are thumb first.
* ``SMPLX_ROTATION_JOINTS`` (53): the order of the pose parameters; hands are
  Index, Middle, Pinky, Ring, Thumb (SMPL-X's own order).
* ``PROJECTION_JOINTS`` (137): the order of ``smplx_joint_proj``; taken from the
  144 joints the ``smplx`` package returns through ``SMPLX_JOINT_IDX_137``.
"""
from __future__ import annotations

BODY_POSITIONAL_JOINTS = (
    "Pelvis", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle", "Neck",
    "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist",
    "L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe", "R_Small_toe", "R_Heel",
    "L_Ear", "R_Ear", "L_Eye", "R_Eye", "Nose",
)
_FINGERS_THUMB_FIRST = ("Thumb", "Index", "Middle", "Ring", "Pinky")
HAND_POSITIONAL_JOINTS = tuple(f"{f}_{i}" for f in _FINGERS_THUMB_FIRST for i in range(1, 5))
POSITIONAL_JOINTS = (BODY_POSITIONAL_JOINTS
                     + tuple("L_" + n for n in HAND_POSITIONAL_JOINTS)
                     + tuple("R_" + n for n in HAND_POSITIONAL_JOINTS))
# Index_1, Middle_1, Ring_1, Pinky_1 inside a 20-joint hand: the hand tokens
# the body rotation net samples.
HAND_MCP_INDICES = (4, 8, 12, 16)

SMPLX_BODY_ROTATION_JOINTS = (
    "L_Hip", "R_Hip", "Spine_1", "L_Knee", "R_Knee", "Spine_2", "L_Ankle", "R_Ankle",
    "Spine_3", "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head",
    "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist",
)
_FINGERS_SMPLX = ("Index", "Middle", "Pinky", "Ring", "Thumb")
SMPLX_HAND_ROTATION_JOINTS = tuple(f"{f}_{i}" for f in _FINGERS_SMPLX for i in range(1, 4))
SMPLX_ROTATION_JOINTS = (("Pelvis",) + SMPLX_BODY_ROTATION_JOINTS
                         + tuple("L_" + n for n in SMPLX_HAND_ROTATION_JOINTS)
                         + tuple("R_" + n for n in SMPLX_HAND_ROTATION_JOINTS)
                         + ("Jaw",))

# Indices into the 144 joints of smplx.SMPLX(use_face_contour=True):
# 55 kinematic, 21 vertex joints, 51 static + 17 contour face landmarks.
SMPLX_JOINT_IDX_137 = (
    # body (same 25 names as BODY_POSITIONAL_JOINTS)
    0, 1, 2, 4, 5, 7, 8, 12, 16, 17, 18, 19, 20, 21, 60, 61, 62, 63, 64, 65, 59, 58, 57, 56, 55,
    # left hand, thumb first, _4 = fingertip vertex
    37, 38, 39, 66, 25, 26, 27, 67, 28, 29, 30, 68, 34, 35, 36, 69, 31, 32, 33, 70,
    # right hand
    52, 53, 54, 71, 40, 41, 42, 72, 43, 44, 45, 73, 49, 50, 51, 74, 46, 47, 48, 75,
    # face: jaw, head, two eyeballs, then the 68 landmarks
    22, 15, 57, 56, *range(76, 144),
)
PROJECTION_JOINTS = (POSITIONAL_JOINTS
                     + tuple(f"Face_{i}" for i in range(1, 73)))
assert len(SMPLX_JOINT_IDX_137) == len(PROJECTION_JOINTS) == 137
