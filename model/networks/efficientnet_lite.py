"""EfficientNet-Lite0 written out: the layout and tensor names of timm's ``tf_efficientnet_lite0``.

Building the network with timm costs seconds at start-up (``import timm`` imports torchvision and, through
it, ``torch._dynamo``: 2.5 s after torch on an idle 2-core machine, 6.7 s under load), so the app builds it
from this module; the tests hold it against an independent functional forward of the published weights
and against timm itself. TensorFlow "same" padding on the stride-2 convolutions, batch norm with eps 1e-3,
ReLU6, no squeeze-excitation. ``output_stride=16`` runs the last stride-2 stage at stride 1 and dilates
the convolutions after it, as timm does.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: (kernel, stride, expansion, output channels, blocks) of the 7 stages
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM, HEAD = 32, 1280
BN_EPS = 1e-3


class SameConv2d(nn.Conv2d):
    """A strided convolution with TensorFlow's "same" padding (the odd pixel on the right / bottom)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class BatchNormReLU6(nn.BatchNorm2d):
    """Batch norm then ReLU6 (timm's ``BatchNormAct2d``: the same tensors)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(super().forward(x))


def conv(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride > 1:
        return SameConv2d(cin, cout, kernel, stride, groups=groups, bias=False)
    return nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) * dilation // 2, dilation=dilation, groups=groups,
                     bias=False)


class DepthwiseSeparable(nn.Module):
    """Stage 0: depthwise conv, BN + ReLU6, pointwise conv, BN."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, dilation: int):
        super().__init__()
        self.conv_dw = conv(cin, cin, kernel, stride, dilation, groups=cin)
        self.bn1 = BatchNormReLU6(cin, eps=BN_EPS)
        self.conv_pw = conv(cin, cout, 1)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return x + y if self.skip else y


class InvertedResidual(nn.Module):
    """Expansion conv, depthwise conv (both BN + ReLU6), linear projection; a residual at stride 1."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, dilation: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        self.conv_pw = conv(cin, mid, 1)
        self.bn1 = BatchNormReLU6(mid, eps=BN_EPS)
        self.conv_dw = conv(mid, mid, kernel, stride, dilation, groups=mid)
        self.bn2 = BatchNormReLU6(mid, eps=BN_EPS)
        self.conv_pwl = conv(mid, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn3(self.conv_pwl(self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))))
        return x + y if self.skip else y


class EfficientNetLite0Net(nn.Module):
    """[-1, 1] RGB (B, 3, S, S) -> the head's map (B, 1280, S / output_stride, S / output_stride)."""

    def __init__(self, output_stride: int = 32):
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, not {output_stride}")
        self.conv_stem = conv(3, STEM, 3, stride=2)
        self.bn1 = BatchNormReLU6(STEM, eps=BN_EPS)
        stages, cin, reached, dilation = [], STEM, 2, 1
        for kernel, stride, expansion, cout, count in STAGES:
            next_dilation = dilation
            if reached * stride > output_stride:  # this stage would pass the output stride: dilate instead
                next_dilation, stride = dilation * stride, 1
            else:
                reached *= stride
            blocks = []
            for i in range(count):
                args = (cin, cout, kernel, stride if i == 0 else 1, dilation if i == 0 else next_dilation)
                blocks.append(DepthwiseSeparable(*args) if expansion == 1 else InvertedResidual(*args, expansion))
                cin = cout
            dilation = next_dilation
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = conv(cin, HEAD, 1)
        self.bn2 = BatchNormReLU6(HEAD, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))
