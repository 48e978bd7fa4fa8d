"""Audio front end: the log spectrogram the published SSL-Align code feeds its audio encoder.

The published code computes ``scipy.signal.spectrogram(x, 16000, nperseg=512, noverlap=353)``
(a Tukey(0.25) window, constant detrending, one-sided PSD density), takes ``log(S + 1e-7)`` and
normalises with mean 0, std 12. This module reproduces that in torch (front end ``linear``).

Front end ``sfx_mel`` is what the pretrained sound-effects encoder (``model.networks.sfx_encoder``) was trained on:
a 96-band HTK mel spectrogram of 44.1 kHz audio (2048-sample Hann window, hop 1024, bands unit-sum
over 0-22.05 kHz, power, ``log10(1 + 10000 x)`` scaled by 1 / 9.4578). It is computed here from 16 kHz audio
with the same window and hop in seconds (743 and 372 samples), so the FFT bins fall on the same
frequencies (21.53 Hz apart) and, with the power scaled by (2048 / 743)^2, hold what a 44.1 kHz STFT of the
upsampled signal holds; the bands above 8 kHz are empty, as they are for any 16 kHz recording.

Front end ``yamnet_mel`` is YAMNet's (``model.knowledge.yamnet.log_mel``): 64 HTK bands of 25-ms windows every
10 ms, ``log(mel + 0.001)``, at 16 kHz only; its encoder cuts the frames into 0.96-s patches.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from model.common.config_checks import FieldError, check_fields
from model.knowledge import yamnet

FRONTENDS = ("linear", "sfx_mel", "yamnet_mel")
# the fewest spectrogram frames each encoder takes (aisfx halves time 3 times; YAMNet needs one 0.96-s patch)
MIN_FRAMES = {"linear": 1, "sfx_mel": 8, "yamnet_mel": yamnet.PATCH}
SFX_RATE, SFX_WINDOW, SFX_HOP = 44100, 2048, 1024  # the sound-effects encoder's STFT at its own rate
SFX_MELS, SFX_LOG_MAX = 96, 9.457798957824707  # mel bands; the log value it scales to 1


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
    # linear: the published log spectrogram; sfx_mel: the sound-effects encoder's mel bands; yamnet_mel: YAMNet's
    frontend: str = "linear"

    RANGES = {"sample_rate": (1000, 384000), "seconds": (0.01, 60.0), "nperseg": (16, 8192), "noverlap": (0, 8191),
              "log_eps": (1e-30, 1.0), "norm_mean": (-1e3, 1e3), "norm_std": (1e-6, 1e3)}  # config_checks

    def __post_init__(self):
        check_fields(self)
        if self.frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {', '.join(FRONTENDS)}, not {self.frontend!r}")
        if self.frontend == "yamnet_mel" and self.sample_rate != yamnet.SAMPLE_RATE:
            raise FieldError("sample_rate",
                             f"the yamnet_mel front end hears {yamnet.SAMPLE_RATE} Hz, not {self.sample_rate}")
        if self.noverlap >= self.nperseg:
            raise FieldError("noverlap", f"must be below nperseg ({self.nperseg}), not {self.noverlap}")
        if self.num_frames < MIN_FRAMES[self.frontend]:
            raise FieldError("seconds", f"{self.seconds} at {self.sample_rate} Hz gives {max(self.num_frames, 0)} "
                                        f"spectrogram frames; the {self.frontend} front end needs "
                                        f"{MIN_FRAMES[self.frontend]} or more")

    @property
    def num_samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    @property
    def num_bins(self) -> int:
        """Frequency rows F of the spectrogram (1, F, T)."""
        return {"sfx_mel": SFX_MELS, "yamnet_mel": yamnet.MELS}.get(self.frontend, self.nperseg // 2 + 1)

    @property
    def num_frames(self) -> int:
        """Spectrogram frames T for a window of ``num_samples``."""
        if self.frontend == "sfx_mel":  # centred frames, as librosa and Essentia cut them
            return self.num_samples // sfx_hop(self.sample_rate) + 1
        if self.frontend == "yamnet_mel":  # a window shorter than one FFT window is padded to one
            return max(self.num_samples - yamnet.WINDOW, 0) // yamnet.HOP + 1
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
    """16 kHz mono float waveform (N,) -> normalised log spectrogram (1, F, T), float32: F = 257 linear
    bins (front end ``linear``), 96 mel bands (``sfx_mel``) or YAMNet's 64 (``yamnet_mel``)."""
    config = config or AudioConfig()
    x = torch.as_tensor(np.asarray(waveform) if not torch.is_tensor(waveform) else waveform)
    x = x.to(torch.float64).reshape(-1).clamp(-1.0, 1.0)  # the published code clips to [-1, 1]
    if config.frontend == "sfx_mel":
        return sfx_mel_spectrogram(x, config.sample_rate)
    if config.frontend == "yamnet_mel":
        return yamnet.log_mel(x.to(torch.float32).numpy()).T.unsqueeze(0)  # (1, 64, T)
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


def sfx_window(sample_rate: int) -> int:
    """The sound-effects encoder's 2048-sample window at 44.1 kHz, in samples at ``sample_rate``."""
    return int(round(SFX_WINDOW * sample_rate / SFX_RATE))


def sfx_hop(sample_rate: int) -> int:
    return int(round(SFX_HOP * sample_rate / SFX_RATE))


@functools.lru_cache(maxsize=4)
def sfx_mel_filters(sample_rate: int) -> torch.Tensor:
    """(96, bins) HTK mel triangles over 0-22.05 kHz, each summing to 1 on the 44.1 kHz FFT grid, kept
    for the bins a ``sample_rate`` STFT of the same window length in seconds has (float64)."""
    grid = np.linspace(0, SFX_RATE / 2, SFX_WINDOW // 2 + 1)  # the 44.1 kHz FFT bin frequencies
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731 (HTK)
    edges = 700.0 * (10 ** (np.linspace(mel(0.0), mel(SFX_RATE / 2), SFX_MELS + 2) / 2595.0) - 1.0)
    rising = (grid[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - grid[None, :]) / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)  # unit sum per band
    return torch.from_numpy(weights[:, : sfx_window(sample_rate) // 2 + 1])


def sfx_mel_spectrogram(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Clipped waveform (N,) float64 -> the sound-effects encoder's scaled log mel bands (1, 96, T)."""
    window, hop = sfx_window(sample_rate), sfx_hop(sample_rate)
    x = torch.nn.functional.pad(x[None, None], (window // 2, window // 2))[0, 0]  # centred frames
    frames = x.unfold(0, window, hop)  # (T, window)
    hann = torch.hann_window(window, periodic=True, dtype=torch.float64)
    power = torch.fft.rfft(frames * hann, dim=1).abs() ** 2 * (SFX_WINDOW / window) ** 2  # (T, bins)
    bands = power @ sfx_mel_filters(sample_rate).T  # (T, 96)
    return (torch.log10(1.0 + 10000.0 * bands) / SFX_LOG_MAX).T.unsqueeze(0).to(torch.float32)
