"""Feature bank for SSL-Align's "conceptually similar" positives: each clip's k nearest neighbours."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file


class FeatureBank:
    """One unit feature vector per dataset clip; refreshed during training or supplied by a user.

    Rows never written yet are ignored when searching neighbours.
    """

    def __init__(self, size: int, dim: int):
        self.features = torch.zeros(size, dim)  # (N, D)
        self.filled = torch.zeros(size, dtype=torch.bool)  # (N,)

    @classmethod
    def from_file(cls, path, size: int) -> "FeatureBank":
        """Features a user supplies: a safetensors file with a ``features`` tensor (N, D), one row per clip."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"neighbour feature file not found: {path}")
        try:
            feats = load_file(str(path)).get("features")
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"{path} is not a safetensors file ({exc}): neighbour features are a "
                             f"safetensors file with a 'features' tensor ({size}, D)") from exc
        if feats is None or feats.dim() != 2 or feats.shape[0] != size or not feats.is_floating_point():
            raise ValueError(f"{path}: expected a 'features' float tensor of shape ({size}, D)")
        if not bool(torch.isfinite(feats).all()):
            raise ValueError(f"{path}: the features hold NaN or infinity")
        bank = cls(size, feats.shape[1])
        bank.update(torch.arange(size), feats)
        return bank

    def update(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """Write features (B, D) for dataset indices (B,)."""
        self.features[indices.cpu()] = F.normalize(features.detach().float().cpu(), dim=1)
        self.filled[indices.cpu()] = True

    def neighbours(self, indices: torch.Tensor, k: int) -> torch.Tensor:
        """Dataset indices (B,) -> their k most similar other filled clips (B, k); -1 where none."""
        indices = indices.cpu()
        sims = self.features[indices] @ self.features.T  # (B, N)
        sims[:, ~self.filled] = -float("inf")
        sims[torch.arange(len(indices)), indices] = -float("inf")  # a clip is not its own neighbour
        k = min(k, self.features.shape[0] - 1)
        values, nearest = sims.topk(k, dim=1)  # (B, k)
        return torch.where(torch.isfinite(values), nearest, torch.full_like(nearest, -1))
