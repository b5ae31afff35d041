# SPDX-License-Identifier: GPL-3.0-or-later
"""The Pose2Pose (Hand4Whole) whole-body estimator: SMPL-X from 512x384 person crops.

Everything specific to this network lives here: its configuration
(``constants``), joint orders (``joints``), the network (``network``, ``heads``,
``backbone``, ``geometry``, ``smplx_layer``), checkpoints (``checkpoint``), how
it is run (``inference``), its outputs' maps back to the image (``outputs``) and
their conversion to take rows (``take_convert``). ``estimator.Pose2PoseEstimator``
wraps it in the generic ``estimator.base.PoseEstimator`` interface. Never imports
bpy; importing this package does not import torch.
"""
