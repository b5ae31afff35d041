# SPDX-License-Identifier: GPL-3.0-or-later
"""The heads of the whole-body Pose2Pose network (fact sheet section 2).

Every head is built from ``nn.Sequential`` blocks so that parameter names
(``.0`` conv/linear, ``.1`` BN) equal the official checkpoint's. Heads return
raw network outputs; the geometric steps live in ``geometry``.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import roi_align

from . import constants as C
from . import geometry as G
from .backbone import ResNetTrunk


def conv1x1(c_in: int, c_out: int, bn_relu: bool) -> nn.Sequential:
    """[Conv2d 1x1 (bias=True), BN, ReLU] or just [Conv2d 1x1]."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size=1)]
    if bn_relu:
        layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def linear(dims: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        if i:
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


def deconv_stack(dims: list[int]) -> nn.Sequential:
    """[ConvTranspose2d k4 s2 p1 (no bias), BN, ReLU] per step: doubles H and W."""
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.ConvTranspose2d(a, b, kernel_size=4, stride=2, padding=1,
                                      output_padding=0, bias=False),
                   nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class PositionNet(nn.Module):
    """3D joint heatmaps -> soft-argmax joints.

    forward: features (B, 2048, H, W) -> (joints (B, J, 3) in heatmap units,
    probabilities (B, J, D, H, W)). Conv channel c = joint * D + depth.
    """

    def __init__(self, num_joints: int, depth: int):
        super().__init__()
        self.num_joints, self.depth = num_joints, depth
        self.conv = conv1x1(2048, num_joints * depth, bn_relu=False)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = feat.shape
        logits = self.conv(feat).reshape(b, self.num_joints, self.depth, h, w)
        prob = torch.softmax(logits.reshape(b, self.num_joints, -1), dim=2).reshape(logits.shape)
        return G.expectation_3d(prob), prob


class BodyRotationNet(nn.Module):
    """Root/body 6D poses, shape and camera from body features and joint tokens.

    Tokens are [512 sampled features, x, y, z] per joint: 25 body joints from
    the body map, then 4 MCP joints of each hand from the hand maps.
    """

    def __init__(self):
        super().__init__()
        tokens = C.NUM_BODY_POS_JOINTS + 2 * 4
        token_dim = C.FEATURE_DIM + 3
        self.body_conv = conv1x1(2048, C.FEATURE_DIM, bn_relu=True)
        self.lhand_conv = conv1x1(2048, C.FEATURE_DIM, bn_relu=True)
        self.rhand_conv = conv1x1(2048, C.FEATURE_DIM, bn_relu=True)
        self.root_pose_out = linear([tokens * token_dim, 6])
        self.body_pose_out = linear([tokens * token_dim, C.NUM_BODY_ROT_JOINTS * 6])
        self.shape_out = linear([2048, C.NUM_BETAS])
        self.cam_out = linear([2048, 3])

    def forward(self, body_feat, body_joints, lhand_feat, lhand_joints, rhand_feat, rhand_joints):
        """body_feat (B,2048,8,6), body_joints (B,25,3); hand feats (B,2048,8,8),
        hand MCP joints (B,4,3) in body/hand heatmap units.

        Returns root6d (B,6), body6d (B,126), shape (B,10), cam (B,3).
        """
        pooled = body_feat.mean((2, 3))
        shape = self.shape_out(pooled)
        cam = self.cam_out(pooled)
        tokens = []
        for conv, feat, joints in ((self.body_conv, body_feat, body_joints),
                                   (self.lhand_conv, lhand_feat, lhand_joints),
                                   (self.rhand_conv, rhand_feat, rhand_joints)):
            sampled = G.sample_joint_features(conv(feat), joints[..., :2])
            tokens.append(torch.cat((sampled, joints), dim=2))
        flat = torch.cat(tokens, dim=1).reshape(body_feat.shape[0], -1)  # joint-major
        return self.root_pose_out(flat), self.body_pose_out(flat), shape, cam


class BoxNet(nn.Module):
    """Hand and face box centers and sizes.

    forward: body features (B,2048,8,6) and body joint probabilities
    (B,25,8,8,6) -> three (center (B,2), size (B,2)) pairs (left hand, right
    hand, face), in body-heatmap units. Sizes are signed and unclamped.
    """

    def __init__(self):
        super().__init__()
        c_in = 2048 + C.NUM_BODY_POS_JOINTS * C.OUTPUT_HM_SHAPE[0]
        self.deconv = deconv_stack([c_in, 256, 256, 256])
        self.bbox_center = conv1x1(256, 3, bn_relu=False)
        self.lhand_size = linear([256, 256, 2])
        self.rhand_size = linear([256, 256, 2])
        self.face_size = linear([256, 256, 2])

    def forward(self, feat: torch.Tensor, joint_prob: torch.Tensor):
        b, _, h, w = feat.shape
        x = torch.cat((feat, joint_prob.reshape(b, -1, h, w)), dim=1)
        t = self.deconv(x)  # (B, 256, 64, 48)
        centers = G.soft_argmax_2d(self.bbox_center(t))  # (B, 3, 2) in t pixels
        out = []
        for i, mlp in enumerate((self.lhand_size, self.rhand_size, self.face_size)):
            c = centers[:, i]
            part = G.sample_joint_features(t, c[:, None, :])[:, 0]
            # t is 8x the body heatmap; the size head already speaks heatmap units.
            out.append((c / 8, mlp(part)))
        return out


class HandRoI(nn.Module):
    """Hand crops from the 512x384 input and their ResNet-50 features.

    forward: img (B,3,512,384), boxes (B,4) xyxy in body-input pixels ->
    features (2B, 2048, 8, 8), ordered [all left (mirrored); all right].
    """

    def __init__(self):
        super().__init__()
        self.backbone = ResNetTrunk(50)

    def forward(self, img, lhand_bbox, rhand_bbox):
        lhand = crop_rois(img, lhand_bbox, C.INPUT_HAND_SHAPE)
        rhand = crop_rois(img, rhand_bbox, C.INPUT_HAND_SHAPE)
        # Mirror the left hand so that one right-hand network serves both.
        hands = torch.cat((torch.flip(lhand, [3]), rhand))
        return self.backbone(hands.contiguous(memory_format=_memory_format(img)))


class FaceRoI(nn.Module):
    """Face crop (B,3,192,192) from the input -> ResNet-18 features (B,512,6,6)."""

    def __init__(self):
        super().__init__()
        self.backbone = ResNetTrunk(18)

    def forward(self, img, face_bbox):
        face = crop_rois(img, face_bbox, C.INPUT_FACE_SHAPE)
        return self.backbone(face.contiguous(memory_format=_memory_format(img)))


class HandPositionNet(PositionNet):
    def __init__(self):
        super().__init__(C.NUM_HAND_POS_JOINTS, C.OUTPUT_HAND_HM_SHAPE[0])


class HandRotationNet(nn.Module):
    """Hand 6D poses from hand features (2B,2048,8,8) and joints (2B,20,3) -> (2B,90)."""

    def __init__(self):
        super().__init__()
        self.hand_conv = conv1x1(2048, C.FEATURE_DIM, bn_relu=True)
        self.hand_pose_out = linear([C.NUM_HAND_POS_JOINTS * (C.FEATURE_DIM + 3),
                                     C.NUM_HAND_ROT_JOINTS * 6])

    def forward(self, feat, joints):
        sampled = G.sample_joint_features(self.hand_conv(feat), joints[..., :2])
        flat = torch.cat((sampled, joints), dim=2).reshape(feat.shape[0], -1)
        return self.hand_pose_out(flat)


class FaceRegressor(nn.Module):
    """Expression (B,10) and jaw 6D (B,6) from pooled face features (B,512)."""

    def __init__(self):
        super().__init__()
        self.expr_out = linear([512, C.NUM_EXPRESSION])
        self.jaw_pose_out = linear([512, 6])

    def forward(self, feat):
        pooled = feat.mean((2, 3))
        return self.expr_out(pooled), self.jaw_pose_out(pooled)


def crop_rois(img: torch.Tensor, bbox: torch.Tensor, out_shape) -> torch.Tensor:
    """roi_align crops of img (B,3,512,384) at bbox (B,4) xyxy body-input pixels.

    Boxes are scaled x2 to input pixels. Settings as the reference:
    spatial_scale 1, adaptive sampling, aligned=False.
    Returns (B, 3, *out_shape).
    """
    sx = C.INPUT_IMG_SHAPE[1] / C.INPUT_BODY_SHAPE[1]
    sy = C.INPUT_IMG_SHAPE[0] / C.INPUT_BODY_SHAPE[0]
    idx = torch.arange(bbox.shape[0], dtype=bbox.dtype, device=bbox.device)[:, None]
    scale = bbox.new_tensor([sx, sy, sx, sy])
    rois = torch.cat((idx, bbox * scale), dim=1)
    return roi_align(img, rois, list(out_shape), spatial_scale=1.0,
                     sampling_ratio=-1, aligned=False)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous()):
        return torch.channels_last
    return torch.contiguous_format
