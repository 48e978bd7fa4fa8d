"""Hand-crafted augmented views: the image and audio positives of SSL-Align's loss."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.preprocess.audio import AudioConfig, spectrogram
from model.train import view_ops
from model.preprocess.image import frame_to_tensor, normalize_image


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
    """RGB uint8 frame (H, W, 3) -> augmented, normalised image (3, size, size): a random resized crop, a flip,
    colour jitter (brightness, contrast, saturation, hue in a random order) and grayscale, as torchvision's v2
    ``Compose`` of those four transforms would make it."""

    def __init__(self, config: AugmentConfig | None = None, size: int = 224):
        self.config = config or AugmentConfig()
        self.size = size

    def __call__(self, frame: np.ndarray) -> torch.Tensor:
        c = self.config
        image = frame_to_tensor(frame)
        top, left, h, w = view_ops.random_resized_crop_box(*image.shape[-2:], scale=(c.crop_scale_min, 1.0))
        image = view_ops.resized_crop(image, top, left, h, w, self.size)
        if torch.rand(1) < c.flip_p:
            image = image.flip(-1)
        image = self._jitter(image)
        if torch.rand(1) < c.grayscale_p:
            image = view_ops.grayscale(image).expand(3, -1, -1)
        return normalize_image(image)

    def _jitter(self, image: torch.Tensor) -> torch.Tensor:
        j = self.config.color_jitter
        if j <= 0:
            return image
        order = torch.randperm(4).tolist()
        low = max(0.0, 1.0 - j)
        factors = [float(torch.empty(1).uniform_(low, 1.0 + j)) for _ in range(3)]
        hue = min(j / 4, 0.5)
        factors.append(float(torch.empty(1).uniform_(-hue, hue)))
        operations = (view_ops.adjust_brightness, view_ops.adjust_contrast, view_ops.adjust_saturation,
                      view_ops.adjust_hue)
        for index in order:
            image = operations[index](image, factors[index])
        return image


class AudioAugment:
    """16 kHz waveform (N,) -> spectrogram (1, F, T) of a shifted, rescaled, noisy, masked view. The mask sizes are
    in the published spectrogram's units (257 bins, 9.9-ms frames); another front end (``sfx_mel``, ``yamnet_mel``) gets
    masks of the same share of its bands and frames."""

    def __init__(self, config: AugmentConfig | None = None, audio_config: AudioConfig | None = None):
        self.config = config or AugmentConfig()
        self.audio_config = audio_config or AudioConfig()
        published = AudioConfig(seconds=self.audio_config.seconds)
        frames = self.audio_config.num_frames / published.num_frames
        bins = self.audio_config.num_bins / published.num_bins
        self.time_mask_frames = max(1, round(self.config.time_mask_frames * frames))
        self.freq_mask_bins = max(1, round(self.config.freq_mask_bins * bins))

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
        spec = view_ops.mask_along(spec, self.time_mask_frames, dim=-1)
        return view_ops.mask_along(spec, self.freq_mask_bins, dim=-2)
