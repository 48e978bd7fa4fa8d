"""Training and evaluation throughput on a small generated folder: the decoded-frame cache against decoding
every clip on the fly.

A folder of ``--clips`` procedural clips is generated (``model.synth``, 320x240, 4 s) into a temporary
folder. Training: ``--epochs`` epochs of SSL-Align at ``--image-size`` (96) px / 1.0 s on ``--device`` (cpu),
``--workers`` loader processes (0: decoding in the training process, where its cost shows), once without
``--cache`` and once with a fresh cache (its first epoch fills it). Clips/s is the median over the last epoch's
steps of anchors per wall second (loading included), ``step_s`` the median compute of a step alone. Evaluation: ``evaluate`` of a
random-weight model over the folder, decoding on the fly and from the warm cache. The loader rows time the
training batches alone, without the model (the data side's ceiling; on a small CPU the model's step hides it).

Usage: python bench/train.py [--clips 24] [--epochs 2 (0: no training rows)] [--batch-size 8] [--workers 0]
       [--image-size 96] [--device cpu|cuda] [--json OUT]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_file import write_json  # noqa: E402
from model import AudioConfig, ModelConfig, SSLModel  # noqa: E402
from model.evaluation.evaluate import evaluate, open_dataset  # noqa: E402
from model.synth.generator import generate  # noqa: E402
from model.train.config import TrainConfig  # noqa: E402
from model.train.trainer import Callback, Trainer  # noqa: E402

AUDIO_SECONDS = 1.0


class StepLog(Callback):
    def __init__(self):
        self.steps: list[dict] = []

    def on_step(self, step: int, metrics: dict) -> None:
        self.steps.append(metrics)


def train_throughput(data: Path, out: Path, args, cache: Path | None) -> dict:
    log = StepLog()
    config = TrainConfig(data=str(data), out=str(out), epochs=args.epochs, batch_size=args.batch_size,
                         image_size=args.image_size, audio_seconds=AUDIO_SECONDS, device=args.device,
                         workers=args.workers, cache=str(cache) if cache else None, seed=0)
    start = time.perf_counter()
    Trainer(config, [log]).fit()
    seconds = time.perf_counter() - start
    last = [s for s in log.steps if s["epoch"] == args.epochs]
    first = [s for s in log.steps if s["epoch"] == 1]
    return {"clips_per_s": round(statistics.median(s["clips_per_s"] for s in last), 2),
            "first_epoch_clips_per_s": round(statistics.median(s["clips_per_s"] for s in first), 2),
            "step_s": round(statistics.median(s["seconds"] for s in last), 2),
            "wall_s": round(seconds, 1)}


def loader_throughput(data: Path, out: Path, args, cache: Path | None) -> dict:
    """The training batches alone (decoding or cache reads, augmentation, spectrograms), no model: two passes,
    the first of which fills a cache."""
    config = TrainConfig(data=str(data), out=str(out), epochs=1, batch_size=args.batch_size,
                         image_size=args.image_size, audio_seconds=AUDIO_SECONDS, device=args.device,
                         workers=args.workers, cache=str(cache) if cache else None, seed=0)
    loader = Trainer(config).loader
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        clips = sum(int(batch["first"].sum()) for batch in loader)
        rates.append(clips / (time.perf_counter() - start))
    return {"clips_per_s": round(rates[1], 2), "first_pass_clips_per_s": round(rates[0], 2)}


def eval_throughput(data: Path, cache: Path | None, args) -> dict:
    torch.manual_seed(0)
    model = SSLModel(ModelConfig(image_size=args.image_size), AudioConfig(seconds=AUDIO_SECONDS)).eval()
    dataset = open_dataset(data, model, cache)
    start = time.perf_counter()
    with torch.inference_mode():
        evaluate(model.to(args.device), dataset, args.device, workers=0)
    seconds = time.perf_counter() - start
    return {"clips_per_s": round(len(dataset) / seconds, 2), "wall_s": round(seconds, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (0: the loader and evaluation only)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        generate(tmp / "data", clips=args.clips, seed=0)
        print(f"generated {args.clips} clips in {time.perf_counter() - start:.1f} s; torch "
              f"{torch.__version__}, {torch.get_num_threads()} threads, {args.image_size} px, {AUDIO_SECONDS} s, "
              f"batch {args.batch_size}, {args.workers} loader workers, {args.device}", flush=True)
        result = {
            "loader_on_the_fly": loader_throughput(tmp / "data", tmp / "load_fly", args, None),
            "loader_cache": loader_throughput(tmp / "data", tmp / "load_cache", args, tmp / "cache"),
        }
        if args.epochs:
            result["train_on_the_fly"] = train_throughput(tmp / "data", tmp / "run_fly", args, None)
            result["train_cache"] = train_throughput(tmp / "data", tmp / "run_cache", args, tmp / "cache")
        result["eval_on_the_fly"] = eval_throughput(tmp / "data", None, args)
        result["eval_cache"] = eval_throughput(tmp / "data", tmp / "cache", args)
    print(f"{'':>18} {'clips/s':>8} {'first':>8} {'step s':>7} {'wall s':>7}  (first: epoch 1 or pass 1)")
    for name, row in result.items():
        first = row.get("first_epoch_clips_per_s", row.get("first_pass_clips_per_s", ""))
        print(f"{name:>18} {row['clips_per_s']:8.2f} {first:>8} {row.get('step_s', ''):>7} {row.get('wall_s', ''):>7}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
