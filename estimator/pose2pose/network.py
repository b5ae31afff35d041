# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole-body Pose2Pose (Hand4Whole) network, test mode.

``Pose2Pose().state_dict()`` has exactly the 834 keys (order and shapes) of
the official checkpoint's ``network`` entry without ``module.``; the optional
SMPL-X layer holds only non-persistent buffers and never shows up there.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from . import constants as C
from . import geometry as G
from .backbone import ResNetTrunk
from .heads import (BodyRotationNet, BoxNet, FaceRegressor, FaceRoI, HandPositionNet, HandRoI,
                    HandRotationNet, PositionNet)
from .joints import HAND_MCP_INDICES, SMPLX_JOINT_IDX_137

# Output keys in the reference's insertion order (its 'img' echo is left out).
OUTPUT_KEYS = (
    "joint_img", "smplx_joint_proj", "smplx_mesh_cam", "smplx_root_pose", "smplx_body_pose",
    "smplx_lhand_pose", "smplx_rhand_pose", "smplx_jaw_pose", "smplx_shape", "smplx_expr",
    "cam_trans", "lhand_bbox", "rhand_bbox", "face_bbox",
)
MESH_KEYS = ("smplx_joint_proj", "smplx_mesh_cam")


def _full_precision(x: torch.Tensor):
    """Heads, geometry and SMPL-X always run in fp32, even inside an autocast region."""
    if x.device.type in ("cpu", "cuda"):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


