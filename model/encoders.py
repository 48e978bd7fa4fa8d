"""The two ResNet-18 encoders.

Parameter names follow torchvision's ResNet-18 (``conv1``, ``bn1``, ``layer1`` .. ``layer4``), so the
model's ``imgnet.*`` / ``audnet.*`` keys map one-to-one onto the published SSL-Align and EZ-VSL
checkpoints (the SSL-Align audio stem ``audnet.conv1_a`` is our ``audnet.conv1``).
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18


class ResNetTrunk(nn.Module):
    """torchvision ResNet-18 up to layer4 (no pooling, no classifier)."""

    def __init__(self, in_channels: int = 3, layer4_stride: int = 2):
        super().__init__()
        net = resnet18(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if layer4_stride != 2:
            net.layer4[0].conv1.stride = (layer4_stride, layer4_stride)
            net.layer4[0].downsample[0].stride = (layer4_stride, layer4_stride)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def visual_encoder(layer4_stride: int = 1) -> ResNetTrunk:
    """Image (B, 3, 224, 224) -> map (B, 512, 14, 14) with stride 1, (B, 512, 7, 7) with stride 2."""
    return ResNetTrunk(3, layer4_stride)


def audio_encoder(layer4_stride: int = 1) -> ResNetTrunk:
    """Spectrogram (B, 1, 257, T) -> map (B, 512, 17, ~T/16) with stride 1 (SSL-Align), about half
    each side with stride 2 (EZ-VSL); the model max-pools it to 512-d."""
    return ResNetTrunk(1, layer4_stride)
