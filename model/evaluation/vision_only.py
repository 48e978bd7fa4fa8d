"""The vision-only reference row: where an ImageNet network looks with no sound at all.

    python -m model.evaluation.vision_only DATA [--workers N]     # DATA: a folder with annotations.json

The map of a frame is the L2 norm over channels of the ImageNet EfficientNet-Lite0 feature map (stride 16,
1280 channels; ``model.networks.backbones``): a saliency map that ignores the audio. Scored like ``ssl-eval``
(median and adaptive cIoU, AUC, and the cIoU against the exact masks where the annotations list them),
it tells how much of an audio-visual model's localization needs no sound; published work finds that
vision-only saliency is hard to beat on VGG-SS.
"""
from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from model.preprocess.audio import AudioConfig
from model.networks.backbones import imagenet_network
from model.data.datasets import VideoFolderDataset, collate
from model.evaluation import metrics
from model.evaluation.evaluate import mask_cious
from model.inference.heatmap import to_heatmap
from model.preprocess.image import preprocess_image

IMAGE_SIZE = 224


@torch.inference_mode()
def saliency_maps(dataset, batch_size: int = 16, workers: int = 0) -> tuple[list[str], list, torch.Tensor]:
    """(files, boxes, maps (N, 14, 14)) of every readable item: the feature norm of each frame."""
    network = imagenet_network()
    files, boxes, maps = [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate, num_workers=workers):
        if not batch["kept"]:
            continue
        maps.append(network(batch["image"]).norm(dim=1))  # (B, 14, 14)
        files += batch["file"]
        boxes += batch["boxes"]
    return files, boxes, torch.cat(maps)


def score(data: Path, files: list[str], boxes: list, maps: torch.Tensor) -> dict:
    """ssl-eval's localization numbers of the maps (items with boxes), with the mask cIoU when there are masks."""
    heat = to_heatmap(maps, (metrics.SIZE, metrics.SIZE))
    median, adaptive = (metrics.box_cious(heat, boxes, t) for t in ("median", "adaptive"))
    median, adaptive = median[~np.isnan(median)], adaptive[~np.isnan(adaptive)]
    result = {"n_boxes": len(median), **metrics.summarize(median)}
    result.update(ciou_adaptive=metrics.summarize(adaptive)["ciou"])
    by_mask = mask_cious(files, maps, data)
    if by_mask is not None:
        result["ciou_mask"] = metrics.summarize(by_mask[~np.isnan(by_mask)])["ciou"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluation.vision_only", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="annotated folder (annotations.json)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes")
    args = parser.parse_args(argv)
    if not (args.data / "annotations.json").is_file():
        parser.error(f"{args.data}: no annotations.json")
    dataset = VideoFolderDataset(args.data, "eval", AudioConfig(seconds=1.0),
                                 image_transform=partial(preprocess_image, size=IMAGE_SIZE))
    files, boxes, maps = saliency_maps(dataset, workers=args.workers)
    print(json.dumps({"n": len(files), "vision only": score(args.data, files, boxes, maps)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
