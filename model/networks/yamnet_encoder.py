"""YAMNet's AudioSet embedding as the audio encoder (``audio_backbone="yamnet"``).

The network is YAMNet's MobileNetV1 (``model.knowledge.yamnet``) without its classifier: 0.96-s patches of its
log-mel frames (front end ``yamnet_mel``) -> 1024-d embeddings, their mean over the window's patches, and a
linear projection. ``freeze`` fixes all of it ("all": only the projection trains), all but its last
depthwise-separable block ("last"), or nothing ("none").
"""
from __future__ import annotations

import torch
from torch import nn

from model.knowledge.yamnet import EMBEDDING, PATCH, PATCH_HOP, YamNet, layout, load_yamnet

FREEZE_LEVELS = ("none", "last", "all")
TRAINED_LAYERS = {"none": len(layout()), "last": 2, "all": 0}  # convolutions that train at each level


def to_patches(frames: torch.Tensor) -> torch.Tensor:
    """Log-mel frames (B, 1, 64, T) -> YAMNet's patches (B, P, 1, 96, 64), 96 frames every 48."""
    x = frames[:, 0].unfold(2, PATCH, PATCH_HOP)  # (B, 64, P, 96)
    return x.permute(0, 2, 3, 1)[:, :, None]  # (B, P, 1, 96, 64)


class YamNetAudioEncoder(nn.Module):
    """YAMNet and a linear projection: log-mel frames (B, 1, 64, T) -> (B, dim)."""

    def __init__(self, dim: int = 512):
        super().__init__()
        self.trunk = YamNet(layout())
        self.trunk.classifier = None  # the embedding is the encoder's output; AudioSet's logits are not used
        self.proj = nn.Linear(EMBEDDING, dim)
        self.frozen_layers = 0

    def load_pretrained(self) -> None:
        """The installed YAMNet's weights (``model.knowledge.yamnet``)."""
        source = load_yamnet()
        with torch.no_grad():
            for ours, theirs in zip(self.trunk.convs, source.convs):
                ours.weight.copy_(theirs.weight)
                ours.bias.copy_(theirs.bias)

    def freeze(self, level: str) -> None:
        if level not in FREEZE_LEVELS:
            raise ValueError(f"audio freeze level must be one of {', '.join(FREEZE_LEVELS)}, not {level!r}")
        self.frozen_layers = len(self.trunk.convs) - TRAINED_LAYERS[level]
        for i, conv in enumerate(self.trunk.convs):
            conv.requires_grad_(i >= self.frozen_layers)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Log-mel frames (B, 1, 64, T) -> the mean YAMNet embedding of their patches (B, 1024)."""
        patches = to_patches(frames)  # (B, P, 1, 96, 64)
        b, p = patches.shape[:2]
        embeddings = self.trunk.embed(patches.reshape(b * p, *patches.shape[2:]), self.frozen_layers)  # (B * P, 1024)
        return embeddings.reshape(b, p, -1).mean(dim=1)  # (B, 1024)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embed(frames))  # (B, dim)

