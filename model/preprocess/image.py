"""Image preprocessing shared by training, evaluation and the app."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_image(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1], (..., 3, H, W) -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images - mean) / std


def denormalize_image(images: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised images (..., 3, H, W) -> float images in [0, 1] (inverse of normalize_image)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images * std + mean).clamp(0, 1)


def frame_to_tensor(frame: np.ndarray) -> torch.Tensor:
    """RGB uint8 frame (H, W, 3) -> float tensor (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 255.0


def preprocess_image(frame: np.ndarray, size: int = 224) -> torch.Tensor:
    """RGB uint8 frame (H, W, 3) -> normalised model input (3, size, size), bicubic resize."""
    x = frame_to_tensor(frame).unsqueeze(0)  # (1, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return normalize_image(x[0])  # (3, size, size)
