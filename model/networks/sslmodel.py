"""SSLModel: the audio-visual model whose cosine map localizes the sound in the frame."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.preprocess.audio import AudioConfig
from model.common.config_checks import check_fields
from model.networks.encoders import audio_encoder, visual_encoder
from model.knowledge.config import SemanticConfig
from model.networks.object_guidance import ObjectGuidance, objectness
from model.networks.presence import PresenceConfig

VISUAL_BACKBONES = ("resnet18", "efficientnet_lite0")
# backbone -> the audio front end it takes
AUDIO_BACKBONES = {"resnet18": "linear", "aisfx": "sfx_mel", "yamnet": "yamnet_mel"}


@dataclass
class ModelConfig:
    """Architecture. Defaults are SSL-Align's; EZ-VSL is both strides 2 and ``projection=True``."""

    layer4_stride: int = 1  # visual: 1 gives a 14x14 map at 224 (SSL-Align); 2: 7x7 (EZ-VSL)
    audio_layer4_stride: int = 1  # SSL-Align's audio ResNet also has a stride-1 layer4; EZ-VSL: 2
    projection: bool = False  # EZ-VSL's img_proj (1x1 conv) and aud_proj (linear) heads
    embed_dim: int = 512
    image_size: int = 224
    # resnet18: the published layout; efficientnet_lite0: ImageNet-pretrained, stride 16 (14x14 at 224),
    # a 1x1 projection to 512 (``model.networks.backbones``); ``layer4_stride`` applies to resnet18 only
    visual_backbone: str = "resnet18"
    # resnet18: the paper's, on the published log spectrogram; aisfx: the pretrained sound-effects net on its
    # mel bands (``model.networks.sfx_encoder``) and a linear projection to 512; yamnet: YAMNet's AudioSet embedding
    # of its log-mel patches and a projection to 512 (``model.networks.yamnet_encoder``); ``audio_layer4_stride`` is
    # resnet18's
    audio_backbone: str = "resnet18"

    RANGES = {"layer4_stride": {1, 2}, "audio_layer4_stride": {1, 2}, "embed_dim": (1, 4096),
              "image_size": (32, 1024, 16)}  # config_checks

    def __post_init__(self):
        check_fields(self)
        if self.visual_backbone not in VISUAL_BACKBONES:
            raise ValueError(f"visual_backbone must be one of {', '.join(VISUAL_BACKBONES)}, "
                             f"not {self.visual_backbone!r}")
        if self.audio_backbone not in AUDIO_BACKBONES:
            raise ValueError(f"audio_backbone must be one of {', '.join(AUDIO_BACKBONES)}, "
                             f"not {self.audio_backbone!r}")


class SSLModel(nn.Module):
    """Visual and audio ResNet-18s; everything they return is L2-normalised.

    ``audio_config`` is the spectrogram this model was trained on (it travels in checkpoints), as do
    ``presence``, the threshold of its "is the sound in the picture?" score, and ``guidance``, the share of
    the visual encoder's objectness in its heatmaps (``model.networks.object_guidance``).
    """

    def __init__(self, config: ModelConfig | None = None, audio_config: AudioConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        frontend = AUDIO_BACKBONES[self.config.audio_backbone]
        self.audio_config = audio_config or AudioConfig(frontend=frontend)
        if self.audio_config.frontend != frontend:
            raise ValueError(f"the {self.config.audio_backbone} audio encoder takes the {frontend} front end, "
                             f"not {self.audio_config.frontend}")
        self.presence = PresenceConfig()  # calibrated by ``model.evaluation.calibrate``; travels in checkpoints
        self.guidance = ObjectGuidance()  # chosen by ``model.evaluation.calibrate``; travels in checkpoints
        self.semantic = SemanticConfig()  # the pretrained knowledge's share (``model.knowledge``); travels in checkpoints
        self.imgnet = self._visual_encoder()
        self.audnet = self._audio_encoder()
        if self.config.projection:
            self.img_proj = nn.Conv2d(512, self.config.embed_dim, kernel_size=1)
            self.aud_proj = nn.Linear(512, self.config.embed_dim)

    def _visual_encoder(self) -> nn.Module:
        if self.config.visual_backbone == "efficientnet_lite0":
            from model.networks.backbones import LiteVisualEncoder

            return LiteVisualEncoder(512)
        return visual_encoder(self.config.layer4_stride)

    def _audio_encoder(self) -> nn.Module:
        if self.config.audio_backbone == "aisfx":
            from model.networks.sfx_encoder import SfxAudioEncoder

            return SfxAudioEncoder(512)
        if self.config.audio_backbone == "yamnet":
            from model.networks.yamnet_encoder import YamNetAudioEncoder

            return YamNetAudioEncoder(512)
        return audio_encoder(self.config.audio_layer4_stride)

    def encode_visual(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images (B, 3, 224, 224) -> (unit-norm visual map (B, D, h, w), objectness (B, h, w):
        the norm of the backbone's features before any projection, ``model.networks.object_guidance``)."""
        if self.config.visual_backbone == "efficientnet_lite0":
            features = self.imgnet.trunk(images)  # (B, 1280, h, w)
            maps = self.imgnet.proj(features)  # (B, 512, h, w)
        else:
            features = maps = self.imgnet(images)  # (B, 512, h, w)
        if self.config.projection:
            maps = self.img_proj(maps)  # (B, D, h, w)
        return F.normalize(maps, dim=1), objectness(features)

    def encode_image_map(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, 3, 224, 224) -> unit-norm visual map (B, D, h, w)."""
        return self.encode_visual(images)[0]

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, 3, 224, 224) -> global unit visual vector (B, D) (pooled map)."""
        return pool_visual_map(self.encode_image_map(images))

    def encode_audio(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """Log spectrograms (B, 1, F, T) -> unit audio vector (B, D) (resnet18: global max pool of its map)."""
        feats = self.audnet(spectrograms)
        if self.config.audio_backbone == "resnet18":
            feats = feats.amax(dim=(2, 3))  # (B, 512)
        if self.config.projection:
            feats = self.aud_proj(feats)  # (B, D)
        return F.normalize(feats, dim=1)

    def localize(self, images: torch.Tensor, spectrograms: torch.Tensor) -> torch.Tensor:
        """Raw cosine maps (B, h, w) between each clip's sound and every position of its frame."""
        return cosine_map(self.encode_image_map(images), self.encode_audio(spectrograms))

    def forward(self, images: torch.Tensor, spectrograms: torch.Tensor):
        """(visual map (B, D, h, w), audio vector (B, D)), both unit-norm: what the losses take."""
        return self.encode_image_map(images), self.encode_audio(spectrograms)


def pool_visual_map(visual_map: torch.Tensor) -> torch.Tensor:
    """Unit visual map (B, D, h, w) -> unit global visual vector (B, D) by average pooling."""
    return F.normalize(visual_map.mean(dim=(2, 3)), dim=1)


def cosine_map(visual_map: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Unit map (B, D, h, w) and unit audio (B, D) -> cosine similarity per position (B, h, w)."""
    return torch.einsum("bdhw,bd->bhw", visual_map, audio)
