"""The class-oracle reference row: the frozen ImageNet visual side with a perfect "audio" encoder.

    python -m model.evaluation.class_oracle TRAIN TEST [--cache DIR] [--steps 400] [--seed 0]

The audio vector of a clip is replaced by a learned embedding of its class label (``annotations.json``),
and only that table and a 1x1 projection of the frozen ImageNet EfficientNet-Lite0 map (stride 16, the
``efficientnet_lite0`` model's visual side) are trained on TRAIN with SSL-Align's loss (batch 16, one
positive per clip, Adam 1e-3). Scored on TEST like ``ssl-eval`` (plus the pointing game: the share of
maps whose peak falls in a box), it is the localization a model with these frozen maps reaches when its
audio side knows the class exactly: the distance from an audio-visual model to this row is the audio
encoder's, the distance from this row to the box oracle is the visual side's and the metric's.
Classes of TEST unseen in TRAIN get an untrained embedding (chance).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from model.preprocess.audio import AudioConfig
from model.networks.backbones import FEATURES, imagenet_network
from model.data.datasets import VideoFolderDataset, collate
from model.evaluation import metrics
from model.evaluation.vision_only import score
from model.inference.heatmap import to_heatmap
from model.networks.sslmodel import cosine_map
from model.train.loss import ContrastiveLoss

BATCH = 16


@torch.inference_mode()
def frozen_maps(root: Path, cache=None) -> tuple[list[str], list[str], list, torch.Tensor]:
    """(files, labels, boxes, maps (N, 1280, 14, 14) float16) of the items with a class and no negative mark."""
    network = imagenet_network()
    dataset = VideoFolderDataset(root, "eval", AudioConfig(seconds=1.0), cache_dir=cache)
    files, labels, boxes, maps = [], [], [], []
    for batch in DataLoader(dataset, batch_size=BATCH, collate_fn=collate):
        if not batch["kept"]:
            continue
        keep = [i for i, (label, negative) in enumerate(zip(batch["label"], batch["negative"]))
                if label and not negative]
        if not keep:
            continue
        maps.append(network(batch["image"][keep]).half())  # (b, 1280, 14, 14)
        files += [batch["file"][i] for i in keep]
        labels += [batch["label"][i] for i in keep]
        boxes += [batch["boxes"][i] for i in keep]
    return files, labels, boxes, torch.cat(maps)


def train_oracle(maps: torch.Tensor, labels: list[str], classes: list[str], steps: int, seed: int):
    """The 1x1 projection and the class embedding table, trained with SSL-Align's loss."""
    torch.manual_seed(seed)
    projection, table = nn.Conv2d(FEATURES, 512, 1), nn.Embedding(len(classes), 512)
    optimizer = torch.optim.Adam([*projection.parameters(), *table.parameters()], lr=1e-3, weight_decay=1e-4)
    loss_fn = ContrastiveLoss()
    ids = torch.tensor([classes.index(c) for c in labels])
    for _ in range(steps):
        pick = torch.randperm(len(ids))[:BATCH]
        out = loss_fn(F.normalize(projection(maps[pick].float()), dim=1), F.normalize(table(ids[pick]), dim=1))
        optimizer.zero_grad()
        out.total.backward()
        optimizer.step()
    return projection, table


@torch.no_grad()
def oracle_maps(projection, table, maps: torch.Tensor, labels: list[str], classes: list[str]) -> torch.Tensor:
    """Cosine maps (N, 14, 14) between each test frame and its class's embedding."""
    ids = torch.tensor([classes.index(c) for c in labels])
    return cosine_map(F.normalize(projection(maps.float()), dim=1), F.normalize(table(ids), dim=1))


def pointing(boxes: list, maps: torch.Tensor) -> float:
    """Share (%) of maps whose highest point lies in one of the item's boxes."""
    heat = to_heatmap(maps, (metrics.SIZE, metrics.SIZE)).numpy()
    hits = [metrics.gt_mask_from_boxes(b).flat[h.argmax()] > 0 for h, b in zip(heat, boxes)]
    return 100.0 * float(np.mean(hits))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluation.class_oracle",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path, help="annotated training folder (the classes are read, not the sound)")
    parser.add_argument("test", type=Path, help="annotated test folder")
    parser.add_argument("--cache", type=Path, help="decoded-frame cache folder (ssl-train --cache)")
    parser.add_argument("--steps", type=int, default=400, help="training steps of batch 16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for folder in (args.train, args.test):
        if not (folder / "annotations.json").is_file():
            parser.error(f"{folder}: no annotations.json")
    _, train_labels, _, train_maps = frozen_maps(args.train, args.cache)
    files, labels, boxes, test_maps = frozen_maps(args.test, args.cache)
    classes = sorted(set(train_labels) | set(labels))
    projection, table = train_oracle(train_maps, train_labels, classes, args.steps, args.seed)
    maps = oracle_maps(projection, table, test_maps, labels, classes)
    result = score(args.test, files, boxes, maps)
    result["pointing"] = pointing(boxes, maps)
    print(json.dumps({"n": len(files), "steps": args.steps, "seed": args.seed, "class oracle": result}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
