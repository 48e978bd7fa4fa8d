"""ssl-train's command line and ``TrainConfig``, both ways: ``parse_args`` (argv -> a checked config) and
``config_argv`` (a config -> the argv that gives it back), so that whatever starts a run (the app's fine-tune
panel) writes the command from the same config."""
from __future__ import annotations

import argparse
import os
from dataclasses import fields

from model.networks.backbones import FREEZE_LEVELS
from model.networks.sslmodel import AUDIO_BACKBONES, VISUAL_BACKBONES
from model.train.audio_init import FREEZE_LEVELS as AUDIO_FREEZE_LEVELS
from model.train.augment import VIEW_STRENGTHS
from model.train.config import BEST_METRICS, LOSSES, POSITIVES, SCHEDULES, TrainConfig

DESCRIPTION = "ssl-train: self-supervised SSL-Align training (or the EZ-VSL baseline) on a folder of videos."


def build_parser() -> argparse.ArgumentParser:
    """ssl-train's flags, one per ``TrainConfig`` field (defaults from the dataclass)."""
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="ssl-train", description=DESCRIPTION,
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
    p.add_argument("--loss", choices=LOSSES, default=d.loss,
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
    p.add_argument("--neighbours-k", type=int, default=d.neighbours_k,
                   help="nearest neighbours used as extra positives")
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
    return p


def parse_args(argv=None) -> TrainConfig:
    """The command line -> a checked ``TrainConfig``."""
    p = build_parser()
    args = vars(p.parse_args(argv))
    config = TrainConfig(**{f.name: args[f.name] for f in fields(TrainConfig)})
    try:
        config.validate()
    except ValueError as exc:
        p.error(str(exc))
    return config


def config_argv(config: TrainConfig) -> list[str]:
    """The command line of ``config``, ``parse_args``'s inverse: its flags in the parser's order, each field that
    differs from the parser's default (``--data`` and ``--out`` always)."""
    argv = []
    for action in build_parser()._actions:
        if action.dest not in TrainConfig.__dataclass_fields__:
            continue
        value, option = getattr(config, action.dest), action.option_strings[0]
        if action.nargs == 0:  # a switch: --resume, --no-augment...
            argv += [option] if value != action.default else []
        elif action.required or value != action.default:
            argv += [option, str(value)]
    return argv
