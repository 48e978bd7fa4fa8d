"""Is the sound in the picture? The presence score of a (frame, sound) pair and its calibrated threshold.

The score is the peak of the raw cosine map: a heatmap always has a hottest place, but when the sound is
silence or comes from off-screen that place matches it less well than a visible source does. The
threshold is picked on a validation folder that holds negatives (annotation entries with
``"negative": "silence" | "offscreen"``, ``ssl-synth --negatives``) and travels in the checkpoint:
``ssl-train --val`` picks it after every epoch when its folder has negatives, or afterwards::

    python -m model.presence --data VAL_DIR --checkpoint CKPT [--out CKPT2] [--device cpu]

A calibrated model's app fades the overlay and says "silence" whenever the sound window is quieter than
``silence_dbfs``, and "the sound is not in view" when the score is below the threshold.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch

from model.config_checks import check_fields

NEGATIVE_KINDS = ("silence", "offscreen")
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


def auroc(positives, negatives) -> float:
    """Area under the ROC curve of scores that should be higher for ``positives`` (ties count half), in %."""
    pos, neg = np.asarray(positives, float), np.asarray(negatives, float)
    if not len(pos) or not len(neg):
        return math.nan
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return 100.0 * float(greater + 0.5 * ties)


def best_threshold(positives, negatives) -> float:
    """The threshold that best separates the two sets (largest true-positive minus false-positive
    rate, the midpoint between two neighbouring scores; of equally good ones, the lowest)."""
    pos, neg = np.sort(np.asarray(positives, float)), np.sort(np.asarray(negatives, float))
    scores = np.unique(np.concatenate([pos, neg]))
    candidates = np.concatenate([[scores[0] - 1e-6], (scores[1:] + scores[:-1]) / 2, [scores[-1] + 1e-6]])
    tpr = 1 - np.searchsorted(pos, candidates, side="left") / len(pos)  # share of positives >= t
    fpr = 1 - np.searchsorted(neg, candidates, side="left") / len(neg)
    return float(candidates[int(np.argmax(np.round(tpr - fpr, 12)))])  # rounded: ties are ties


def summarize(scores, negatives: list[str], threshold: float | None = None) -> dict:
    """Per-item scores and negative kinds ('' for a matched item) -> AUROC matched vs each kind present,
    the threshold that best separates matched items from all negatives (``best_threshold``) and the
    accuracy at ``threshold`` when given. With ``threshold``, also ``in_view``: the share of matched items
    at or over it, those the app shows a heatmap for (with or without negatives in the set). {} with
    neither negatives nor threshold."""
    scores = np.asarray(scores, float)
    kinds = np.asarray(negatives, dtype=object)
    matched = scores[kinds == ""]
    out = {}
    for kind in NEGATIVE_KINDS:
        if (kinds == kind).any():
            out[f"auroc_{kind}"] = auroc(matched, scores[kinds == kind])
            out[f"n_{kind}"] = int((kinds == kind).sum())
    has_negatives = bool(out)
    if has_negatives and len(matched):
        out["best_threshold"] = best_threshold(matched, scores[kinds != ""])
    if threshold is not None and len(matched):
        out["threshold"] = threshold
        out["in_view"] = 100.0 * float(np.mean(matched >= threshold))
        if has_negatives:
            out["accuracy"] = 100.0 * float(np.mean((scores >= threshold) == (kinds == "")))
    return out


def calibrate(model, dataset, device="cpu", pred=None, folder: str | None = None) -> PresenceConfig:
    """Pick the threshold on ``dataset`` (matched items against all its negatives; ``pred``: the model's
    predictions on it, when made already); the model keeps it, with the folder it was picked on (``folder``,
    default the dataset's root)."""
    if pred is None:
        from model.evaluation.evaluate import predict  # evaluation imports the data stack

        pred = predict(model, dataset, device)
    found = summarize(presence_score(pred.maps).numpy(), pred.negatives)
    if "best_threshold" not in found:
        raise ValueError("presence calibration needs matched items and negatives "
                         "(annotations with \"negative\": \"silence\" | \"offscreen\")")
    model.presence = PresenceConfig(found["best_threshold"], model.presence.silence_dbfs,
                                    folder if folder is not None else str(getattr(dataset, "root", "")))
    return model.presence


def main(argv=None) -> int:
    from model.checkpoint import CheckpointError, load_model, resave_model
    from model.evaluation.evaluate import open_dataset
    from model.train.distributed import resolve_device

    p = argparse.ArgumentParser(prog="python -m model.presence", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="validation folder with matched items and negatives")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", help="where to write the calibrated checkpoint (default: the checkpoint itself)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = p.parse_args(argv)
    try:
        device = resolve_device(args.device)
        model = load_model(args.checkpoint, device)
        dataset = open_dataset(args.data, model)
        config = calibrate(model, dataset, device)
        resave_model(args.checkpoint, args.out or args.checkpoint, model)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"presence: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
