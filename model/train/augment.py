"""Hand-crafted augmented views: the image and audio positives of SSL-Align's loss."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchaudio.transforms as AT
from torchvision.transforms import v2

from model.audio import AudioConfig, spectrogram
from model.transforms import frame_to_tensor, normalize_image


@dataclass
class AugmentConfig:
    """Strength of each augmentation (image: crop, flip, colour; audio: shift, gain, noise, masks)."""

    crop_scale_min: float = 0.5
    flip_p: float = 0.5
    color_jitter: float = 0.4
    grayscale_p: float = 0.2
    max_shift_seconds: float = 0.5
    gain_db: float = 6.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    time_mask_frames: int = 30
    freq_mask_bins: int = 30


# Named strengths of the views (``ssl-train --views``): the published recipe's, and a weaker one that keeps
# most of the frame (no colour changes, crops of 80-100 %) and most of the sound (short masks, little noise).
VIEW_STRENGTHS = {
    "paper": AugmentConfig(),
    "weak": AugmentConfig(crop_scale_min=0.8, color_jitter=0.0, grayscale_p=0.0, max_shift_seconds=0.25,
                          gain_db=3.0, noise_snr_db=(20.0, 40.0), time_mask_frames=10, freq_mask_bins=10),
}


class ImageAugment:
    """RGB uint8 frame (H, W, 3) -> augmented, normalised image (3, size, size)."""

    def __init__(self, config: AugmentConfig | None = None, size: int = 224):
        c = config or AugmentConfig()
        j = c.color_jitter
        self.transform = v2.Compose([
            v2.RandomResizedCrop(size, scale=(c.crop_scale_min, 1.0), antialias=True),
            v2.RandomHorizontalFlip(c.flip_p),
            v2.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(j / 4, 0.5)),
            v2.RandomGrayscale(c.grayscale_p),
        ])

    def __call__(self, frame: np.ndarray) -> torch.Tensor:
        return normalize_image(self.transform(frame_to_tensor(frame)))


class AudioAugment:
    """16 kHz waveform (N,) -> spectrogram (1, F, T) of a shifted, rescaled, noisy, masked view. The mask sizes are
    in the published spectrogram's units (257 bins, 9.9-ms frames); another front end (``sfx_mel``) gets masks of
    the same share of its bands and frames."""

    def __init__(self, config: AugmentConfig | None = None, audio_config: AudioConfig | None = None):
        self.config = config or AugmentConfig()
        self.audio_config = audio_config or AudioConfig()
        published = AudioConfig(seconds=self.audio_config.seconds)
        frames = self.audio_config.num_frames / published.num_frames
        bins = self.audio_config.num_bins / published.num_bins
        self.time_mask = AT.TimeMasking(max(1, round(self.config.time_mask_frames * frames)))
        self.freq_mask = AT.FrequencyMasking(max(1, round(self.config.freq_mask_bins * bins)))

    def __call__(self, waveform) -> torch.Tensor:
        c = self.config
        x = torch.as_tensor(np.asarray(waveform), dtype=torch.float32).reshape(-1)  # (N,)
        max_shift = int(c.max_shift_seconds * self.audio_config.sample_rate)
        x = torch.roll(x, int(torch.randint(-max_shift, max_shift + 1, ())))
        x = x * 10 ** (float(torch.empty(()).uniform_(-c.gain_db, c.gain_db)) / 20)
        snr_db = float(torch.empty(()).uniform_(*c.noise_snr_db))
        signal_power = x.pow(2).mean().clamp_min(1e-10)
        x = x + torch.randn_like(x) * torch.sqrt(signal_power / 10 ** (snr_db / 10))
        spec = spectrogram(x, self.audio_config)  # (1, F, T)
        return self.freq_mask(self.time_mask(spec))
