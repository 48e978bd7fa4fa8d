"""The random operations of the augmented views in plain torch: torchvision's crop, flip, colour jitter and
grayscale and torchaudio's spectrogram masks, with the same sampling and the same arithmetic (a test checks
them against both libraries where those are installed). Neither library is needed to train: the app's
CPU-only runtime has no build of either (docs/BENCHMARKS.md, "Runtime and memory").

Images are float tensors (3, H, W) in [0, 1]; spectrograms (..., F, T).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


def grayscale(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) -> (1, H, W) luma."""
    r, g, b = image.unbind(-3)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(-3)


def _blend(image: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    return (factor * image + (1.0 - factor) * other).clamp(0.0, 1.0)


def adjust_brightness(image: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(image, torch.zeros_like(image), factor)


def adjust_contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(image, grayscale(image).mean(dim=(-3, -2, -1), keepdim=True), factor)


def adjust_saturation(image: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(image, grayscale(image), factor)


def _rgb_to_hsv(image: torch.Tensor) -> torch.Tensor:
    r, g, b = image.unbind(-3)
    maxc, _ = image.max(dim=-3)
    minc = image.amin(dim=-3)
    equal = maxc == minc
    chroma = maxc - minc
    saturation = chroma / torch.where(equal, torch.ones_like(maxc), maxc)
    chroma_divisor = torch.where(equal, torch.ones_like(chroma), chroma)
    rc, gc, bc = (maxc - r) / chroma_divisor, (maxc - g) / chroma_divisor, (maxc - b) / chroma_divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    hue = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((hue, saturation, maxc), dim=-3)


def _hsv_to_rgb(image: torch.Tensor) -> torch.Tensor:
    h, s, v = image.unbind(-3)
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    sectors = torch.stack([i == k for k in range(6)], dim=-3)  # (6, H, W)
    r = torch.stack((v, q, p, p, t, v), dim=-3)
    g = torch.stack((t, v, v, q, p, p), dim=-3)
    b = torch.stack((p, p, t, v, v, q), dim=-3)
    return torch.stack([(channel * sectors).sum(dim=-3) for channel in (r, g, b)], dim=-3)


def adjust_hue(image: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the hue by ``shift`` turns (-0.5 .. 0.5)."""
    hsv = _rgb_to_hsv(image)
    hue = torch.remainder(hsv[..., 0, :, :] + shift, 1.0)
    return _hsv_to_rgb(torch.cat((hue.unsqueeze(-3), hsv[..., 1:, :, :]), dim=-3))


def random_resized_crop_box(height: int, width: int, scale: tuple[float, float],
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a crop of ``scale`` of the area and aspect ``ratio`` (log-uniform), 10 tries, then
    the whole frame clipped to the ratio: torchvision's RandomResizedCrop.get_params."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio)).tolist()  # float32, as torchvision's
    for _ in range(10):
        target_area = area * float(torch.empty(1).uniform_(scale[0], scale[1]))
        aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,)))
            left = int(torch.randint(0, width - w + 1, size=(1,)))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crop(image: torch.Tensor, top: int, left: int, h: int, w: int, size: int) -> torch.Tensor:
    """The crop resized to (size, size), bilinear with antialiasing (as torchvision's v2 on tensors)."""
    crop = image[..., top:top + h, left:left + w].unsqueeze(0)
    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def mask_along(spec: torch.Tensor, max_width: int, dim: int) -> torch.Tensor:
    """Zero a band of ``uniform(0, max_width)`` rows (dim -2) or frames (dim -1) at a uniform start: torchaudio's
    FrequencyMasking / TimeMasking of one spectrogram."""
    size = spec.shape[dim]
    width = float(torch.rand(1)) * max_width
    start = float(torch.rand(1)) * (size - width)
    first = int(start)
    last = first + int(width)
    index = torch.arange(size, device=spec.device)
    keep = ~((index >= first) & (index < last))
    shape = [1] * spec.dim()
    shape[dim] = size
    return spec * keep.view(shape).to(spec.dtype)
