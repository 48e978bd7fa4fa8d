"""After training: average checkpoints, calibrate the presence threshold, choose the object-guidance weight.

Each command writes a checkpoint (the calibrations travel in its metadata); an average keeps the first
checkpoint's calibrations, so calibrate it afresh::

    python -m model.evaluation.calibrate average A.safetensors B.safetensors [--weights 0.5 0.5] --out SOUP.safetensors
    python -m model.evaluation.calibrate presence --data VAL --checkpoint SOUP.safetensors [--out CKPT2] [--device cpu]
    python -m model.evaluation.calibrate object-guidance --data VAL --checkpoint SOUP.safetensors   # or --weight W
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

import numpy as np
import torch

from model.checkpoints.average import average_checkpoints
from model.checkpoints.store import CheckpointError, load_model, resave_model
from model.common.device import resolve_device
from model.evaluation import metrics
from model.evaluation.evaluate import open_dataset, predict
from model.evaluation.presence_metrics import summarize
from model.inference.heatmap import to_heatmap
from model.networks.object_guidance import ObjectGuidance, mix
from model.networks.presence import PresenceConfig, presence_score

GUIDANCE_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))  # the grid ``choose_guidance`` searches


def calibrate_presence(model, dataset, device="cpu", pred=None, folder: str | None = None) -> PresenceConfig:
    """Pick the threshold on ``dataset`` (matched items against all its negatives; ``pred``: the model's
    predictions on it, when made already); the model keeps it, with the folder it was picked on (``folder``,
    default the dataset's root)."""
    if pred is None:
        pred = predict(model, dataset, device)
    found = summarize(presence_score(pred.maps).numpy(), pred.negatives)
    if "best_threshold" not in found:
        raise ValueError("presence calibration needs matched items and negatives "
                         "(annotations with \"negative\": \"silence\" | \"offscreen\")")
    model.presence = PresenceConfig(found["best_threshold"], model.presence.silence_dbfs,
                                    folder if folder is not None else str(getattr(dataset, "root", "")))
    return model.presence


def mean_adaptive_iou(maps: torch.Tensor, boxes: list) -> float:
    """Mean IoU, at the adaptive threshold, of maps (N, h, w) against their items' boxes (items without skipped)."""
    ious = metrics.box_cious(to_heatmap(maps, (metrics.SIZE, metrics.SIZE)), boxes, "adaptive")
    if np.isnan(ious).all():
        raise ValueError("choosing the object guidance needs items with boxes")
    return float(np.nanmean(ious))


def choose_guidance(cosine: torch.Tensor, objectness_map: torch.Tensor,
                    boxes: list) -> tuple[float, dict[float, float]]:
    """The weight of ``GUIDANCE_WEIGHTS`` whose guided maps have the highest mean adaptive IoU against the boxes
    (of equal ones, the smallest), and that IoU for every weight."""
    scores = {w: mean_adaptive_iou(mix(cosine, objectness_map, w), boxes) for w in GUIDANCE_WEIGHTS}
    best = max(scores.values())
    return min(w for w, s in scores.items() if np.isclose(s, best, rtol=0, atol=1e-9)), scores


def _average(args) -> int:
    try:
        weights = average_checkpoints(args.checkpoints, args.out, args.weights)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"average: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read-only or full disk, an output that is a folder
        print(f"average: error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, "checkpoints": args.checkpoints, "weights": weights}))
    return 0


def _presence(args) -> int:
    try:
        device = resolve_device(args.device)
        model = load_model(args.checkpoint, device)
        dataset = open_dataset(args.data, model)
        config = calibrate_presence(model, dataset, device)
        resave_model(args.checkpoint, args.out or args.checkpoint, model)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"presence: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(config)))
    return 0


def _object_guidance(args) -> int:
    try:
        device = resolve_device(args.device)
        model = load_model(args.checkpoint, device)
        if args.weight is not None:
            model.guidance = ObjectGuidance(args.weight, "set by hand")
            scores = {}
        else:
            pred = predict(model, open_dataset(args.data, model), device)
            weight, scores = choose_guidance(pred.maps, pred.objectness, pred.boxes)
            model.guidance = ObjectGuidance(weight, str(args.data))
        resave_model(args.checkpoint, args.out or args.checkpoint, model)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"object_guidance: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({**asdict(model.guidance), "mean_adaptive_iou": {str(w): round(s, 4) for w, s in scores.items()}}))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.evaluation.calibrate", description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="command", required=True)

    average = commands.add_parser("average", description='Weight averaging ("model soup"): one checkpoint whose '
                                  "weights are a weighted mean of several.")
    average.add_argument("checkpoints", nargs="+", help="two or more ssl-desktop checkpoints of one architecture")
    average.add_argument("--weights", type=float, nargs="+", help="one per checkpoint, summing to 1 (default: equal)")
    average.add_argument("--out", required=True)
    average.set_defaults(run=_average)

    presence = commands.add_parser("presence", description="Is the sound in the picture? The presence score of a "
                                   "(frame, sound) pair and its calibrated threshold.")
    presence.add_argument("--data", required=True, help="validation folder with matched items and negatives")
    presence.add_argument("--checkpoint", required=True)
    presence.add_argument("--out", help="where to write the calibrated checkpoint (default: the checkpoint itself)")
    presence.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    presence.set_defaults(run=_presence)

    guidance = commands.add_parser("object-guidance", description="Object-guided localization: the cosine map "
                                   "mixed with where the visual encoder sees objects.")
    guidance.add_argument("--data", help="validation folder with boxes: choose the weight there")
    guidance.add_argument("--weight", type=float,
                          help="set this weight instead of choosing one (0: the cosine map alone)")
    guidance.add_argument("--checkpoint", required=True)
    guidance.add_argument("--out", help="where to write the checkpoint (default: the checkpoint itself)")
    guidance.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    guidance.set_defaults(run=_object_guidance)

    args = p.parse_args(argv)
    if args.command == "object-guidance" and (args.data is None) == (args.weight is None):
        guidance.error("give --data (choose the weight on it) or --weight (set it), not both")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
