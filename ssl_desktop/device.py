"""Where the model runs."""
from __future__ import annotations

import torch


def choose_device(requested: str) -> tuple[str, str | None]:
    """'auto' | 'cpu' | 'cuda' -> (device to use, a message when the request cannot be met)."""
    if requested == "cpu":
        return "cpu", None
    if torch.cuda.is_available():
        return "cuda", None
    if requested == "cuda":
        return "cpu", "CUDA was requested but no CUDA GPU is available: running on the CPU"
    return "cpu", None
