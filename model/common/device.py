"""Where the model runs: ``auto`` | ``cpu`` | ``cuda`` -> a torch device, for the command lines and the app."""
from __future__ import annotations

import torch


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA is a ``ValueError``; a CUDA device is
    the ``local_rank``-th GPU (a distributed process's own)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but CUDA is not available")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def choose_device(requested: str) -> tuple[str, str | None]:
    """'auto' | 'cpu' | 'cuda' -> (device to use, a message when the request cannot be met): the app falls back
    to the CPU where a command line refuses."""
    if requested == "cpu":
        return "cpu", None
    if torch.cuda.is_available():
        return "cuda", None
    if requested == "cuda":
        return "cpu", "CUDA was requested but no CUDA GPU is available: running on the CPU"
    return "cpu", None
