"""Model-free maps that put localization numbers in proportion.

    python -m model.evaluation.reference_maps DATA      # a folder with annotations.json (VGG-SS style) or IS3 json

- **centre prior**: a Gaussian in the middle of the frame, the same map for every item; a model that
  does not beat it has not localised anything.
- **box oracle**: the item's own box highest, then falling off with the distance from the box centre.
  Under the median threshold any map without ties predicts half the frame, so this is the best cIoU a
  smooth map can reach: an item counts only when its boxes cover at least a quarter of the frame.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from model.data.annotations import AnnotationError, find_is3_annotations, load_is3, load_vggss_annotations
from model.evaluation import metrics

SIZE = metrics.SIZE


def _grid() -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    return (xs + 0.5) / SIZE, (ys + 0.5) / SIZE


def centre_prior(sigma: float = 0.25) -> np.ndarray:
    """(SIZE, SIZE) Gaussian around the frame's centre, ``sigma`` in frame widths."""
    x, y = _grid()
    return np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / (2 * sigma ** 2))


def box_oracle(gt_mask: np.ndarray) -> np.ndarray:
    """(SIZE, SIZE) map: every ground-truth pixel above every other, all falling off with the distance
    from the centre of the ground truth (no two rings tie)."""
    x, y = _grid()
    ys, xs = np.nonzero(gt_mask)
    cx, cy = ((xs.mean() + 0.5) / SIZE, (ys.mean() + 0.5) / SIZE) if len(xs) else (0.5, 0.5)
    falloff = np.exp(-((x - cx) ** 2 + (y - cy) ** 2))  # in (0, 1]
    return falloff + 2.0 * (gt_mask > 0)


def ground_truths(data: Path) -> list[np.ndarray]:
    """The (SIZE, SIZE) ground-truth map of every annotated item of ``data``."""
    is3 = find_is3_annotations(data)
    if is3:
        return [metrics.gt_mask_from_boxes([s.box], normalized=False) for s in load_is3(is3)]
    annotations = load_vggss_annotations(data / "annotations.json")
    return [metrics.gt_mask_from_boxes(a.boxes) for a in annotations if a.boxes]


def evaluate_references(gts: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """``{"centre prior" | "box oracle": {"ciou", "auc", "ciou_adaptive", "auc_adaptive"}}`` in %."""
    prior = centre_prior()
    result = {}
    for name, make in (("centre prior", lambda gt: prior), ("box oracle", box_oracle)):
        median = metrics.summarize([metrics.ciou(make(gt), gt, "median") for gt in gts])
        adaptive = metrics.summarize([metrics.ciou(make(gt), gt, "adaptive") for gt in gts])
        result[name] = {**median, "ciou_adaptive": adaptive["ciou"], "auc_adaptive": adaptive["auc"]}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluation.reference_maps", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="annotated folder (annotations.json or IS3 json)")
    try:
        gts = ground_truths(parser.parse_args(argv).data)
    except (AnnotationError, OSError) as exc:  # a missing or malformed annotation file, named
        print(f"reference_maps: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"n": len(gts), **evaluate_references(gts)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
