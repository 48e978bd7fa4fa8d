"""What the workers compute, all through the ``model`` package (no Qt): sound and frame in, heatmap out."""
from __future__ import annotations

import numpy as np
import torch

from model import SSLModel, spectrogram, to_heatmap
from model.presence import judge, level_dbfs, presence_score
from model.sslmodel import cosine_map
from model.transforms import preprocess_image


def audio_embedding(model: SSLModel, waveform: np.ndarray, device) -> tuple[torch.Tensor, np.ndarray]:
    """16 kHz waveform -> (unit audio vector (1, D) on ``device``, the spectrogram the model sees (257, T))."""
    spec = spectrogram(waveform, model.audio_config)  # (1, 257, T)
    return model.encode_audio(spec[None].to(device)), spec[0].numpy()


def visual_map(model: SSLModel, image: np.ndarray, device) -> torch.Tensor:
    """RGB frame (H, W, 3) -> unit visual map (1, D, h, w) on ``device``."""
    return model.encode_image_map(preprocess_image(image, model.config.image_size)[None].to(device))


def heatmap_of(visual: torch.Tensor, audio: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Unit visual map (1, D, h, w) and unit audio vector (1, D) -> heatmap of ``size`` (H, W) in [0, 1]."""
    return to_heatmap(cosine_map(visual, audio)[0], size).cpu().numpy()


def presence_of(model: SSLModel, visual: torch.Tensor, audio: torch.Tensor, waveform: np.ndarray | None) -> str:
    """'' when the sound is in the picture, else "silence" / "the sound is not in view" (``model.presence``);
    ``waveform`` None (a chosen gallery sound) is never silence."""
    score = float(presence_score(cosine_map(visual, audio))[0])
    return judge(score, level_dbfs(waveform) if waveform is not None else 0.0, model.presence)


def choose_device(requested: str) -> tuple[str, str | None]:
    """'auto' | 'cpu' | 'cuda' -> (device to use, a message when the request cannot be met)."""
    if requested == "cpu":
        return "cpu", None
    if torch.cuda.is_available():
        return "cuda", None
    if requested == "cuda":
        return "cpu", "CUDA was requested but no CUDA GPU is available: running on the CPU"
    return "cpu", None
