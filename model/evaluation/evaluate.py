"""ssl-eval: localization (cIoU, AUC, adaptive), cross-modal retrieval and, on two-source scenes, iIoU/iAUC.

    ssl-eval --data DIR --checkpoint CKPT --out REPORT_DIR [--split-file CSV] [--device auto|cpu|cuda]
             [--overwrite]

Writes ``metrics.json`` (the contract below), ``report.md`` and PNG plots. ``DIR`` is a folder of videos
with ``annotations.json`` (VGG-SS layout), or an IS3-style two-source folder (``is3_annotations.json``),
which adds ``iiou``/``iauc``. ``metrics.json``::

    {"n", "skipped": [{"path", "reason"}], "ciou", "auc", "ciou_adaptive", "auc_adaptive",
     "ci95": {"ciou", "auc", "ciou_adaptive", "auc_adaptive": [lo, hi]},
     "retrieval": {"audio_to_image": {"r1", "r5", "r10", "chance", "chance_r5", "chance_r10",
                                      "ci95": {"r1", "r5", "r10": [lo, hi]}}, "image_to_audio": {...}},
     "per_class": {name: {"n", "ciou", "auc"}},
     "by_box_size": {"small" | "large": {"n", "ciou", "auc", "ciou_adaptive", "auc_adaptive"}},
     ["iiou", "iauc"], ["split"], "n_boxes", "checkpoint", "data",
     ["by_instance": {kind: {"n", "ciou", "auc", "ciou_adaptive", "auc_adaptive"}}],
     ["presence": {["auroc_silence", "n_silence", "auroc_offscreen", "n_offscreen", "best_threshold"],
                   ["threshold", "in_view", ["accuracy"]]}], ["ciou_mask", "auc_mask", "n_masks"],
     ["object_guided": {"weight", "ciou", "auc", "ciou_adaptive", "auc_adaptive", ["iiou", "iauc"],
                        ["ciou_mask", "auc_mask"]}]}

``chance``: the R@1 of a random ranking (``chance_r5``, ``chance_r10``: R@5, R@10), from the class counts
(``metrics.retrieval_chance``); the query's own pair is in the gallery and counts, so it is sum(n_c^2) / N^2.
``by_box_size``: the localization numbers of the items whose boxes cover under a quarter of the frame (small) and
the others (large): the median threshold predicts half the frame, so only large boxes can reach IoU 0.5.
``by_instance``: the same per kind of held-out instance where the annotations say (``ssl-synth --pool``: seen
instance, new photo, new recording, both new, unheard class).
``ci95``: 95 % intervals, of the localization numbers by a bootstrap over the items (1,000 resamples, a fixed
seed), of R@k by the Wilson interval over the queries.
``presence`` is there when the annotations mark negatives (``"negative": "silence" | "offscreen"``, no
box): the AUROC of the presence score (``model.networks.presence``) of matched items against each kind, the
threshold that would separate them best on this data, and the accuracy at the model's own threshold; and
when the model is calibrated, on any set: ``in_view``, the share of matched items whose score reaches that
threshold (those the app shows a heatmap for rather than "the sound is not in view").
``ciou_mask``: the same cIoU against the exact masks of the sounding objects where ``annotations.json``
lists them (``"mask"``, written by ``ssl-synth --content real``). ``object_guided``: the same localization numbers
for the map the app shows when the checkpoint mixes in the visual encoder's objectness
(``model.networks.object_guidance``; ``--object-weight`` scores another mix); every other number is the cosine map's,
the paper's.

Percentages everywhere; the definitions are ``model.evaluation.metrics`` (shared/EVALUATION.md).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from model.checkpoints.store import CheckpointError, load_model
from model.common.device import resolve_device
from model.data.annotations import data_file, find_is3_annotations, load_split
from model.data.datasets import IS3Dataset, VideoFolderDataset, collate
from model.data.workers import error_line, ignore_stop_signals, kill_workers_at_exit
from model.evaluation import metrics
from model.evaluation.presence_metrics import summarize
from model.inference.heatmap import to_heatmap
from model.localize import heatmaps, image_vector
from model.networks.object_guidance import mix
from model.networks.presence import presence_score
from model.networks.sslmodel import SSLModel
from model.preprocess.image import preprocess_image

KS = (1, 5, 10)
LARGE_BOX = 0.25  # share of the frame from which a box is "large" (by_box_size)


@dataclass
class Predictions:
    """The model's outputs for every evaluated item, in dataset order."""

    files: list[str]
    labels: list[str]  # '' when unknown
    boxes: list[list[list[float]]]  # normalised [x1, y1, x2, y2] per item
    scenes: list[str] | None  # two-source data: the scene of each item
    maps: torch.Tensor  # (N, h, w) raw cosine maps
    image_emb: torch.Tensor  # (N, D) unit global visual vectors
    audio_emb: torch.Tensor  # (N, D) unit audio vectors
    ciou: np.ndarray  # (N,) median threshold, nan without boxes
    ciou_adaptive: np.ndarray  # (N,) adaptive threshold, nan without boxes
    objectness: torch.Tensor | None = None  # (N, h, w) the visual encoder's objectness (model.networks.object_guidance)
    positions: list[int] | None = None  # each item's position in the dataset (None: 0..N-1)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of items not readable
    negatives: list[str] = field(default_factory=list)  # per item: '' matched, "silence" | "offscreen"

    def position(self, i: int) -> int:
        """The dataset position of prediction ``i``."""
        return self.positions[i] if self.positions is not None else i

    @property
    def annotated(self) -> np.ndarray:
        return ~np.isnan(self.ciou)

    def retrieval_labels(self) -> list[str]:
        """Class names; an item without one is its own class (instance retrieval)."""
        return [label or f"#{file}" for label, file in zip(self.labels, self.files)]


