"""Batch-1 forward time of each encoder (fp32, eager) on this machine, for both visual backbones.

Usage: python bench/bench_encoders.py [--repeats 30] [--device cpu] [--threads N]

The two visual encoders are timed in alternation (one call of each per round), so that a change in the
machine's other load affects both alike.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project: bench/model.py is not the model package
from model import ModelConfig, SSLModel  # noqa: E402
from model.networks.sslmodel import VISUAL_BACKBONES  # noqa: E402


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def alternating_median_ms(fns: dict, repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median ms of each function, called in turn once per round."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = {name: SSLModel(ModelConfig(visual_backbone=name)).eval().to(args.device) for name in VISUAL_BACKBONES}
    model = models["resnet18"]
    image = torch.randn(1, 3, 224, 224, device=args.device)
    spec = torch.randn(1, 1, 257, model.audio_config.num_frames, device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        visual = alternating_median_ms(
            {name: (lambda m=m: (m.encode_image_map(image), sync())) for name, m in models.items()}, args.repeats)
        aud_ms = median_ms(lambda: (model.encode_audio(spec), sync()), args.repeats)
        loc_ms = median_ms(lambda: (model.localize(image, spec), sync()), args.repeats)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    for name, ms in visual.items():
        print(f"visual encoder {name} (1x3x224x224 -> 512x14x14): median {ms:.1f} ms")
    print(f"audio encoder (1x1x257x{spec.shape[-1]} -> 512): median {aud_ms:.1f} ms")
    print(f"localize (resnet18 + audio + cosine map): median {loc_ms:.1f} ms")


if __name__ == "__main__":
    main()
