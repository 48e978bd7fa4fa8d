"""Is the sound in the picture? The presence score of a (frame, sound) pair and its calibrated threshold.

The score is the peak of the raw cosine map: a heatmap always has a hottest place, but when the sound is
silence or comes from off-screen that place matches it less well than a visible source does. The
threshold is picked on a validation folder that holds negatives (annotation entries with
``"negative": "silence" | "offscreen"``, ``ssl-synth --negatives``) and travels in the checkpoint:
``ssl-train --val`` picks it after every epoch when its folder has negatives, or afterwards::

    python -m model.evaluation.calibrate presence --data VAL_DIR --checkpoint CKPT [--out CKPT2] [--device cpu]

A calibrated model's app fades the overlay and says "silence" whenever the sound window is quieter than
``silence_dbfs`` (a knowing model's app: unless YAMNet names a thing's sound surely,
``model.knowledge.semantic.names_surely``), and "the sound is not in view" when the score is below the threshold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from model.common.config_checks import check_fields

SILENCE, NOT_IN_VIEW = "silence", "the sound is not in view"


@dataclass
class PresenceConfig:
    """The calibration saved in a checkpoint's ``presence`` metadata."""

    threshold: float | None = None  # peak cosine below which the sound is not in the picture; None: uncalibrated
    silence_dbfs: float = -50.0  # a sound window with a lower RMS level (dB full scale) is silence
    calibrated_on: str = ""  # the folder the threshold was picked on

    RANGES = {"threshold": (-2.0, 2.0), "silence_dbfs": (-300.0, 0.0)}  # config_checks; a cosine, with room

    def __post_init__(self):
        check_fields(self)


def presence_score(maps: torch.Tensor) -> torch.Tensor:
    """Raw cosine maps (B, h, w) -> presence scores (B,): the peak of each map."""
    return maps.amax(dim=(1, 2))


def level_dbfs(waveform: np.ndarray) -> float:
    """RMS level of a waveform in [-1, 1], in dB full scale (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))) if len(waveform) else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def judge(score: float, dbfs: float, config: PresenceConfig) -> str:
    """'' when the sound is in the picture (or nothing is calibrated), else what the app says: "silence"
    whenever the sound window is quieter than ``silence_dbfs`` (whatever its score: a quiet room's noise
    can match a picture as well as a sound does), "the sound is not in view" below the threshold."""
    if config.threshold is None:
        return ""
    if dbfs < config.silence_dbfs:
        return SILENCE
    return "" if score >= config.threshold else NOT_IN_VIEW
