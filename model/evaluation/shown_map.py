"""The map the app shows, scored on an ``ssl-synth`` folder: the alignment model's maps beside the semantic map and
their mix, each clip through the app's per-frame path (``model.localize.Localizer``).

``ssl-eval`` scores the alignment model (its cosine map and object-guided map, in batches). This command scores what
a checkpoint with a semantic side (``model.knowledge``) shows, on the same annotations: per row, cIoU / AUC at the
median threshold and the adaptive cIoU against the boxes (95 % bootstrap intervals), with the rows cosine (the
paper's), object-guided, semantic alone, shown (the mix at the checkpoint's weight) and vision only; and presence:
the share of matched clips the app shows the heatmap for, the share of each kind of negative it says is in view,
and the AUROC of the semantic and cosine peaks against each kind::

    python -m model.evaluation.shown_map --data DATA --checkpoint CKPT [--json OUT] [--limit N]
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from model.data.annotations import NEGATIVE_KINDS
from model.data.video_io import VideoReadError
from model.evaluation import metrics
from model.evaluation.presence_metrics import auroc
from model.inference.heatmap import to_heatmap
from model.networks.object_guidance import guide

ROWS = ("cosine", "object-guided", "semantic", "shown", "vision only")


def score(model, dataset, limit: int | None = None) -> list[dict]:
    """Per readable item: its boxes, negative kind, the rows' maps (h, w), the peaks and the app's presence."""
    from model.localize import Localizer, encode_frame

    if not model.semantic.enabled:  # the semantic map is computed for the rows even when the model does not mix it
        model.semantic = replace(model.semantic, in_view=1.0)
    localizer = Localizer(model, "cpu")
    out = []
    for i in range(len(dataset) if limit is None else min(limit, len(dataset))):
        try:
            frame, waveform = dataset.raw(i)
        except VideoReadError:
            continue
        annotation = dataset.annotations.get(dataset.sources[i].file)
        localizer.forget_picture()
        localizer.hear(waveform, 0.0)
        result = localizer.localize(frame)
        _, objects = encode_frame(localizer.model, frame, "cpu")
        cos = torch.from_numpy(result.cosine)
        maps = {"cosine": cos, "object-guided": guide(cos[None], objects.float().cpu(), model.guidance.weight)[0],
                "semantic": torch.from_numpy(result.semantic), "vision only": objects[0].float().cpu()}
        maps["shown"] = torch.nn.functional.interpolate(torch.from_numpy(result.shown)[None, None],
                                                        size=cos.shape, mode="area")[0, 0]
        out.append({"boxes": annotation.boxes if annotation else [],
                    "negative": annotation.negative if annotation else "", "maps": maps,
                    "cosine_peak": float(cos.max()), "semantic_peak": float(maps["semantic"].max()),
                    "in_view": result.presence == ""})
    return out


def summarize(items: list[dict]) -> dict:
    boxed = [it for it in items if it["boxes"] and not it["negative"]]
    report = {"n": len(items), "n_boxes": len(boxed), "rows": {}}
    for row in ROWS:
        heat = to_heatmap(torch.stack([it["maps"][row] for it in boxed]), (metrics.SIZE, metrics.SIZE)) \
            if boxed else torch.zeros(0, metrics.SIZE, metrics.SIZE)
        boxes = [it["boxes"] for it in boxed]
        median, adaptive = metrics.box_cious(heat, boxes, "median"), metrics.box_cious(heat, boxes, "adaptive")
        report["rows"][row] = {**metrics.summarize(median), "ciou_adaptive": metrics.summarize(adaptive)["ciou"],
                               "ci95": metrics.summary_intervals(median)}
    matched = [it for it in items if not it["negative"]]
    presence = {"in_view": 100.0 * float(np.mean([it["in_view"] for it in matched])) if matched else float("nan")}
    for kind in NEGATIVE_KINDS:
        negatives = [it for it in items if it["negative"] == kind]
        if negatives:
            presence[f"in_view_{kind}"] = 100.0 * float(np.mean([it["in_view"] for it in negatives]))
            for peak in ("semantic_peak", "cosine_peak"):
                presence[f"auroc_{peak.split('_')[0]}_{kind}"] = auroc([it[peak] for it in matched],
                                                                       [it[peak] for it in negatives])
    report["presence"] = presence
    return report


def main(argv=None) -> int:
    from model.checkpoints.store import CheckpointError, load_model
    from model.evaluation.evaluate import open_dataset

    p = argparse.ArgumentParser(prog="python -m model.evaluation.shown_map", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="an ssl-synth folder (annotations.json, videos/)")
    p.add_argument("--checkpoint", default="resources/model.safetensors")
    p.add_argument("--limit", type=int, help="score the first N clips only")
    p.add_argument("--json", type=Path, help="write the report here")
    args = p.parse_args(argv)
    try:
        model = load_model(args.checkpoint)
        report = summarize(score(model, open_dataset(args.data, model), args.limit))
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"shown_map: error: {exc}", file=sys.stderr)
        return 2
    report.update(checkpoint=str(args.checkpoint), data=str(args.data), semantic_weight=model.semantic.weight)
    for row, r in report["rows"].items():
        print(f"{row:14s} cIoU {r['ciou']:5.1f} [{r['ci95']['ciou'][0]:4.1f}, {r['ci95']['ciou'][1]:4.1f}]  "
              f"AUC {r['auc']:5.1f}  adaptive {r['ciou_adaptive']:5.1f}")
    print("presence " + "  ".join(f"{k} {v:.1f}" for k, v in report["presence"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
