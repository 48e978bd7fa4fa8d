"""Quiet noise, the sound of no picture: the extra negatives of ``ssl-train --silence-negatives N``.

A microphone in a quiet room hears its own hiss and the room's rumble. Each window here is white noise mixed
with brown noise (its running sum) in a random proportion, at an RMS level drawn uniformly in dB from
``QUIET_DBFS``; every step encodes N of them and puts them among every image's candidates in both terms of the
loss, with no image to match (``model.train.loss``). Nothing is annotated: they are made, as the augmented views
are. The benchmark's silent negatives (``ssl-synth --negatives silence``) are another recipe (its own background
noise, and levels up to -34 dBFS, louder than any window here): a test of what this teaches, not a copy of it.
"""
from __future__ import annotations

import numpy as np
import torch

from model.preprocess.audio import AudioConfig, spectrogram

QUIET_DBFS = (-65.0, -40.0)  # RMS level of a window, dB full scale


def quiet_noise(count: int, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(count, num_samples) float32 windows of quiet noise, each at its own level within ``QUIET_DBFS``."""
    white = rng.standard_normal((count, num_samples))
    brown = np.cumsum(rng.standard_normal((count, num_samples)), axis=1)
    brown -= brown.mean(axis=1, keepdims=True)
    share = rng.uniform(0.0, 1.0, (count, 1))  # of brown noise in the mix
    mix = (1 - share) * white / white.std(axis=1, keepdims=True) + share * brown / brown.std(axis=1, keepdims=True)
    rms = 10 ** (rng.uniform(*QUIET_DBFS, (count, 1)) / 20)
    return (mix / np.sqrt(np.mean(mix ** 2, axis=1, keepdims=True)) * rms).astype(np.float32)


def quiet_spectrograms(count: int, config: AudioConfig, rng: np.random.Generator) -> torch.Tensor:
    """(count, 1, F, T) spectrograms of ``quiet_noise`` windows as the model's audio front end makes them."""
    return torch.stack([spectrogram(w, config) for w in quiet_noise(count, config.num_samples, rng)])
