"""Contrastive losses: SSL-Align's multi-positive alignment loss and the EZ-VSL baseline.

A batch holds N items (audio vector + visual map each). Items come in groups: one clip, its
hand-crafted augmented views and its nearest-neighbour clips share a group id, and every pair of
items in a group is a positive pair; all other pairs are negatives. Two similarities are
contrasted, each in both directions (audio->image and image->audio):

- localization: the max over the visual map of the cosine with the audio vector (EZ-VSL);
- alignment: the cosine between the audio vector and the pooled global visual vector.

The multi-positive InfoNCE averages the log-likelihood over every positive of a query
(SupCon-style), weighted where positives carry weights (bridge-mined ones weigh their evidence). With one
item per group it is EZ-VSL's single-positive loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.networks.sslmodel import pool_visual_map


@dataclass
class LossConfig:
    """kind: "align" (both terms, multiple positives) or "ezvsl" (localization term, single positive)."""

    kind: str = "align"
    temperature: float = 0.03
    localization_weight: float = 1.0
    alignment_weight: float = 1.0


@dataclass
class LossOutput:
    total: torch.Tensor
    localization: torch.Tensor
    alignment: torch.Tensor


def positive_mask(groups: torch.Tensor, clip_ids: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) group ids [and (N,) clip ids] -> (N, N) bool: same group, or the same clip seen twice."""
    mask = groups[:, None] == groups[None, :]  # (N, N)
    if clip_ids is not None:
        mask |= clip_ids[:, None] == clip_ids[None, :]  # a neighbour that is also an anchor elsewhere
    return mask


def positive_weights(groups: torch.Tensor, clip_ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(N,) group ids, clip ids and item weights -> (N, N) float: a pair of one group weighs the smaller of its
    items' weights (views and neighbours 1, a bridge-mined positive its evidence), the same clip seen twice 1,
    any other pair 0. With every weight 1 it is ``positive_mask``."""
    same_group = groups[:, None] == groups[None, :]  # (N, N)
    pair = torch.minimum(weights[:, None], weights[None, :])  # (N, N)
    mask = torch.where(same_group, pair, torch.zeros_like(pair))
    return torch.where(clip_ids[:, None] == clip_ids[None, :], torch.ones_like(mask), mask)


def localization_similarity(visual_maps: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Unit maps (N, D, h, w), unit audio (N, D) -> (N_audio, N_image): max over positions."""
    sims = torch.einsum("ad,idhw->aihw", audio, visual_maps)  # (N_a, N_i, h, w)
    return sims.flatten(2).amax(dim=2)  # (N_a, N_i)


def alignment_similarity(visual_maps: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Unit maps (N, D, h, w), unit audio (N, D) -> (N_audio, N_image): cosine with pooled vector."""
    return audio @ pool_visual_map(visual_maps).T  # (N_a, N_i)


def multi_positive_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean over queries (rows) of the (weighted) mean negative log-likelihood of each row's positives."""
    log_prob = F.log_softmax(logits, dim=1)  # (N, N)
    pos = positives.to(log_prob.dtype)  # (N, N)
    return (-(log_prob * pos).sum(dim=1) / pos.sum(dim=1)).mean()


def symmetric_nce(similarity: torch.Tensor, positives: torch.Tensor, temperature: float,
                  negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Average of the audio->image (rows) and image->audio (columns) contrasts. ``negatives`` (M, N_i): the
    similarities of M sounds that are no image's positive, extra candidates of every image->audio contrast."""
    logits = similarity / temperature  # (N_a, N_i)
    a2i = multi_positive_nce(logits, positives)  # each audio against all images
    image_logits, image_positives = logits.T, positives.T  # (N_i, N_a)
    if negatives is not None:
        image_logits = torch.cat([image_logits, negatives.T / temperature], dim=1)  # (N_i, N_a + M)
        image_positives = F.pad(image_positives, (0, negatives.shape[0]))  # never positives
    i2a = multi_positive_nce(image_logits, image_positives)  # each image against all audios
    return 0.5 * (a2i + i2a)


class ContrastiveLoss(nn.Module):
    """``forward(visual_maps, audio, groups=None, clip_ids=None, negative_audio=None, weights=None) -> LossOutput``.

    ``groups=None`` means every item is its own group (single positive). The "ezvsl" kind ignores
    groups and the alignment term, so it is exactly the published EZ-VSL objective. ``negative_audio``
    (M, D): unit vectors of sounds that belong to no picture (quiet noise: ``--silence-negatives``), added to
    every image's candidates in both terms. ``weights`` (N,): each item's weight as a positive of its group
    (``positive_weights``); None: all 1.
    """

    def __init__(self, config: LossConfig | None = None):
        super().__init__()
        self.config = config or LossConfig()
        if self.config.kind not in ("align", "ezvsl"):
            raise ValueError(f"unknown loss kind {self.config.kind!r}: use 'align' or 'ezvsl'")

    def forward(self, visual_maps, audio, groups=None, clip_ids=None, negative_audio=None, weights=None) -> LossOutput:
        n = audio.shape[0]
        if groups is None or self.config.kind == "ezvsl":
            positives = torch.eye(n, dtype=torch.bool, device=audio.device)  # (N, N) diagonal
        elif weights is not None:
            positives = positive_weights(groups, clip_ids, weights)  # (N, N) float
        else:
            positives = positive_mask(groups, clip_ids)  # (N, N)
        t = self.config.temperature
        extra = negative_audio is not None and len(negative_audio) > 0
        loc_negatives = localization_similarity(visual_maps, negative_audio) if extra else None  # (M, N_i)
        loc = symmetric_nce(localization_similarity(visual_maps, audio), positives, t, loc_negatives)
        if self.config.kind == "ezvsl":
            return LossOutput(loc, loc, torch.zeros_like(loc))
        align_negatives = alignment_similarity(visual_maps, negative_audio) if extra else None
        align = symmetric_nce(alignment_similarity(visual_maps, audio), positives, t, align_negatives)
        total = self.config.localization_weight * loc + self.config.alignment_weight * align
        return LossOutput(total, loc, align)
