# SPDX-License-Identifier: GPL-3.0-or-later
"""The I2L-MeshNet network (SMPL body, stage ``param``), test mode.

``I2LMeshNet().state_dict()`` has exactly the 723 network keys (order and
shapes) of the official checkpoint's ``network`` entry without ``module.``;
the official file's 7 further ``human_model_layer.th_*`` keys are SMPL model
data, not weights (``checkpoint`` accepts and drops them). The SMPL data this
network uses (the 24-row joint regressor, and the SMPL layer for
``mesh_coord_cam``) comes from an SMPL model file and is held in
non-persistent buffers, never in the state dict.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..pose2pose.backbone import ResNetTrunk
from ..pose2pose.network import _full_precision, _widen
from ..pose2pose.geometry import rot6d_to_axis_angle
from . import constants as C

OUTPUT_KEYS = ("joint_coord_img", "mesh_coord_img", "joint_img_from_mesh", "pose_param",
               "shape_param", "mesh_coord_cam", "smpl_root")


def soft_argmax_1d(logits: torch.Tensor) -> torch.Tensor:
    """Expected bin of 1-D heatmaps: logits (B, K, L) -> (B, K, 1), bins 0..L-1, no offset."""
    prob = F.softmax(logits, dim=2)
    idx = torch.arange(logits.shape[2], dtype=prob.dtype, device=prob.device)
    return (prob * idx).sum(dim=2, keepdim=True)


def gaussian_heatmaps(coords: torch.Tensor, sigma: float = C.SIGMA) -> torch.Tensor:
    """3D Gaussian heatmaps of joints (B, J, 3) lixels -> (B, J, D, H, W), (z, y, x) order.

    Evaluated term by term in the reference's order (difference, /sigma,
    squared, halved; summed left to right; exp), so it is bit-identical.
    """
    d, h, w = C.OUTPUT_HM_SHAPE
    dev = coords.device
    zz, yy, xx = torch.meshgrid(torch.arange(d, device=dev), torch.arange(h, device=dev),
                                torch.arange(w, device=dev), indexing="ij")
    xx, yy, zz = (t[None, None].to(coords.dtype) for t in (xx, yy, zz))
    x, y, z = (coords[:, :, i, None, None, None] for i in range(3))
    return torch.exp(-(((xx - x) / sigma) ** 2) / 2 - (((yy - y) / sigma) ** 2) / 2
                     - (((zz - z) / sigma) ** 2) / 2)


def _conv1d_block(cin: int, cout: int, bn_relu: bool) -> nn.Sequential:
    """[Conv1d k1 (+ BatchNorm1d, ReLU)]: keys ``.0`` (and ``.1``)."""
    layers = [nn.Conv1d(cin, cout, kernel_size=1)]
    if bn_relu:
        layers += [nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class LixelHead(nn.Module):
    """PoseNet (29 joints) / MeshNet (6890 vertices): per-axis 1-D lixel heatmaps.

    forward(feat (B, 2048, 8, 8)) -> (B, K, 3) coordinates in lixels (x, y, z).
    x and y: the 3x deconvolved 64x64 map averaged over rows (x) or columns
    (y); z: the global average of ``feat`` through a 16384-wide Conv1d viewed
    as (256 features, 64 bins).
    """

    def __init__(self, num_points: int):
        super().__init__()
        d = C.OUTPUT_HM_SHAPE[0]
        layers = []
        for cin in (2048, 256, 256):
            layers += [nn.ConvTranspose2d(cin, 256, kernel_size=4, stride=2, padding=1,
                                          output_padding=0, bias=False),
                       nn.BatchNorm2d(256), nn.ReLU(inplace=True)]
        self.deconv = nn.Sequential(*layers)
        self.conv_x = _conv1d_block(256, num_points, bn_relu=False)
        self.conv_y = _conv1d_block(256, num_points, bn_relu=False)
        self.conv_z_1 = _conv1d_block(2048, 256 * d, bn_relu=True)
        self.conv_z_2 = _conv1d_block(256, num_points, bn_relu=False)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        xy = self.deconv(feat)  # (B, 256, 64, 64)
        x = soft_argmax_1d(self.conv_x(xy.mean(2)))
        y = soft_argmax_1d(self.conv_y(xy.mean(3)))
        z = self.conv_z_1(feat.mean((2, 3))[:, :, None])  # (B, 16384, 1)
        z = soft_argmax_1d(self.conv_z_2(z.view(-1, 256, C.OUTPUT_HM_SHAPE[0])))
        return torch.cat((x, y, z), dim=2)


class Pose2Feat(nn.Module):
    """Early image feature (B,64,64,64) + joint heatmaps (B,29,64,64,64) -> (B,64,64,64)."""

    def __init__(self, num_joints: int = C.NUM_JOINTS):
        super().__init__()
        d = C.OUTPUT_HM_SHAPE[0]
        self.conv = nn.Sequential(nn.Conv2d(64 + num_joints * d, 64, kernel_size=3, stride=1,
                                            padding=1),
                                  nn.BatchNorm2d(64), nn.ReLU(inplace=True))

    def forward(self, feat: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        b, j, d, h, w = heatmaps.shape
        return self.conv(torch.cat((feat, heatmaps.reshape(b, j * d, h, w)), dim=1))


class ParamRegressor(nn.Module):
    """29 joints (B, 29, 3) in raw lixels -> SMPL pose (B, 72) axis-angle and shape (B, 10)."""

    def __init__(self, num_joints: int = C.NUM_JOINTS):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(num_joints * 3, 1024), nn.BatchNorm1d(1024),
                                nn.ReLU(inplace=True), nn.Linear(1024, 512),
                                nn.BatchNorm1d(512), nn.ReLU(inplace=True))
        self.fc_pose = nn.Sequential(nn.Linear(512, C.NUM_SMPL_JOINTS * 6))
        self.fc_shape = nn.Sequential(nn.Linear(512, C.NUM_BETAS))

    def forward(self, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = joints.shape[0]
        feat = self.fc(joints.reshape(n, -1))
        pose = rot6d_to_axis_angle(self.fc_pose(feat).reshape(-1, 6)).reshape(n, -1)
        return pose, self.fc_shape(feat)


class I2LMeshNet(nn.Module):
    """I2L-MeshNet (Moon & Lee, ECCV 2020) as its demo runs it (stage ``param``).

    forward(img): img (N, 3, 256, 256) float RGB in [0, 1] (no mean/std) ->
    dict of float32 tensors (fact sheet section 4, step 7 and 10 for units):

    * ``joint_coord_img`` (N,29,3): PoseNet's joints; ``mesh_coord_img``
      (N,6890,3): MeshNet's vertices. Lixel units: x, y x4 = 256x256 crop
      pixels; z/32 - 1 = metres relative to the pelvis (farther is positive).
    * with a joint regressor (an SMPL model, or ``set_joint_regressor``):
      ``joint_img_from_mesh`` (N,29,3) (lixels), ``pose_param`` (N,72) SMPL
      axis-angle (root first, radians, camera-aligned global orientation),
      ``shape_param`` (N,10) SMPL betas.
    * with an SMPL model: ``mesh_coord_cam`` (N,6890,3) metres, camera axes
      (x right, y down, z away), relative to the regressed pelvis (row 0), and
      ``smpl_root`` (N,3): that pelvis of the SMPL mesh before it was
      subtracted (not an official output; SMPL vertices = mesh_coord_cam + smpl_root).

    The official forward returns neither ``pose_param`` nor ``shape_param``
    (its conformance data hooks them out of the parameter regressor); here
    they are outputs because the take is made of them.

    smpl_model_path: an SMPL neutral model (``SMPL_NEUTRAL.npz``/``.pkl``, its
    folder or a folder holding ``smpl/``); None builds the network without
    SMPL data (lixel outputs only until ``set_joint_regressor``).
    """

    def __init__(self, smpl_model_path=None):
        super().__init__()
        # Registration order = official state_dict order.
        self.pose_backbone = ResNetTrunk(50)
        self.pose_net = LixelHead(C.NUM_JOINTS)
        self.pose2feat = Pose2Feat(C.NUM_JOINTS)
        self.mesh_backbone = ResNetTrunk(50)  # its conv1/bn1 are stored but unused
        self.mesh_net = LixelHead(C.NUM_VERTICES)
        self.param_regressor = ParamRegressor(C.NUM_JOINTS)
        self.register_buffer("joint_regressor", None, persistent=False)  # (29, 6890)
        self.register_module("smpl_layer", None)
        if smpl_model_path is not None:
            self.attach_smpl(smpl_model_path)

    @property
    def has_smpl(self) -> bool:
        return self.smpl_layer is not None

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def set_joint_regressor(self, smpl_j_regressor) -> None:
        """The 29-joint regressor from SMPL's 24-row J_regressor (24, 6890) (array or tensor):
        those rows, then one-hot rows at the nose, eye and ear vertices (fact sheet step 8)."""
        jr = torch.as_tensor(smpl_j_regressor).detach().to(torch.float32).cpu()
        if tuple(jr.shape) != (C.NUM_SMPL_JOINTS, C.NUM_VERTICES):
            raise ValueError(f"J_regressor must be (24, 6890), not {tuple(jr.shape)}")
        face = torch.zeros(len(C.FACE_VERTEX_IDS), C.NUM_VERTICES)
        face[torch.arange(len(C.FACE_VERTEX_IDS)), torch.tensor(C.FACE_VERTEX_IDS)] = 1.0
        device = self._device()
        reg = torch.cat((jr, face), dim=0)
        self.joint_regressor = reg if device.type == "meta" else reg.to(device)

    def attach_smpl(self, smpl_model_path) -> None:
        """Build the SMPL layer (non-persistent) and the joint regressor from an SMPL file."""
        from .smpl_layer import SMPLLayer

        layer = SMPLLayer.from_file(smpl_model_path)
        device = self._device()
        self.smpl_layer = layer if device.type == "meta" else layer.to(device)
        self.set_joint_regressor(layer.J_regressor)

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        """img (N,3,256,256) RGB in [0,1] -> output dict (see the class docstring).

        Autocast (if active around the call) applies to the two ResNet trunks and
        pose2feat only; the lixel heads, the regressors and SMPL run in fp32.
        """
        pb = self.pose_backbone
        early = pb.maxpool(pb.relu(pb.bn1(pb.conv1(img))))  # (N,64,64,64)
        feat = pb.layer4(pb.layer3(pb.layer2(pb.layer1(early))))  # (N,2048,8,8)
        with _full_precision(img):
            joint_coord_img = self.pose_net(_widen(feat))
            heatmaps = gaussian_heatmaps(joint_coord_img.detach())
        shared = self.pose2feat(early, heatmaps)
        mb = self.mesh_backbone  # skip_early: layer1..layer4 only
        mesh_feat = mb.layer4(mb.layer3(mb.layer2(mb.layer1(shared))))
        with _full_precision(img):
            mesh_coord_img = self.mesh_net(_widen(mesh_feat))
            out = {"joint_coord_img": joint_coord_img, "mesh_coord_img": mesh_coord_img}
            if self.joint_regressor is None:
                return out
            reg = self.joint_regressor.to(mesh_coord_img.dtype)
            joint_img_from_mesh = torch.matmul(reg[None], mesh_coord_img)
            pose, shape = self.param_regressor(joint_img_from_mesh.detach())
            out.update(joint_img_from_mesh=joint_img_from_mesh, pose_param=pose,
                       shape_param=shape)
            if self.smpl_layer is not None:
                verts = self.smpl_layer(pose, shape)
                root = torch.matmul(reg[None, C.ROOT_JOINT:C.ROOT_JOINT + 1], verts)  # (N,1,3)
                out["mesh_coord_cam"] = verts - root
                out["smpl_root"] = root[:, 0]  # not an official output: what was subtracted
        return out
