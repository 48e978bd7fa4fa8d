"""Batch-1 forward time of each encoder (fp32, eager) on this machine.

Usage: python bench/bench_encoders.py [--repeats 30] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from model import ModelConfig, SSLModel


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model = SSLModel(ModelConfig()).eval().to(args.device)
    image = torch.randn(1, 3, 224, 224, device=args.device)
    spec = torch.randn(1, 1, 257, model.audio_config.num_frames, device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        img_ms = median_ms(lambda: (model.encode_image_map(image), sync()), args.repeats)
        aud_ms = median_ms(lambda: (model.encode_audio(spec), sync()), args.repeats)
        loc_ms = median_ms(lambda: (model.localize(image, spec), sync()), args.repeats)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    print(f"visual encoder (1x3x224x224 -> 512x14x14): median {img_ms:.1f} ms")
    print(f"audio encoder (1x1x257x{spec.shape[-1]} -> 512): median {aud_ms:.1f} ms")
    print(f"localize (both + cosine map): median {loc_ms:.1f} ms")


if __name__ == "__main__":
    main()
