# SPDX-License-Identifier: GPL-3.0-or-later
"""The SMPL layer of I2L-MeshNet: standard SMPL linear blend skinning in torch.

The reference uses the vendored smplpytorch ``SMPL_Layer`` (GPL code, not
copied): neutral model, 10 betas, no translation (fact sheet 4.2). This is
the standard SMPL formula written here: Rodrigues rotations (angle of
``a + 1e-8``), pose feature = the 23 non-root matrices minus identity,
v_shaped = v_template + shapedirs . betas, rest joints = J_regressor .
v_shaped, pose blend shapes, the kinematic chain and skinning. All data is
held in non-persistent float32 buffers (the network's state dict never holds
SMPL data).

Model files: ``SMPL_NEUTRAL.npz`` read by ``common.smpl_file`` (headers
checked, ``allow_pickle=False``; ``.pkl`` files are never opened).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ModelFileError
from . import constants as C

V, J = C.NUM_VERTICES, C.NUM_SMPL_JOINTS


def read_smpl_arrays(path) -> dict[str, np.ndarray]:
    """The SMPL arrays of a model file (the file, its folder or a folder holding
    ``smpl/``), read by ``common.smpl_file`` (headers checked first, no pickle);
    ModelFileError with one line otherwise."""
    from ...common.smpl_file import SmplFileError, model_file_in, read_smpl_arrays as read

    found = model_file_in(path, "neutral")
    if found is None:
        raise ModelFileError(f"no SMPL model found at {path} (looked for SMPL_NEUTRAL.npz and "
                             "smpl/SMPL_NEUTRAL.npz)")
    try:
        return read(found)
    except SmplFileError as exc:
        raise ModelFileError(str(exc)) from None


def batch_rodrigues(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle (K, 3) -> rotation matrices (K, 3, 3); angle = |a + 1e-8| as SMPL layers do."""
    angle = torch.norm(aa + 1e-8, dim=1, keepdim=True)
    axis = aa / angle
    cos, sin = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = torch.zeros_like(x)
    k = torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)[None]
    return eye + sin * k + (1 - cos) * torch.bmm(k, k)


class SMPLLayer(nn.Module):
    """SMPL (one gender, 10 betas): forward(pose (N,72), betas (N,10)) -> vertices (N,6890,3).

    No translation; vertices in metres in the model frame rotated by the global
    orientation (the pelvis is not at the origin). ``faces`` (F,3) int64 and
    ``parents`` are kept for callers.
    """

    def __init__(self, arrays: dict[str, np.ndarray]):
        super().__init__()

        def buf(name, value, dtype=torch.float32):
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(value), dtype=dtype),
                                 persistent=False)

        buf("v_template", arrays["v_template"])
        buf("shapedirs", np.asarray(arrays["shapedirs"])[:, :, :C.NUM_BETAS])
        buf("posedirs", np.asarray(arrays["posedirs"]).reshape(V * 3, -1).T)  # (207, V*3)
        buf("J_regressor", arrays["J_regressor"])
        buf("lbs_weights", arrays["weights"])
        buf("faces", np.asarray(arrays["f"]).astype(np.int64), torch.int64)
        parents = np.asarray(arrays["kintree_table"])[0].astype(np.int64)
        parents[0] = -1  # the root's parent is stored as uint32 max in some files
        if any(not 0 <= p < i for i, p in enumerate(parents[1:], start=1)):
            raise ModelFileError("SMPL model file: kintree_table is not a tree in joint order")
        self.parents = tuple(int(p) for p in parents)

    @classmethod
    def from_file(cls, path) -> "SMPLLayer":
        return cls(read_smpl_arrays(path)).eval()

    def forward(self, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        n = pose.shape[0]
        rot = batch_rodrigues(pose.reshape(-1, 3)).view(n, J, 3, 3)
        v_shaped = self.v_template + torch.einsum("vck,nk->nvc", self.shapedirs, betas)
        joints = torch.einsum("jv,nvc->njc", self.J_regressor, v_shaped)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        feat = (rot[:, 1:] - eye).reshape(n, -1)  # (N, 207)
        v_posed = v_shaped + (feat @ self.posedirs).view(n, V, 3)
        # Kinematic chain: world transforms G_i, then relative to the rest joints.
        rel = joints.clone()
        rel[:, 1:] = joints[:, 1:] - joints[:, list(self.parents[1:])]
        local = torch.zeros(n, J, 4, 4, dtype=pose.dtype, device=pose.device)
        local[:, :, :3, :3] = rot
        local[:, :, :3, 3] = rel
        local[:, :, 3, 3] = 1.0
        chain = [local[:, 0]]
        for i in range(1, J):
            chain.append(chain[self.parents[i]] @ local[:, i])
        world = torch.stack(chain, dim=1)  # (N, J, 4, 4)
        posed_joints = world[:, :, :3, 3]
        shift = posed_joints - torch.einsum("njab,njb->nja", world[:, :, :3, :3], joints)
        A = torch.cat((world[:, :, :3, :3], shift[..., None]), dim=3)  # (N, J, 3, 4)
        T = torch.einsum("vj,njab->nvab", self.lbs_weights, A)  # (N, V, 3, 4)
        return torch.einsum("nvab,nvb->nva", T[..., :3], v_posed) + T[..., 3]