@torch.no_grad()
def predict(model: SSLModel, dataset, device, batch_size: int = 16, workers: int = 0) -> Predictions:
    """Run the model over ``dataset`` (items with image, spectrogram, file, label, boxes[, scene]);
    items that cannot be read are left out and listed in ``skipped``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    if workers:
        kill_workers_at_exit()
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate, num_workers=workers,
                        worker_init_fn=ignore_stop_signals)
    files, labels, boxes, scenes, positions, skipped, negatives = [], [], [], [], [], [], []
    maps, objects, image_emb, audio_emb, cious, adaptive = [], [], [], [], [], []
    for start, batch in zip(range(0, len(dataset), batch_size), loader):
        skipped += batch["skipped"]
        positions += [start + j for j in batch["kept"]]
        if not batch["kept"]:
            continue
        visual, objectness = model.encode_visual(batch["image"].to(device))  # (B, D, h, w), (B, h, w)
        audio = model.encode_audio(batch["spectrogram"].to(device))  # (B, D)
        cos, heat = heatmaps(visual, audio, (metrics.SIZE, metrics.SIZE))  # (B, h, w), (B, 224, 224)
        heat = heat.cpu()
        cious += list(metrics.box_cious(heat, batch["boxes"], "median"))
        adaptive += list(metrics.box_cious(heat, batch["boxes"], "adaptive"))
        maps.append(cos.float().cpu())
        objects.append(objectness.float().cpu())
        image_emb.append(image_vector(visual).float().cpu())
        audio_emb.append(audio.float().cpu())
        files += batch["file"]
        labels += batch["label"]
        boxes += batch["boxes"]
        scenes += batch.get("scene", [])
        negatives += batch.get("negative", [""] * len(batch["file"]))
    model.train(was_training)
    if not files:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in skipped[:3])
        raise ValueError(f"nothing to evaluate: no readable clip{f' ({reasons})' if reasons else ''}")
    return Predictions(files, labels, boxes, scenes or None, torch.cat(maps), torch.cat(image_emb),
                       torch.cat(audio_emb), np.array(cious), np.array(adaptive), torch.cat(objects), positions,
                       skipped, negatives)


def _retrieval(pred: Predictions) -> dict:
    keep = [i for i, kind in enumerate(pred.negatives or [""] * len(pred.files)) if not kind]  # matched pairs
    labels = [pred.retrieval_labels()[i] for i in keep]
    audio, image = pred.audio_emb[keep], pred.image_emb[keep]
    chance = metrics.retrieval_chance(labels, labels, KS)  # the same labels on both sides: one chance for both
    result = {}
    for direction, (query, gallery) in (("audio_to_image", (audio, image)), ("image_to_audio", (image, audio))):
        recall = metrics.recall_at_k(query, gallery, labels, labels, KS)
        interval = metrics.recall_intervals(query, gallery, labels, labels, KS)
        result[direction] = {**{f"r{k}": recall[k] for k in KS}, "chance": chance[1],
                             **{f"chance_r{k}": chance[k] for k in KS[1:]},
                             "ci95": {f"r{k}": interval[k] for k in KS}}
    return result


def summarize_predictions(pred: Predictions, skipped=(), threshold: float | None = None) -> dict:
    """Predictions -> the ``metrics.json`` dict (localization over the items with boxes, retrieval over
    the matched ones; presence AUROC when there are negatives, the share in view at the model's ``threshold``);
    ``skipped``: the files left out before prediction (listed with those ``pred`` could not read)."""
    ok = pred.annotated
    median = metrics.summarize(pred.ciou[ok])
    adaptive = metrics.summarize(pred.ciou_adaptive[ok])
    per_class: dict[str, list[float]] = defaultdict(list)
    for label, value in zip(pred.labels, pred.ciou):
        if label and not np.isnan(value):
            per_class[label].append(value)
    result = {
        "n": len(pred.files),
        "n_boxes": int(ok.sum()),
        "skipped": [{"path": str(path), "reason": str(reason)} for path, reason in [*skipped, *pred.skipped]],
        "ciou": median["ciou"],
        "auc": median["auc"],
        "ciou_adaptive": adaptive["ciou"],
        "auc_adaptive": adaptive["auc"],
        "ci95": {f"{name}{suffix}": interval
                 for suffix, values in (("", pred.ciou[ok]), ("_adaptive", pred.ciou_adaptive[ok]))
                 for name, interval in metrics.summary_intervals(values).items()},
        "retrieval": _retrieval(pred),
        "per_class": {name: {"n": len(v), **metrics.summarize(v)} for name, v in sorted(per_class.items())},
    }
    result["by_box_size"] = _by_box_size(pred)
    found = summarize(presence_score(pred.maps).numpy(), pred.negatives, threshold)
    if found:  # "is the sound in the picture?": negatives to tell apart, or a threshold to count the share in view
        result["presence"] = found
    if pred.scenes is not None:
        result.update(_interactive(pred.scenes, pred.ciou_adaptive))
    return result


def _by_box_size(pred: Predictions) -> dict:
    """The localization numbers of the items whose boxes cover less than ``LARGE_BOX`` of the frame ("small",
    where the median threshold cannot reach IoU 0.5 and only the adaptive numbers tell) and of the others ("large")."""
    area = np.array([metrics.gt_mask_from_boxes(b).mean() if b else np.nan for b in pred.boxes])
    return {name: _subset_summary(pred, keep)
            for name, keep in (("small", area < LARGE_BOX), ("large", area >= LARGE_BOX))}


def _subset_summary(pred: Predictions, keep: np.ndarray) -> dict:
    """``{"n", "ciou", "auc", "ciou_adaptive", "auc_adaptive"}`` of the items where ``keep`` (N,) is true."""
    median, adaptive = metrics.summarize(pred.ciou[keep]), metrics.summarize(pred.ciou_adaptive[keep])
    return {"n": int(keep.sum()), **median, "ciou_adaptive": adaptive["ciou"], "auc_adaptive": adaptive["auc"]}


def _interactive(scenes: list[str], adaptive: np.ndarray) -> dict:
    """iIoU / iAUC: every source of a scene localised with its own audio, adaptive threshold (IS3)."""
    per_scene: dict[str, list[float]] = defaultdict(list)
    for scene, value in zip(scenes, adaptive):
        if not np.isnan(value):
            per_scene[scene].append(value)
    return metrics.interactive_summary(per_scene)


def localization_summary(pred: Predictions, maps: torch.Tensor, root) -> dict:
    """The localization numbers of ``summarize_predictions`` and ``ciou_mask`` for other maps (N, h, w) of the
    same items: median and adaptive cIoU and AUC, [iIoU and iAUC], [mask cIoU and AUC]."""
    heat = to_heatmap(maps, (metrics.SIZE, metrics.SIZE))
    median, adaptive = (metrics.box_cious(heat, pred.boxes, threshold) for threshold in ("median", "adaptive"))
    ok = ~np.isnan(median)
    result = {f"{name}{suffix}": value for suffix, values in (("", median), ("_adaptive", adaptive))
              for name, value in metrics.summarize(values[ok]).items()}
    if pred.scenes is not None:
        result.update(_interactive(pred.scenes, adaptive))
    by_mask = mask_cious(pred.files, maps, root)
    if by_mask is not None:
        summary = metrics.summarize(by_mask[~np.isnan(by_mask)])
        result.update(ciou_mask=summary["ciou"], auc_mask=summary["auc"])
    return result


def mask_cious(files: list[str], maps: torch.Tensor, root) -> np.ndarray | None:
    """Median-threshold cIoU of each item's raw map (N, h, w) against the union of its sounding objects'
    exact masks (``"mask"`` PNG paths in ``root/annotations.json``); nan for items without; None if none has one."""
    path = Path(root) / "annotations.json"
    masks = {a["file"]: a["mask"] for a in json.loads(path.read_text()) if a.get("mask")} if path.is_file() else {}
    if not masks or not any(file in masks for file in files):
        return None
    heat = to_heatmap(maps, (metrics.SIZE, metrics.SIZE))  # (N, 224, 224)
    scores = np.full(len(files), np.nan)
    for i, file in enumerate(files):
        if file in masks:
            gt = np.zeros((metrics.SIZE, metrics.SIZE), bool)
            for name in masks[file] if isinstance(masks[file], list) else [masks[file]]:
                name = data_file(name, Path(root), f"{path}: mask of {file}")  # inside the data folder
                mask = cv2.imread(str(name), cv2.IMREAD_GRAYSCALE)
                if mask is None:
                    raise FileNotFoundError(f"mask {name} is missing or unreadable")
                gt |= cv2.resize(mask, (metrics.SIZE, metrics.SIZE), interpolation=cv2.INTER_AREA) > 127
            scores[i] = metrics.ciou(heat[i], gt, "median")
    return scores


def by_instance(pred: Predictions, root) -> dict | None:
    """The localization numbers of the items of each kind of held-out instance (``"instance"`` of
    ``root/annotations.json``: seen instance, new photo, new recording, both new, unheard class; ``ssl-synth
    --pool val|test``): ``{kind: {"n", "ciou", "auc", "ciou_adaptive", "auc_adaptive"}}``; None without."""
    path = Path(root) / "annotations.json"
    entries = json.loads(path.read_text()) if path.is_file() else []
    kinds = {a["file"]: a["instance"] for a in entries if isinstance(a, dict) and isinstance(a.get("instance"), str)}
    labels = np.array([kinds.get(file, "") for file in pred.files], dtype=object)
    result = {kind: _subset_summary(pred, (labels == kind) & pred.annotated) for kind in sorted(set(labels) - {""})}
    return result or None


def _base(dataset):
    return dataset.dataset if isinstance(dataset, Subset) else dataset


def evaluate(model: SSLModel, dataset, device, batch_size: int = 16, workers: int = 0) -> dict:
    """The ``metrics.json`` dict of ``model`` on ``dataset`` (the results table)."""
    return evaluate_with_predictions(model, dataset, device, batch_size, workers)[0]


def evaluate_with_predictions(model: SSLModel, dataset, device, batch_size: int = 16,
                              workers: int = 0) -> tuple[dict, Predictions]:
    """``evaluate``'s dict and the predictions behind it (the trainer's validation)."""
    pred = predict(model, dataset, device, batch_size, workers)
    return summarize_predictions(pred, getattr(_base(dataset), "skipped", []), model.presence.threshold), pred


def open_dataset(root, model: SSLModel, cache_dir=None):
    """The evaluation dataset of a folder at the model's image size: IS3 when it has is3 annotations."""
    root = Path(root)
    transform = partial(preprocess_image, size=model.config.image_size)
    if find_is3_annotations(root):
        return IS3Dataset(root, model.audio_config, transform)
    return VideoFolderDataset(root, "eval", model.audio_config, cache_dir, transform)


