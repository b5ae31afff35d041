# SPDX-License-Identifier: GPL-3.0-or-later
"""ResNet trunks (torchvision classes without avgpool and fc).

The official checkpoint stores each trunk under the exact parameter names of
``torchvision.models.resnet50()`` / ``resnet18()`` minus ``fc.*``, so the
torchvision classes load it as is.
"""
from __future__ import annotations

import torch
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

_LAYOUTS = {18: (BasicBlock, [2, 2, 2, 2]), 50: (Bottleneck, [3, 4, 6, 3])}


class ResNetTrunk(ResNet):
    """ResNet-18/50 feature extractor: (B, 3, H, W) -> (B, C, H/32, W/32).

    C is 512 for ResNet-18 and 2048 for ResNet-50. No input normalisation:
    the model was trained on RGB / 255 without ImageNet mean/std.
    """

    def __init__(self, depth: int):
        block, layers = _LAYOUTS[depth]
        super().__init__(block, layers)
        # Not part of the checkpoint; deleting them keeps state_dict() exact.
        del self.avgpool, self.fc
        self.out_channels = 512 * block.expansion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
