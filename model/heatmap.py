"""Turning a raw cosine map into a frame-sized heatmap."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def to_heatmap(cos_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Raw map (h, w) or (B, h, w) -> bilinear resize to size=(H, W), min-max normalised to [0, 1]."""
    batched = cos_map.dim() == 3
    maps = cos_map if batched else cos_map.unsqueeze(0)
    up = F.interpolate(maps.unsqueeze(1).float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = up.amin(dim=(1, 2), keepdim=True)
    hi = up.amax(dim=(1, 2), keepdim=True)
    heat = (up - lo) / (hi - lo).clamp_min(1e-12)  # (B, H, W)
    return heat if batched else heat[0]