def _clip_ids(dataset) -> list[str]:
    """The clip id of every item, without reading any: the video's id, or an IS3 item's scene."""
    base = _base(dataset)
    return [s.file for s in base.sources] if hasattr(base, "sources") else [s.scene for s in base.samples]


def restrict(dataset, ids: list[str]):
    """The items of ``dataset`` whose clip id is listed (a Subset), and how many were listed and found."""
    wanted = set(ids)
    keep = [i for i, clip in enumerate(_clip_ids(dataset)) if clip in wanted]
    return Subset(dataset, keep), {"listed": len(wanted), "found": len(keep)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ssl-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="annotated folder (videos + annotations.json, or IS3)")
    parser.add_argument("--checkpoint", required=True, help="ssl-desktop .safetensors model")
    parser.add_argument("--out", required=True, help="report folder (metrics.json, report.md, PNGs)")
    parser.add_argument("--split-file", help="CSV of clip ids to keep (e.g. a heard / unheard test list)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes")
    parser.add_argument("--cache", help="decoded-frame cache folder")
    parser.add_argument("--object-weight", type=float, metavar="W",
                        help="also score the object-guided map with this weight (model.networks.object_guidance); "
                             "default: the checkpoint's, none when it is 0")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a report of another checkpoint, data or split in --out")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Every path named is usable, before any work: a FileNotFoundError or ValueError saying which."""
    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data: folder not found: {args.data}")
    if args.object_weight is not None and not 0 <= args.object_weight <= 1:
        raise ValueError(f"--object-weight must be within [0, 1], not {args.object_weight}")
    if args.split_file and not Path(args.split_file).is_file():
        raise FileNotFoundError(f"--split-file: file not found: {args.split_file}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a report folder")
    try:
        previous = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        previous = None
    ours = {"checkpoint": str(args.checkpoint), "data": str(args.data), "split": args.split_file}
    if isinstance(previous, dict) and not args.overwrite:
        theirs = {"checkpoint": previous.get("checkpoint"), "data": previous.get("data"),
                  "split": (previous.get("split") or {}).get("file")}
        if theirs != ours:
            raise ValueError(f"--out {out} holds the report of {theirs['checkpoint']} on {theirs['data']}: "
                             "choose another folder, or replace it with --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise ValueError(f"--out {out}: not writable")


def run(args: argparse.Namespace) -> dict:
    """Evaluate, write metrics.json, report.md and the plots; returns the metrics."""
    from model.evaluation.report import write_report  # drawing is only needed by the command

    check_args(args)
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device)
    dataset = open_dataset(args.data, model, args.cache)
    split = None
    if args.split_file:
        dataset, found = restrict(dataset, load_split(args.split_file))
        split = {"file": str(args.split_file), "name": Path(args.split_file).stem, **found}
    pred = predict(model, dataset, device, args.batch_size, args.workers)
    result = summarize_predictions(pred, getattr(_base(dataset), "skipped", []), model.presence.threshold)
    by_mask = mask_cious(pred.files, pred.maps, args.data)
    if by_mask is not None:
        summary = metrics.summarize(by_mask[~np.isnan(by_mask)])
        result.update(ciou_mask=summary["ciou"], auc_mask=summary["auc"], n_masks=int((~np.isnan(by_mask)).sum()))
    instances = by_instance(pred, args.data)
    if instances:
        result["by_instance"] = instances
    weight = model.guidance.weight if args.object_weight is None else args.object_weight
    if weight > 0:  # what the app shows: beside the cosine map's numbers, never instead of them
        guided = mix(pred.maps, pred.objectness, weight)
        result["object_guided"] = {"weight": weight, **localization_summary(pred, guided, args.data)}
    if split:
        result["split"] = split
    result.update(checkpoint=str(args.checkpoint), data=str(args.data))
    out = Path(args.out)
    (out / "metrics.json").unlink(missing_ok=True)  # written last: it never describes another run's report
    write_report(out, result, pred, dataset)
    (out / "metrics.json.tmp").write_text(json.dumps(result, indent=2) + "\n")
    os.replace(out / "metrics.json.tmp", out / "metrics.json")
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except (CheckpointError, OSError, ValueError) as exc:  # OSError: also a full disk
        print(f"ssl-eval: error: {error_line(exc)}", file=sys.stderr)
        return 2
    if result["n_boxes"] == 0:
        print(f"ssl-eval: warning: no clip of {args.data} has a bounding box (the annotations' \"bbox\"): "
              "cIoU and AUC cannot be measured, only retrieval", file=sys.stderr)
        localization = "cIoU -  AUC - (no boxes)"
    else:
        localization = f"cIoU {result['ciou']:.2f}  AUC {result['auc']:.2f}"
    mask = f"  mask cIoU {result['ciou_mask']:.2f}" if "ciou_mask" in result else ""
    guided = result.get("object_guided")
    if guided and result["n_boxes"]:
        mask += (f"  object-guided (weight {guided['weight']:g}) cIoU {guided['ciou']:.2f}"
                 f" adaptive {guided['ciou_adaptive']:.2f}")
    print(f"n={result['n']}  {localization}{mask}  "
          f"A->I R@1 {result['retrieval']['audio_to_image']['r1']:.2f}"
          + "".join(f"  presence AUROC {k[6:]} {v:.1f}" for k, v in result.get("presence", {}).items()
                    if k.startswith("auroc_"))
          + (f"  in view {result['presence']['in_view']:.1f} %" if "in_view" in result.get("presence", {}) else "")
          + f"  -> {Path(args.out) / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
