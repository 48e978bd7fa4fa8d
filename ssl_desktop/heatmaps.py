"""What the workers compute, all through the ``model`` package (no Qt): sound and frame in, cosine map out."""
from __future__ import annotations

import numpy as np
import torch

from model import SSLModel, spectrogram
from model.heatmap import upsample_map
from model.sslmodel import cosine_map
from model.transforms import preprocess_image


def audio_embedding(model: SSLModel, waveform: np.ndarray, device) -> tuple[torch.Tensor, np.ndarray]:
    """16 kHz waveform -> (unit audio vector (1, D) on ``device``, the spectrogram the model sees (257, T))."""
    spec = spectrogram(waveform, model.audio_config)  # (1, 257, T)
    return model.encode_audio(spec[None].to(device)), spec[0].numpy()


def visual_map(model: SSLModel, image: np.ndarray, device) -> torch.Tensor:
    """RGB frame (H, W, 3) -> unit visual map (1, D, h, w) on ``device``."""
    return model.encode_image_map(preprocess_image(image, model.config.image_size)[None].to(device))


def cosine_at(visual: torch.Tensor, audio: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Unit visual map (1, D, h, w) and unit audio vector (1, D) -> raw cosine (H, W) float32 at ``size``,
    smoothly upsampled for display (no seams); ``overlay.scale_heat`` makes it a heatmap."""
    return upsample_map(cosine_map(visual, audio)[0], size, smooth=True).cpu().numpy()


def choose_device(requested: str) -> tuple[str, str | None]:
    """'auto' | 'cpu' | 'cuda' -> (device to use, a message when the request cannot be met)."""
    if requested == "cpu":
        return "cpu", None
    if torch.cuda.is_available():
        return "cuda", None
    if requested == "cuda":
        return "cpu", "CUDA was requested but no CUDA GPU is available: running on the CPU"
    return "cpu", None