def _widen(x: torch.Tensor) -> torch.Tensor:
    """Autocast leaves trunk features in fp16/bf16; the heads take fp32 (or fp64 when debugging)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class Pose2Pose(nn.Module):
    """Hand4Whole whole-body network.

    forward(img): img (N, 3, 512, 384) float RGB in [0, 1] (no mean/std) ->
    dict of float32 tensors (fact sheet 4, "Output dict"):

    * ``joint_img`` (N,65,3): 25 body + 20 left + 20 right positional joints;
      x, y in the 8x6 body-heatmap grid (x64 = 384x512 input pixels); body z
      in body-heatmap depth cells, hand z in hand-heatmap depth cells.
    * ``smplx_root_pose`` (N,3), ``smplx_body_pose`` (N,63),
      ``smplx_lhand_pose`` / ``smplx_rhand_pose`` (N,45) (offsets from the
      SMPL-X mean hand), ``smplx_jaw_pose`` (N,3): axis-angle, radians.
    * ``smplx_shape`` (N,10), ``smplx_expr`` (N,10).
    * ``cam_trans`` (N,3): metres, camera of the virtual 192x256 body crop
      (focal 5000, principal point (96, 128)).
    * ``lhand_bbox``, ``rhand_bbox``, ``face_bbox`` (N,4): xyxy, 384x512 input pixels.
    * with an SMPL-X model: ``smplx_mesh_cam`` (N,10475,3) (includes
      cam_trans) and ``smplx_joint_proj`` (N,137,2) in body-heatmap units.

    smplx_model_path: ``SMPLX_NEUTRAL.npz``, its folder, or a folder holding
    ``smplx/SMPLX_NEUTRAL.npz``; None builds the network without meshes.

    Autocast (if active around the call) applies to the three ResNet trunks
    only; everything after them runs in fp32.

    Differences from the reference, both deliberate: 6D -> axis-angle uses
    ``torch.cross(dim=-1)``, so root and jaw poses at batch size 3 are the
    per-item values (the official code mixes the three items there, see
    ``geometry.rot6d_to_axis_angle``); and ``forward`` can take given part
    boxes (``boxes=``).
    """

    def __init__(self, smplx_model_path=None):
        super().__init__()
        # Registration order = official state_dict order.
        self.backbone = ResNetTrunk(50)
        self.body_position_net = PositionNet(C.NUM_BODY_POS_JOINTS, C.OUTPUT_HM_SHAPE[0])
        self.body_rotation_net = BodyRotationNet()
        self.box_net = BoxNet()
        self.hand_roi_net = HandRoI()
        self.hand_position_net = HandPositionNet()
        self.hand_rotation_net = HandRotationNet()
        self.face_roi_net = FaceRoI()
        self.face_regressor = FaceRegressor()
        self.register_module("smplx_layer", None)
        if smplx_model_path is not None:
            self.attach_smplx(smplx_model_path)

    @property
    def has_smplx(self) -> bool:
        return self.smplx_layer is not None

    def attach_smplx(self, smplx_model_path) -> None:
        """Build the SMPL-X layer (not part of the state dict) on this model's device."""
        from .smplx_layer import build_smplx_layer

        device = next(self.parameters()).device
        layer = build_smplx_layer(smplx_model_path)
        self.smplx_layer = layer if device.type == "meta" else layer.to(device)

    def forward(self, img: torch.Tensor, boxes: dict[str, torch.Tensor] | None = None
                ) -> dict[str, torch.Tensor]:
        """img (N,3,512,384) RGB in [0,1] -> output dict (see the class docstring).

        boxes: optional part boxes to use instead of BoxNet's, any of
        ``lhand_bbox``/``rhand_bbox``/``face_bbox``, each (N,4) xyxy in 384x512
        input pixels (the output convention), e.g. from a hand detector. The
        output then reports the boxes that were used.
        """
        n = img.shape[0]
        boxes = boxes or {}
        # Exact factor-2 nearest resize = every second row/column from 0.
        body_img = F.interpolate(img, size=C.INPUT_BODY_SHAPE, mode="nearest")
        body_feat = _widen(self.backbone(body_img))
        sx = C.INPUT_IMG_SHAPE[1] / C.INPUT_BODY_SHAPE[1]
        sy = C.INPUT_IMG_SHAPE[0] / C.INPUT_BODY_SHAPE[0]
        to_input_px = body_feat.new_tensor([sx, sy, sx, sy])

        with _full_precision(body_feat):
            body_joints, body_prob = self.body_position_net(body_feat)
            part_boxes = {}
            if not all(k in boxes for k in ("lhand_bbox", "rhand_bbox", "face_bbox")):
                predicted = self.box_net(body_feat, body_prob.detach())
                for key, (center, size), ext in zip(
                        ("lhand_bbox", "rhand_bbox", "face_bbox"), predicted,
                        (C.HAND_BOX_EXTENSION, C.HAND_BOX_EXTENSION, C.FACE_BOX_EXTENSION)):
                    # Hand and face crops are square: aspect 256/256 = 192/192 = 1.
                    part_boxes[key] = G.restore_bbox(center, size, 1.0, ext).detach()
            for key, given in boxes.items():
                if key not in ("lhand_bbox", "rhand_bbox", "face_bbox"):
                    raise KeyError(f"unknown part box {key!r}")
                part_boxes[key] = given.to(body_feat) / to_input_px  # body-input pixels
            lhand_bbox, rhand_bbox, face_bbox = (
                part_boxes["lhand_bbox"], part_boxes["rhand_bbox"], part_boxes["face_bbox"])

        hand_feat = _widen(self.hand_roi_net(img, lhand_bbox, rhand_bbox))
        face_feat = _widen(self.face_roi_net(img, face_bbox))

        with _full_precision(hand_feat):
            hand_joints, _ = self.hand_position_net(hand_feat)  # (2N, 20, 3)
            hand_pose = G.rot6d_to_axis_angle(
                self.hand_rotation_net(hand_feat, hand_joints.detach()).reshape(-1, 6)
            ).reshape(2 * n, -1)
            # Back from the mirrored left crop to the image's left hand.
            lhand_joints = G.unmirror_hand_joints(hand_joints[:n])
            rhand_joints = hand_joints[n:]
            lhand_pose = G.unmirror_axis_angle(hand_pose[:n])
            rhand_pose = hand_pose[n:]
            lhand_feat = torch.flip(hand_feat[:n], [3])
            rhand_feat = hand_feat[n:]

            mcp = list(HAND_MCP_INDICES)
            root6d, body6d, shape, cam = self.body_rotation_net(
                body_feat, body_joints.detach(), lhand_feat, lhand_joints[:, mcp].detach(),
                rhand_feat, rhand_joints[:, mcp].detach())
            root_pose = G.rot6d_to_axis_angle(root6d)
            body_pose = G.rot6d_to_axis_angle(body6d.reshape(-1, 6)).reshape(n, -1)
            cam_trans = G.camera_translation(cam)
            expr, jaw6d = self.face_regressor(face_feat)
            jaw_pose = G.rot6d_to_axis_angle(jaw6d)

            out: dict[str, torch.Tensor] = {}
            out["joint_img"] = torch.cat(
                (body_joints, G.hand_joints_to_body_hm(lhand_joints, lhand_bbox),
                 G.hand_joints_to_body_hm(rhand_joints, rhand_bbox)), dim=1)
            if self.smplx_layer is not None:
                from .smplx_layer import smplx_forward

                verts, joints = smplx_forward(self.smplx_layer, root_pose, body_pose,
                                              lhand_pose, rhand_pose, jaw_pose, shape, expr)
                idx = torch.as_tensor(SMPLX_JOINT_IDX_137, device=joints.device)
                out["smplx_joint_proj"] = G.project_to_body_hm(joints[:, idx], cam_trans)
                out["smplx_mesh_cam"] = verts + cam_trans[:, None, :]
            out["smplx_root_pose"] = root_pose
            out["smplx_body_pose"] = body_pose
            out["smplx_lhand_pose"] = lhand_pose
            out["smplx_rhand_pose"] = rhand_pose
            out["smplx_jaw_pose"] = jaw_pose
            out["smplx_shape"] = shape
            out["smplx_expr"] = expr
            out["cam_trans"] = cam_trans
            # Boxes leave in 384x512 input pixels (body-input pixels x2).
            out["lhand_bbox"] = lhand_bbox * to_input_px
            out["rhand_bbox"] = rhand_bbox * to_input_px
            out["face_bbox"] = face_bbox * to_input_px
        return out
