"""The visual encoder's start: ImageNet weights (installed or a user's file) and what of it is frozen."""
from __future__ import annotations

from pathlib import Path

import torch

from model.networks.backbones import MapCache
from model.checkpoints.store import CheckpointError, check_finite
from model.common.pickles import PickleRefused, load_weights
from model.networks.sslmodel import SSLModel

IMAGENET = "imagenet"  # --image-init value: the installed ImageNet weights of the visual backbone


def load_image_init(model: SSLModel, path) -> None:
    """Load ImageNet weights into the visual encoder (``torch.load(weights_only=True)``): for
    efficientnet_lite0 the installed weights (``path`` "imagenet") or such a file; for resnet18
    torchvision's ResNet-18 state dict, its classifier (``fc.*``) dropped."""
    if model.config.visual_backbone == "efficientnet_lite0":
        model.imgnet.trunk.load_imagenet(None if path == IMAGENET else path)
        check_finite(model.imgnet.state_dict(), path)
        return
    if path == IMAGENET:
        raise CheckpointError("ImageNet ResNet-18 weights are not installed (torchvision downloads them): give "
                              "the .pth file, or use --visual-backbone efficientnet_lite0")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ImageNet ResNet-18 weights not found: {path} (--image-init expects "
                              "torchvision's resnet18 state dict, e.g. resnet18-f37072fd.pth)")
    try:
        state = load_weights(path)
    except PickleRefused as exc:
        raise CheckpointError(str(exc)) from None
    except Exception as exc:  # any unreadable file: a message the user can act on
        raise CheckpointError(f"{path} is not a torch state dict ({exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a ResNet-18 state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = model.imgnet.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit a ResNet-18: {exc}") from exc
    if missing or unexpected:
        raise CheckpointError(f"{path} is not a ResNet-18 state dict: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    check_finite(model.imgnet.state_dict(), path)


def prepare_visual_training(model: SSLModel, freeze: str, cache_mb: int) -> None:
    """Freeze the part of the pretrained visual encoder that ``freeze`` (``--freeze-visual``) names and
    give it a map cache of ``cache_mb`` MB."""
    if freeze == "none":
        return
    if model.config.visual_backbone != "efficientnet_lite0":
        raise ValueError("--freeze-visual needs the pretrained backbone (--visual-backbone efficientnet_lite0)")
    model.imgnet.trunk.freeze(freeze)
    if cache_mb:
        model.imgnet.trunk.cache = MapCache(cache_mb * 2**20)
