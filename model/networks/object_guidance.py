"""Object-guided localization: the cosine map mixed with where the visual encoder sees objects.

EZ-VSL (Mo and Morgado, ECCV 2022) showed that an ImageNet-pretrained network's own activations, with no
sound at all, already point at objects, and added them to its audio-visual map at test time ("object-guided
localization", OGL); later work in this line reports it as a row of its own. Here the objectness of a
position is the L2 norm of the visual backbone's feature map there (before the projection: the frozen
ImageNet EfficientNet-Lite0's 1280 channels for the bundled model), the map the vision-only reference row
scores (``model.evaluation.vision_only``). The guided map is

    (1 - weight) * minmax(cosine) + weight * minmax(objectness),

scored as it is (``mix``) and shown put back into the cosine map's own range (``guide``), so that a fixed colour
scale and the presence score (always the raw cosine's peak, ``model.networks.presence``) keep their meaning.
``weight`` 0 is the paper's map. It is chosen on a validation folder and travels in the checkpoint::

    python -m model.evaluation.calibrate object-guidance --data VAL_DIR --checkpoint CKPT [--out CKPT2] [--weight W]

An objectness map is a visual prior: it lights objects whatever is heard, so the guided map is no
evidence of audio-visual understanding (``ssl-eval`` reports it beside the cosine map's numbers, never
instead of them).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from model.common.config_checks import check_fields

@dataclass
class ObjectGuidance:
    """The mix saved in a checkpoint's ``object_guidance`` metadata."""

    weight: float = 0.0  # share of the objectness map in the heatmap; 0: the cosine map alone
    chosen_on: str = ""  # the folder the weight was chosen on

    RANGES = {"weight": (0.0, 1.0)}  # config_checks

    def __post_init__(self):
        check_fields(self)


def _minmax(maps: torch.Tensor) -> torch.Tensor:
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    return (maps - lo) / (maps.amax(dim=(-2, -1), keepdim=True) - lo).clamp_min(1e-12)


def objectness(features: torch.Tensor) -> torch.Tensor:
    """Backbone feature maps (B, C, h, w) -> objectness (B, h, w): the L2 norm over channels, scaled to
    [0, 1] in each map (the scale of a unit map's values: an int8 encoder packs both in one tensor)."""
    return _minmax(features.norm(dim=1))


def mix(cosine: torch.Tensor, objectness_map: torch.Tensor, weight: float) -> torch.Tensor:
    """Cosine maps and objectness maps (B, h, w) -> the guided maps (B, h, w) in [0, 1]: what is scored."""
    return (1.0 - weight) * _minmax(cosine) + weight * _minmax(objectness_map.to(cosine.dtype))


def guide(cosine: torch.Tensor, objectness_map: torch.Tensor, weight: float) -> torch.Tensor:
    """Cosine maps and objectness maps (B, h, w) -> the guided maps (B, h, w) in each cosine map's range:
    what is shown (a nearly flat cosine map, as from an untrained model, stays nearly flat)."""
    if weight == 0.0:
        return cosine
    lo = cosine.amin(dim=(-2, -1), keepdim=True)
    hi = cosine.amax(dim=(-2, -1), keepdim=True)
    return lo + (hi - lo) * mix(cosine, objectness_map, weight)
