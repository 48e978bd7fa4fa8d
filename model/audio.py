"""Audio front end: the log spectrogram the published SSL-Align code feeds its audio encoder.

The published code computes ``scipy.signal.spectrogram(x, 16000, nperseg=512, noverlap=353)``
(a Tukey(0.25) window, constant detrending, one-sided PSD density), takes ``log(S + 1e-7)`` and
normalises with mean 0, std 12. This module reproduces that in torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class AudioConfig:
    """How a waveform becomes the spectrogram the audio encoder sees."""

    sample_rate: int = 16000
    seconds: float = 3.0  # window length around the current moment
    nperseg: int = 512  # FFT window (257 frequency bins)
    noverlap: int = 353  # published SSL-Align value; EZ-VSL uses 274
    log_eps: float = 1e-7
    norm_mean: float = 0.0
    norm_std: float = 12.0

    @property
    def num_samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    @property
    def num_frames(self) -> int:
        """Spectrogram frames T for a window of ``num_samples``."""
        step = self.nperseg - self.noverlap
        return (self.num_samples - self.noverlap) // step


def tukey_window(n: int, alpha: float = 0.25) -> torch.Tensor:
    """Periodic Tukey window, as ``scipy.signal.get_window(('tukey', alpha), n)``."""
    m = n + 1  # periodic window = symmetric window of n + 1 points without its last point
    x = np.arange(m, dtype=np.float64)
    width = int(np.floor(alpha * (m - 1) / 2.0))
    w = np.ones(m)
    w[: width + 1] = 0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * x[: width + 1] / alpha / (m - 1))))
    tail = x[m - width - 1:]
    w[m - width - 1:] = 0.5 * (1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * tail / alpha / (m - 1))))
    return torch.from_numpy(w[:-1])


def spectrogram(waveform, config: AudioConfig | None = None) -> torch.Tensor:
    """16 kHz mono float waveform (N,) -> normalised log spectrogram (1, 257, T), float32."""
    config = config or AudioConfig()
    x = torch.as_tensor(np.asarray(waveform) if not torch.is_tensor(waveform) else waveform)
    x = x.to(torch.float64).reshape(-1).clamp(-1.0, 1.0)  # the published code clips to [-1, 1]
    step = config.nperseg - config.noverlap
    frames = x.unfold(0, config.nperseg, step)  # (T, nperseg)
    frames = frames - frames.mean(dim=1, keepdim=True)  # scipy's detrend='constant'
    window = tukey_window(config.nperseg).to(frames)
    spec = torch.fft.rfft(frames * window, dim=1).abs() ** 2  # (T, 257)
    scale = 1.0 / (config.sample_rate * (window**2).sum())  # scaling='density'
    spec = spec * scale
    spec[:, 1:-1] *= 2.0 if config.nperseg % 2 == 0 else 1.0  # one-sided: double all but DC/Nyquist
    log_spec = torch.log(spec + config.log_eps)
    log_spec = (log_spec - config.norm_mean) / config.norm_std
    return log_spec.T.unsqueeze(0).to(torch.float32)  # (1, 257, T)
