"""The two ResNet-18 encoders.

The network is torchvision's ResNet-18, written out here: importing torchvision costs the app about 3 s
of start-up and 200 MB (it imports ``torch._dynamo``), for one class. Parameter names follow
torchvision's (``conv1``, ``bn1``, ``layer1`` .. ``layer4``), so the model's ``imgnet.*`` / ``audnet.*``
keys map one-to-one onto the published SSL-Align and EZ-VSL checkpoints (the SSL-Align audio stem
``audnet.conv1_a`` is our ``audnet.conv1``), and a seed gives the weights torchvision's
``resnet18(weights=None)`` gives (``tests/test_model.py`` checks both).
"""
from __future__ import annotations

import torch
from torch import nn

BLOCKS = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride) of layer1 .. layer4, two blocks each
TORCHVISION_CLASSES = 1000  # the size of torchvision's classifier, built only to draw the same random numbers


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: two 3x3 convolutions and a shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


def _layer(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    downsample = None  # built before the block, as torchvision does (the order the random numbers are drawn in)
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                   nn.BatchNorm2d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes))


class ResNetTrunk(nn.Module):
    """ResNet-18 up to layer4 (no pooling, no classifier), initialised as torchvision initialises it."""

    def __init__(self, in_channels: int = 3, layer4_stride: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, stride) in enumerate(BLOCKS, start=1):
            setattr(self, f"layer{i}", _layer(inplanes, planes, layer4_stride if i == 4 else stride))
            inplanes = planes
        nn.Linear(512, TORCHVISION_CLASSES)  # torchvision's classifier: drawn and dropped, as before
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if in_channels != 3:  # replaced after the initialisation: PyTorch's default initialisation
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)

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
