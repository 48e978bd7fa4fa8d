"""What the int8 visual encoder (the app's ``--int8``) costs in accuracy: a checkpoint evaluated on test folders
with the float32 ONNX Runtime visual encoder and with the int8 one, calibrated as the app calibrates it (frames
of the bundled demo clips), everything else equal.

Per folder and path: cIoU, AUC, adaptive cIoU, A->I and I->A R@1, presence AUROC (where the folder has negatives); and
how far the int8 maps are from float32's: the correlation of each item's cosine map with float32's (mean and
10th percentile), the share of items whose peak is at the same map position, the largest absolute difference
of the cosine over the map's range (median over items).

Usage: python bench/int8_accuracy.py TEST_FOLDER [TEST_FOLDER ...] [--checkpoint F] [--cache DIR] [--json OUT]
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_file import write_json  # noqa: E402
from model.checkpoints.store import load_model  # noqa: E402
from model.evaluation.evaluate import open_dataset, predict, summarize_predictions  # noqa: E402
from model.inference.fast_path import InferenceConfig, prepare_for_inference  # noqa: E402

DEMO_CLIPS = tuple(str(p) for p in sorted((ROOT / "resources" / "demo" / "videos").glob("*.mp4")))
PATHS = {"float32": InferenceConfig(engine="onnxruntime"),
         "int8": InferenceConfig(engine="onnxruntime", int8_calibration=DEMO_CLIPS)}


def on_path(model, config: InferenceConfig):
    """``model`` whose visual encoder runs on ``config``'s path, one image at a time (the shape it was made for)."""
    fast = prepare_for_inference(model, "cpu", config)
    if fast._image is None:
        raise SystemExit("the ONNX Runtime visual encoder could not be made (see the warning above)")
    evaluated = copy.copy(model)  # the same weights; only this copy's visual encoder is replaced
    evaluated.encode_visual = lambda images: tuple(map(torch.cat, zip(*(fast.encode_visual(x[None]) for x in images))))
    return evaluated, fast.int8


def map_distance(reference: torch.Tensor, maps: torch.Tensor) -> dict:
    a, b = reference.flatten(1), maps.flatten(1)
    correlation = torch.nn.functional.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True))
    spread = (a.max(1).values - a.min(1).values).clamp_min(1e-9)
    return {"map_correlation_mean": round(correlation.mean().item(), 4),
            "map_correlation_p10": round(correlation.quantile(0.1).item(), 4),
            "same_peak_share": round((a.argmax(1) == b.argmax(1)).float().mean().item(), 3),
            "max_error_over_range_median": round(((a - b).abs().max(1).values / spread).median().item(), 3)}


def row(result: dict) -> dict:
    presence = result.get("presence", {})
    return {"ciou": round(result["ciou"], 1), "auc": round(result["auc"], 1),
            "ciou_adaptive": round(result["ciou_adaptive"], 1),
            "a2i_r1": round(result["retrieval"]["audio_to_image"]["r1"], 1),
            "i2a_r1": round(result["retrieval"]["image_to_audio"]["r1"], 1),
            **{f"presence_{k}": round(presence[k], 1) for k in ("auroc_silence", "auroc_offscreen") if k in presence}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "resources" / "model.safetensors")
    parser.add_argument("--cache", type=Path, help="the decoded-clip cache of ssl-eval --cache")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.checkpoint).eval()
    result = {}
    for name, config in PATHS.items():
        evaluated, int8 = on_path(model, config)
        if int8 != (name == "int8"):
            raise SystemExit(f"the {name} path could not be made (see the warning above)")
        for folder in args.folders:
            pred = predict(evaluated, open_dataset(folder, model, args.cache), "cpu")
            entry = result.setdefault(folder.name, {})
            entry[name] = row(summarize_predictions(pred, (), model.presence.threshold))
            entry.setdefault("maps", {})[name] = pred.maps
    for folder, entry in result.items():
        entry["int8_vs_float32"] = map_distance(entry["maps"]["float32"], entry.pop("maps")["int8"])
        print(f"{folder}: float32 {entry['float32']}\n{' ' * len(folder)}  int8    {entry['int8']}\n"
              f"{' ' * len(folder)}  maps    {entry['int8_vs_float32']}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
