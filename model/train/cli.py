"""ssl-train: self-supervised SSL-Align training (or the EZ-VSL baseline) on a folder of videos.

    ssl-train --data DIR --out RUN_DIR [--val DIR [--best-metric ciou|auc|a2i_r1]]
              [--init CKPT | --image-init imagenet|RESNET18.pth] [--visual-backbone resnet18|efficientnet_lite0]
              [--freeze-visual none|early|all] [--cache-visual-maps MB]
              [--audio-backbone resnet18|aisfx|yamnet] [--audio-init aisfx|yamnet|FILE.pth]
              [--freeze-audio none|last|all]
              [--loss align|ezvsl] [--epochs N] [--batch-size B] [--lr LR] [--schedule constant|cosine]
              [--warmup-steps N] [--image-size S]
              [--audio-seconds S] [--device auto|cpu|cuda] [--resume | --overwrite] [--no-neighbours]
              [--positives neighbours|bridge|both]
              [--no-augment | --views paper|weak]
              [--neighbours-k K] [--workers N] [--threads N] [--freeze-batch-norm] [--cache DIR] [--max-clips N]

The same command under ``torchrun --nproc_per_node N`` trains with DDP (``--batch-size`` is the global
batch). Writes ``RUN_DIR/last.safetensors``, ``best.safetensors``, ``last.state.safetensors`` (resume)
and ``log.jsonl`` (every step, every epoch's validation). Ctrl-C or SIGTERM ends the current step, saves
``last`` and exits (128 + the signal's number); a second one stops at once, still saving ``last``.
A RUN_DIR that holds a run is continued with ``--resume`` or replaced with ``--overwrite``, never silently
(``--overwrite`` deletes it once every input has been read, and never the ``--init`` file). A loss that
becomes NaN or infinite stops the run before that step (exit 2): the run's files keep their last save.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

import torch
from tqdm import tqdm

from model.backbones import FREEZE_LEVELS
from model.checkpoint import CheckpointError
from model.data.workers import error_line
from model.sslmodel import AUDIO_BACKBONES, VISUAL_BACKBONES
from model.train import distributed
from model.train.audio_init import FREEZE_LEVELS as AUDIO_FREEZE_LEVELS
from model.train.augment import VIEW_STRENGTHS
from model.train.trainer import BEST_METRICS, LOG, POSITIVES, SCHEDULES, Callback, TrainConfig, Trainer


def rounded(metrics: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


class ProgressBar(Callback):
    """A tqdm bar over all steps with the loss and clips/s."""

    def __init__(self):
        self.bar = None

    def on_train_start(self, info: dict) -> None:
        self.bar = tqdm(total=info["total_steps"], initial=info["step"], unit="step", dynamic_ncols=True)

    def on_step(self, step: int, metrics: dict) -> None:
        self.bar.set_postfix(epoch=metrics["epoch"], loss=f"{metrics['loss']:.3f}",
                             clips_s=f"{metrics['clips_per_s']:.1f}")
        self.bar.update(1)

    def on_baseline(self, metrics: dict) -> None:
        self.bar.write(f"before training: {rounded(metrics)}")

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        self.bar.write(f"epoch {epoch}: {rounded(metrics)}")

    def on_train_end(self, summary: dict) -> None:
        self.bar.close()


class JsonlLog(Callback):
    """One JSON object per line in ``path``: start, the starting model's validation (``baseline``, when
    fine-tuning with --val), every step, every epoch, every checkpoint, end.
    Appends, so a resumed run continues the same log."""

    def __init__(self, path):
        self.path = Path(path)

    def _write(self, event: str, payload: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"event": event, "time": time.time(), **payload}) + "\n")

    def on_train_start(self, info: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)  # not before: the trainer checks --out first
        self._write("start", {**info, "skipped": [list(s) for s in info["skipped"]]})

    def on_step(self, step: int, metrics: dict) -> None:
        self._write("step", metrics)

    def on_baseline(self, metrics: dict) -> None:
        self._write("baseline", metrics)

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        self._write("epoch", metrics)

    def on_checkpoint(self, path: str) -> None:
        self._write("checkpoint", {"path": path})

    def on_train_end(self, summary: dict) -> None:
        self._write("end", summary)


def parse_args(argv=None) -> TrainConfig:
    """The command line -> a ``TrainConfig`` (defaults from the dataclass)."""
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="ssl-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="training folder of videos")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--val", help="annotated folder evaluated after each epoch")
    p.add_argument("--best-metric", choices=BEST_METRICS, default=d.best_metric,
                   help="validation number that picks best.safetensors")
    p.add_argument("--init", help="ssl-desktop .safetensors checkpoint to fine-tune")
    p.add_argument("--image-init", help="ImageNet weights of the visual encoder: 'imagenet' (efficientnet_lite0: "
                   "the installed weights) or torchvision's ResNet-18 state dict (.pth)")
    p.add_argument("--visual-backbone", choices=VISUAL_BACKBONES,
                   help="visual encoder of a new model (default resnet18; --init/--resume keep the checkpoint's)")
    p.add_argument("--freeze-visual", choices=FREEZE_LEVELS, default=d.freeze_visual,
                   help="efficientnet_lite0: train all of it (none), its last stages and head (early), or only "
                        "the projection (all)")
    p.add_argument("--audio-backbone", choices=tuple(AUDIO_BACKBONES),
                   help="audio encoder of a new model: resnet18 (the paper's, default), aisfx (the pretrained "
                        "sound-effects net and a projection) or yamnet (YAMNet's AudioSet embedding, installed "
                        "weights, and a projection); --init/--resume keep the checkpoint's")
    p.add_argument("--audio-init", help="weights of the pretrained audio encoder: 'aisfx' or 'yamnet' (the installed "
                   "ones) or an aisfx weights file")
    p.add_argument("--freeze-audio", choices=AUDIO_FREEZE_LEVELS, default=d.freeze_audio,
                   help="aisfx, yamnet: train all of it (none), only its last block and the projection (last, yamnet) "
                        "or only the projection (all)")
    p.add_argument("--cache-visual-maps", dest="visual_cache_mb", type=int, default=d.visual_cache_mb, metavar="MB",
                   help="keep up to MB of the frozen part's maps in memory (needs --cache; turns image "
                        "augmentation off: the augmented view is the frame with augmented sound)")
    p.add_argument("--loss", choices=("align", "ezvsl"), default=d.loss,
                   help="align: SSL-Align (multi-positive, both terms); ezvsl: the single-positive baseline")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training clips")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="anchor clips per step (global)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                   help="learning rate over the run: constant (as published) or cosine decay to 0")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="linear learning-rate warm-up")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="Adam weight decay")
    p.add_argument("--temperature", type=float, default=d.temperature, help="contrastive softmax temperature")
    p.add_argument("--image-size", type=int, default=d.image_size,
                   help="a new model's input size, multiple of 16 (224 when not given; < 224 for CPU runs); "
                        "with --init/--resume the checkpoint's, and a different value is an error")
    p.add_argument("--audio-seconds", type=float, default=d.audio_seconds,
                   help="a new model's window of sound around each frame (3.0 s when not given); with "
                        "--init/--resume the checkpoint's")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device, help="auto: CUDA when present")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR's last state")
    p.add_argument("--overwrite", action="store_true", help="replace the run in RUN_DIR (refused without it)")
    p.add_argument("--no-neighbours", dest="neighbours", action="store_false", help="ablation: no NN positives")
    p.add_argument("--positives", choices=POSITIVES, default=d.positives,
                   help="mined positives: the paper's nearest neighbours, the bridge's (clips whose sound and picture "
                        "YAMNet and ImageNet match, weighed by the evidence) or both")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="ablation: no augmented positives")
    p.add_argument("--views", choices=tuple(VIEW_STRENGTHS), default=d.views,
                   help="strength of the augmented views: paper (crops of 50-100 %%, colour jitter, grayscale, 0.5 s "
                        "shifts, noise, 30-bin masks) or weak (crops of 80-100 %%, no colour changes, 10-bin masks)")
    p.add_argument("--neighbours-k", type=int, default=d.neighbours_k, help="nearest neighbours used as extra positives")
    p.add_argument("--neighbour-warmup-epochs", type=int, default=d.neighbour_warmup_epochs,
                   help="epochs before neighbours are used")
    p.add_argument("--neighbour-features", help="safetensors with 'features' (N, D): fixed neighbour bank")
    p.add_argument("--workers", type=int, default=min(d.workers, os.cpu_count() or 1),
                   help="DataLoader processes per process (at most the machine's cores)")
    p.add_argument("--threads", type=int, help="torch threads (intra- and inter-op) of the training process, "
                   "e.g. to leave cores to the desktop app; None: torch's own, one per core")
    p.add_argument("--freeze-batch-norm", action="store_true",
                   help="batch norm keeps the starting model's running statistics (fine-tuning on a few clips)")
    p.add_argument("--silence-negatives", type=int, default=d.silence_negatives, metavar="M",
                   help="windows of quiet noise (-65 to -40 dBFS) per step, among every image's candidates with "
                        "none to match: teaches that silence is no picture's sound (model.train.silence)")
    p.add_argument("--cache", help="decoded-frame cache folder")
    p.add_argument("--max-clips", type=int, help="train on the first N clips")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    args = vars(p.parse_args(argv))
    config = TrainConfig(**{f.name: args[f.name] for f in fields(TrainConfig)})
    try:
        config.validate()
    except ValueError as exc:
        p.error(str(exc))
    return config


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer, verbose: bool):
    """SIGINT/SIGTERM: the first asks ``trainer`` to stop after its step, the second interrupts at once.

    Yields a list that receives the numbers of the signals caught. A SIGINT the parent set to be
    ignored (a job started with ``&`` or ``nohup``) stays ignored; elsewhere than in the main thread
    (a GUI driving ``main``) nothing is installed.
    """
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handle(signum, _frame):
        caught.append(signum)
        if len(caught) > 1:
            raise KeyboardInterrupt
        trainer.stop()
        if verbose:
            print(f"\n{signal.Signals(signum).name}: stopping after this step (again to stop now)", file=sys.stderr)

    wanted = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
    previous = {s: signal.signal(s, handle) for s in wanted}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def use_threads(threads: int | None) -> None:
    """Limit torch to ``threads`` threads (None: leave its default); before any tensor work."""
    if threads is None:
        return
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:  # settable once per process, before parallel work
        torch.set_num_interop_threads(threads)


def main(argv=None) -> int:
    config = parse_args(argv)
    use_threads(config.threads)
    info = distributed.setup(config.device)
    callbacks = [ProgressBar(), JsonlLog(Path(config.out) / LOG)] if info.is_main else []
    trainer = None
    caught: list[int] = []
    saved = f"saved {config.out}/last.safetensors; continue with --resume"
    try:
        trainer = Trainer(config, callbacks, info)
        with stop_on_signals(trainer, info.is_main) as caught:
            summary = trainer.fit()
    except KeyboardInterrupt:
        if info.is_main and trainer is not None:
            print(f"\ninterrupted: {saved}", file=sys.stderr)
        return 128 + (caught[0] if caught else signal.SIGINT)
    except (CheckpointError, OSError, ValueError) as exc:  # OSError: also a full disk
        print(f"ssl-train: error: {error_line(exc)}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
    if caught:
        if info.is_main:
            print(f"stopped at step {summary['step']}: {saved}", file=sys.stderr)
        return 128 + caught[0]
    if info.is_main:
        print(f"done: step {summary['step']}, epoch {summary['epoch']}, best {summary['best']} -> {config.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
