"""The pretrained sound-effects audio encoder (``audio_backbone="aisfx"``).

The network is the one the ``aisfx`` package (PyPI 0.1.2, A. B. Ma and A. Lerch, ISMIR 2022, CC BY 4.0)
publishes as the embedding net of its best model, "X-Sequential-CE": four blocks of two 3x3 convolutions with
batch norm and ReLU, 2x2 max pools after the first three, 64 -> 512 channels, then the mean over frequency and
the max over time: a 512-d embedding of a 96-band mel spectrogram (``model.preprocess.audio``, front end ``sfx_mel``).
It is written out here with the package's tensor names; the package itself is installed without its
dependencies (it pins numpy 1.23 and librosa 0.9) and only its weights file is read, with
``torch.load(weights_only=True)``; nothing is downloaded. Its classifier heads are dropped.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.common.pickles import PickleRefused, load_weights

WEIGHTS_PACKAGE = "aisfx"
WEIGHTS_FILE = "models/checkpoint.pth"
FEATURES = 512
CHANNELS = (64, 128, 256, 512)
FREEZE_LEVELS = ("none", "all")


def weights_path() -> Path:
    """The installed weights file, or FileNotFoundError saying how to install it. The package is found,
    not imported: its ``__init__`` imports librosa, which the project does not install."""
    hint = "pip install --no-deps aisfx==0.1.2 (make installs it)"
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the pretrained sound-effects encoder is not installed: {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the weights, {hint}")
    return path


def pretrained_state(path=None) -> dict[str, torch.Tensor]:
    """The embedding net's tensors of the published file (a pickled ``(state_dict, dataset sizes)``
    tuple whose sizes are numpy integers: those classes are allowed, no other code)."""
    path = Path(path) if path else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"sound-effects encoder weights not found: {path}")
    # named as the file names them (pickled under numpy 1.x, where the module was numpy.core)
    allowed = [(np._core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.int64))]
    try:
        loaded = load_weights(path, allowed)
        state = loaded[0] if isinstance(loaded, tuple) else loaded
        prefix = "embedding_net."
        return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    except PickleRefused:
        raise
    except Exception as exc:  # any unreadable file (a pickle with code is refused here): a message to act on
        raise ValueError(f"{path} is not the aisfx checkpoint ({exc})") from exc


class ConvBlock(nn.Module):
    """Two 3x3 convolutions (no bias) with batch norm and ReLU, then a max pool."""

    def __init__(self, inputs: int, outputs: int, pool: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(outputs, outputs, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.max_pool2d(x, self.pool) if self.pool > 1 else x


class SfxNet(nn.Module):
    """Mel bands (B, 1, 96, T) -> 512-d embedding (B, 512), as the published net computes it."""

    def __init__(self):
        super().__init__()
        inputs = 1
        for i, outputs in enumerate(CHANNELS, start=1):
            setattr(self, f"conv_block{i}", ConvBlock(inputs, outputs, 2 if i < len(CHANNELS) else 1))
            inputs = outputs

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        x = spectrograms.transpose(2, 3)  # the published net takes (B, 1, time, frequency)
        for i in range(1, len(CHANNELS) + 1):
            x = getattr(self, f"conv_block{i}")(x)
        return x.mean(dim=3).amax(dim=2)  # mean over frequency, max over time


class SfxAudioEncoder(nn.Module):
    """The sound-effects net and a linear projection: (B, 1, 96, T) -> (B, dim). ``freeze("all")`` fixes the
    net (weights and batch-norm statistics) so that only the projection trains."""

    def __init__(self, dim: int = 512):
        super().__init__()
        self.trunk = SfxNet()
        self.proj = nn.Linear(FEATURES, dim)
        self.frozen = False

    def load_pretrained(self, path=None) -> None:
        try:
            self.trunk.load_state_dict(pretrained_state(path))
        except RuntimeError as exc:
            raise ValueError(f"{path or weights_path()} does not fit the aisfx net: {exc}") from exc

    def freeze(self, level: str) -> None:
        if level not in FREEZE_LEVELS:
            raise ValueError(f"audio freeze level must be one of {', '.join(FREEZE_LEVELS)}, not {level!r}")
        self.frozen = level == "all"
        self.trunk.requires_grad_(not self.frozen)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.trunk.eval()
        return self

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            with torch.no_grad():
                features = self.trunk(spectrograms)
        else:
            features = self.trunk(spectrograms)
        return self.proj(features)
