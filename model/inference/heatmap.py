"""Turning a raw cosine map into a frame-sized heatmap.

Evaluation upsamples bilinearly, as the published code does. Bilinear interpolation of a coarse map
(6x6 for the bundled model) is only piecewise linear: its slope jumps at every row and column of cell
centres, and the eye sees those jumps as seams across the picture. The display therefore upsamples
``smooth=True``: bicubic (a continuous slope), kept within the map's own range (bicubic overshoots).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample_map(cos_map: torch.Tensor, size: tuple[int, int], smooth: bool = False) -> torch.Tensor:
    """Raw map (h, w) or (B, h, w) -> raw values at size=(H, W): bilinear, or bicubic when ``smooth``."""
    batched = cos_map.dim() == 3
    maps = (cos_map if batched else cos_map.unsqueeze(0)).unsqueeze(1).float()  # (B, 1, h, w)
    up = F.interpolate(maps, size=size, mode="bicubic" if smooth else "bilinear", align_corners=False)[:, 0]
    if smooth:
        up = up.clamp(maps.amin(dim=(1, 2, 3))[:, None, None], maps.amax(dim=(1, 2, 3))[:, None, None])
    return up if batched else up[0]  # (B, H, W) or (H, W)


def to_heatmap(cos_map: torch.Tensor, size: tuple[int, int], smooth: bool = False) -> torch.Tensor:
    """Raw map (h, w) or (B, h, w) -> upsampled to size=(H, W), min-max normalised to [0, 1]."""
    up = upsample_map(cos_map, size, smooth)
    lo = up.amin(dim=(-2, -1), keepdim=True)
    hi = up.amax(dim=(-2, -1), keepdim=True)
    return (up - lo) / (hi - lo).clamp_min(1e-12)
